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


# --------------------------------------------------------------------------- issue 32: concurrent writers
_SAVER = r"""
import os, random, sys, time
from pathlib import Path
import torch
import helpers.storage.files as files
from helpers import GPTModel, prepare_for_classification, save_classifier

folder, seed, rounds, signals = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
replace = os.replace
def slow_replace(src, dst):  # widen the window between the checksum's rename and the content's
    time.sleep(random.random() * 0.02)
    replace(src, dst)
files.os.replace = slow_replace
torch.manual_seed(seed)
model = prepare_for_classification(GPTModel({"vocab_size": 500, "context_length": 32, "emb_dim": 16, "n_heads": 2,
                                             "n_layers": 1, "drop_rate": 0.0, "qkv_bias": True}))
training = {"engine": "lecture", "steps_done": 1, "steps_planned": 1, "seconds": None,
            "settings": {"num_epochs": 1, "lr": 5e-5, "weight_decay": 0.1, "eval_freq": 1, "eval_iter": 1}}
for r in range(rounds):
    while not (signals / f"go-{r}").exists():
        time.sleep(0.001)
    save_classifier(model, folder, max_length=8, training=training, saved_by=f"writer {seed}", pad_token_id=0)
    (signals / f"done-{seed}-{r}").touch()
"""


@pytest.mark.slow
def test_two_processes_saving_one_checkpoint_at_once_leave_one_complete_checkpoint(tmp_path):
    """Item 11: two kernels (or a kernel and prepare) saving the same checkpoint at the same moment left, in 4 of 12
    rounds, a file refused as "truncated, edited or half written": one writer's checksum beside the other's file."""
    import subprocess
    import sys
    import time

    from helpers import load_classifier
    from helpers.storage.paths import PROJECT_ROOT

    folder, signals, rounds = tmp_path / "ckpt", tmp_path / "signals", 16
    signals.mkdir()
    writers = [subprocess.Popen([sys.executable, "-c", _SAVER, str(folder), str(seed), str(rounds), str(signals)],
                                cwd=PROJECT_ROOT, stderr=subprocess.PIPE) for seed in (1, 2)]
    try:
        for r in range(rounds):
            (signals / f"go-{r}").touch()
            deadline = time.time() + 120
            while not all((signals / f"done-{seed}-{r}").exists() for seed in (1, 2)):
                assert all(w.poll() is None for w in writers), [w.stderr.read() for w in writers]
                assert time.time() < deadline
                time.sleep(0.005)
            _, recipe = load_classifier(folder)  # one complete checkpoint, whose checksum matches
            assert recipe["saved_by"] in ("writer 1", "writer 2")
    finally:
        for writer in writers:
            writer.kill()
            writer.wait()
    assert sorted(p.name for p in folder.iterdir()) == ["classifier.safetensors", "classifier.safetensors.sha256"]


def test_a_reader_never_sees_one_saves_checksum_beside_anothers_content(tmp_path):
    """Within one process too (two threads): writes of one file are serialised, and reads see whole pairs."""
    import threading

    from helpers.storage.files import read_checked

    path = tmp_path / "record.bin"
    write_checked(path, b"0" * 1000)
    errors = []

    def write(byte):
        try:
            for _ in range(40):
                write_checked(path, byte * 1000)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def read():
        try:
            for _ in range(200):
                assert read_checked(path) in (b"a" * 1000, b"b" * 1000, b"0" * 1000)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in (b"a", b"b")] + [threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and read_checked(path) in (b"a" * 1000, b"b" * 1000)


# --------------------------------------------------------------------------- issue 32: permissions, a full disk
def _as_another_account(code, env, tmp_path):
    """Run ``code`` in Python as root *without its capabilities*: files of another account then stay closed to it,
    as they would to a student (root otherwise reads everything). None where that cannot be done here."""
    import shutil
    import subprocess
    import sys

    from helpers.storage.paths import PROJECT_ROOT

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    probe = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-c", "pass"],
                           capture_output=True)
    if probe.returncode != 0:
        return None
    return subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable, "-c", code],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300,
                          env={**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl"), **env})


def _give_away(folder, mode_files=0o600, mode_folders=0o700):
    """What another account leaves under umask 077: its files and folders, closed to everyone else."""
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, 65534, 65534)
        os.chmod(path, mode_folders if path.is_dir() else mode_files)


_READ_EVERYTHING = r"""
from helpers import get_spam_dataloaders, get_trained_classifier, StorageError
for call in (get_spam_dataloaders, lambda: get_trained_classifier(device="cpu")):
    try:
        call()
        print("no error")
    except StorageError as exc:
        print("StorageError:", exc)
"""


@pytest.mark.slow
@pytest.mark.parametrize("folders", [0o700, 0o755])
def test_a_data_folder_of_another_account_is_a_storage_error_naming_what_to_do(tmp_path, staged_zip, folders):
    """Item 12: with umask 077 and another account reading the data folder, get_spam_dataloaders() and
    get_trained_classifier() raised a raw PermissionError from pathlib."""
    from helpers import prepare_spam_splits

    data = tmp_path / "data"
    prepare_spam_splits(local_copy=staged_zip, data_folder=data)
    _give_away(data, mode_folders=folders)
    (tmp_path / "mpl").mkdir()
    os.chmod(tmp_path, 0o755)
    result = _as_another_account(_READ_EVERYTHING, {"WORKBOOK_DATA_DIR": str(data), "WORKBOOK_SMS_ZIP": "",
                                                    "WORKBOOK_TEST_MODEL": "1"}, tmp_path)
    if result is None:
        pytest.skip("cannot drop root's capabilities here (setpriv), so root would read every file")
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("StorageError: cannot read") for line in lines), result.stdout
    assert all("permission denied" in line and "chmod -R a+rX" in line and "WORKBOOK_DATA_DIR" in line
               for line in lines)
    if folders == 0o755:  # the folder may be entered: the file that may not be read is named
        assert "SMSSpamCollection" in lines[0] or "train.csv" in lines[0]


def test_a_relative_data_folder_means_the_same_folder_to_every_process(tmp_path, monkeypatch, capsys, run_cli):
    """Item 19: WORKBOOK_DATA_DIR=my-data meant notebooks/my-data to a notebook and my-data to the CLI."""
    from helpers.storage import paths
    from helpers.storage.paths import PROJECT_ROOT

    name = f"my-data-{os.getpid()}"
    monkeypatch.setenv("WORKBOOK_DATA_DIR", name)
    monkeypatch.setattr(paths, "_ANNOUNCED", set())
    try:
        for cwd in (PROJECT_ROOT / "notebooks", tmp_path):
            monkeypatch.chdir(cwd)
            assert data_dir() == PROJECT_ROOT / name
        err = capsys.readouterr().err
        assert err.count(f"WORKBOOK_DATA_DIR={name} is a relative path; it is read from the project's folder") == 1
        code = "from helpers import data_dir; print(data_dir())"
        for cwd in (PROJECT_ROOT / "notebooks", tmp_path):
            import subprocess
            import sys

            out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
            assert out.stdout.strip() == str(PROJECT_ROOT / name), out.stderr
    finally:
        import shutil

        shutil.rmtree(PROJECT_ROOT / name, ignore_errors=True)


def test_a_library_that_reports_a_full_disk_its_own_way_is_a_storage_error(tmp_path, monkeypatch, tiny_classifier,
                                                                          saved):
    """Item 20: safetensors' SafetensorError (no OSError) escaped from saving a checkpoint or a trunk cache."""
    from safetensors import SafetensorError

    from helpers import TrunkCache

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    model = tiny_classifier()
    monkeypatch.setattr("helpers.classroom.checkpoint.save_model", full)
    with pytest.raises(StorageError, match="classifier.safetensors: the disk is full. Free some space"):
        saved(model, tmp_path / "ckpt")
    monkeypatch.setattr("helpers.fast.engine.save_file", full)
    cache = TrunkCache(model, "exact").add(torch.randint(0, 50257, (2, 8)))
    with pytest.raises(StorageError, match="trunk-exact-.*safetensors: the disk is full"):
        cache.save(tmp_path / "cache")
    monkeypatch.setattr("helpers.fast.engine.save_file", lambda *a, **k: (_ for _ in ()).throw(
        SafetensorError("tensor 'rows' is not contiguous")))  # not a write error: not disguised as one
    with pytest.raises(SafetensorError):
        cache.save(tmp_path / "cache")


@pytest.mark.slow
def test_a_full_disk_is_a_storage_error_and_status_2(tmp_path, tiny_classifier, saved, run_cli, staged_zip):
    """Item 20 on a real full disk (a 1 MB tmpfs, where this may mount one): the checkpoint, and prepare's exit."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("no tmpfs can be mounted here")
    try:
        with pytest.raises(StorageError, match="classifier.safetensors: the disk is full. Free some space"):
            saved(tiny_classifier(), disk / "ckpt")
        assert list((disk / "ckpt").iterdir()) == []
        result = run_cli("prepare", "--no-timing", env={"WORKBOOK_DATA_DIR": str(disk / "data"),
                                                         "WORKBOOK_SMS_ZIP": str(staged_zip)})
        assert result.returncode == 2 and b"the disk is full" in result.stderr and b"Traceback" not in result.stderr
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
