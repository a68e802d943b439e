"""The whole recipe in two calls, for notebooks that need a trained classifier to start from."""
import time

import torch

from ..classifier import build_spam_classifier
from ..data import get_spam_dataloaders
from ..fast.engine import CachedTop, TrunkCache, train_classifier_fast, trunk_cache_dir
from ..storage.paths import display_path, instructor_mode
from ..training import train_classifier_simple
from ..weights import get_device, print_test_model_banner, test_model_enabled
from .checkpoint import CheckpointError, default_checkpoint_dir, load_classifier, save_classifier

DEFAULT_MODEL = "gpt2-small (124M)"
#: The lecture's hyperparameters (eval_iter=5 reproduces the slides' accuracy table: 40 messages).
LECTURE_SETTINGS = {"num_epochs": 5, "lr": 5e-5, "weight_decay": 0.1, "eval_freq": 50, "eval_iter": 5}


def active_model_name(model_size=DEFAULT_MODEL) -> str:
    """The model the notebooks use now: ``model_size``, or "test-model" with WORKBOOK_TEST_MODEL=1."""
    return "test-model" if test_model_enabled() else model_size


def train_spam_classifier(model_size=DEFAULT_MODEL, device=None, loaders=None, settings=None, engine="exact"):
    """Load GPT-2, do the surgery and run the lecture's training; returns ``(model, history)``.

    ``engine="exact"`` trains with the fast engine's exact mode (the lecture's result, several
    times faster); ``engine="lecture"`` runs ``train_classifier_simple`` itself.
    """
    settings = {**LECTURE_SETTINGS, **(settings or {})}
    device = device or get_device()
    train_loader, val_loader, _ = loaders or get_spam_dataloaders()
    model = build_spam_classifier(model_size, device)
    torch.manual_seed(123)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    start = time.time()
    arguments = dict(num_epochs=settings["num_epochs"], eval_freq=settings["eval_freq"],
                     eval_iter=settings["eval_iter"])
    if engine == "exact":
        history = train_classifier_fast(model, train_loader, val_loader, optimizer, device, mode="exact",
                                        fallback=True, **arguments)
    elif engine == "lecture":
        history = train_classifier_simple(model, train_loader, val_loader, optimizer, device, **arguments)
    else:
        raise ValueError(f"engine must be 'exact' or 'lecture', got {engine!r}")
    return model, {"settings": settings, "engine": engine, "seconds": time.time() - start, "curves": history}


def get_trained_classifier(model_size=DEFAULT_MODEL, device=None, retrain=False):
    """The fine-tuned classifier from notebook 4's checkpoint, training (and caching) one if there is none.

    Returns ``(model, recipe)``. A checkpoint of another model (e.g. the test model's when real
    weights are in use) is not reused.
    """
    device = device or get_device()
    name = active_model_name(model_size)
    folder = default_checkpoint_dir(name)
    if not retrain:
        try:
            model, recipe = load_classifier(folder, expected_model_name=name, device=device)
            if model.is_test_model:
                print_test_model_banner()
            print(f"Loaded the fine-tuned classifier from {display_path(folder)}.")
            if instructor_mode():
                model = attach_prepared_trunk_cache(model)
            return model, recipe
        except CheckpointError as exc:
            print(f"{exc}\nTraining one now with the fast engine (the lecture's result; this happens once, "
                  "then it is cached).")
    loaders = get_spam_dataloaders()
    model, history = train_spam_classifier(model_size, device, loaders)
    save_classifier(model, folder, max_length=loaders[0].dataset.max_length,
                    extra={"training": {k: history[k] for k in ("settings", "engine", "seconds")}})
    return load_classifier(folder, expected_model_name=name, device=device)


_LOADED = {}  # prepared cache files already in memory: the trunk is the same for every classifier


def attach_prepared_trunk_cache(model):
    """Instructor mode: ``model`` reading its frozen trunk from the prepared cache, if there is one.

    Returns a :class:`helpers.CachedTop` standing in for ``model`` (same results, many times faster), or
    ``model`` itself when ``python -m helpers prepare`` built no cache for this trunk.
    """
    cache = TrunkCache(model, "exact")
    path = cache.file_for(trunk_cache_dir())
    if path not in _LOADED:
        if not cache.load(trunk_cache_dir()):
            print("Instructor mode: no prepared trunk cache for this model (run `python -m helpers prepare`); "
                  "computing everything live.")
            return model
        _LOADED[path] = cache
    print("Instructor mode: this classifier reads its frozen trunk from the prepared cache "
          "(same results, many times faster).")
    return CachedTop(model, _LOADED[path])
