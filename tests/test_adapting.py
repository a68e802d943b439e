"""The workbook adapted as docs/adapting.md describes: other classes, another batch size, other settings."""
import subprocess
import sys
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import (
    SpamDataset,
    calc_accuracy_loader,
    check_activity_2,
    compare_with_book,
    confusion_matrix,
    create_dataloaders,
    load_classifier,
    precision_recall_f1,
    predict_loader,
    prepare_for_classification,
    random_split,
    save_classifier,
    settings,
    train_classifier_simple,
    training_record,
)
from helpers.storage.paths import PROJECT_ROOT

NAMES = ("ham", "spam", "phishing")
WORDS = {0: "see you at dinner tonight ok", 1: "WIN a free prize call now", 2: "your bank account is locked log in"}


def three_class_frame(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    texts = [f"{WORDS[label]} {i}" for i, label in enumerate(labels)]
    return pd.DataFrame({"Label": labels, "Text": texts})


def test_a_three_class_csv_goes_through_the_whole_pipeline(tmp_path, tiny_gpt, tokenizer):
    """Splits, loaders, a little training, saving, loading, notebook 5's metrics, and the CLI's class names."""
    paths = {}
    for name, part in zip(("train", "validation", "test"), random_split(three_class_frame(), 0.7, 0.1)):
        paths[name] = tmp_path / f"{name}.csv"
        part.to_csv(paths[name], index=None)
    train = SpamDataset(paths["train"], tokenizer)
    val, test = (SpamDataset(paths[n], tokenizer, max_length=train.max_length) for n in ("validation", "test"))
    loaders = create_dataloaders(train, val, test, batch_size=4)
    model = prepare_for_classification(tiny_gpt(), num_classes=3)
    torch.manual_seed(123)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_classifier_simple(model, loaders[0], loaders[1], optimizer, "cpu", num_epochs=2, eval_freq=5, eval_iter=1)
    folder = save_classifier(model, tmp_path / "three", max_length=train.max_length, class_names=NAMES,
                             training=training_record(model, optimizer, loaders[0], 2, 5, 1))
    loaded, recipe = load_classifier(folder)
    assert recipe["class_names"] == list(NAMES) and recipe["training"]["steps_done"] == 2 * len(loaders[0])
    labels, predictions, probabilities = predict_loader(loaders[2], loaded, "cpu")
    matrix = confusion_matrix(labels, predictions, num_classes=len(recipe["class_names"]))
    assert matrix.shape == (3, 3) and matrix.sum() == len(test) and probabilities.shape == (len(test), 3)
    assert calc_accuracy_loader(loaders[2], loaded, "cpu") == pytest.approx(matrix.diag().sum().item() / len(test))
    assert all(0 <= value <= 1 for value in precision_recall_f1(matrix, positive=2))
    with pytest.raises(ValueError, match="num_classes=3"):
        confusion_matrix(labels, torch.full_like(labels, 2), num_classes=2)
    result = subprocess.run([sys.executable, "-m", "helpers", "classify", "--checkpoint", str(folder),
                             *WORDS.values()], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    printed = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert len(printed) == 3 and set(printed) <= set(NAMES) and "classes ham/spam/phishing" in result.stderr


def test_batch_size_4_goes_through_the_activities_checkers(monkeypatch, split_dir, tokenizer, tiny_gpt, capsys):
    monkeypatch.setattr(settings, "BATCH_SIZE", 4)
    paths = {name: split_dir / f"{name}.csv" for name in ("train", "validation", "test")}
    ns = {"paths": paths, "tokenizer": tokenizer}
    exec((PROJECT_ROOT / "notebooks" / "solutions" / "activity_2.py").read_text().replace("batch_size=8",
                                                                                             "batch_size=4"), ns)
    keys = ("my_train_dataset", "my_val_dataset", "first_inputs", "first_labels", "n_padding")
    loaders = {k: ns[k] for k in ("my_test_dataset", "my_train_loader", "my_val_loader", "my_test_loader")}
    assert check_activity_2(ns["MySpamDataset"], *(ns[k] for k in keys), **loaders, paths=paths,
                            tokenizer=tokenizer) is True, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "my_train_loader: 261 batches of 4" in out and "my_val_loader: 38 batches of 4 (the last holds 1)" in out
    assert "my_test_loader: 75 batches of 4" in out
    from helpers import check_activity_3

    solution = {"torch": torch}
    exec((PROJECT_ROOT / "notebooks" / "solutions" / "activity_3.py").read_text(), solution)
    model = prepare_for_classification(tiny_gpt())
    assert check_activity_3(solution["my_calc_accuracy_loader"], solution["my_calc_loss_batch"], ns["my_val_loader"],
                            model, "cpu", my_calc_loss_loader=solution["my_calc_loss_loader"]) is True
    assert "All correct" in capsys.readouterr().out
    ns["my_train_loader"] = torch.utils.data.DataLoader(ns["my_train_dataset"], batch_size=8, shuffle=True,
                                                        drop_last=True)  # the book's 8, no longer the setting
    assert check_activity_2(ns["MySpamDataset"], *(ns[k] for k in keys), **(loaders | {"my_train_loader":
                            ns["my_train_loader"]}), paths=paths, tokenizer=tokenizer) is False
    assert "batch_size=8; the lecture's is 4" in capsys.readouterr().out


def test_the_books_numbers_are_not_set_beside_other_settings(monkeypatch, capsys):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    assert compare_with_book("initial", train_accuracy=0.5) is not None  # the book's own settings
    monkeypatch.setattr(settings, "NUM_EPOCHS", 2)
    monkeypatch.setattr(settings, "CLASS_NAMES", NAMES)
    assert compare_with_book("final", test_accuracy=0.9) is None
    out = capsys.readouterr().out
    assert "CLASS_NAMES = ('ham', 'spam', 'phishing') (the book: ('ham', 'spam'))" in out and "NUM_EPOCHS = 2" in out


def test_your_own_csv_becomes_the_notebooks_data_with_one_setting(monkeypatch, tmp_path, tokenizer):
    frame = three_class_frame(n=80)
    frame = pd.DataFrame({"text": frame["Text"], "label": [NAMES[i] for i in frame["Label"]]})
    frame.to_csv(tmp_path / "mine.csv", index=None)
    monkeypatch.setattr(settings, "DATASET_CSV", tmp_path / "mine.csv")
    monkeypatch.setattr(settings, "CLASS_NAMES", NAMES)
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    from helpers import build_spam_classifier, get_spam_dataloaders

    loaders = get_spam_dataloaders(tokenizer, data_folder=tmp_path)
    assert [len(loader.dataset) for loader in loaders] == [56, 8, 16]
    assert set(torch.cat([y for _, y in loaders[2]]).tolist()) <= {0, 1, 2}
    assert build_spam_classifier(device="cpu").out_head.out_features == 3
    monkeypatch.setattr(settings, "MAX_LENGTH", 12)  # a shorter padding, everywhere
    assert next(iter(get_spam_dataloaders(tokenizer, data_folder=tmp_path)[1]))[0].shape[1] == 12
    frame.drop(columns="label").to_csv(tmp_path / "mine.csv", index=None)
    from helpers import DatasetError

    with pytest.raises(DatasetError, match="needs \\['label'\\]"):
        get_spam_dataloaders(tokenizer, data_folder=tmp_path)


@pytest.mark.slow
def test_gpt2_medium_trains_and_the_replay_follows_its_size(monkeypatch, tmp_path, capsys):
    """GPT-2 medium's architecture (random weights, two steps) through training, a prepared run of its own,
    and the instructor's replay, which picks the run of the model's size, not small's."""
    from helpers import GPTModel, PrepareError, get_model_config, replay_prepared_run
    from helpers.classroom.instructor import _record_path, run_checkpoint
    from helpers.storage.files import expected_checksum, write_json

    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path))
    size = "gpt2-medium (355M)"

    def medium(seed):
        torch.manual_seed(seed)
        model = prepare_for_classification(GPTModel(get_model_config(size)))
        model.model_size, model.is_test_model = size, False
        return model

    model = medium(0)
    assert model.out_head.in_features == 1024 and len(model.trf_blocks) == 24
    ids = torch.randint(0, 50257, (8, 16))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ids, torch.arange(8) % 2), batch_size=4)
    torch.manual_seed(123)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.LEARNING_RATE)
    train_classifier_simple(model, loader, loader, optimizer, "cpu", num_epochs=1, eval_freq=1, eval_iter=1)
    training = training_record(model, optimizer, loader, 1, 1, 1, engine="exact")
    folder = save_classifier(model, run_checkpoint("exact", size), max_length=16, training=training)
    write_json(_record_path("exact", size), {"date": "today", "seconds": 1.0, "trunk_seconds": 0.5, "log": ["(two steps)"],
                                             "curves": [[0.7], [0.7], [0.5], [0.5], 8],
                                             "lecture_seconds_projected": 2.0,
                                             "checkpoint_sha256": expected_checksum(folder / "classifier.safetensors")})
    fresh = medium(1)
    curves = replay_prepared_run("exact", fresh)
    assert curves[4] == 8 and all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(),
                                                                      model.state_dict().values()))
    assert f"{size}, classes ham/spam; trained with the fast engine, exact mode for 2 of 2 steps" in \
        capsys.readouterr().out
    small = prepare_for_classification(GPTModel({**get_model_config("gpt2-small (124M)"), "n_layers": 1}))
    small.model_size = "gpt2-small (124M)"
    with pytest.raises(PrepareError, match="gpt2-small-124M"):  # no run prepared for small: refused, not mixed up
        replay_prepared_run("exact", small)


def test_a_classifier_of_other_data_or_settings_is_not_reused(monkeypatch, tmp_path, staged_zip, tokenizer, capsys):
    """Trained at batch size 4, then the setting goes back to 8: notebooks 5-6 must not reuse it silently."""
    from helpers import build_spam_classifier, default_checkpoint_dir, get_spam_dataloaders, get_trained_classifier

    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBOOK_SMS_ZIP", str(staged_zip))
    loader = get_spam_dataloaders(tokenizer, batch_size=4)[0]
    model = build_spam_classifier(device="cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.LEARNING_RATE, weight_decay=settings.WEIGHT_DECAY)
    training = training_record(model, optimizer, loader, 5, 50, 5, steps_done=5 * len(loader))
    save_classifier(model, default_checkpoint_dir("test-model"), max_length=120, training=training)

    class ReachedTraining(Exception):
        pass

    monkeypatch.setattr("helpers.classroom.pipeline.train_spam_classifier",
                        lambda *a, **k: (_ for _ in ()).throw(ReachedTraining()))
    with pytest.raises(ReachedTraining):
        get_trained_classifier(device="cpu")
    assert "its batch size differ from what helpers/settings.py and the data give now" in capsys.readouterr().out


def test_activity_2_accepts_the_labels_of_other_classes(monkeypatch, split_dir, tokenizer, capsys):
    monkeypatch.setattr(settings, "CLASS_NAMES", NAMES)
    paths = {name: split_dir / f"{name}.csv" for name in ("train", "validation", "test")}
    inputs = torch.full((8, 120), 50256)
    check_activity_2(first_inputs=inputs, first_labels=torch.tensor([0, 2, 1, 2, 0, 0, 1, 2]), paths=paths,
                     tokenizer=tokenizer)
    out = capsys.readouterr().out
    assert "first_labels = [0, 2, 1, 2, 0, 0, 1, 2]" in out and "labels should be" not in out
    check_activity_2(first_inputs=inputs, first_labels=torch.tensor([0, 3, 1, 2, 0, 0, 1, 2]), paths=paths,
                     tokenizer=tokenizer)
    assert "labels should be 0 (ham), 1 (spam), 2 (phishing), got [0, 1, 2, 3]" in capsys.readouterr().out


# --------------------------------------------------------------------------- issue 32: settings checked at the start
@pytest.fixture
def sms_data(monkeypatch, tmp_path, staged_zip):
    """The test model, the SMS data staged, a fresh data folder."""
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WORKBOOK_SMS_ZIP", str(staged_zip))
    return tmp_path


@pytest.mark.parametrize("name,value,match", [
    ("BATCH_SIZE", 0, "BATCH_SIZE = 0, but it must be a whole number of at least 1"),
    ("BATCH_SIZE", 8.0, "BATCH_SIZE = 8.0, but it must be a whole number"),
    ("NUM_EPOCHS", True, "NUM_EPOCHS = True"),
    ("EVAL_FREQ", -5, "EVAL_FREQ = -5"),
    ("CLASS_NAMES", ("ham", "spam", "ham"), "'ham' appears twice"),
    ("CLASS_NAMES", ("ham",), "two or more class names"),
    ("CLASS_NAMES", ("ham"), "It is one string, read as its letters: a tuple needs commas, e.g. \\('ham', \"spam\"\\)"),
    ("CLASS_NAMES", ("ham", ""), "non-empty names"),
    ("CLASS_NAMES", ("ham", "sp\tam"), "without tabs, line breaks"),
    ("CLASS_NAMES", ("spam", "ham"), "\\('ham', 'spam'\\) while DATASET_CSV is None: the SMS Spam Collection's classes"),
    ("MODEL_SIZE", "gpt2-tiny", "MODEL_SIZE = 'gpt2-tiny', but it must be one of 'gpt2-small \\(124M\\)'.*The test model"),
    ("LEARNING_RATE", float("nan"), "LEARNING_RATE = nan, but it must be a finite number above 0"),
    ("LEARNING_RATE", 0, "LEARNING_RATE = 0"),
    ("WEIGHT_DECAY", -0.1, "WEIGHT_DECAY = -0.1, but it must be a finite number of at least 0"),
    ("MAX_LENGTH", 5000, "MAX_LENGTH = 5000, but it must be None .* from 1 to 128, the context the test model can read"),
    ("MAX_LENGTH", 0, "MAX_LENGTH = 0"),
    ("SEED", "123", "SEED = '123'"),
    ("DATASET_CSV", "no/such/file.csv", "DATASET_CSV = 'no/such/file.csv'.*file.csv \\(a relative path is read from the "
                                        "project's folder\\): No such file"),
])
def test_every_setting_is_checked_before_any_work(monkeypatch, sms_data, name, value, match):
    """Item 8: BATCH_SIZE = 0 raised torch's own ValueError; CLASS_NAMES = ("ham", "spam", "ham") trained the whole
    run before failing in save_classifier; ("ham") was read as the classes 'a', 'h', 'm'; "gpt2-tiny" was accepted."""
    from helpers import SettingsError, build_spam_classifier, check_settings, get_spam_dataloaders, train_spam_classifier

    monkeypatch.setattr(settings, name, value)
    for start in (check_settings, get_spam_dataloaders, lambda: build_spam_classifier(device="cpu"),
                  lambda: train_spam_classifier(device="cpu")):
        with pytest.raises(SettingsError, match=match):
            start()
    assert not (sms_data / "data" / "train.csv").exists()  # nothing was done
    assert isinstance(SettingsError("x"), ValueError)


def test_a_setting_that_is_wrong_stops_the_command_line_with_status_2(tmp_path, run_cli):
    """The command line reads helpers/settings.py as a fresh process does: a bad value is a message and status 2."""
    result = run_cli("prepare", "--no-timing", env={"WORKBOOK_DATA_DIR": str(tmp_path),
                                                    "PYTHONPATH": str(_settings_override(tmp_path, BATCH_SIZE=0))})
    assert result.returncode == 2 and b"BATCH_SIZE = 0, but it must be a whole number" in result.stderr
    assert b"Traceback" not in result.stderr


def _settings_override(tmp_path, **values):
    """A sitecustomize that changes helpers/settings.py's values in a fresh process (as an edited file would)."""
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    lines = ["import helpers.settings as s"] + [f"s.{name} = {value!r}" for name, value in values.items()]
    (folder / "sitecustomize.py").write_text("\n".join(lines) + "\n")
    return folder


def test_a_list_of_the_books_class_names_or_its_120_tokens_are_the_books_settings(monkeypatch):
    """Item 9: ["ham", "spam"] and MAX_LENGTH = 120 counted as different from the book, so the comparison vanished."""
    monkeypatch.setattr(settings, "CLASS_NAMES", ["ham", "spam"])
    monkeypatch.setattr(settings, "MAX_LENGTH", 120)
    assert settings.differences_from_the_book() == {}
    monkeypatch.setattr(settings, "MAX_LENGTH", 100)
    assert settings.differences_from_the_book() == {"MAX_LENGTH": (100, None)}
    monkeypatch.setattr(settings, "MAX_LENGTH", 120)
    monkeypatch.setattr(settings, "DATASET_CSV", "mine.csv")  # 120 is the book's only on the book's data
    assert set(settings.differences_from_the_book()) == {"DATASET_CSV"}
    monkeypatch.setattr(settings, "CLASS_NAMES", ["spam", "ham"])
    assert "CLASS_NAMES" in settings.differences_from_the_book()


# --------------------------------------------------------------------------- issue 32: your own data, checked
def write_csv(path, rows, header="text,label"):
    """A CSV file as a person writes one: ``rows`` of (text, label), quoted where needed."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(header + "\n")
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


def two_classes(n=80):
    return [(f"{'WIN a prize, call now' if i % 2 else 'see you at dinner'} {i}", "spam" if i % 2 else "ham")
            for i in range(n)]


@pytest.fixture
def your_data(monkeypatch, tmp_path):
    """``your_data(rows)``: DATASET_CSV set to a CSV of these rows, the test model, a fresh data folder."""
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path / "data"))

    def use(rows, header="text,label", name="mine.csv"):
        path = write_csv(tmp_path / name, rows, header)
        monkeypatch.setattr(settings, "DATASET_CSV", str(path))
        return path

    return use


def test_an_empty_label_or_text_names_your_file_and_its_line(your_data, tokenizer):
    """Items 2 and 3: an empty label cell raised TypeError from sorted(); an empty text named the generated
    train.csv and its row numbers, not your file."""
    from helpers import DatasetError, get_spam_dataloaders, load_labelled_csv

    rows = two_classes()
    rows[4] = (rows[4][0], "")
    your_data(rows)
    with pytest.raises(DatasetError, match=r"mine.csv has an empty label cell on line 6 \(line 1 is the header\)"):
        get_spam_dataloaders(tokenizer)
    rows = two_classes()
    rows[9] = ("   ", "ham")
    rows[20] = ("", "spam")
    path = your_data(rows)
    with pytest.raises(DatasetError, match=r"mine.csv has an empty text cell on line 11, 22"):
        get_spam_dataloaders(tokenizer)
    (path.parent / "short.csv").write_text("text,label\nhello\nWIN,spam\n")  # a row with a missing cell
    with pytest.raises(DatasetError, match="short.csv has an empty label cell on line 2"):
        load_labelled_csv(path.parent / "short.csv")


def test_messages_that_read_na_none_or_null_are_messages(your_data, tokenizer):
    """Item 3: "NA", "None", "N/A", "null" became missing values (or the text 'nan' on pandas 2.2)."""
    from helpers import get_spam_dataloaders, load_labelled_csv

    rows = two_classes()
    for i, text in zip(range(0, 40, 4), ["NA", "None", "N/A", "null", "NaN", "nan", "#N/A", "NULL", "n/a", "-nan"]):
        rows[i] = (text, rows[i][1])
    path = your_data(rows)
    frame = load_labelled_csv(path)
    assert frame["Text"][:40:4].tolist() == ["NA", "None", "N/A", "null", "NaN", "nan", "#N/A", "NULL", "n/a", "-nan"]
    loaders = get_spam_dataloaders(tokenizer)  # the splits keep them as text too
    texts = pd.concat([loader.dataset.data["Text"] for loader in loaders])
    assert {"NA", "None", "N/A", "null"} <= set(texts) and texts.map(type).eq(str).all()


def test_fewer_than_two_classes_or_a_class_missing_from_a_split_is_refused(your_data, tokenizer):
    """Item 4: 747 ham alone, or a class with one example, trained to a matrix [[151, 0], [0, 0]] and 100 %."""
    from helpers import DatasetError, get_spam_dataloaders

    your_data([(f"see you at {i}", "ham") for i in range(747)])
    with pytest.raises(DatasetError, match=r"mine.csv has no row of the class\(es\) \['spam'\] \(747 ham\)"):
        get_spam_dataloaders(tokenizer)
    your_data([(f"see you at {i}", "ham") for i in range(746)] + [("WIN a prize", "spam")])
    with pytest.raises(DatasetError, match="the class 'spam' has 1 row.*split holds none of them.*Every class needs rows "
                                           "in the training, validation and test splits"):
        get_spam_dataloaders(tokenizer)


def test_too_few_rows_for_one_batch_says_so_before_training(monkeypatch, your_data, tokenizer):
    """Item 5: 10 rows gave loaders of 0/1/1 batches and "the data loader has no batches" after training started;
    BATCH_SIZE = 10_000 the same."""
    from helpers import DatasetError, get_spam_dataloaders

    your_data(two_classes(10))
    with pytest.raises(DatasetError, match=r"mine.csv has 10 rows, so 7 training rows \(70 %\): they cannot fill one "
                                           r"batch of BATCH_SIZE = 8, and the training loader drops an incomplete "
                                           r"batch.*at least 12.*at most 7"):
        get_spam_dataloaders(tokenizer)
    your_data(two_classes(80))
    monkeypatch.setattr(settings, "BATCH_SIZE", 10_000)
    with pytest.raises(DatasetError, match=r"80 rows, so 56 training rows \(70 %\): they cannot fill one batch of "
                                           r"BATCH_SIZE = 10,000.*at most 56"):
        get_spam_dataloaders(tokenizer, batch_size=settings.BATCH_SIZE)


def test_repeated_messages_across_the_splits_are_reported_once(your_data, tokenizer, capsys):
    """Item 6: the data tripled by duplicates put 827 of 897 test messages into training too, silently."""
    from helpers import get_spam_dataloaders

    rows = two_classes(100)
    your_data(rows * 3)
    loaders = get_spam_dataloaders(tokenizer)
    out = capsys.readouterr().out
    seen = set(loaders[0].dataset.data["Text"])
    repeated = int(loaders[2].dataset.data["Text"].isin(seen).sum())
    assert repeated > 0 and f"Warning: " in out and f"{repeated} of {len(loaders[2].dataset)} test messages" in out
    assert "also appear among the training messages" in out and "drop_duplicates" in out
    get_spam_dataloaders(tokenizer)
    assert "Warning" not in capsys.readouterr().out  # once


def test_a_message_longer_than_the_model_reads_is_cut_and_reported(your_data, tokenizer, capsys):
    """Item 1: a 229-token message crashed training with IndexError from F.embedding; a 2 MB message set max_length
    to about 420,000 tokens and took 10.5 GB."""
    from helpers import get_spam_dataloaders, train_spam_classifier

    rows = two_classes(60)
    rows[3] = ("WIN " * 229, "spam")
    rows[7] = ("call now and win " * 130_000, "spam")  # 2.2 MB
    your_data(rows)
    tracemalloc.start()
    try:
        loaders = get_spam_dataloaders(tokenizer)
        model, history = train_spam_classifier(device="cpu", loaders=loaders, settings={"num_epochs": 1})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out = capsys.readouterr().out
    assert "2 message(s) of" in out and "mine.csv (line 5, 9) are longer than the 128 tokens the model reads" in out
    assert "each is cut to its first 128 tokens" in out
    assert loaders[0].dataset.max_length <= 128 and history["training"]["steps_done"] == len(loaders[0])
    assert peak < 400e6


def test_a_run_says_its_steps_and_time_before_it_starts(monkeypatch, sms_data, capsys):
    """Item 7: 200,000 rows projected 95 minutes with no estimate printed (notebooks 5 and 6 said "about 2 minutes")."""
    from helpers import get_spam_dataloaders, train_spam_classifier
    from helpers.classroom import pipeline

    loaders = get_spam_dataloaders()
    model, _ = train_spam_classifier(device="cpu", loaders=loaders, settings={"num_epochs": 1})
    out = capsys.readouterr().out
    assert "Training: 130 steps (1 epoch(s) of 130 batches of 8), about" in out and "on this machine" in out
    monkeypatch.setattr(pipeline, "projected_seconds", lambda *a, **k: 95 * 60.0)
    pipeline.announce_run(model, loaders)
    out = capsys.readouterr().out
    assert "about 95.0 minutes on this machine" in out and "A long run: fewer epochs (NUM_EPOCHS)" in out


def test_the_projection_leaves_the_run_as_it_would_have_been(sms_data):
    """Timing a step must not draw from PyTorch's generator (the batches) or change the weights or gradients."""
    from helpers import build_spam_classifier, get_spam_dataloaders
    from helpers.classroom.pipeline import projected_seconds

    loaders = get_spam_dataloaders()
    model = build_spam_classifier(device="cpu")
    torch.manual_seed(123)
    state, weights = torch.get_rng_state(), {n: p.clone() for n, p in model.named_parameters()}
    one = projected_seconds(model, loaders, {"num_epochs": 1}, engine="lecture")
    five = projected_seconds(model, loaders, {"num_epochs": 5}, engine="lecture")
    assert torch.equal(torch.get_rng_state(), state) and one > 0 and five > 0
    assert all(torch.equal(p, weights[n]) and p.grad is None for n, p in model.named_parameters())
    assert projected_seconds(model, loaders, {"num_epochs": 5}, engine="exact") > 0
