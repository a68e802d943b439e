"""Classroom preparation, instructor mode and slides."""
import shutil
import subprocess
import sys

import pytest
from safetensors.torch import save_file
import torch

from helpers import (
    CachedTop,
    PrepareError,
    TrunkCache,
    build_spam_classifier,
    calc_accuracy_loader,
    get_spam_dataloaders,
    get_trained_classifier,
    load_classifier,
    prepare,
    prepared_performance,
    replay_prepared_run,
)
from helpers.classroom.checkpoint import default_checkpoint_dir
from helpers.classroom.instructor import RUNS, bf16_run_possible, prepared_dir, read_prepared, run_checkpoint
from helpers.storage.paths import PROJECT_ROOT
from helpers.classroom.slides import VENDOR_PACKAGES

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LECTURE_NOTEBOOKS = [path for path in NOTEBOOKS if int(path.name[:2]) <= 6]


@pytest.fixture
def classroom(monkeypatch, tmp_path, staged_zip):
    """A fresh data folder, a USB-stick folder holding the dataset, the test model, no network."""
    usb = tmp_path / "usb"
    usb.mkdir()
    shutil.copy(staged_zip, usb / "sms_spam_collection.zip")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    for name in ("WORKBOOK_SMS_ZIP", "WORKBOOK_GPT2_DIR", "WORKBOOK_INSTRUCTOR", "WORKBOOK_MAX_STEPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("helpers.storage.download.time.sleep", lambda seconds: None)
    monkeypatch.setattr("helpers.data.SMS_SPAM_URLS", ("http://127.0.0.1:9/sms.zip",))
    monkeypatch.setattr("helpers.data.SHIPPED_ZIP", tmp_path / "not-shipped.zip")  # the USB stick's copy is used
    monkeypatch.setattr("helpers.classroom.slides.VENDOR_PACKAGES",  # no npm registry: the decks are skipped (tests/test_slides.py)
                        {name: spec | {"url": "http://127.0.0.1:9/" + name} for name, spec in VENDOR_PACKAGES.items()})
    return tmp_path / "data", usb


@pytest.mark.slow
def test_prepare_then_instructor_mode_then_idempotent(classroom, capsys, monkeypatch, messages, saved, full_training):
    data, usb = classroom
    report = prepare(source=usb)
    out = capsys.readouterr().out
    assert set(report["notebook_seconds"]) == {path.name for path in LECTURE_NOTEBOOKS}  # each ran, instructor mode
    assert "✓ dataset" in out and "trunk cache (exact)" in out and "exact run: trained" in out
    checkpoint = run_checkpoint("exact")
    assert checkpoint.parent == prepared_dir() and not default_checkpoint_dir("test-model").exists()
    files = [p for p in data.rglob("*") if p.is_file()]
    stamps = {p: p.stat().st_mtime_ns for p in files}

    # replaying gives the trained classifier and the recorded curves, read into the model (no second GPT-2)
    monkeypatch.setenv("WORKBOOK_INSTRUCTOR", "1")
    model, _ = load_classifier(checkpoint)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    import helpers.classroom.checkpoint as checkpoint_module

    build = checkpoint_module._build
    built = []
    monkeypatch.setattr(checkpoint_module, "_build",
                        lambda recipe: built.append(torch.get_default_device().type) or build(recipe))
    curves = replay_prepared_run("exact", model)
    assert built == ["meta"]  # shapes only: the weights went into `model`
    monkeypatch.setattr(checkpoint_module, "_build", build)
    trained, _ = load_classifier(checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))
    assert len(curves) == 5 and curves[4] == 5 * 130 * 8
    assert "replaying the 'exact' run" in capsys.readouterr().out

    # running again does nothing that is already done
    prepare(source=usb)
    out = capsys.readouterr().out
    assert out.count("already prepared") == 5 + 2 * bf16_run_possible() and "timed before" in out  # caches, runs
    record = read_prepared("exact")  # a run's time includes its trunk pass, as notebook 4's live runs do
    assert 0 < record["trunk_seconds"] < record["seconds"]
    assert {p: p.stat().st_mtime_ns for p in files if not p.name.startswith("report.json")} == \
           {p: t for p, t in stamps.items() if not p.name.startswith("report.json")}

    # a rehearsal's save goes to the student's folder: the replay still shows the prepared run, and says so
    rehearsal = build_spam_classifier(device="cpu")  # the test model, untrained: not the prepared weights
    saved(rehearsal, default_checkpoint_dir("test-model"), max_length=120)
    model = CachedTop(build_spam_classifier(device="cpu"), TrunkCache(build_spam_classifier(device="cpu"), "exact"))
    replay_prepared_run("exact", model)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))
    out = capsys.readouterr().out
    assert "The weights are the prepared run's (verified)" in out and "for 650 of 650 steps" in out
    shown, recipe = get_trained_classifier(device="cpu")
    out = capsys.readouterr().out
    assert recipe["saved_by"] == "python -m helpers prepare" and "prepared on" in out
    assert "TEST MODEL: a tiny GPT with RANDOM weights" in out  # a test-model classifier says so wherever it is read
    assert all(torch.equal(a, b) for a, b in zip(shown.state_dict().values(), trained.state_dict().values()))
    # a prepared classifier replaced by another (valid) one is refused, and `prepare` trains that run again
    saved(rehearsal, checkpoint, max_length=120, training=dict(full_training, engine="exact"))
    with pytest.raises(PrepareError, match="not the classifier the prepared 'exact' run saved"):
        replay_prepared_run("exact", model)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), trained.state_dict().values()))  # untouched
    monkeypatch.setenv("WORKBOOK_INSTRUCTOR", "0")
    prepare(source=usb, timing=False)
    assert "exact run: trained" in capsys.readouterr().out
    monkeypatch.setenv("WORKBOOK_INSTRUCTOR", "1")
    replay_prepared_run("exact", model)
    files = [p for p in data.rglob("*") if p.is_file()]

    # every prepared checkpoint is read as it was trained: the CLI's accuracy is the engine's
    test_loader = get_spam_dataloaders()[2]
    texts, labels = test_loader.dataset.data["Text"].tolist(), test_loader.dataset.data["Label"].tolist()
    assert (run_checkpoint("flexible-bf16") / "classifier.safetensors").is_file() == bf16_run_possible()
    for name in [name for name in RUNS if (run_checkpoint(name) / "classifier.safetensors").is_file()]:
        model, recipe = load_classifier(run_checkpoint(name))
        assert recipe["training"]["engine"] == name
        assert recipe["pooling"] == ("last" if name == "exact" else "last_real")
        mode = name.split("-")[0]  # the CLI reads in float32, bf16 runs too
        trained = calc_accuracy_loader(test_loader, CachedTop(model, TrunkCache(model, mode)), "cpu")
        result = subprocess.run([sys.executable, "-m", "helpers", "classify", "--checkpoint", str(run_checkpoint(name))],
                                input="\n".join(texts), capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
        predicted = [line.split("\t")[0] == "spam" for line in result.stdout.splitlines()]
        assert result.returncode == 0 and len(predicted) == len(labels), result.stderr
        accuracy = sum(p == bool(y) for p, y in zip(predicted, labels)) / len(labels)
        assert accuracy == pytest.approx(trained, abs=1.01 / len(labels))  # float rounding may flip one tie

    # a kill -9 during an in-place write used to leave 0-byte files that the next run trusted
    folder = prepared_dir()
    trunk_file = next((data / "trunk_cache").glob("trunk-exact-*.safetensors"))
    for path in (folder / "runs" / "exact.json", folder / "performance.csv", folder / "report.json"):
        path.write_bytes(b"")
    trunk_file.write_bytes(trunk_file.read_bytes()[:1000])  # truncated
    with pytest.raises(PrepareError, match="exact.json.*prepare"):
        read_prepared("exact")
    with pytest.raises(PrepareError, match="performance.csv.*prepare"):
        prepared_performance()
    monkeypatch.setenv("WORKBOOK_INSTRUCTOR", "0")
    capsys.readouterr()
    prepare(source=usb, timing=False)
    out = capsys.readouterr().out
    assert "cannot be used" in out and "trunk cache (exact): " in out and "messages in" in out
    assert "exact run: trained" in out and "flexible run: already prepared" in out
    assert "✓ performance measurements: " in out and "report.json" in out and "writing a new one" in out
    from helpers.fast.precision import bf16_native

    rows = ["float32", "int8 (dynamic)"] + (["bfloat16 (autocast)"] if bf16_native("cpu") else [])
    assert len(read_prepared("exact")["curves"]) == 5 and list(prepared_performance().index) == rows


def test_corrupted_staged_dataset_is_refused(classroom, staged_zip):
    data, usb = classroom
    (usb / "sms_spam_collection.zip").write_bytes(staged_zip.read_bytes()[:50_000])
    with pytest.raises(PrepareError, match="SMS Spam Collection.*\n.*sms_spam_collection.zip"):
        prepare(source=usb, timing=False)
    assert not (data / "sms_spam_collection" / "SMSSpamCollection").exists()


def test_corrupted_staged_weights_are_refused(classroom, monkeypatch):
    data, usb = classroom
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    (usb / "gpt2").mkdir()
    (usb / "gpt2" / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(PrepareError, match="GPT-2 gpt2-small.*huggingface.co/openai-community/gpt2"):
        prepare(source=usb, timing=False)
    assert not (data / "gpt2" / "gpt2" / "model.safetensors").exists()


def test_offline_with_nothing_staged_lists_what_to_fetch(classroom, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    monkeypatch.setattr("helpers.weights.HF_URLS", ("http://127.0.0.1:9/{repo}.safetensors",))
    empty = tmp_path / "empty-usb"
    empty.mkdir()
    with pytest.raises(PrepareError) as info:
        prepare(source=empty, timing=False)
    message = str(info.value)
    assert "archive.ics.uci.edu" in message and "sms_spam_collection.zip" in message
    assert "huggingface.co/openai-community/gpt2" in message and "gpt2/model.safetensors" in message


def test_cli_exit_status():
    result = subprocess.run([sys.executable, "-m", "helpers", "prepare", "--from", "/no/such/usb", "--no-timing"],
                            capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert result.returncode == 2 and "does not exist" in result.stderr


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_converts_to_slides(notebook):
    import nbformat
    from nbconvert import SlidesExporter

    nb = nbformat.read(notebook, as_version=4)
    html, _ = SlidesExporter().from_notebook_node(nb)
    types = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]
    headings = [cell.cell_type == "markdown" and cell.source.lstrip("-\n ").startswith(("# ", "## "))
                for cell in nb.cells]
    assert sum(headings) >= 3 and all(t == "slide" for t, h in zip(types, headings) if h)  # a heading opens a slide
    assert set(types) <= {"slide", "-", "skip"}  # no sub-slides: → reaches every slide
    assert all(t == "skip" for t, cell in zip(types, nb.cells)
               if {"workbook-launch-badges", "workbook-setup"} & set(cell.metadata.get("tags", [])))
    assert html.count("<section") >= types.count("slide")
    assert "reveal" in html.lower()



# --------------------------------------------------------------------------- 7. prepare --from only reads
def test_prepare_from_a_read_only_folder_writes_nothing_there(tmp_path, monkeypatch, staged_zip, hf_weights, tiny_gpt):
    from helpers.classroom import instructor

    usb = tmp_path / "usb"
    (usb / "gpt2").mkdir(parents=True)
    shutil.copy(staged_zip, usb / "sms_spam_collection.zip")
    save_file(hf_weights(), str(usb / "gpt2" / "model.safetensors"))
    monkeypatch.setattr(instructor, "get_model_config", lambda size: dict(tiny_gpt().cfg))  # GPT-2's layout, tiny
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    monkeypatch.delenv("WORKBOOK_GPT2_DIR", raising=False)
    monkeypatch.delenv("WORKBOOK_SMS_ZIP", raising=False)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in usb.rglob("*")}
    usb_writes = []
    real_write = instructor.write_json
    monkeypatch.setattr(instructor, "write_json", lambda path, obj: usb_writes.append(path) if str(path).startswith(
        str(usb)) else real_write(path, obj))
    for folder in (usb / "gpt2", usb):
        folder.chmod(0o555)  # a read-only stick (root ignores this; the snapshot below does not)
    try:
        instructor.fetch_inputs("gpt2-small (124M)", usb)
        instructor.fetch_inputs("gpt2-small (124M)", usb)  # second time: verified before, nothing to do
    finally:
        for folder in (usb, usb / "gpt2"):
            folder.chmod(0o755)
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in usb.rglob("*")} == before and not usb_writes
    assert (tmp_path / "data" / "gpt2" / "gpt2" / "model.safetensors").is_file()
