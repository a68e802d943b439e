"""Give freed memory back to the operating system after each notebook cell.

When PyTorch frees a tensor, the C library's allocator (glibc's ``malloc`` on Linux) keeps the memory for its
next allocations rather than returning it, unless it was one large block of its own. After a cell that loaded
GPT-2 or trained, a kernel can hold a few hundred MB that nothing uses. On a laptop that is harmless; on a hub or
Binder, where a student's whole server has 2 GB, it is what gets the kernel killed in a later cell. glibc's
``malloc_trim(0)`` returns every free page it can; it takes milliseconds, so the workbook calls it after every
cell (an IPython ``post_run_cell`` event). Elsewhere (macOS, Windows, another C library) nothing happens: their
allocators return memory on their own terms.
"""
import ctypes
import ctypes.util
import sys

from .progress import ipython_shell

_TRIM = None


def _malloc_trim():
    """glibc's ``malloc_trim``, or None where there is none."""
    global _TRIM
    if _TRIM is None:
        _TRIM = False
        if sys.platform.startswith("linux"):
            try:
                trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
                trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
                _TRIM = trim
            except (OSError, AttributeError):  # musl (Alpine) has no malloc_trim
                pass
    return _TRIM or None


def release_freed_memory() -> bool:
    """Return the memory the C library holds free to the operating system; True if it could try."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def _after_cell(*_):
    release_freed_memory()


def install_memory_release(shell=None) -> bool:
    """After every cell of the running IPython kernel, :func:`release_freed_memory` (nothing outside IPython, or
    where it cannot help). Idempotent."""
    shell = shell or ipython_shell()
    if _malloc_trim() is None or shell is None or getattr(shell, "_workbook_memory", False):
        return False
    shell.events.register("post_run_cell", _after_cell)
    shell._workbook_memory = True
    return True
