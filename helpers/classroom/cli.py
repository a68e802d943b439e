"""Command line.

* ``python -m helpers classify "message" …`` (or one message per line on stdin, UTF-8, lines ending
  in ``\n`` or ``\r\n``) prints one line per message: ``label<TAB>probability<TAB>message``, with any
  backslash, tab, newline or other line break in the message escaped (``\\``, ``\t``, ``\n``, ``\x0b`` …),
  so each record stays on one line. The label is one of the checkpoint's class names; the probability
  is P(spam) (the second class) for a two-class classifier, else that of the predicted class. Which
  checkpoint it uses, and where that came from, goes to stderr.
* ``python -m helpers prepare [--size …] [--from FOLDER]`` prepares everything for class.

Exit status 0 on success, 2 for bad input or anything missing (with the reason on stderr).
"""
import argparse
import os
import sys
from pathlib import Path

from ..fast.inference import classify_texts
from ..storage.files import CorruptFileError
from ..storage.paths import StorageError
from ..tokenizer import get_gpt2_tokenizer
from ..storage.paths import display_path
from ..weights import print_test_model_banner
from .checkpoint import CheckpointError, default_checkpoint_dir, describe, load_classifier
from .pipeline import DEFAULT_MODEL, active_model_name, find_trained_classifier, usable_problem

EXIT_OK, EXIT_BAD_INPUT = 0, 2
# Everything str.splitlines() treats as a line break, plus tab (the field separator) and backslash
# (so the escaping can be undone): escaped in the message field of each output record.
_ESCAPES = {ord("\\"): "\\\\", ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r",
            **{ord(c): f"\\x{ord(c):02x}" for c in "\x0b\x0c\x1c\x1d\x1e\x85"},
            **{ord(c): f"\\u{ord(c):04x}" for c in "\u2028\u2029"}}


class InputError(ValueError):
    """The input cannot be read as messages."""


def escape_field(text: str) -> str:
    """``text`` on one line without tabs: backslash, tab and line breaks written as escapes."""
    return text.translate(_ESCAPES)


def split_lines(text: str) -> list:
    """One message per line: lines end in \\n or \\r\\n only (not \\v, \\f or U+2028, as str.splitlines would)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _messages(args):
    if args.messages:
        for number, message in enumerate(args.messages, 1):
            try:
                message.encode("utf-8")
            except UnicodeEncodeError as exc:  # bytes the locale could not decode (surrogate escapes)
                raise InputError(f"argument {number} is not valid UTF-8 text; pass the messages as UTF-8") from exc
        return list(args.messages)
    if sys.stdin is None or sys.stdin.isatty():
        return []
    raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise InputError(f"the input is not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line} cannot be "
                         "decoded. Convert it first, e.g. with `iconv -f latin1 -t utf-8`.") from exc
    lines = split_lines(text.removeprefix("\ufeff"))
    for number, line in enumerate(lines, 1):
        if not line.strip():
            print(f"note: skipping blank line {number} of the input", file=sys.stderr)
    return [line for line in lines if line.strip()]


def classify_command(args) -> int:
    try:
        messages = _messages(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not messages:
        print("error: nothing to classify. Give messages as arguments or one per line on stdin, e.g.\n"
              '  python -m helpers classify "WIN a free cruise! Reply YES"', file=sys.stderr)
        return EXIT_BAD_INPUT
    empty = [i for i, m in enumerate(messages, 1) if not m.strip()]
    if empty:
        print(f"error: message {empty[0]} is empty; there is nothing to classify", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.checkpoint:
            folder = Path(args.checkpoint)
            model, recipe = load_classifier(folder)
        else:
            found = find_trained_classifier(log=lambda line: print(f"note: {line}", file=sys.stderr))
            if found is None:
                raise CheckpointError(f"no trained classifier in {display_path(default_checkpoint_dir(active_model_name()))}"
                                      ": run notebook 4 (or 5) to train and save one, or pass --checkpoint FOLDER.")
            model, recipe, folder = found
    except (CheckpointError, CorruptFileError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = usable_problem(recipe)
    if problem and not args.allow_partial:
        print(f"error: the classifier in {display_path(folder)} is not finished: {problem}; or pass "
              "--allow-partial to use it anyway.", file=sys.stderr)
        return EXIT_BAD_INPUT
    if recipe["model_name"] == "test-model":
        print_test_model_banner(file=sys.stderr)
    print(f"classifier: {display_path(folder)}: {describe(recipe)}", file=sys.stderr)
    # the checkpoint's reading rule (max_length and pooling) travels with the model
    labels, probabilities = classify_texts(messages, model, get_gpt2_tokenizer(), "cpu")
    names = recipe["class_names"]
    for message, label, p in zip(messages, labels, probabilities):
        shown = p[1] if len(names) == 2 else p[label]
        print(f"{names[label]}\t{shown:.3f}\t{escape_field(message)}")
    return EXIT_OK


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers", description="The spam-classification workbook's tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    classify = commands.add_parser("classify", help="classify messages with the fine-tuned classifier",
                                   description="Prints label<TAB>P(spam)<TAB>message for each message.")
    classify.add_argument("messages", nargs="*", help="messages to classify (none: read one per line from stdin)")
    classify.add_argument("--checkpoint", help="checkpoint folder (default: notebook 4's, in data/checkpoints/, "
                                               "or else the one notebooks 5-6 trained)")
    classify.add_argument("--allow-partial", action="store_true",
                          help="use a classifier whose training was stopped early (it says so on stderr)")
    prepare = commands.add_parser("prepare", help="prepare everything for class (downloads, caches, training)",
                                  description="Fetch or copy and verify the dataset and GPT-2 weights, write the "
                                              "splits, cache the frozen trunk, train, measure, and time every "
                                              "notebook in instructor mode. Running it again skips what is done.")
    prepare.add_argument("--size", default=DEFAULT_MODEL, help=f'GPT-2 size (default "{DEFAULT_MODEL}", from '
                                                               "helpers/settings.py)")
    prepare.add_argument("--from", dest="source", help="a folder (e.g. a USB stick) holding sms_spam_collection.zip "
                                                       "and gpt2/model.safetensors, to copy instead of downloading")
    prepare.add_argument("--no-timing", action="store_true", help="skip running the notebooks to time them")
    prepare.add_argument("--retime", action="store_true", help="time the notebooks again")
    slides = commands.add_parser("slides", help="write an offline slide deck (HTML) per notebook",
                                 description="Execute each notebook and write it as a reveal.js deck in data/slides/, "
                                             "with reveal.js copied next to it (fetched once from the npm registry "
                                             "and sha256-checked), so the decks open with no network.")
    slides.add_argument("notebooks", nargs="*", help="notebooks to convert (default: all of notebooks/)")
    slides.add_argument("--out", help="output folder (default: data/slides/)")
    slides.add_argument("--instructor", action="store_true",
                        help="execute in instructor mode (replay what `prepare` trained: fast)")
    slides.add_argument("--no-execute", action="store_true", help="convert without running (no outputs)")
    setup = commands.add_parser("setup-jupyter", help="configure this environment's Jupyter for the workbook",
                                description="Kernels load the workbook's notebook help at start; RISE's one-key "
                                            "shortcuts ignore keys typed into a text box on a slide; `jupyter "
                                            "nbconvert --to html` writes the workbook's accessible HTML. "
                                            "bash workbook.sh runs it.")
    setup.add_argument("--prefix", help="the environment to configure (default: this Python's, sys.prefix)")
    args = parser.parse_args(argv)
    try:
        if args.command == "slides":
            from .slides import main_slides

            return main_slides(args)
        if args.command == "setup-jupyter":
            from .jupyter_setup import main_setup_jupyter

            return main_setup_jupyter(args)
        if args.command == "prepare":
            from .instructor import main_prepare

            return main_prepare(args)
        status = classify_command(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:  # the reader left (e.g. `| head -1`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
        return EXIT_OK
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a file or folder that cannot be written or read: said plainly, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}. Check the path, the free space and the permissions.",
              file=sys.stderr)
        return EXIT_BAD_INPUT
