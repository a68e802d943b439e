"""Friendlier failures in a notebook: the usual cause above a NameError, a short note on Interrupt."""
import contextlib
import io

from IPython.core.interactiveshell import InteractiveShell

from helpers.classroom.notebook import install_notebook_help


def run(shell, code):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        result = shell.run_cell(code)
    return result, err.getvalue(), out.getvalue()


def test_a_name_from_a_cell_not_run_yet_gets_the_hint_and_still_fails():
    shell = InteractiveShell.instance()
    install_notebook_help(shell)
    assert install_notebook_help(shell) is False  # once is enough
    result, err, out = run(shell, "train_losses[0]")
    assert not result.success and isinstance(result.error_in_exec, NameError)  # Run All still stops here
    assert "run the cells above first" in err and "name 'train_losses' is not defined" in out
    result, err, _ = run(shell, "1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError) and err == ""  # other errors: no hint


def test_an_interrupted_cell_says_what_happened_without_a_long_traceback():
    shell = InteractiveShell.instance()
    install_notebook_help(shell)
    result, err, out = run(shell, "import torch\nfor _ in range(3):\n    raise KeyboardInterrupt")
    assert not result.success and isinstance(result.error_in_exec, KeyboardInterrupt)  # Run All stops here
    assert "⏹ Stopped" in out + err and "keeps those steps" in out + err and "Traceback" not in out + err
