"""Settings for every pytest run, including `pytest notebooks/...` on its own.

Notebooks executed by nbval (their kernels inherit this environment) and the unit tests run offline
on the tiny test model, with training capped so the whole suite stays fast.
"""
import os

os.environ.setdefault("WORKBOOK_TEST_MODEL", "1")
os.environ.setdefault("WORKBOOK_MAX_STEPS", "300")
# No progress-bar widgets under nbval: it reads a notebook's output only after a cell ends, and a cell
# that streams thousands of widget updates can overflow the kernel's message queue, losing the final
# "idle" message (nbval then reports "Timeout of 5 seconds exceeded waiting for output").
os.environ.setdefault("TQDM_DISABLE", "1")
