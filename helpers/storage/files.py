"""One writer and one checked reader for every file the workbook writes (JSON, CSV, safetensors).

A file is written to a uniquely named temporary file in its folder, flushed to disk, then renamed
over the target, so a reader never sees half a file and two processes never write the same
temporary. Next to it goes ``<name>.sha256`` (the format of ``sha256sum``): a file whose checksum
is missing or does not match is *corrupt* and is never trusted; callers rebuild it.
"""
import contextlib
import errno
import glob
import hashlib
import io
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path

from .paths import StorageError, display_path, read_error

CHUNK = 1 << 20
SUFFIX = ".sha256"


class CorruptFileError(RuntimeError):
    """A file is missing its checksum, or its content does not match it (truncated, edited, half written)."""

    def __init__(self, path, reason):
        self.path = Path(path)
        super().__init__(f"{display_path(path)} {reason}")


def checksum_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def _sha256_of_open(file) -> str:
    digest = hashlib.sha256()
    while block := file.read(CHUNK):
        digest.update(block)
    return digest.hexdigest()


def sha256_file(path) -> str:
    with open(path, "rb") as f:
        return _sha256_of_open(f)


_UMASK_LOCK = threading.Lock()


def give_normal_permissions(path) -> None:
    """The mode ``open()`` would have given a new file, under this process's umask (``mkstemp`` makes it 0600,
    which nobody else could read: a data folder prepared by one account, or copied slides)."""
    with _UMASK_LOCK:  # the umask can only be read by setting it
        mask = os.umask(0o022)
        os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


_WRITE_PROBLEMS = {  # errno: (what went wrong, what to do)
    errno.ENOSPC: ("the disk is full", "Free some space"),
    errno.EDQUOT: ("the disk quota is used up", "Free some space"),
    errno.EROFS: ("the file system is read-only", "Make the folder writable"),
    errno.EACCES: ("permission denied", "Make the folder writable"),
    errno.EPERM: ("permission denied", "Make the folder writable"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "Move that file away"),
    errno.EEXIST: ("a file is in the way where a folder should be", "Move that file away"),
    errno.EISDIR: ("a folder is in the way where the file should be", "Move that folder away"),
}


def _storage_error(path, exc) -> StorageError:
    """The workbook's error for a write that failed: an ``OSError``, or a library's own error for one (safetensors
    raises ``SafetensorError("... No space left on device (os error 28)")``, which is no ``OSError``)."""
    code = getattr(exc, "errno", None)
    if code is None:  # a library's error: the operating system's code is in its message, if anywhere
        found = re.search(r"os error (\d+)", str(exc))
        code = int(found[1]) if found else None
    what, advice = _WRITE_PROBLEMS.get(code, (getattr(exc, "strerror", None) or str(exc), "Check the free space and "
                                                                                         "the folder's permissions"))
    return StorageError(f"cannot write {display_path(path)}: {what}. {advice}, or set WORKBOOK_DATA_DIR to "
                        "another folder.")


def _is_write_error(exc) -> bool:
    """Whether a writer's exception that is no ``OSError`` reports a failed write (safetensors' ``SafetensorError``
    for a full disk or an unwritable file) rather than a mistake in what was to be written."""
    return type(exc).__name__ == "SafetensorError" and bool(re.search(r"I/O error|os error \d+", str(exc)))


@contextlib.contextmanager
def folder_lock(folder, shared=False):
    """Hold a lock on ``folder`` (exclusive, or ``shared`` for readers) while the block runs.

    Writers of a file and its checksum commit the pair under the exclusive lock, readers read the pair under a
    shared one: two processes saving one file at the same moment leave one of the two complete pairs, and no
    reader sees one save's checksum beside the other's content. POSIX: ``flock`` on the folder itself (no lock
    file is left behind); Windows: ``msvcrt.locking`` on a file ``.workbook.lock`` in the folder. Where no lock
    can be taken (a file system without locks, a folder this account cannot open) the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        fcntl = None
    if fcntl is None:
        with _windows_lock(Path(folder)):
            yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        except OSError:  # no locks here (some network file systems): as before, unlocked
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _windows_lock(folder):
    import msvcrt

    try:
        handle = open(folder / ".workbook.lock", "a+b")
    except OSError:
        yield
        return
    with handle:
        handle.seek(0)
        deadline = time.monotonic() + 120
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)  # itself retries for about 10 s
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise StorageError(f"{display_path(folder)} stayed locked by another process for two minutes; "
                                       "close the other notebook or command that writes there, then try again.")
        try:
            yield
        finally:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


STALE_PART_SECONDS = 600  # a temporary file this old was left by a write that was killed (kill -9, power cut)


def _remove_stale_parts(path):
    """Remove what killed writes of ``path`` left behind: its old temporary files (a live write is younger)."""
    now = time.time()
    for part in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        try:
            if now - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink()
        except FileNotFoundError:  # another process removed it first
            pass


def write_atomically(path, data=None, *, writer=None, after_write=None, before_replace=None, locked=False) -> Path:
    """Write ``data`` (bytes), or whatever ``writer(tmp_path)`` writes, to ``path`` atomically.

    The content goes to a uniquely named temporary file next to ``path`` (two processes never
    share one), is flushed to disk, and is renamed over ``path`` only when complete. A full disk
    or a read-only folder raises :class:`StorageError` naming the file, whichever library wrote it.
    ``after_write(tmp)`` runs once the content is on disk; ``before_replace(tmp)`` just before the rename,
    and with ``locked=True`` the two steps run under the folder's lock (:func:`folder_lock`).
    """
    if (data is None) == (writer is None):
        raise TypeError("write_atomically needs either data or writer")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            if writer is None:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            else:
                os.close(fd)
                writer(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            give_normal_permissions(tmp)
            if after_write is not None:
                after_write(tmp)
            with folder_lock(path.parent) if locked else contextlib.nullcontext():
                if before_replace is not None:
                    before_replace(tmp)
                os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise _storage_error(path, exc) from exc
    except Exception as exc:  # noqa: BLE001 - only a library's report of a failed write is mapped
        if _is_write_error(exc):
            raise _storage_error(path, exc) from exc
        raise
    return path


def write_checked(path, data=None, *, writer=None) -> Path:
    """:func:`write_atomically`, plus the content's checksum in ``<name>.sha256``.

    The checksum goes first and the content last: a write stopped at any point leaves either the
    previous pair or a pair that does not match, which the readers below refuse. The two renames run
    under the folder's lock, so two processes writing the same file at once leave one complete pair.
    """
    path = Path(path)
    digest = []

    def hash_content(tmp):  # outside the lock: hashing a large file takes a while
        digest.append(sha256_file(tmp))

    def record_checksum(tmp):
        write_atomically(checksum_path(path), f"{digest[-1]}  {path.name}\n".encode())

    return write_atomically(path, data, writer=writer, after_write=hash_content, before_replace=record_checksum,
                            locked=True)


def expected_checksum(path) -> str:
    """The checksum recorded next to ``path``; raises :class:`CorruptFileError` when there is none."""
    sidecar = checksum_path(path)
    try:
        recorded = sidecar.read_text(encoding="ascii").split()
    except PermissionError:  # there, but not ours to read: not a corrupt file (the callers say so)
        raise
    except (OSError, UnicodeDecodeError):
        recorded = []
    if len(recorded) != 2 or len(recorded[0]) != 64 or recorded[1] != Path(path).name:
        raise CorruptFileError(path, f"has no valid checksum ({sidecar.name} is missing or unreadable): "
                                     "it may be half written")
    return recorded[0]


def verify_checked(path) -> Path:
    """Raise :class:`CorruptFileError` unless ``path`` exists and matches its recorded checksum.

    An unreadable file (another account's, a strict umask) raises :class:`StorageError` naming it."""
    open_checked(path).close()
    return Path(path)


def open_checked(path):
    """``path`` open for reading (binary), after one pass that checks it against its recorded checksum without
    holding it in memory (a checkpoint holds 500 MB of weights). The checksum and the file are taken together
    under the folder's lock, so they are one writer's pair; what is read from this file afterwards is what was
    checked (a file saved over ``path`` meanwhile, atomically as :func:`write_checked` does, is another file).
    The caller closes it. Raises :class:`CorruptFileError` as :func:`read_checked` does, and
    :class:`StorageError` naming an unreadable file."""
    path = Path(path)
    try:
        if not path.is_file():
            raise CorruptFileError(path, "does not exist")
        with folder_lock(path.parent, shared=True):  # a writer commits checksum and content as one step
            expected = expected_checksum(path)
            file = open(path, "rb")
    except PermissionError as exc:
        raise read_error(exc.filename or path) from exc
    try:
        if _sha256_of_open(file) != expected:
            raise CorruptFileError(path, "does not match its checksum: it was truncated, edited or half written")
        file.seek(0)
        return file
    except BaseException:
        file.close()
        raise


def read_checked(path) -> bytes:
    """The bytes of ``path``, after checking them against the recorded checksum.

    An unreadable file (another account's, a strict umask) raises :class:`StorageError` naming it."""
    path = Path(path)
    try:
        if not path.is_file():
            raise CorruptFileError(path, "does not exist")
        with folder_lock(path.parent, shared=True):  # a writer commits checksum and content as one step
            expected = expected_checksum(path)
            data = path.read_bytes()
    except PermissionError as exc:
        raise read_error(exc.filename or path) from exc
    if hashlib.sha256(data).hexdigest() != expected:
        raise CorruptFileError(path, "does not match its checksum: it was truncated, edited or half written")
    return data


def remove_checked(path) -> None:
    """Delete ``path`` and its checksum (a corrupt file, before it is rebuilt)."""
    for p in (checksum_path(path), Path(path)):
        p.unlink(missing_ok=True)


def write_json(path, obj) -> Path:
    return write_checked(path, json.dumps(obj, indent=1).encode("utf-8"))


def read_json(path, expect=dict):
    """A JSON file written by :func:`write_json`, checked; its top level must be an ``expect``."""
    try:
        value = json.loads(read_checked(path).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # the checksum matched: written so by someone
        raise CorruptFileError(path, f"is not valid JSON ({exc})") from exc
    if expect is not None and not isinstance(value, expect):
        raise CorruptFileError(path, f"holds a {type(value).__name__}, not a {expect.__name__}")
    return value


def write_csv(path, frame, **to_csv) -> Path:
    """A pandas DataFrame as CSV, written atomically with its checksum."""
    return write_checked(path, frame.to_csv(**to_csv).encode("utf-8"))


def read_csv(path, **read_csv_args):
    import pandas as pd

    try:
        return pd.read_csv(io.BytesIO(read_checked(path)), **read_csv_args)
    except (ValueError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        raise CorruptFileError(path, f"is not a readable CSV table ({exc})") from exc


def read_safetensors_header(file, max_bytes=100_000_000):
    """``(header, where the data starts, the file's length)`` of an open safetensors file, without reading its data.

    The format: 8 bytes (little-endian: the header's length), a JSON header that gives each tensor's dtype, shape
    and ``data_offsets`` (a byte range counted from the end of the header), then the data. Readers that take a
    tensor at a time from the very file they checked (:func:`open_checked`) start here. Raises ``ValueError``
    for a file that has no such header."""
    length = file.seek(0, 2)
    file.seek(0)
    size = int.from_bytes(file.read(8), "little")
    if length < 8 or not 2 <= size <= min(length - 8, max_bytes):
        raise ValueError("its header is cut off")
    header = json.loads(file.read(size))
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    return header, 8 + size, length


def read_exactly_at(file, offset, buffer):
    """Fill ``buffer`` (a writable bytes-like object, e.g. a tensor's memory) with ``file``'s bytes from ``offset``:
    how the safetensors readers take one tensor at a time from the file they checked. Raises ``ValueError`` when the
    file ends first."""
    buffer = memoryview(buffer).cast("B")
    file.seek(offset)
    done = 0
    while done < len(buffer):
        count = file.readinto(buffer[done:])
        if not count:
            raise ValueError("it ends before the data its header describes")
        done += count
