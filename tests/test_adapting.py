"""The workbook adapted as docs/adapting.md describes: other classes, another batch size, other settings."""
import subprocess
import sys

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
