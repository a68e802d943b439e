"""`python -m helpers classify`: arguments and stdin, one record per line, exit status 2 with a reason.

Every test starts the command in a fresh process (a few seconds each): all marked slow."""
import subprocess
import sys

import pytest

from helpers import (
    classify_review,
    save_classifier,
)
from helpers.classroom.checkpoint import RECIPE_FILE
from helpers.classroom.cli import escape_field, split_lines
from helpers.storage.files import read_json, write_json
from helpers.storage.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow



def test_cli_exit_status_2_for_a_bad_recipe(tmp_path, tiny_classifier, run_cli):
    folder = save_classifier(tiny_classifier(), tmp_path / "ckpt", max_length=20)
    write_json(folder / RECIPE_FILE, read_json(folder / RECIPE_FILE) | {"num_classes": "2"})
    result = run_cli("classify", "--checkpoint", str(folder), "hello")
    assert result.returncode == 2 and b"num_classes" in result.stderr and b"Traceback" not in result.stderr


# --------------------------------------------------------------------------- 11. the CLI's text
def test_only_newlines_split_messages_and_records_stay_on_one_line():
    assert split_lines("one\vtwo\x0cthree\u2028four\r\nfive\n\nsix") == ["one\vtwo\x0cthree\u2028four", "five", "",
                                                                           "six"]
    assert escape_field("a\tb\nc\\d\re\u2028f\x0bg") == "a\\tb\\nc\\\\d\\re\\u2028f\\x0bg"
    assert "\n".join(escape_field(m) for m in ["x\ny", "p\u2028q"]).splitlines() == ["x\\ny", "p\\u2028q"]


@pytest.fixture(scope="module")
def cli_checkpoint(tmp_path_factory, tiny_classifier):
    return save_classifier(tiny_classifier(), tmp_path_factory.mktemp("cli"), max_length=20)


def test_cli_text_handling(cli_checkpoint, run_cli):
    ckpt = ["classify", "--checkpoint", str(cli_checkpoint)]
    result = run_cli(*ckpt, stdin="first\vstill first\u2028same\r\nsecond\n".encode())
    assert result.returncode == 0, result.stderr
    assert [line.split(b"\t")[2] for line in result.stdout.split(b"\n")[:-1]] == [
        "first\\x0bstill first\\u2028same".encode(), b"second"]
    result = run_cli(*ckpt, "two\nlines\tand a tab")
    assert result.returncode == 0 and result.stdout.count(b"\n") == 1 and result.stdout.count(b"\t") == 2
    assert result.stdout.endswith(b"\ttwo\\nlines\\tand a tab\n")
    result = run_cli(*ckpt, stdin=b"caf\xe9 latin-1\n")
    assert result.returncode == 2 and b"not UTF-8" in result.stderr and b"Traceback" not in result.stderr


def test_cli_output_into_a_closed_pipe_ends_quietly(cli_checkpoint):
    messages = ("win a prize " * 300 + "\n") * 100  # far more output than a pipe holds
    process = subprocess.Popen([sys.executable, "-m", "helpers", "classify", "--checkpoint", str(cli_checkpoint)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=PROJECT_ROOT)
    process.stdin.write(messages.encode())
    process.stdin.close()
    first = process.stdout.readline()  # `| head -1`
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0
    assert first.startswith((b"ham\t", b"spam\t")) and b"Traceback" not in stderr and b"BrokenPipe" not in stderr



# --------------------------------------------------------------------------- arguments, stdin, errors
@pytest.fixture(scope="module")
def model(tiny_classifier):
    return tiny_classifier()


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    return save_classifier(model, tmp_path_factory.mktemp("ckpt"), max_length=120)


@pytest.fixture(scope="module")
def classify(run_cli):
    """``classify(ARGS)``: ``python -m helpers classify ARGS``, text in and out."""
    def run(*args, stdin=None):
        result = run_cli("classify", *args, stdin=None if stdin is None else stdin.encode())
        result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
        return result
    return run


def test_cli_classifies_arguments(checkpoint, model, tokenizer, messages, classify):
    result = classify("--checkpoint", str(checkpoint), messages[0], messages[1])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line, text in zip(lines, messages[:2]):
        label, p_spam, message = line.split("\t")
        expected_label, expected_p = classify_review(text, model, tokenizer, "cpu", max_length=120)
        assert message == text and label == ("spam" if expected_label else "ham")
        assert float(p_spam) == pytest.approx(float(expected_p[1]), abs=1e-3)


def test_cli_reads_stdin_lines(checkpoint, classify):
    result = classify("--checkpoint", str(checkpoint), stdin="first message\n\nsecond message\n")
    assert result.returncode == 0
    assert [line.split("\t")[2] for line in result.stdout.splitlines()] == ["first message", "second message"]
    assert "skipping blank line 2" in result.stderr


def test_cli_errors(checkpoint, tmp_path, classify):
    missing = classify("--checkpoint", str(tmp_path / "nothing"), "hello")
    assert missing.returncode == 2 and "no classifier checkpoint" in missing.stderr and missing.stdout == ""
    empty = classify("--checkpoint", str(checkpoint), "hello", "  ")
    assert empty.returncode == 2 and "message 2 is empty" in empty.stderr
    nothing = classify("--checkpoint", str(checkpoint), stdin="")
    assert nothing.returncode == 2 and "nothing to classify" in nothing.stderr
