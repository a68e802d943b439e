"""Hostile inputs through the real entry points (issue 32): generated CSV files and settings each give a result or
one of the workbook's own errors, which names what to change; never an exception from inside pandas, torch or
safetensors, and never a traceback a student has to read."""
import random
import traceback

import pytest

from helpers import (
    CheckpointError,
    DatasetError,
    DownloadError,
    FastEngineError,
    PrepareError,
    SettingsError,
    StorageError,
    WeightsError,
    build_spam_classifier,
    check_settings,
    get_spam_dataloaders,
    load_labelled_csv,
    settings,
    train_spam_classifier,
)
from helpers.storage.files import CorruptFileError
from helpers.storage.paths import PROJECT_ROOT

WORKBOOK_ERRORS = (DatasetError, SettingsError, StorageError, CheckpointError, CorruptFileError, PrepareError,
                   WeightsError, FastEngineError, DownloadError)


def outcome(call):
    """``("ok", result)`` or ``("refused", error)``; fails the test for any error the workbook did not raise itself."""
    try:
        return "ok", call()
    except WORKBOOK_ERRORS as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return "refused", exc
    except Exception as exc:  # noqa: BLE001 - what is not the workbook's own error must be its own check's
        origin = traceback.extract_tb(exc.__traceback__)[-1].filename
        ours = origin.startswith(str(PROJECT_ROOT / "helpers"))
        assert ours and isinstance(exc, (ValueError, TypeError)), \
            f"{type(exc).__name__} from {origin}: {exc}"  # e.g. a TypeError from sorted(), an IndexError from torch
        return "refused", exc


# --------------------------------------------------------------------------- hostile CSV files
TEXTS = ["WIN a free prize, call 0800 now", "see you at dinner", "", "   ", "NA", "None", "N/A", "null", "nan", "#N/A",
         "<|endoftext|>", 'she said "hi", then left', "line one\nline two", "tab\there", "caf\u00e9 \u4e2d\u6587 \U0001F600",
         "ok", "win " * 300, "\u202eevil\u202c", ",,,", "1.0"]
LABELS = ["ham", "spam", "ham", "spam", "0", "1", "", " spam", "SPAM", "2", "1.0", "nan", "NA", "-1", "phishing"]
HEADERS = ["text,label", "text,label", "text,label", "label,text", "Text,Label", "text;label", "text,label,extra",
           "\ufefftext,label", "message,label", ""]


def hostile_csv(rng, path):
    """A CSV of one of many shapes a person's data takes, written as bytes."""
    header = rng.choice(HEADERS)
    n = rng.choice([0, 1, 2, 5, 10, 30, 80, 80, 200])
    clean = rng.random() < 0.4  # well-formed rows, perhaps too few, of one class, or repeated
    classes = rng.choice([["ham", "spam"], ["ham", "spam"], ["ham"], ["0", "1"]])
    rows = []
    for i in range(n):
        if clean:
            label = classes[i % len(classes)]
            text = f"{'WIN cash' if label in ('spam', '1') else 'see you'} {i}"
        else:
            label, text = rng.choice(LABELS), rng.choice(TEXTS)
        rows.append((text, label))
    if rng.random() < 0.2:
        rows = rows * 3  # duplicates
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=rng.choice(["\n", "\r\n"]))
    for text, label in rows:
        writer.writerow([label, text] if header.startswith("label") else [text, label] + (["x"] if "extra" in header
                                                                                              else []))
    body = (header + "\n" if header else "") + buffer.getvalue()
    data = body.encode(rng.choice(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16"]), errors="replace")
    if rng.random() < 0.1:
        data = data[: len(data) // 2] + b'"'  # cut off inside a quoted field
    if rng.random() < 0.05:
        data = bytes(rng.randrange(256) for _ in range(200))  # not text at all
    path.write_bytes(data)
    return path


@pytest.fixture
def test_model_data(monkeypatch, tmp_path, staged_zip):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBOOK_SMS_ZIP", str(staged_zip))
    return tmp_path


def test_generated_hostile_csv_files_give_a_result_or_the_workbooks_error(monkeypatch, test_model_data, tokenizer,
                                                                         capsys):
    rng = random.Random(32)
    results, trained = {"ok": 0, "refused": 0}, 0
    for case in range(80):
        path = hostile_csv(rng, test_model_data / f"case{case}.csv")
        monkeypatch.setattr(settings, "DATASET_CSV", str(path))
        monkeypatch.setattr(settings, "CLASS_NAMES", ("ham", "spam"))
        kind, loaders = outcome(lambda: get_spam_dataloaders(tokenizer))
        results[kind] += 1
        outcome(lambda: load_labelled_csv(path))
        if kind == "ok" and trained < 3:  # a few all the way through training
            trained += 1
            kind, (model, history) = outcome(lambda: train_spam_classifier(device="cpu", loaders=loaders,
                                                                           settings={"num_epochs": 1}))
            assert kind == "ok" and history["training"]["steps_done"] == len(loaders[0])
    capsys.readouterr()
    assert results["ok"] >= 3 and results["refused"] >= 30, results  # the generator reaches both outcomes


def test_a_two_megabyte_message_and_repeated_rows_train_without_a_crash(monkeypatch, test_model_data, tokenizer):
    path = test_model_data / "big.csv"
    rows = [f"{'WIN cash now' if i % 2 else 'see you'} {i},{'spam' if i % 2 else 'ham'}" for i in range(60)] * 2
    rows.append(f"{'call now and win ' * 125_000},spam")
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(settings, "DATASET_CSV", str(path))
    kind, loaders = outcome(lambda: get_spam_dataloaders(tokenizer))
    assert kind == "ok" and loaders[0].dataset.max_length <= 128
    kind, _ = outcome(lambda: train_spam_classifier(device="cpu", loaders=loaders, settings={"num_epochs": 1}))
    assert kind == "ok"


# --------------------------------------------------------------------------- hostile settings
HOSTILE_SETTINGS = {
    "MODEL_SIZE": ["gpt2-tiny", "", None, 124, "GPT2-SMALL (124M)", "gpt2-medium (355M)"],
    "CLASS_NAMES": ["ham", ("ham",), ("ham", "ham"), ("ham", None), [], None, ("ham", "spam", "phishing"),
                    ["ham", "spam"], ("ham", "spam\n"), {"ham", "spam"}, ("", "spam")],
    "BATCH_SIZE": [0, -8, 8.5, "8", None, True, 10 ** 9, 1],
    "NUM_EPOCHS": [0, 2.0, None, -1, 1],
    "LEARNING_RATE": [0, -5e-5, float("nan"), float("inf"), "5e-5", None, 1e-3],
    "WEIGHT_DECAY": [-0.1, float("nan"), None, 0],
    "EVAL_FREQ": [0, 1.5, None, 1],
    "EVAL_ITER": [0, None, 1000],
    "MAX_LENGTH": [0, -1, 5000, 129, 128, 1, 12.0, "120", True],
    "DATASET_CSV": ["", "missing.csv", str(PROJECT_ROOT / "notebooks"), 42, str(PROJECT_ROOT / "README.md")],
    "SEED": [None, 1.5, "123", -1],
}


@pytest.mark.parametrize("name", list(HOSTILE_SETTINGS))
def test_hostile_settings_give_a_result_or_a_settings_error(monkeypatch, test_model_data, tokenizer, name, capsys):
    for value in HOSTILE_SETTINGS[name]:
        monkeypatch.setattr(settings, name, value)
        kind, error = outcome(check_settings)
        if kind == "refused":
            assert isinstance(error, SettingsError) and name in str(error), (name, value, error)
            for start in (lambda: get_spam_dataloaders(tokenizer), lambda: build_spam_classifier(device="cpu")):
                assert isinstance(outcome(start)[1], SettingsError)
        else:  # a value the workbook can use: the data stage and the model accept it, or say why not in its words
            outcome(lambda: get_spam_dataloaders(tokenizer, batch_size=settings.BATCH_SIZE))
            outcome(lambda: build_spam_classifier(device="cpu"))
        monkeypatch.undo()
        monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
        monkeypatch.setenv("WORKBOOK_DATA_DIR", str(test_model_data / "data"))
    capsys.readouterr()
