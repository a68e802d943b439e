r"""Command line.

* ``python -m helpers classify "message" …`` (or one message per line on stdin, UTF-8, lines ending
  in ``\n`` or ``\r\n``) prints one line per message: ``label<TAB>probability<TAB>message``, with any
  backslash, tab, line break or other control character in the label or the message escaped (``\\``, ``\t``,
  ``\n``, ``\x1b`` …), so each record stays on one line whatever the messages or the checkpoint's class names
  hold. The label is one of the checkpoint's class names; the probability is P(spam) (the second class) for a
  two-class classifier, else that of the predicted class. Records are written as they are produced: messages
  are classified 32 at a time, and each batch's lines are flushed at once. ``--checkpoint`` takes the
  checkpoint's folder or its ``classifier.safetensors``. Which checkpoint it uses, and where that came from,
  goes to stderr (as plain text: control characters escaped).
* ``python -m helpers prepare [--size …] [--from FOLDER]`` prepares everything for class.
* ``python -m helpers slides [NOTEBOOK.ipynb …]`` writes offline slide decks.

Exit status:

* 0: success, also when the reader of the output leaves early (``| head -1``);
* 2: bad input or anything missing, with the reason on stderr: unknown options or sizes, a path that is
  not what it must be (a file for a folder, a file that is not a notebook), input that is not UTF-8, no
  classifier, unusable settings in ``helpers/settings.py``, a full disk or an unwritable folder, and a
  closed stdout (``>&-``: there is nowhere to write the results);
* 130: interrupted (Ctrl+C): the lines already classified are written, then it stops without a traceback.

A closed stderr (``2>&-``) changes nothing but that the notes and errors are not shown (the status still says
how it ended); nothing meant for stderr goes to stdout. An output encoding that cannot show a character
(``PYTHONIOENCODING=ascii``, a Windows console redirected to a file) gets it as an escape (``\xe9``,
``\u4e2d``; a backslash in the text is ``\\``, so the two cannot be confused), with a note on stderr.
"""
import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

from ..data import check_settings
from ..fast.inference import classify_texts
from ..gpt import model_configs
from ..settings import SettingsError
from ..storage.files import CorruptFileError
from ..storage.paths import StorageError, display_path
from ..tokenizer import get_gpt2_tokenizer
from ..weights import print_test_model_banner
from .checkpoint import (
    CONTROL_ESCAPES,
    CheckpointError,
    checkpoint_folder,
    default_checkpoint_dir,
    describe,
    load_classifier,
    plain_text,
)
from .pipeline import DEFAULT_MODEL, active_model_name, find_trained_classifier, usable_problem

EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 2, 130
BATCH = 32  # messages classified (and their lines written) at a time
# Backslash (so the escaping can be undone), tab (the field separator), every line break str.splitlines() knows
# and every other control character: escaped in the label and message fields of each output record.
_ESCAPES = {ord("\\"): "\\\\", **CONTROL_ESCAPES}


class InputError(ValueError):
    """The input cannot be read as messages."""


def escape_field(text: str) -> str:
    """``text`` on one line without tabs or control characters: backslash, tab, line breaks and the rest written
    as escapes."""
    return text.translate(_ESCAPES)


def split_lines(text: str) -> list:
    """One message per line: lines end in \\n or \\r\\n only (not \\v, \\f or U+2028, as str.splitlines would)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def say(text) -> None:
    """A note or an error on stderr; nowhere when stderr is closed (never on stdout, which holds the records)."""
    if sys.stderr is None:
        return
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr went away: the exit status still tells
        pass


def _argument_messages(args):
    for number, message in enumerate(args.messages, 1):
        try:
            message.encode("utf-8")
        except UnicodeEncodeError as exc:  # bytes the locale could not decode (surrogate escapes)
            raise InputError(f"argument {number} is not valid UTF-8 text; pass the messages as UTF-8") from exc
    empty = [i for i, m in enumerate(args.messages, 1) if not m.strip()]
    if empty:
        raise InputError(f"message {empty[0]} is empty; there is nothing to classify")
    return list(args.messages)


def _stdin_messages():
    """The messages on stdin, one per line, read as they arrive (the first may start with a UTF-8 BOM)."""
    binary = getattr(sys.stdin, "buffer", None)
    read_line = binary.readline if binary is not None else lambda: sys.stdin.readline().encode("utf-8")
    number = 0
    while raw := read_line():
        number += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"the input is not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {number} cannot be "
                             "decoded. Convert it first, e.g. with `iconv -f latin1 -t utf-8`.") from exc
        line = "".join(split_lines(text.removeprefix("\ufeff") if number == 1 else text))
        if not line.strip():
            say(f"note: skipping blank line {number} of the input")
            continue
        yield line


def _batches(messages):
    batch = []
    for message in messages:
        batch.append(message)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _load(args):
    """The classifier to use, its recipe and folder; stray prints of loading go to stderr, never to stdout."""
    with contextlib.redirect_stdout(sys.stderr if sys.stderr is not None else io.StringIO()):
        if args.checkpoint:
            folder = checkpoint_folder(args.checkpoint)
            model, recipe = load_classifier(folder)
        else:
            found = find_trained_classifier(log=lambda line: say(f"note: {line}"))
            if found is None:
                raise CheckpointError(f"no trained classifier in {display_path(default_checkpoint_dir(active_model_name()))}"
                                      ": run notebook 4 (or 5) to train and save one, or pass --checkpoint FOLDER.")
            model, recipe, folder = found
    return model, recipe, folder


def classify_command(args) -> int:
    if sys.stdout is None:
        say("error: stdout is closed (e.g. `>&-`): there is nowhere to write the results. Send them to a file or a "
            "pipe instead: python -m helpers classify ... > results.tsv")
        return EXIT_BAD_INPUT
    try:
        if args.messages:
            messages = _argument_messages(args)
        elif sys.stdin is None or sys.stdin.isatty():
            messages = []
        else:
            messages = _stdin_messages()
        messages = iter(messages)
        first = next(messages, None)  # for stdin: the first line (a bad first line is reported before loading)
    except InputError as exc:
        say(f"error: {exc}")
        return EXIT_BAD_INPUT
    if first is None:
        say("error: nothing to classify. Give messages as arguments or one per line on stdin, e.g.\n"
            '  python -m helpers classify "WIN a free cruise! Reply YES"')
        return EXIT_BAD_INPUT
    done = 0
    try:
        try:
            model, recipe, folder = _load(args)
        except (CheckpointError, CorruptFileError, StorageError) as exc:
            say(f"error: {exc}")
            return EXIT_BAD_INPUT
        problem = usable_problem(recipe)
        if problem and not args.allow_partial:
            say(f"error: the classifier in {display_path(folder)} is not finished: {plain_text(problem)}; or pass "
                "--allow-partial to use it anyway.")
            return EXIT_BAD_INPUT
        if recipe["model_name"] == "test-model" and sys.stderr is not None:
            print_test_model_banner(file=sys.stderr)
        say(f"classifier: {display_path(folder)}: {describe(recipe)}")
        tokenizer, names = get_gpt2_tokenizer(), [escape_field(name) for name in recipe["class_names"]]
        encoding, noted = getattr(sys.stdout, "encoding", None) or "utf-8", False
        for batch in _batches(_chain(first, messages)):
            # the checkpoint's reading rule (max_length and pooling) travels with the model
            labels, probabilities = classify_texts(batch, model, tokenizer, "cpu")
            lines = []
            for message, label, p in zip(batch, labels, probabilities):
                shown = p[1] if len(names) == 2 else p[label]
                lines.append(f"{names[label]}\t{shown:.3f}\t{escape_field(message)}\n")
            text = "".join(lines)
            if not noted and not _encodable(text, encoding):
                noted = True
                say(f"note: the output's encoding ({encoding}) cannot show every character; those are written as "
                    "escapes (\\xe9, \\u4e2d …). Set PYTHONIOENCODING=utf-8 to get them as they are.")
            sys.stdout.write(text)
            sys.stdout.flush()
            done += len(batch)
    except InputError as exc:  # a bad line further down: the lines before it are written
        say(f"error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        say(f"\ninterrupted: {done:,} message(s) classified and written; stopped.")
        return EXIT_INTERRUPTED
    return EXIT_OK


def _chain(first, rest):
    yield first
    yield from rest


def _encodable(text, encoding) -> bool:
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _escape_unencodable(*streams) -> None:
    """Characters an output's encoding cannot show are written as escapes (``\\xe9``), not an error."""
    for stream in streams:
        if stream is not None and hasattr(stream, "reconfigure"):
            with contextlib.suppress(ValueError, OSError, AttributeError):
                stream.reconfigure(errors="backslashreplace")


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
    prepare.add_argument("--size", default=DEFAULT_MODEL, choices=list(model_configs), metavar="SIZE",
                         help=f'GPT-2 size: {", ".join(map(repr, model_configs))} (default "{DEFAULT_MODEL}", '
                              "from helpers/settings.py)")
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
    _escape_unencodable(sys.stdout, sys.stderr)
    try:
        check_settings()
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
        if sys.stdout is not None:
            sys.stdout.flush()
        return status
    except BrokenPipeError:  # the reader left (e.g. `| head -1`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
        return EXIT_OK
    except KeyboardInterrupt:  # Ctrl+C outside the classifying loop (which says what it wrote)
        say("\ninterrupted.")
        return EXIT_INTERRUPTED
    except (SettingsError, StorageError) as exc:
        say(f"error: {exc}")
        return EXIT_BAD_INPUT
    except OSError as exc:  # a file or folder that cannot be written or read: said plainly, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        say(f"error: {where}{exc.strerror or exc}. Check the path, the free space and the permissions.")
        return EXIT_BAD_INPUT
