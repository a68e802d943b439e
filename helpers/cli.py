"""Command line.

* ``python -m helpers classify "message" …`` (or one message per line on stdin) prints one line per
  message: ``label<TAB>P(spam)<TAB>message``.
* ``python -m helpers prepare [--size …] [--from FOLDER]`` prepares everything for class.

Exit status 0 on success, 2 for bad input or anything missing (with the reason on stderr).
"""
import argparse
import sys

from .checkpoint import CheckpointError, default_checkpoint_dir, load_classifier
from .inference import classify_texts
from .pipeline import active_model_name
from .tokenizer import get_gpt2_tokenizer
from .weights import print_test_model_banner

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def _messages(args):
    if args.messages:
        return list(args.messages)
    if sys.stdin is None or sys.stdin.isatty():
        return []
    lines = sys.stdin.read().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            print(f"note: skipping blank line {number} of the input", file=sys.stderr)
    return [line for line in lines if line.strip()]


def classify_command(args) -> int:
    messages = _messages(args)
    if not messages:
        print("error: nothing to classify. Give messages as arguments or one per line on stdin, e.g.\n"
              '  python -m helpers classify "WIN a free cruise! Reply YES"', file=sys.stderr)
        return EXIT_BAD_INPUT
    empty = [i for i, m in enumerate(messages, 1) if not m.strip()]
    if empty:
        print(f"error: message {empty[0]} is empty; there is nothing to classify", file=sys.stderr)
        return EXIT_BAD_INPUT
    folder = args.checkpoint or default_checkpoint_dir(active_model_name())
    try:
        model, recipe = load_classifier(folder)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if recipe["model_name"] == "test-model":
        print_test_model_banner(file=sys.stderr)
    labels, probabilities = classify_texts(messages, model, get_gpt2_tokenizer(), "cpu",
                                           max_length=recipe["max_length"])
    for message, label, p in zip(messages, labels, probabilities):
        print(f"{'spam' if label == 1 else 'ham'}\t{p[1]:.3f}\t{message}")
    return EXIT_OK


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers", description="The spam-classification workbook's tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    classify = commands.add_parser("classify", help="classify messages with the fine-tuned classifier",
                                   description="Prints label<TAB>P(spam)<TAB>message for each message.")
    classify.add_argument("messages", nargs="*", help="messages to classify (none: read one per line from stdin)")
    classify.add_argument("--checkpoint", help="checkpoint folder (default: notebook 4's, in data/checkpoints/)")
    prepare = commands.add_parser("prepare", help="prepare everything for class (downloads, caches, training)",
                                  description="Fetch or copy and verify the dataset and GPT-2 weights, write the "
                                              "splits, cache the frozen trunk, train, measure, and time every "
                                              "notebook in instructor mode. Running it again skips what is done.")
    prepare.add_argument("--size", default="gpt2-small (124M)", help='GPT-2 size (default "gpt2-small (124M)")')
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
    args = parser.parse_args(argv)
    if args.command == "slides":
        from .slides import main_slides

        return main_slides(args)
    if args.command == "prepare":
        from .instructor import main_prepare

        return main_prepare(args)
    return classify_command(args)
