"""Where the workbook keeps its files, and the environment variables that move them.

Every path is computed when asked for (not at import time), so a test or a student
can change an environment variable and the next call sees it.
"""
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Environment variables the workbook reads (all optional).
ENV_DATA_DIR = "WORKBOOK_DATA_DIR"        # where downloads and generated files go
ENV_SMS_ZIP = "WORKBOOK_SMS_ZIP"          # a pre-staged copy of the SMS Spam Collection zip
ENV_GPT2_DIR = "WORKBOOK_GPT2_DIR"        # a folder of pre-staged GPT-2 weights
ENV_TEST_MODEL = "WORKBOOK_TEST_MODEL"    # "1": use the tiny random test model (CI, offline practice)
ENV_INSTRUCTOR = "WORKBOOK_INSTRUCTOR"    # "1": replay the runs prepared by `python -m helpers prepare`


class StorageError(RuntimeError):
    """The data folder cannot be used or a file cannot be written (not a folder, read-only, disk full)."""


def data_dir() -> Path:
    """The folder for downloads and generated files (``data/`` unless ``WORKBOOK_DATA_DIR`` is set)."""
    setting = os.environ.get(ENV_DATA_DIR)
    folder = Path(setting).expanduser() if setting else PROJECT_ROOT / "data"
    where = f"the data folder {folder}" + (f" (from {ENV_DATA_DIR})" if setting else "")
    if folder.is_symlink() and not folder.exists():
        raise StorageError(f"{where} is a symbolic link to {os.readlink(folder)}, which does not exist. "
                           f"Create that folder, remove the link, or set {ENV_DATA_DIR} to another folder.")
    if folder.exists() and not folder.is_dir():
        raise StorageError(f"{where} is a file, not a folder. Move the file away or set {ENV_DATA_DIR} "
                           "to a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {where}: {exc.strerror or exc}. Set {ENV_DATA_DIR} to a writable "
                           "folder.") from exc
    return folder


def display_path(path) -> str:
    """A path as a student should read it: relative to the project when it lies inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def env_flag(name) -> bool:
    """True when the environment variable ``name`` is set to 1 / true / yes / on."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def instructor_mode() -> bool:
    """Instructor mode (``WORKBOOK_INSTRUCTOR=1``): notebooks replay the prepared runs."""
    return env_flag(ENV_INSTRUCTOR)
