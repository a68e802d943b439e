"""Settings for every pytest run, including `pytest notebooks/...` on its own.

Notebooks executed by nbval (their kernels inherit this environment) and the unit tests run offline
on the tiny test model, with training capped so the whole suite stays fast.
"""
import os

os.environ.setdefault("WORKBOOK_TEST_MODEL", "1")
os.environ.setdefault("WORKBOOK_MAX_STEPS", "300")
# No progress-bar widgets under nbval. nbval reads a notebook's output messages only after each cell
# ends, and ZeroMQ queues at most 1,000 of them: notebook 07's strategy cell emits ~4,200 (~4,100 of
# them tqdm widget updates), so the cell's final "idle" message could be dropped and nbval would
# report "Timeout of 5 seconds exceeded waiting for output". Students keep their progress bars.
os.environ.setdefault("TQDM_DISABLE", "1")
