"""Downloading files safely: timeout, retries, mirrors, a progress bar and atomic writes.

A file only appears at its final path once it is complete (and, when a hash is given,
verified), so an interrupted or corrupt download never leaves a file a later run trusts.
"""
import http.client
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .progress import progress

from .files import give_normal_permissions
from .files import sha256_file as sha256_of  # one hashing helper for the package
from .files import write_atomically

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """Every URL failed; the message lists what each attempt said."""


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it."""
    return write_atomically(path, data)


def atomic_copy(source, destination) -> Path:
    """Copy a file so that ``destination`` only ever holds a complete copy."""
    def copy(tmp):
        with open(tmp, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, CHUNK)

    return write_atomically(destination, writer=copy)


def _fetch(url, destination: Path, timeout: float, desc: str) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "spam-workbook/0.1"})
    fd, tmp = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with progress(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc) as bar:
                while block := response.read(CHUNK):
                    out.write(block)
                    bar.update(len(block))
        if total is not None and Path(tmp).stat().st_size != total:
            raise DownloadError(f"connection closed after {Path(tmp).stat().st_size} of {total} bytes")
        give_normal_permissions(tmp)
        os.replace(tmp, destination)
    finally:
        Path(tmp).unlink(missing_ok=True)


def download_file(urls, destination, *, expected_sha256=None, timeout=30.0, retries=3, backoff=2.0, desc=None) -> Path:
    """Download the first URL of ``urls`` that works to ``destination`` and return its path.

    Each URL is tried ``retries`` times, waiting ``backoff``, 2×``backoff``, … seconds between
    tries. With ``expected_sha256`` a download with another hash counts as a failed attempt.
    Raises :class:`DownloadError` naming every failure when no URL gives the file.
    """
    if isinstance(urls, str):
        urls = [urls]
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        for attempt in range(1, retries + 1):
            try:
                _fetch(url, destination, timeout, desc or destination.name)
                if expected_sha256 is not None:
                    actual = sha256_of(destination)
                    if actual != expected_sha256:
                        destination.unlink()
                        raise DownloadError(f"sha256 {actual} does not match the expected {expected_sha256}")
                return destination
            except (OSError, http.client.HTTPException, DownloadError) as exc:
                failures.append(f"{url} (try {attempt}/{retries}): {exc}")
                client_error = isinstance(exc, urllib.error.HTTPError) and 400 <= exc.code < 500 and exc.code != 429
                if client_error:  # "not found" will not change by asking again
                    break
                if attempt < retries:
                    time.sleep(backoff * attempt)
    raise DownloadError("could not download " + destination.name + ":\n  " + "\n  ".join(failures))
