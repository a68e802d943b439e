"""What a student meets in a real Jupyter kernel: a cell run after a restart, an interrupted training and the cells
after it, and progress bars that leave nothing stale in the saved notebook."""
import json
import threading

import nbformat
import pytest

from helpers.storage.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow


class Kernel:
    """A kernel in notebooks/ (as JupyterLab starts one), run cell by cell, its outputs kept per cell."""

    def __init__(self, tmp_path, extra_arguments=(), env=None):
        import os

        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        environment = {**os.environ, "WORKBOOK_TEST_MODEL": "1", "WORKBOOK_DATA_DIR": str(tmp_path / "data"),
                       **(env or {})}
        self.km.start_kernel(cwd=str(PROJECT_ROOT / "notebooks"), env=environment,
                             extra_arguments=list(extra_arguments))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def run(self, code, interrupt_when=None, timeout=600):
        """Run ``code`` as a cell; returns its outputs. ``interrupt_when(text)``: press ■ once it is true of the
        cell's output so far (as a student interrupts a running cell)."""
        outputs, pressed = [], threading.Event()

        def hook(message):
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
            elif kind in ("display_data", "execute_result", "update_display_data"):
                outputs.append({"output_type": kind, "data": content["data"],
                                "display_id": content.get("transient", {}).get("display_id")})
            elif kind == "error":
                outputs.append({"output_type": "error", "ename": content["ename"], "evalue": content["evalue"],
                                "traceback": content["traceback"]})
            if interrupt_when and not pressed.is_set() and interrupt_when(text_of(outputs)):
                pressed.set()
                self.km.interrupt_kernel()

        self.kc.execute_interactive(code, output_hook=hook, timeout=timeout, store_history=True)
        return outputs

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def text_of(outputs):
    return "".join(o.get("text", "") + "".join(o.get("traceback", [])) for o in outputs)


def errors_in(outputs):
    return [o for o in outputs if o["output_type"] == "error"]


def test_after_a_restart_a_cell_run_out_of_order_gets_the_hint(tmp_path):
    """The kernel loads the notebook help at start (`python -m helpers setup-jupyter`'s kernel config), so the hint
    is there before any cell has imported helpers: a restart is the usual way to get here."""
    from helpers.classroom.jupyter_setup import kernel_config

    config = kernel_config(tmp_path / "env")  # the file setup-jupyter writes into the environment, here alone
    kernel = Kernel(tmp_path, extra_arguments=[f"--IPKernelApp.extra_config_file={config}"])
    try:
        outputs = kernel.run("train_losses[:3]")
    finally:
        kernel.close()
    assert [e["ename"] for e in errors_in(outputs)] == ["NameError"]  # Run All still stops here
    assert "run the cells above first" in text_of(outputs)
    assert "sys.modules" not in text_of(outputs)


def test_a_progress_bar_leaves_nothing_stale_in_the_notebook(monkeypatch):
    """Executed headless or saved, tqdm's usual widget keeps its first frame ("Epoch 1: 0%| | 0/130"); the
    workbook's bar is one output updated in place and emptied at the end (nbclient applies the updates as the
    notebook is saved)."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from helpers.storage.progress import progress\n"
        "for step in progress(range(300), desc='Epoch 1', mininterval=0):\n    pass\nprint('done')")])
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # the kernel inherits this environment: bars on
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    saved = json.dumps(nb.cells[0].outputs)
    assert "done" in saved
    assert "%|" not in saved and "Epoch 1" not in saved, saved[:500]


def test_after_an_interrupted_training_the_cells_below_work_or_say_why_not(tmp_path):
    """Notebook 4 as a student runs it: the training cell interrupted in its first epoch, then every cell below
    it in order. Each one works on what was trained (the log so far, the curves of the steps done, a checkpoint
    recorded as stopped early), or fails in one line that says the training cell was interrupted."""
    nb = nbformat.read(PROJECT_ROOT / "notebooks" / "04_training.ipynb", as_version=4)
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    training = next(i for i, source in enumerate(code) if "= train_classifier_simple(" in source)
    kernel = Kernel(tmp_path, env={"TQDM_DISABLE": "1"})
    try:
        for source in code[:training]:
            if "check_activity_3" in source or "def my_calc" in source:
                continue
            assert not errors_in(kernel.run(source)), source[:80]
        stopped = kernel.run(code[training], interrupt_when=lambda text: "Ep 1 (Step 000000)" in text)
        assert [e["ename"] for e in errors_in(stopped)] == ["KeyboardInterrupt"], text_of(stopped)[-800:]
        assert "⏹ Stopped at step" in text_of(stopped) and "Training completed" not in text_of(stopped)
        later = {}
        for source in code[training + 1:]:
            later[source] = kernel.run(source)
            if "display_path(folder)" in source:  # the saving cell: the checkpoint says it stopped early
                assert "stopped early" in text_of(later[source]), text_of(later[source])
    finally:
        kernel.close()
    for source, outputs in later.items():
        for error in errors_in(outputs):
            assert error["ename"] == "NameError" and "a cell you interrupted stopped" in text_of(outputs), \
                f"after the interrupt, {source[:60]!r} failed:\n{text_of(outputs)[-1500:]}"
    assert any(errors_in(outputs) for outputs in later.values()), "the optional part needs the finished run's time"
