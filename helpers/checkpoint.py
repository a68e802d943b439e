"""Saving and reloading the fine-tuned classifier: safetensors weights plus a small JSON recipe.

The JSON holds what is needed to rebuild the model before loading the weights (architecture,
number of classes, max length, pad id, pooling), so a checkpoint is never loaded into a model
of another shape by mistake.
"""
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from .download import atomic_write_bytes
from .classifier import unfreeze_top
from .gpt import GPTModel
from .paths import data_dir

WEIGHTS_FILE, RECIPE_FILE = "model.safetensors", "classifier.json"
RECIPE_KEYS = ("model_name", "config", "num_classes", "max_length", "pad_token_id", "pooling")


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
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".part", dir=folder)
    os.close(fd)
    try:
        save_model(model, tmp)
        os.replace(tmp, folder / WEIGHTS_FILE)
    finally:
        Path(tmp).unlink(missing_ok=True)
    atomic_write_bytes(folder / RECIPE_FILE, json.dumps(recipe, indent=2).encode())
    return folder


def read_recipe(folder) -> dict:
    folder = Path(folder)
    recipe_path, weights_path = folder / RECIPE_FILE, folder / WEIGHTS_FILE
    if not recipe_path.is_file() or not weights_path.is_file():
        raise CheckpointError(f"no classifier checkpoint in {folder}: run notebook 4 to train and save one.")
    try:
        recipe = json.loads(recipe_path.read_text())
    except ValueError as exc:
        raise CheckpointError(f"{recipe_path} is not valid JSON ({exc}); delete the folder and train again.") from exc
    missing = [key for key in RECIPE_KEYS if key not in recipe]
    if missing:
        raise CheckpointError(f"{recipe_path} lacks {missing}; delete the folder and train again.")
    return recipe


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
    model = GPTModel(recipe["config"])
    model.out_head = torch.nn.Linear(recipe["config"]["emb_dim"], recipe["num_classes"])
    try:
        missing, unexpected = load_model(model, str(folder / WEIGHTS_FILE), strict=False)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} cannot be loaded into the model its recipe describes "
                              f"({exc}); delete the folder and train again.") from exc
    if missing or unexpected:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} does not fit its recipe (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}); delete the folder and train again.")
    for param in model.parameters():  # frozen as the surgery left it: only the top trains
        param.requires_grad = False
    for param in model.out_head.parameters():
        param.requires_grad = True
    unfreeze_top(model, recipe.get("trainable_blocks", 1))
    model.is_test_model = recipe["model_name"] == "test-model"
    model.model_size = None if model.is_test_model else recipe["model_name"]
    return model.to(device).eval(), recipe
