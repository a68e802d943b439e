"""Where the workbook keeps its files, and the environment variables that move them.

Every path is computed when asked for (not at import time), so a test or a student
can change an environment variable and the next call sees it.
"""
import contextlib
import os
import sys
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


_ANNOUNCED = set()  # relative WORKBOOK_DATA_DIR values this process has said how it reads


def data_dir() -> Path:
    """The folder for downloads and generated files (``data/`` unless ``WORKBOOK_DATA_DIR`` is set).

    A relative ``WORKBOOK_DATA_DIR`` is read from the project's folder, whatever the current directory (a
    notebook's kernel runs in ``notebooks/``, the command line anywhere), so it means one folder to every
    process; the first use in a process says so, in one line on stderr."""
    setting = os.environ.get(ENV_DATA_DIR)
    folder = Path(setting).expanduser() if setting else PROJECT_ROOT / "data"
    if setting and not folder.is_absolute():
        folder = PROJECT_ROOT / folder
        if setting not in _ANNOUNCED:
            _ANNOUNCED.add(setting)
            if sys.stderr is not None:
                print(f"note: {ENV_DATA_DIR}={setting} is a relative path; it is read from the project's folder: "
                      f"{folder}", file=sys.stderr)
    where = f"the data folder {folder}" + (f" (from {ENV_DATA_DIR})" if setting else "")
    try:
        folder.exists()
    except PermissionError as exc:  # a folder above it may not be looked into
        raise read_error(folder, where) from exc
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
    if not os.access(folder, os.R_OK | os.X_OK):
        raise read_error(folder, where)
    return folder


def read_error(path, where=None) -> StorageError:
    """The workbook's error for a file or folder this account may not read, naming it and what to do."""
    path = Path(path)
    try:
        folder = path if path.is_dir() else path.parent
    except OSError:  # not even its folder may be looked into
        folder = path.parent
    return StorageError(f"cannot read {where or display_path(path)}: permission denied. It belongs to another "
                        f"account, or was written under a strict umask (such as 077). Ask its owner to make it "
                        f"readable (chmod -R a+rX {folder}), or set {ENV_DATA_DIR} to a folder of your own.")


@contextlib.contextmanager
def reading_files():
    """Turn a ``PermissionError`` from reading the workbook's files into the workbook's :class:`StorageError`."""
    try:
        yield
    except PermissionError as exc:
        if exc.filename is None:
            raise StorageError(f"cannot read a file of the data folder: {exc}. Make the folder readable, or set "
                               f"{ENV_DATA_DIR} to a folder of your own.") from exc
        raise read_error(exc.filename) from exc


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
