"""Saving and loading the classifier: one file with its recipe and provenance, validated, read as trained."""
import json
import os
import tracemalloc

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file

from helpers import (
    CachedTop,
    CheckpointError,
    FastEngineError,
    ReadAsTrained,
    TrunkCache,
    calc_accuracy_loader,
    classify_review,
    classify_texts,
    describe,
    get_trained_classifier,
    load_classifier,
    predict_loader,
    training_record,
)
from helpers.classroom import checkpoint as checkpoint_module
from helpers.classroom.checkpoint import CHECKPOINT_FILE, METADATA_KEY
from helpers.fast.engine import top_logits
from helpers.storage.files import checksum_path, write_checked


def rewrite(folder, recipe=..., tensors=None):
    """Write the checkpoint again with another recipe or other tensors, its checksum fitting (as a bug would)."""
    data = (folder / CHECKPOINT_FILE).read_bytes()
    size = int.from_bytes(data[:8], "little")
    old = json.loads(json.loads(data[8:8 + size])["__metadata__"][METADATA_KEY])
    tensors = load_safetensors(data) if tensors is None else tensors
    metadata = {METADATA_KEY: json.dumps(old if recipe is ... else recipe)}
    write_checked(folder / CHECKPOINT_FILE, writer=lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return old


# --------------------------------------------------------------------------- one file, one unit
def test_a_checkpoint_is_one_file_that_carries_its_recipe_and_provenance(full_training, tmp_path, tiny_classifier, saved):
    model = tiny_classifier(seed=3)
    folder = saved(model, tmp_path / "ckpt", max_length=120, saved_by="a test")
    assert sorted(p.name for p in folder.iterdir()) == [CHECKPOINT_FILE, CHECKPOINT_FILE + ".sha256"]
    loaded, recipe = load_classifier(folder)
    assert isinstance(loaded, ReadAsTrained) and loaded.class_names == ("ham", "spam")
    x = torch.randint(0, 50257, (4, 120))
    with torch.no_grad():
        assert torch.allclose(loaded(x)[:, -1], model.eval()(x)[:, -1], atol=1e-5)
    assert recipe["max_length"] == 120 and recipe["class_names"] == ["ham", "spam"] and recipe["pooling"] == "last"
    assert recipe["training"] == full_training and len(recipe["trunk_fingerprint"]) == 64
    assert describe(recipe).startswith("gpt-2x32, classes ham/spam; trained with the lecture loop (train_classifier_simple) for 650 of 650 steps;")
    assert "reads position 119 of messages padded to 120 tokens; saved by a test" in describe(recipe)


def test_a_save_stopped_half_way_is_refused_and_its_leftovers_cleaned_up(tmp_path, tiny_classifier, saved,
                                                                        monkeypatch):
    """Killed after the checksum of the new save was written but before its content replaced the old one:
    the pair does not match, so neither save is trusted (a mix of two saves cannot exist: it is one file)."""
    folder = saved(tiny_classifier(seed=1), tmp_path / "ckpt")

    def killed(*args):
        raise KeyboardInterrupt  # as the Stop button, or a kill, between the two steps

    monkeypatch.setattr("helpers.storage.files.os.replace", lambda src, dst: killed()
                        if str(dst).endswith(CHECKPOINT_FILE) else os.rename(src, dst))
    with pytest.raises(KeyboardInterrupt):
        saved(tiny_classifier(seed=2), folder)
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load_classifier(folder)
    leftover = folder / f".{CHECKPOINT_FILE}.killed.part"  # what a kill -9 during the write leaves
    leftover.write_bytes(b"half")
    os.utime(leftover, (0, 0))
    saved(tiny_classifier(seed=2), folder)
    assert not leftover.exists() and load_classifier(folder)[1]["num_classes"] == 2


def test_a_checkpoint_in_the_old_two_file_format_is_refused_by_name(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "classifier.json").write_text("{}")
    with pytest.raises(CheckpointError, match="older format.*records no provenance"):
        load_classifier(folder)
    with pytest.raises(CheckpointError, match="no classifier checkpoint"):
        load_classifier(tmp_path / "empty")


# --------------------------------------------------------------------------- provenance
def test_training_record_counts_the_steps_the_optimizer_took(full_training, tiny_classifier, tmp_path, saved):
    """Press Stop after 2 of 650 steps, then save: the checkpoint says so (it used to say nothing)."""
    model = tiny_classifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.1)
    loader = [None] * 130  # 130 batches per epoch, as the lecture's training loader
    for _ in range(2):
        model(torch.randint(0, 50257, (2, 8)))[:, -1].sum().backward()
        optimizer.step()
    record = training_record(model, optimizer, loader, num_epochs=5, eval_freq=50, eval_iter=5)
    assert record["steps_done"] == 2 and record["steps_planned"] == 650 and record["engine"] == "lecture"
    assert record["settings"] == full_training["settings"]
    recipe = load_classifier(saved(model, tmp_path / "early", training=record))[1]
    assert "for 2 of 650 steps: stopped early" in describe(recipe)
    with pytest.raises(ValueError, match="does not train this model"):
        training_record(tiny_classifier(), optimizer, loader, 5, 50, 5)
    with pytest.raises(ValueError, match="engine must be one of"):
        training_record(model, optimizer, loader, 5, 50, 5, engine="magic")
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)  # keeps no step count: it cannot be guessed
    with pytest.raises(ValueError, match="SGD does not count its steps.*steps_done="):
        training_record(model, sgd, loader, 5, 50, 5)
    assert training_record(model, sgd, loader, 5, 50, 5, steps_done=650)["steps_done"] == 650


def test_a_classifier_of_other_classes_must_name_them(tiny_classifier, tmp_path, saved):
    model = tiny_classifier(num_classes=3)
    with pytest.raises(ValueError, match="3 classes: pass class_names"):
        saved(model, tmp_path / "three")
    loaded, recipe = load_classifier(saved(model, tmp_path / "three", class_names=["ham", "spam", "phishing"]))
    assert loaded.class_names == ("ham", "spam", "phishing") and recipe["num_classes"] == 3


# --------------------------------------------------------------------------- read as it was trained
def _padded(tokenizer, texts, max_length):
    ids = [tokenizer.encode(t)[:max_length] for t in texts]
    return torch.tensor([row + [50256] * (max_length - len(row)) for row in ids])


@pytest.mark.parametrize("mode,pooling", [("exact", "last"), ("flexible", "last_real")])
def test_every_reader_reads_a_checkpoint_as_it_was_trained(tmp_path, tokenizer, mode, pooling, tiny_classifier,
                                                           messages, saved, run_cli):
    """What the engine trained on (its logits) is what classify_texts, classify_review (with or without
    max_length), the lecture's accuracy, predict_loader and the CLI read. Without the reading rule,
    predict_loader read a flexible checkpoint at position 19 and disagreed with the CLI."""
    model = tiny_classifier()
    rows = _padded(tokenizer, messages, 20)  # the long message is truncated to 20 tokens
    with torch.no_grad():
        trained_view = torch.softmax(top_logits(model, TrunkCache(model, mode), rows)[:, 0], -1).numpy()
    folder = saved(model, tmp_path / mode, max_length=20, pooling=pooling)
    loaded, recipe = load_classifier(folder)
    assert recipe["pooling"] == pooling and loaded.reading_rule["max_length"] == 20
    _, probabilities = classify_texts(messages, loaded, tokenizer, "cpu", batch_size=4)  # no max_length
    assert np.allclose(probabilities, trained_view, atol=1e-5)
    for i, text in enumerate(messages[:-1]):  # (the last one is longer than the context without max_length)
        assert np.allclose(classify_review(text, loaded, tokenizer, "cpu")[1], trained_view[i], atol=1e-5)
        assert np.allclose(classify_review(text, loaded, tokenizer, "cpu", 20)[1], trained_view[i], atol=1e-5)
    loader = torch.utils.data.DataLoader(list(zip(rows, torch.tensor([1, 0, 1, 0, 0, 1]))), batch_size=4)
    _, predictions, loader_probabilities = predict_loader(loader, loaded, "cpu")
    assert np.allclose(loader_probabilities.numpy(), trained_view, atol=1e-5)
    assert calc_accuracy_loader(loader, loaded, "cpu") == (predictions.numpy() == [1, 0, 1, 0, 0, 1]).mean()
    result = run_cli("classify", "--checkpoint", str(folder), stdin="\n".join(messages).encode())
    assert result.returncode == 0, result.stderr
    assert [line.split(b"\t")[0].decode() for line in result.stdout.splitlines()] == \
           [["ham", "spam"][i] for i in trained_view.argmax(1)]
    p_spam = [float(line.split(b"\t")[1]) for line in result.stdout.splitlines()]
    assert np.allclose(p_spam, trained_view[:, 1], atol=2e-3)
    assert b"for 650 of 650 steps" in result.stderr


def test_a_max_length_that_contradicts_the_checkpoint_is_refused(tmp_path, tokenizer, tiny_classifier, saved):
    loaded, _ = load_classifier(saved(tiny_classifier(), tmp_path / "c", max_length=20))
    with pytest.raises(ValueError, match="padded to 20 tokens.*max_length=60"):
        classify_texts(["hello"], loaded, tokenizer, "cpu", max_length=60)
    assert classify_texts(["hello"], loaded, tokenizer, "cpu", max_length=20)[0][0] in (0, 1)


# --------------------------------------------------------------------------- a trunk cache that no longer fits
def test_a_cached_trunk_whose_weights_changed_is_refused_not_read_stale(tiny_classifier, tmp_path, saved):
    """load_state_dict of weights with another trunk used to leave a CachedTop answering from old activations."""
    model = tiny_classifier(seed=0)
    x = torch.randint(0, 50257, (3, 20))
    cached = CachedTop(model, TrunkCache(model, "exact"))
    with torch.no_grad():
        before = cached(x)
        model.load_state_dict(tiny_classifier(seed=0).state_dict())  # the same weights again: still fine
        assert torch.equal(cached(x), before)
        model.load_state_dict(tiny_classifier(seed=5).state_dict())  # another trunk
        with pytest.raises(FastEngineError, match="other trunk weights.*TrunkCache\\(model, mode\\)"):
            cached(x)
        edited = tiny_classifier(seed=0)
        cached = CachedTop(edited, TrunkCache(edited, "exact"))
        cached(x)
        edited.tok_emb.weight.data.mul_(0.5)  # through .data: the version counter does not see it
        with pytest.raises(FastEngineError, match="other trunk weights"):
            cached(x)
    with pytest.raises(FastEngineError, match="other trunk weights"):
        CachedTop(tiny_classifier(seed=5), TrunkCache(tiny_classifier(seed=0), "exact"))
    loaded, _ = load_classifier(saved(tiny_classifier(seed=0), tmp_path / "c"))
    reader = ReadAsTrained(loaded, TrunkCache(loaded.model, "exact"))
    loaded.load_state_dict(tiny_classifier(seed=5).state_dict())
    with torch.no_grad(), pytest.raises(FastEngineError, match="other trunk weights"):
        reader(x)


# --------------------------------------------------------------------------- get_trained_classifier's choice
def test_get_trained_classifier_uses_only_a_finished_classifier_of_its_classes(full_training, tmp_path, monkeypatch, staged_zip,
                                                                              tiny_classifier, saved, capsys):
    from helpers import default_checkpoint_dir, rebuilt_checkpoint_dir

    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBOOK_SMS_ZIP", str(staged_zip))
    from helpers import build_test_model, prepare_for_classification

    yours = default_checkpoint_dir("test-model")
    stopped = dict(full_training, steps_done=2)
    saved(prepare_for_classification(build_test_model()), yours, max_length=120, training=stopped)
    three = prepare_for_classification(build_test_model(), num_classes=3)
    saved(three, rebuilt_checkpoint_dir("test-model"), max_length=120, class_names=["a", "b", "c"])

    class ReachedTraining(Exception):
        pass

    def train(*args, **kwargs):
        raise ReachedTraining

    def read_weights(*args):
        raise AssertionError("an unusable checkpoint's weights were read (two GPT-2s in memory at once)")

    monkeypatch.setattr("helpers.classroom.pipeline.train_spam_classifier", train)
    monkeypatch.setattr("helpers.classroom.checkpoint._read_weights", read_weights)  # refused by the recipe alone
    with pytest.raises(ReachedTraining):  # neither is used: it trains a classifier of its own
        get_trained_classifier(device="cpu")
    out = capsys.readouterr().out
    assert "Not using your notebook 4 checkpoint" in out and "trained 2 of 650 steps: stopped early" in out
    assert "Run notebook 4's training cell to the end" in out
    assert "Not using the classifier trained here before" in out and "classifies into a/b/c" in out


# --------------------------------------------------------------------------- recipe validation
BAD_RECIPES = {
    "null": (None, "not a recipe"),
    "n_heads 0": ({"config": {"n_heads": 0}}, "config.n_heads is 0"),
    "n_heads not a divisor": ({"config": {"n_heads": 5}}, "config.n_heads is 5.*divisor"),
    "string number": ({"config": {"emb_dim": "32"}}, 'config.emb_dim is "32"'),
    "vocab 1e9": ({"config": {"vocab_size": 1e9}}, "config.vocab_size is 1000000000.0"),
    "vocab huge int": ({"config": {"vocab_size": 900_000}}, "cannot be loaded into the model its recipe describes"),
    "max_length string": ({"max_length": "120"}, 'max_length is "120"'),
    "max_length 0": ({"max_length": 0}, "max_length is 0"),
    "max_length beyond the context": ({"max_length": 500}, "max_length is 500.*context length \\(128\\)"),
    "num_classes 1": ({"num_classes": 1}, "num_classes is 1"),
    "class names too few": ({"class_names": ["ham"]}, 'class_names is \\["ham"\\].*2 different'),
    "class names repeated": ({"class_names": ["ham", "ham"]}, "class_names"),
    "pooling": ({"pooling": "mean"}, 'pooling is "mean"'),
    "pad id": ({"pad_token_id": -1}, "pad_token_id is -1"),
    "qkv_bias": ({"config": {"qkv_bias": "yes"}}, "config.qkv_bias"),
    "drop_rate": ({"config": {"drop_rate": 2}}, "config.drop_rate is 2"),
    "missing key": ({"model_name": None}, "model_name is null"),
    "format": ({"format": 1}, "format is 1"),
    "engine": ({"training": {"engine": "magic"}}, 'training.engine is "magic"'),
    "steps beyond plan": ({"training": {"steps_done": 700}}, "training.steps_done is 700"),
    "steps planned 0": ({"training": {"steps_planned": 0}}, "training.steps_planned is 0"),
    "settings": ({"training": {"settings": {"num_epochs": 0}}}, "training.settings.num_epochs is 0"),
    "fingerprint": ({"trunk_fingerprint": "abc"}, 'trunk_fingerprint is "abc"'),
    "fingerprint of another trunk": ({"trunk_fingerprint": "0" * 64}, "not the ones its provenance records"),
}


def _merge(recipe, change):
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            _merge(recipe[key], value)
        else:
            recipe[key] = value


@pytest.mark.parametrize("case", BAD_RECIPES, ids=list(BAD_RECIPES))
def test_every_recipe_field_is_validated(tmp_path, case, tiny_classifier, saved):
    folder = saved(tiny_classifier(), tmp_path / "ckpt")
    change, match = BAD_RECIPES[case]
    recipe = json.loads(json.dumps(rewrite(folder)))
    if change is None:
        recipe = None
    else:
        _merge(recipe, change)
    rewrite(folder, recipe)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=match):
            load_classifier(folder)
        assert tracemalloc.get_traced_memory()[1] < 50e6  # refused before allocating the model it describes
    finally:
        tracemalloc.stop()


def test_tensors_that_do_not_fit_the_recipe_are_refused(tmp_path, tiny_classifier, saved, run_cli):
    folder = saved(tiny_classifier(), tmp_path / "ckpt")
    tensors = dict(tiny_classifier().state_dict())
    tensors.pop("final_norm.scale")
    tensors["something.else"] = torch.zeros(3)
    rewrite(folder, tensors=tensors)
    with pytest.raises(CheckpointError, match=r"does not fit its recipe \(missing \['final_norm.scale'\], "
                                              r"unexpected \['something.else'\]\)"):
        load_classifier(folder)
    result = run_cli("classify", "--checkpoint", str(folder), "hello")
    assert result.returncode == 2 and b"does not fit its recipe" in result.stderr and b"Traceback" not in result.stderr


def test_non_finite_integer_or_corrupted_tensors_are_refused(tmp_path, tiny_classifier, saved):
    model = tiny_classifier()
    with torch.no_grad():
        model.out_head.bias[0] = float("nan")
    with pytest.raises(CheckpointError, match="'out_head.bias' holds NaN"):
        load_classifier(saved(model, tmp_path / "nan"))
    tensors = dict(tiny_classifier().state_dict())
    tensors["final_norm.shift"] = torch.zeros(model.cfg["emb_dim"], dtype=torch.int32)
    folder = saved(tiny_classifier(), tmp_path / "int")
    rewrite(folder, tensors=tensors)
    with pytest.raises(CheckpointError, match="'final_norm.shift' holds I32 values"):
        load_classifier(folder)
    saved(tiny_classifier(), folder)
    corrupted = folder / CHECKPOINT_FILE  # bytes flipped after writing: the checksum says so
    data = bytearray(corrupted.read_bytes())
    data[-100:] = b"\xff" * 100
    corrupted.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load_classifier(folder)
    checksum_path(corrupted).unlink()
    with pytest.raises(CheckpointError, match="no checksum file beside it.*a copied checkpoint needs both files"):
        load_classifier(folder)


def test_a_checkpoint_of_another_model_is_refused(tmp_path, tiny_classifier, saved):
    saved(tiny_classifier(), tmp_path / "ckpt", max_length=120)
    with pytest.raises(CheckpointError, match="trained from 'gpt-2x32', not 'gpt2-small \\(124M\\)'"):
        load_classifier(tmp_path / "ckpt", expected_model_name="gpt2-small (124M)")
    recipe = rewrite(tmp_path / "ckpt")
    recipe["config"]["emb_dim"] = 64
    rewrite(tmp_path / "ckpt", recipe)  # a consistent recipe for another shape
    with pytest.raises(CheckpointError, match="cannot be loaded into the model its recipe describes"):
        load_classifier(tmp_path / "ckpt")


def test_saving_checks_what_it_records(full_training, tmp_path, tiny_classifier, tiny_gpt, saved):
    with pytest.raises(ValueError, match="still predicts the 50257 tokens"):
        saved(tiny_gpt(), tmp_path / "lm")
    with pytest.raises(ValueError, match="save_classifier: training.steps_done is -1.*pass a valid value"):
        saved(tiny_classifier(), tmp_path / "bad", training=dict(full_training, steps_done=-1))
    with pytest.raises(ValueError, match="save_classifier: max_length is \"20\""):
        saved(tiny_classifier(), tmp_path / "bad", max_length="20")
    with pytest.raises(ValueError, match="pooling must be one of"):
        saved(tiny_classifier(), tmp_path / "bad", pooling="mean")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "lm").exists()


def test_the_checkpoint_module_writes_only_through_the_checked_writer():
    source = open(checkpoint_module.__file__).read()
    assert "write_checked(" in source and "open(" not in source.replace("safe_open(", "")


# --------------------------------------------------------------------------- issue 32: a checkpoint is what it says
def test_a_model_name_that_does_not_fit_the_weights_is_refused(tmp_path, tiny_classifier, saved, run_cli, capsys):
    """Item 10: a recipe saying "gpt2-small (124M)" over the test model's 64-dimension tensors (checksum updated)
    loaded as GPT-2 small; the CLI showed no test-model banner, and notebook 5 set the book's table beside it."""
    from helpers import TEST_MODEL_CONFIG, build_test_model, prepare_for_classification

    test_model = prepare_for_classification(build_test_model())
    capsys.readouterr()
    folder = saved(test_model, tmp_path / "test-model", max_length=120)
    recipe = rewrite(folder)
    assert recipe["model_name"] == "test-model" and recipe["config"] == TEST_MODEL_CONFIG
    rewrite(folder, {**recipe, "model_name": "gpt2-small (124M)"})
    with pytest.raises(CheckpointError, match=r"config.context_length is 128, but it must be 1024, as in 'gpt2-small "
                                              r"\(124M\)', the model its model_name says it is"):
        load_classifier(folder)
    result = run_cli("classify", "--checkpoint", str(folder), "hello")
    assert result.returncode == 2 and b"the name and the weights disagree" in result.stderr
    folder = saved(tiny_classifier(), tmp_path / "tiny")
    rewrite(folder, {**rewrite(folder), "model_name": "test-model"})  # the other way round: not the test model either
    with pytest.raises(CheckpointError, match="config.emb_dim is 32, but it must be 64, as in 'test-model'"):
        load_classifier(folder)
    with pytest.raises(ValueError, match="save_classifier: config.emb_dim is 32, but it must be 64"):
        model = tiny_classifier()
        model.is_test_model = True  # a model that says it is the test model, but is not
        saved(model, tmp_path / "liar")


def test_a_test_model_checkpoint_says_so_wherever_it_is_read(tmp_path, saved, run_cli, capsys):
    from helpers import build_test_model, prepare_for_classification

    folder = saved(prepare_for_classification(build_test_model()), tmp_path / "ckpt", max_length=120)
    capsys.readouterr()
    _, recipe = load_classifier(folder)
    assert describe(recipe).startswith("test-model (the TEST MODEL: random weights, not GPT-2), classes ham/spam")
    result = run_cli("classify", "--checkpoint", str(folder), "hello", env={"WORKBOOK_TEST_MODEL": "0"})
    assert result.returncode == 0 and b"TEST MODEL: a tiny GPT with RANDOM weights" in result.stderr
    assert b"TEST MODEL" not in result.stdout and result.stdout.count(b"\n") == 1


def test_a_checkpoint_given_as_its_file_is_read_from_its_folder(tmp_path, tiny_classifier, saved, run_cli):
    """Item 16: --checkpoint …/classifier.safetensors said "no classifier checkpoint in …/classifier.safetensors"."""
    folder = saved(tiny_classifier(), tmp_path / "ckpt")
    _, recipe = load_classifier(folder / CHECKPOINT_FILE)
    assert recipe == load_classifier(folder)[1]
    result = run_cli("classify", "--checkpoint", str(folder / CHECKPOINT_FILE), "hello")
    assert result.returncode == 0 and result.stdout.count(b"\n") == 1
    other = tmp_path / "notes.txt"
    other.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.txt is a file, not a classifier checkpoint: pass the folder"):
        load_classifier(other)
    result = run_cli("classify", "--checkpoint", str(other), "hello")
    assert result.returncode == 2 and b"is a file, not a classifier checkpoint" in result.stderr


def test_an_unmerged_lora_model_is_not_saved_as_if_it_could_be_read_back(tmp_path, tiny_classifier, saved):
    """Item 22: save_classifier wrote an unmerged LoRA model that load_classifier then refused."""
    from helpers import apply_lora, merge_lora

    model = apply_lora(tiny_classifier(), rank=2)
    with pytest.raises(ValueError, match="LoRA adapter tensors .* not merged .* merge_lora\\(model\\), then save"):
        saved(model, tmp_path / "lora")
    assert not (tmp_path / "lora").exists()
    x = torch.randint(0, 50257, (2, 20))
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "B") and isinstance(module.B, torch.nn.Parameter):
                module.B.normal_(std=0.5)
        expected = model(x)[:, -1]
    loaded, _ = load_classifier(saved(merge_lora(model), tmp_path / "lora", max_length=20))
    with torch.no_grad():
        assert torch.allclose(loaded(x)[:, -1], expected, atol=1e-4)


def test_text_from_a_checkpoint_reaches_the_terminal_as_plain_text(tmp_path, tiny_classifier, saved, run_cli):
    """Item 13: class names and saved_by reached the terminal raw (escape codes cleared the screen), and a tab or a
    newline in a class name turned 2 inputs into 4 output records."""
    names = ["h\tam\x1b[2J", "sp\nam\x1b[31m"]
    folder = saved(tiny_classifier(), tmp_path / "ckpt", class_names=names, saved_by="me\x1b]0;owned\x07\u202e")
    result = run_cli("classify", "--checkpoint", str(folder), "first", "second")
    assert result.returncode == 0, result.stderr
    records = result.stdout.decode().split("\n")
    assert len(records) == 3 and records[2] == "" and all(r.count("\t") == 2 for r in records[:2])
    assert {r.split("\t")[0] for r in records[:2]} <= {"h\\tam\\x1b[2J", "sp\\nam\\x1b[31m"}
    assert b"\x1b" not in result.stdout + result.stderr and b"\x07" not in result.stderr
    assert "classes h\\tam\\x1b[2J/sp\\nam\\x1b[31m" in result.stderr.decode()
    assert "saved by me\\x1b]0;owned\\x07\\u202e" in result.stderr.decode()
    _, recipe = load_classifier(folder)
    assert "\x1b" not in describe(recipe) and "\n" not in describe(recipe)
