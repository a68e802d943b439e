"""Settings for every pytest run, including `pytest notebooks/...` on its own.

Notebooks executed by nbval (their kernels inherit this environment) and the unit tests run offline
on the tiny test model (it trains the lecture's 650 steps in seconds).
"""
import os

os.environ.setdefault("WORKBOOK_TEST_MODEL", "1")
# No progress-bar widgets under nbval (a precaution; students keep their bars): nbval reads a notebook's
# output messages only after each cell ends and ZeroMQ queues about 1,000, while notebook 07's strategy
# runs emitted ~4,100 tqdm widget updates in a single cell (measured).
os.environ.setdefault("TQDM_DISABLE", "1")
