"""Saving and reloading the fine-tuned classifier: safetensors weights plus a small JSON recipe.

The JSON holds what is needed to rebuild the model before loading the weights (architecture,
number of classes, max length, pad id, pooling), so a checkpoint is never loaded into a model
of another shape by mistake.
"""
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model

from ..classifier import unfreeze_top
from ..gpt import CONFIG_KEYS, GPTModel
from ..storage.files import CorruptFileError, read_json, verify_checked, write_checked, write_json
from ..storage.paths import data_dir

WEIGHTS_FILE, RECIPE_FILE = "model.safetensors", "classifier.json"
RECIPE_KEYS = ("model_name", "config", "num_classes", "max_length", "pad_token_id", "pooling")
#: How a classifier reads a message: "last" pads it to max_length and reads the last position (the
#: lecture's model); "last_real" reads the message's last real token (the fast engine's flexible mode).
POOLINGS = ("last", "last_real")
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or belongs to another configuration."""


def model_name(model) -> str:
    """A short name for the model's origin: the GPT-2 size, or "test-model"."""
    if getattr(model, "is_test_model", False):
        return "test-model"
    return getattr(model, "model_size", None) or f"gpt-{model.cfg['n_layers']}x{model.cfg['emb_dim']}"


def default_checkpoint_dir(name: str) -> Path:
    slug = name.replace(" ", "-").replace("(", "").replace(")", "")
    return data_dir() / "checkpoints" / slug


def save_classifier(model, folder, *, max_length, pad_token_id=50256, pooling="last", extra=None) -> Path:
    """Write ``model.safetensors`` and ``classifier.json`` to ``folder`` (each atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    recipe = {
        "model_name": model_name(model),
        "config": model.cfg,
        "num_classes": model.out_head.out_features,
        "max_length": int(max_length),
        "pad_token_id": int(pad_token_id),
        "pooling": pooling,
        "trainable_blocks": sum(any(p.requires_grad for p in block.parameters()) for block in model.trf_blocks),
        **(extra or {}),
    }
    write_checked(folder / WEIGHTS_FILE, writer=lambda tmp: save_model(model, tmp))
    write_json(folder / RECIPE_FILE, recipe)
    apply_reading_rule(model, recipe)
    return folder


def apply_reading_rule(model, recipe):
    """Let ``model`` carry its checkpoint's reading rule: ``classify_texts`` applies it (``classify_review``
    reads the position its ``max_length`` gives: pass the checkpoint's)."""
    model.reading_rule = {"max_length": recipe["max_length"], "pooling": recipe["pooling"],
                          "pad_token_id": recipe["pad_token_id"]}
    return model


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# field: (check, what it must be). Generous bounds, but a typo cannot ask for a 256 GB model.
_CONFIG_RULES = {
    "vocab_size": (lambda v: _is_int(v) and 1 <= v <= 1_000_000, "an integer from 1 to 1,000,000"),
    "context_length": (lambda v: _is_int(v) and 1 <= v <= 1_000_000, "an integer from 1 to 1,000,000"),
    "emb_dim": (lambda v: _is_int(v) and 1 <= v <= 65_536, "an integer from 1 to 65,536"),
    "n_heads": (lambda v: _is_int(v) and 1 <= v <= 1024, "an integer from 1 to 1024"),
    "n_layers": (lambda v: _is_int(v) and 1 <= v <= 1024, "an integer from 1 to 1024"),
    "drop_rate": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
                  "a number from 0 up to (not including) 1"),
    "qkv_bias": (lambda v: isinstance(v, bool), "true or false"),
}


def validate_recipe(recipe, where="the recipe") -> dict:
    """Check every field of a classifier recipe; raises :class:`CheckpointError` naming the first bad one."""
    def bad(field, value, must):
        raise CheckpointError(f"{where}: {field} is {json_repr(value)}, but it must be {must}; "
                              "delete the checkpoint folder and train again.")

    if not isinstance(recipe, dict):
        raise CheckpointError(f"{where} holds {json_repr(recipe)}, not a recipe object; delete the checkpoint "
                              "folder and train again.")
    missing = [key for key in RECIPE_KEYS if key not in recipe]
    if missing:
        raise CheckpointError(f"{where} lacks {missing}; delete the checkpoint folder and train again.")
    if not isinstance(recipe["model_name"], str) or not recipe["model_name"]:
        bad("model_name", recipe["model_name"], "a model's name")
    config = recipe["config"]
    if not isinstance(config, dict):
        bad("config", config, "an object with " + ", ".join(CONFIG_KEYS))
    for key, (ok, must) in _CONFIG_RULES.items():
        if key not in config:
            bad(f"config.{key}", None, must)
        if not ok(config[key]):
            bad(f"config.{key}", config[key], must)
    if config["emb_dim"] % config["n_heads"]:
        bad("config.n_heads", config["n_heads"], f"a divisor of emb_dim ({config['emb_dim']})")
    if not (_is_int(recipe["num_classes"]) and 2 <= recipe["num_classes"] <= 10_000):
        bad("num_classes", recipe["num_classes"], "an integer from 2 to 10,000")
    if not (_is_int(recipe["max_length"]) and 1 <= recipe["max_length"] <= 1_000_000):
        bad("max_length", recipe["max_length"], "a number of tokens from 1 to 1,000,000")
    if not (_is_int(recipe["pad_token_id"]) and 0 <= recipe["pad_token_id"] < config["vocab_size"]):
        bad("pad_token_id", recipe["pad_token_id"], f"a token id from 0 to {config['vocab_size'] - 1}")
    if recipe["pooling"] not in POOLINGS:
        bad("pooling", recipe["pooling"], " or ".join(map(repr, POOLINGS)))
    blocks = recipe.get("trainable_blocks", 1)
    if not (_is_int(blocks) and 0 <= blocks <= config["n_layers"]):
        bad("trainable_blocks", blocks, f"an integer from 0 to n_layers ({config['n_layers']})")
    return recipe


def json_repr(value):
    import json

    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_recipe(folder) -> dict:
    folder = Path(folder)
    recipe_path, weights_path = folder / RECIPE_FILE, folder / WEIGHTS_FILE
    if not recipe_path.is_file() or not weights_path.is_file():
        raise CheckpointError(f"no classifier checkpoint in {folder}: run notebook 4 to train and save one.")
    try:
        recipe = read_json(recipe_path, expect=None)
    except CorruptFileError as exc:
        raise CheckpointError(f"{exc}; delete the folder and train again.") from exc
    return validate_recipe(recipe, where=str(recipe_path))


def _check_weights_file(path, model):
    """Before allocating anything: the file's tensors have the names, shapes and float types the model needs."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = {name: f.get_slice(name) for name in f.keys()}
            shapes = {name: (tuple(s.get_shape()), s.get_dtype()) for name, s in header.items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); delete the folder and train "
                              "again.") from exc
    expected = {name: tuple(p.shape) for name, p in model.state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit its recipe (missing {missing[:3]}, unexpected {unexpected[:3]}); "
                              "delete the folder and train again.")
    for name, shape in expected.items():
        if shapes[name][0] != shape:
            raise CheckpointError(f"{path} cannot be loaded into the model its recipe describes: tensor {name!r} "
                                  f"has shape {list(shapes[name][0])}, the recipe needs {list(shape)}; delete the "
                                  "folder and train again.")
        if shapes[name][1] not in FLOAT_DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} holds {shapes[name][1]} values, not floating-point "
                                  "weights; delete the folder and train again.")


def _check_finite(model, path):
    for name, tensor in model.state_dict().items():
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: tensor {name!r} holds NaN or infinite values (corrupted, or a training "
                                  "run that diverged); delete the folder and train again.")


def load_classifier(folder, expected_model_name=None, device="cpu"):
    """Rebuild the classifier saved in ``folder``; returns ``(model, recipe)``.

    With ``expected_model_name`` (e.g. "gpt2-small (124M)" or "test-model"), a checkpoint of any
    other model is refused with a message that says which one it holds.
    """
    folder = Path(folder)
    recipe = read_recipe(folder)
    if expected_model_name is not None and recipe["model_name"] != expected_model_name:
        raise CheckpointError(f"the checkpoint in {folder} was trained from {recipe['model_name']!r}, not "
                              f"{expected_model_name!r}; train a new one (notebook 4) or choose that model.")
    weights = folder / WEIGHTS_FILE
    try:
        verify_checked(weights)
    except CorruptFileError as exc:
        raise CheckpointError(f"{exc}; delete the folder and train again.") from exc
    with torch.device("meta"):  # shapes only: nothing is allocated before the file is checked
        skeleton = _build(recipe)
    _check_weights_file(weights, skeleton)
    model = _build(recipe)
    try:
        missing, unexpected = load_model(model, str(weights), strict=False)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{weights} cannot be loaded into the model its recipe describes "
                              f"({exc}); delete the folder and train again.") from exc
    if missing or unexpected:  # safetensors returns sets (or lists in older versions)
        raise CheckpointError(f"{weights} does not fit its recipe (missing {sorted(missing)[:3]}, "
                              f"unexpected {sorted(unexpected)[:3]}); delete the folder and train again.")
    _check_finite(model, weights)
    for param in model.parameters():  # frozen as the surgery left it: only the top trains
        param.requires_grad = False
    for param in model.out_head.parameters():
        param.requires_grad = True
    unfreeze_top(model, recipe.get("trainable_blocks", 1))
    model.is_test_model = recipe["model_name"] == "test-model"
    model.model_size = None if model.is_test_model else recipe["model_name"]
    apply_reading_rule(model, recipe)
    return model.to(device).eval(), recipe


def _build(recipe):
    model = GPTModel(recipe["config"])
    model.out_head = torch.nn.Linear(recipe["config"]["emb_dim"], recipe["num_classes"])
    return model
