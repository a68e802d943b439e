"""Every file the workbook writes: atomic, checksummed, and refused with a clear error when damaged or unwritable."""
import errno
import os

import pytest
import torch

from helpers.storage.files import CorruptFileError, checksum_path, read_json, write_checked, write_json
from helpers.storage.paths import StorageError, data_dir




# --------------------------------------------------------------------------- 3. small files written in place
def test_a_write_killed_midway_leaves_the_previous_file(tmp_path):
    path = tmp_path / "runs" / "exact.json"
    write_json(path, {"seconds": 1})

    def dies_midway(tmp):
        with open(tmp, "wb") as f:
            f.write(b'{"seconds": ')
        raise KeyboardInterrupt  # kill -9 stand-in: the writer stops half way

    with pytest.raises(KeyboardInterrupt):
        write_checked(path, writer=dies_midway)
    assert read_json(path) == {"seconds": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["exact.json", "exact.json.sha256"]  # no .part left


@pytest.mark.parametrize("content", [b"", b'{"seconds": 1', b"[]", b'{"date": "x"}'])
def test_a_half_written_or_foreign_file_is_never_trusted(tmp_path, content):
    path = tmp_path / "report.json"
    path.write_bytes(content)  # what an in-place write killed midway leaves (no checksum, or a wrong one)
    with pytest.raises(CorruptFileError, match="report.json"):
        read_json(path)
    write_json(path, {"ok": 1})
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match="does not match its checksum"):
        read_json(path)


# --------------------------------------------------------------------------- 10. environment and disk
def test_unusable_data_folders_are_clear_errors(tmp_path, monkeypatch, run_cli):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(a_file))
    with pytest.raises(StorageError, match="is a file, not a folder"):
        data_dir()
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "gone")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(dangling))
    with pytest.raises(StorageError, match="symbolic link.*does not exist"):
        data_dir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WORKBOOK_DATA_DIR", "~/x")
    assert data_dir() == tmp_path / "home" / "x" and data_dir().is_dir()
    result = run_cli("prepare", "--no-timing", env={"WORKBOOK_DATA_DIR": str(a_file)})
    assert result.returncode == 2 and b"is a file, not a folder" in result.stderr and b"Traceback" not in result.stderr
    result = run_cli("classify", "hello", env={"WORKBOOK_DATA_DIR": str(dangling)})
    assert result.returncode == 2 and b"does not exist" in result.stderr and b"Traceback" not in result.stderr


@pytest.mark.parametrize("code,match", [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "the file system is read-only")])
def test_full_or_read_only_disk_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch, code, match, tiny_classifier,
                                                                    saved):
    model = tiny_classifier()

    def fails(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("helpers.storage.files.os.fsync", fails)
    with pytest.raises(StorageError, match=f"classifier.safetensors: {match}"):
        saved(model, tmp_path / "ckpt")
    assert list((tmp_path / "ckpt").iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_new_files_get_the_permissions_of_the_umask(tmp_path, umask):
    """Written through a temporary file (mkstemp makes it 0600), a file still gets what open() would give."""
    old = os.umask(umask)
    try:
        path = write_json(tmp_path / "record.json", {"a": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert checksum_path(path).stat().st_mode & 0o777 == 0o666 & ~umask


def test_every_writer_turns_os_errors_into_a_storage_error_naming_the_file(tmp_path, tiny_classifier, saved,
                                                                          monkeypatch):
    """A file where a folder should be, or a full disk, used to escape as OSError, SafetensorError or
    NotADirectoryError from the trunk cache, the figures and the checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    from helpers import TrunkCache, plot_class_counts

    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    model = tiny_classifier()
    cache = TrunkCache(model, "exact").add(torch.randint(0, 50257, (2, 8)))
    for write in (lambda: cache.save(blocker), lambda: saved(model, blocker / "ckpt"),
                  lambda: plot_class_counts({"ham": 3}, {"ham": 2}, save_path=blocker / "figure.png")):
        with pytest.raises(StorageError, match="a_file.*(a file is in the way|is a file, not a folder)"):
            write()
    monkeypatch.setattr("helpers.storage.files.os.fsync",
                        lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(StorageError, match="figure.png: the disk is full. Free some space"):
        plot_class_counts({"ham": 3}, {"ham": 2}, save_path=tmp_path / "figure.png")
    assert list(tmp_path.iterdir()) == [blocker]
