"""Settings for every pytest run, including `pytest notebooks/...` on its own.

Notebooks executed by nbval (their kernels inherit this environment) and the unit tests run offline
on the tiny test model (it trains the lecture's 650 steps in seconds).
"""
import os

import pytest

os.environ.setdefault("WORKBOOK_TEST_MODEL", "1")
# No progress-bar widgets under nbval (a precaution; students keep their bars): nbval reads a notebook's
# output messages only after each cell ends and ZeroMQ queues about 1,000, while notebook 07's strategy
# runs emitted ~4,100 tqdm widget updates in a single cell (measured).
os.environ.setdefault("TQDM_DISABLE", "1")


# --------------------------------------------------------------------------- each notebook executed once per run
# nbval executes every notebook (notebooks/ runs first, see pyproject.toml). What it executed is kept, so the
# tests that need a notebook with its outputs (the RISE and static-deck browser tests) reuse that run instead
# of executing the notebook again: ``request.config.workbook_executed[name]`` (see tests/conftest.py).
def pytest_configure(config):
    config.workbook_executed = {}  # notebook file name -> the executed notebook, when nbval ran all its cells
    config.workbook_failed = set()  # notebooks in which a cell failed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    cell, outputs = getattr(item, "cell", None), getattr(item, "test_outputs", None)
    if report.when != "call" or cell is None or not hasattr(item.parent, "nb"):
        return
    notebook, name = item.parent.nb, os.path.basename(str(item.parent.fspath))
    if report.failed or outputs is None:
        item.config.workbook_failed.add(name)
        return
    if cell.source.rstrip().endswith(";"):  # nbval runs cells with store_history=False, which defeats IPython's
        outputs = [o for o in outputs if o.get("output_type") != "execute_result"]  # trailing-";" quieting
    cell.outputs = outputs  # what this run printed and drew, in place of what the file holds
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    if cell is code_cells[-1] and name not in item.config.workbook_failed:
        item.config.workbook_executed[name] = notebook
