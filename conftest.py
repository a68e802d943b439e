"""Settings for every pytest run, including `pytest notebooks/...` on its own.

Notebooks executed by nbval (their kernels inherit this environment) and the unit tests run offline
on the tiny test model, with training capped so the whole suite stays fast.
"""
import os

os.environ.setdefault("WORKBOOK_TEST_MODEL", "1")
os.environ.setdefault("WORKBOOK_MAX_STEPS", "300")
