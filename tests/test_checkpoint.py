"""Saving and loading the classifier: round trips, recipes validated, checkpoints read as they were trained."""
import json
import tracemalloc

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from helpers import (
    CheckpointError,
    TrunkCache,
    classify_review,
    classify_texts,
    load_classifier,
    save_classifier,
)
from helpers.classroom.checkpoint import RECIPE_FILE, WEIGHTS_FILE
from helpers.fast.engine import top_logits
from helpers.storage.files import read_json, write_checked, write_json




# --------------------------------------------------------------------------- 1. tensors that do not fit the recipe
def test_checkpoint_whose_tensors_do_not_match_its_recipe_is_a_clear_error(tmp_path, tiny_classifier, run_cli):
    folder = save_classifier(tiny_classifier(), tmp_path / "ckpt", max_length=20)
    tensors = dict(tiny_classifier().state_dict())
    tensors.pop("final_norm.scale")
    tensors["something.else"] = torch.zeros(3)
    write_checked(folder / WEIGHTS_FILE, writer=lambda tmp: save_file(tensors, tmp))  # checksum fits, content not
    with pytest.raises(CheckpointError, match=r"does not fit its recipe \(missing \['final_norm.scale'\], "
                                              r"unexpected \['something.else'\]\)"):
        load_classifier(folder)
    result = run_cli("classify", "--checkpoint", str(folder), "hello")
    assert result.returncode == 2 and b"does not fit its recipe" in result.stderr and b"Traceback" not in result.stderr


# --------------------------------------------------------------------------- 2. the checkpoint's reading rule
def _padded(tokenizer, texts, max_length):
    ids = [tokenizer.encode(t)[:max_length] for t in texts]
    return torch.tensor([row + [50256] * (max_length - len(row)) for row in ids])


@pytest.mark.parametrize("mode,pooling", [("exact", "last"), ("flexible", "last_real")])
def test_a_checkpoint_is_read_as_it_was_trained(tmp_path, tokenizer, mode, pooling, tiny_classifier, messages, run_cli):
    """What the fast engine trained on (its logits) is what classify_texts / classify_review / the CLI read."""
    model = tiny_classifier()
    rows = _padded(tokenizer, messages, 20)  # the long message is truncated to 20 tokens
    with torch.no_grad():
        trained_view = torch.softmax(top_logits(model, TrunkCache(model, mode), rows)[:, 0], -1).numpy()
    folder = save_classifier(model, tmp_path / mode, max_length=20, pooling=pooling)
    loaded, recipe = load_classifier(folder)
    assert recipe["pooling"] == pooling and loaded.reading_rule["max_length"] == 20
    labels, probabilities = classify_texts(messages, loaded, tokenizer, "cpu", batch_size=4)  # no max_length
    assert np.allclose(probabilities, trained_view, atol=1e-5)
    if pooling == "last":  # the lecture's classify_review reads the padded message when given the checkpoint's max_length
        assert np.allclose(classify_review(messages[-1], loaded, tokenizer, "cpu", recipe["max_length"])[1],
                           trained_view[-1], atol=1e-5)
    result = run_cli("classify", "--checkpoint", str(folder), stdin="\n".join(messages).encode())
    assert result.returncode == 0, result.stderr
    p_spam = [float(line.split(b"\t")[1]) for line in result.stdout.splitlines()]
    assert np.allclose(p_spam, trained_view[:, 1], atol=2e-3)


def test_a_max_length_that_contradicts_the_checkpoint_is_refused(tmp_path, tokenizer, tiny_classifier):
    loaded, _ = load_classifier(save_classifier(tiny_classifier(), tmp_path / "c", max_length=20))
    with pytest.raises(ValueError, match="padded to 20 tokens.*max_length=60"):
        classify_texts(["hello"], loaded, tokenizer, "cpu", max_length=60)
    assert classify_texts(["hello"], loaded, tokenizer, "cpu", max_length=20)[0][0] in (0, 1)


# --------------------------------------------------------------------------- 6. recipe validation
BAD_RECIPES = {
    "null": (None, "not a recipe"),
    "n_heads 0": ({"config": {"n_heads": 0}}, "config.n_heads is 0"),
    "n_heads not a divisor": ({"config": {"n_heads": 5}}, "config.n_heads is 5.*divisor"),
    "string number": ({"config": {"emb_dim": "32"}}, 'config.emb_dim is "32"'),
    "vocab 1e9": ({"config": {"vocab_size": 1e9}}, "config.vocab_size is 1000000000.0"),
    "vocab huge int": ({"config": {"vocab_size": 900_000}}, "cannot be loaded into the model its recipe describes"),
    "max_length string": ({"max_length": "120"}, 'max_length is "120"'),
    "max_length 0": ({"max_length": 0}, "max_length is 0"),
    "num_classes 1": ({"num_classes": 1}, "num_classes is 1"),
    "pooling": ({"pooling": "mean"}, 'pooling is "mean"'),
    "pad id": ({"pad_token_id": -1}, "pad_token_id is -1"),
    "qkv_bias": ({"config": {"qkv_bias": "yes"}}, "config.qkv_bias"),
    "drop_rate": ({"config": {"drop_rate": 2}}, "config.drop_rate is 2"),
    "missing key": ({"model_name": None}, "model_name is null"),
}


@pytest.mark.parametrize("case", BAD_RECIPES, ids=list(BAD_RECIPES))
def test_every_recipe_field_is_validated(tmp_path, case, tiny_classifier):
    folder = save_classifier(tiny_classifier(), tmp_path / "ckpt", max_length=20)
    change, match = BAD_RECIPES[case]
    recipe = read_json(folder / RECIPE_FILE)
    if change is None:
        recipe = None
    else:
        for key, value in change.items():
            if isinstance(value, dict):
                recipe[key] |= value
            else:
                recipe[key] = value
    write_json(folder / RECIPE_FILE, recipe)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=match):
            load_classifier(folder)
        assert tracemalloc.get_traced_memory()[1] < 50e6  # refused before allocating the model it describes
    finally:
        tracemalloc.stop()


def test_checkpoint_with_non_finite_or_integer_tensors_is_refused(tmp_path, tiny_classifier):
    model = tiny_classifier()
    with torch.no_grad():
        model.out_head.bias[0] = float("nan")
    with pytest.raises(CheckpointError, match="'out_head.bias' holds NaN"):
        load_classifier(save_classifier(model, tmp_path / "nan", max_length=20))
    tensors = dict(tiny_classifier().state_dict())
    tensors["final_norm.shift"] = torch.zeros(model.cfg["emb_dim"], dtype=torch.int32)
    folder = save_classifier(tiny_classifier(), tmp_path / "int", max_length=20)
    write_checked(folder / WEIGHTS_FILE, writer=lambda tmp: save_file(tensors, tmp))
    with pytest.raises(CheckpointError, match="'final_norm.shift' holds I32 values"):
        load_classifier(folder)
    corrupted = folder / WEIGHTS_FILE  # bytes flipped after writing: the checksum says so
    save_classifier(tiny_classifier(), folder, max_length=20)
    data = bytearray(corrupted.read_bytes())
    data[-100:] = b"\xff" * 100
    corrupted.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load_classifier(folder)



def test_checkpoint_round_trip(tmp_path, tiny_classifier):
    model = tiny_classifier(seed=3)
    save_classifier(model, tmp_path / "ckpt", max_length=120)
    loaded, recipe = load_classifier(tmp_path / "ckpt")
    x = torch.randint(0, 50257, (4, 12))
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    assert recipe["max_length"] == 120 and recipe["num_classes"] == 2 and recipe["pooling"] == "last"
    assert not list((tmp_path / "ckpt").glob("*.part"))


def test_checkpoint_of_another_configuration_is_refused(tmp_path, tiny_classifier):
    model = tiny_classifier()
    save_classifier(model, tmp_path / "ckpt", max_length=120)
    with pytest.raises(CheckpointError, match="trained from 'gpt-2x32', not 'gpt2-small \\(124M\\)'"):
        load_classifier(tmp_path / "ckpt", expected_model_name="gpt2-small (124M)")
    recipe = json.loads((tmp_path / "ckpt" / "classifier.json").read_text())
    recipe["config"]["emb_dim"] = 64
    (tmp_path / "ckpt" / "classifier.json").write_text(json.dumps(recipe))  # edited: its checksum no longer fits
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load_classifier(tmp_path / "ckpt")
    write_json(tmp_path / "ckpt" / "classifier.json", recipe)  # a consistent recipe for another shape
    with pytest.raises(CheckpointError, match="cannot be loaded into the model its recipe describes"):
        load_classifier(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="no classifier checkpoint"):
        load_classifier(tmp_path / "empty")
