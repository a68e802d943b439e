"""Friendlier failures in a notebook: the usual cause above a NameError, a short note on Interrupt."""
import contextlib
import io

from IPython.core.interactiveshell import InteractiveShell

from helpers.classroom.notebook import install_notebook_help


def run(shell, code):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        result = shell.run_cell(code, store_history=True)  # as a notebook runs a cell
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


TRAIN_AND_STOP = '''
import torch
from helpers import GPTModel, prepare_for_classification, train_classifier_simple

torch.manual_seed(0)
model = prepare_for_classification(GPTModel({"vocab_size": 50257, "context_length": 16, "emb_dim": 8, "n_heads": 2,
                                             "n_layers": 1, "drop_rate": 0.0, "qkv_bias": True}))
batches = [(torch.randint(0, 50257, (2, 6)), torch.tensor([0, 1])) for _ in range(4)]

class StopsAtStepSix(torch.optim.AdamW):  # as if Kernel > Interrupt came during the sixth step
    steps = 0
    def step(self, closure=None):
        StopsAtStepSix.steps += 1
        if StopsAtStepSix.steps == 6:
            raise KeyboardInterrupt
        return super().step(closure)

optimizer = StopsAtStepSix(model.parameters(), lr=1e-3)
{targets} = train_classifier_simple(model, batches, batches, optimizer, "cpu", num_epochs=3, eval_freq=2, eval_iter=1)
'''


def test_an_interrupted_training_run_says_where_it_stopped_and_hands_back_what_it_has():
    shell = InteractiveShell.instance()
    install_notebook_help(shell)
    for name in ("losses", "stopped_run"):
        shell.user_ns.pop(name, None)
    names = "losses, val_losses, accs, val_accs, seen"
    result, err, out = run(shell, TRAIN_AND_STOP.replace("{targets}", names))
    assert isinstance(result.error_in_exec, KeyboardInterrupt) and "Traceback" not in out + err  # Run All stops
    message = out + err
    assert "⏹ Stopped at step 5 of 12 (epoch 2 of 3)" in message  # 5 steps done; the 6th was interrupted
    assert f"`{names}` hold the run so far (3 loss evaluations, the accuracy after 1 epoch); the rest of the cell" in message
    ns = shell.user_ns
    assert len(ns["losses"]) == len(ns["val_losses"]) == 3 and len(ns["accs"]) == 1 and ns["seen"] == 10
    # a cell that does not assign the five lists: they wait in stopped_run
    result, err, out = run(shell, TRAIN_AND_STOP.replace("{targets}", "run").replace("steps = 0", "steps = 0  # again"))
    assert "`stopped_run` holds the run so far" in out + err and len(shell.user_ns["stopped_run"]) == 5


def test_missing_weights_show_their_message_alone():
    shell = InteractiveShell.instance()
    install_notebook_help(shell)
    code = ("from helpers.weights import WeightsError\n"
            "raise WeightsError('The GPT-2 weights are not on this machine.\\nWhat to do: ...')")
    result, err, out = run(shell, code)
    assert isinstance(result.error_in_exec, Exception) and type(result.error_in_exec).__name__ == "WeightsError"
    shown = out + err
    assert shown.lstrip().startswith("❌ WeightsError: The GPT-2 weights are not on this machine.")
    assert "Traceback" not in shown and "raise WeightsError" not in shown
