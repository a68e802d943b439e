"""The whole recipe in two calls, for notebooks that need a trained classifier to start from."""
import time

import torch

from .. import settings
from ..classifier import build_spam_classifier
from ..data import CLASS_NAMES, check_settings, get_spam_dataloaders
from ..fast.engine import (
    CachedTop,
    FastEngineError,
    TrunkCache,
    check_fast_engine_applicable,
    plain_model,
    train_classifier_fast,
    trunk_cache_dir,
)
from ..fast.inference import CACHE_MODE_FOR, ReadAsTrained
from ..storage.memory import release_freed_memory
from ..storage.paths import display_path, instructor_mode, reading_files
from ..training import train_classifier_simple
from ..weights import get_device, print_test_model_banner, test_model_enabled
from .checkpoint import (
    CheckpointError,
    data_fingerprint,
    default_checkpoint_dir,
    describe,
    load_classifier,
    rebuilt_checkpoint_dir,
    save_classifier,
    stopped_early,
    training_record,
)

DEFAULT_MODEL = settings.MODEL_SIZE
#: The lecture's hyperparameters, from helpers/settings.py (eval_iter=5 reproduces the slides' accuracy table).
LECTURE_SETTINGS = settings.lecture_settings()


def active_model_name(model_size=DEFAULT_MODEL) -> str:
    """The model the notebooks use now: ``model_size``, or "test-model" with WORKBOOK_TEST_MODEL=1."""
    return "test-model" if test_model_enabled() else model_size


def _duration(seconds) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} minutes" if seconds < 7200 else f"{seconds / 3600:.1f} hours"


def projected_seconds(model, loaders, training_settings=None, engine="exact", trunk_only=False) -> float:
    """How long training ``model`` on ``loaders`` takes on this machine, projected from one step timed now.

    The step is a forward and backward pass on the training set's first messages (read from the dataset, not
    the loader, so PyTorch's random generator is not drawn from); no optimizer steps, and the gradients are put
    back as they were, so the run that follows is the one it would have been. ``engine="exact"`` adds the fast
    engine's one pass of the frozen trunk over every training message. ``trunk_only=True``: that pass alone, over
    every message of the three loaders (what ``prepare`` caches).
    """
    from ..training import calc_loss_batch
    from .performance import project_training_seconds

    training_settings = {**LECTURE_SETTINGS, **(training_settings or {})}
    train_loader, val_loader = loaders[0], loaders[1]
    model = plain_model(model)
    dataset, size = train_loader.dataset, train_loader.batch_size or 8
    inputs = torch.stack([dataset[i][0] for i in range(min(size, len(dataset)))])
    targets = torch.stack([torch.as_tensor(dataset[i][1]) for i in range(len(inputs))])
    device = model.tok_emb.weight.device
    runner, one_time = model, 0.0
    try:
        check_fast_engine_applicable(model)
        cached = engine in ("exact", "flexible")
    except FastEngineError:
        cached = False
    if cached or trunk_only:
        cache = TrunkCache(model, "exact")
        start = time.perf_counter()
        cache.add(inputs)
        per_message = (time.perf_counter() - start) / len(inputs)
        if trunk_only:
            return per_message * sum(len(loader.dataset) for loader in loaders)
        evaluated = min(len(val_loader.dataset), training_settings["eval_iter"] * size)  # the same first batches
        one_time = per_message * (len(dataset) + evaluated)
        runner = CachedTop(model, cache)
    grads = {p: p.grad for p in model.parameters()}
    was_training = model.training
    try:
        model.train()
        times = []
        for _ in range(2):  # the first warms up
            start = time.perf_counter()
            calc_loss_batch(inputs, targets, runner, device).backward()
            times.append(time.perf_counter() - start)
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            calc_loss_batch(inputs, targets, runner, device)
        eval_batch = time.perf_counter() - start
    finally:
        for param, grad in grads.items():
            param.grad = grad
        model.train(was_training)
    return project_training_seconds(times[-1], eval_batch, len(train_loader), one_time, settings=training_settings)


def announce_run(model, loaders, training_settings=None, engine="exact") -> float:
    """Before a run: its steps, and its time on this machine (:func:`projected_seconds`), in one line."""
    training_settings = {**LECTURE_SETTINGS, **(training_settings or {})}
    epochs, batches = training_settings["num_epochs"], len(loaders[0])
    seconds = projected_seconds(model, loaders, training_settings, engine)
    line = (f"Training: {epochs * batches:,} steps ({epochs} epoch(s) of {batches:,} batches of "
            f"{loaders[0].batch_size}), about {_duration(seconds)} on this machine (projected from a step timed now).")
    if seconds > 120:
        line += (" A long run: fewer epochs (NUM_EPOCHS), less data or a GPU make it shorter; the Stop button "
                 "(or Ctrl+C) interrupts it.")
    print(line)
    return seconds


def train_spam_classifier(model_size=DEFAULT_MODEL, device=None, loaders=None, settings=None, engine="exact"):
    """Load GPT-2, do the surgery and run the lecture's training; returns ``(model, history)``.

    ``engine="exact"`` trains with the fast engine's exact mode (the lecture's result, several
    times faster); ``engine="lecture"`` runs ``train_classifier_simple`` itself. It first checks the
    settings, and says how many steps the run takes and how long, measured on this machine.
    """
    check_settings()
    if engine not in ("exact", "lecture"):
        raise ValueError(f"engine must be 'exact' or 'lecture', got {engine!r}")
    settings = {**LECTURE_SETTINGS, **(settings or {})}
    device = device or get_device()
    train_loader, val_loader, _ = loaders or get_spam_dataloaders()
    model = build_spam_classifier(model_size, device)
    announce_run(model, (train_loader, val_loader), settings, engine)
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
    training = training_record(model, optimizer, train_loader, settings["num_epochs"], settings["eval_freq"],
                               settings["eval_iter"], engine=engine, seconds=time.time() - start)
    return model, {"settings": settings, "engine": engine, "seconds": training["seconds"], "curves": history,
                   "training": training}


def usable_problem(recipe, class_names=None, train_loader=None):
    """Why a checkpoint is not a finished classifier of ``class_names`` (trained on ``train_loader``'s data with
    the current settings), or None when it is one."""
    if stopped_early(recipe):
        return (f"it was trained {recipe['training']['steps_done']} of {recipe['training']['steps_planned']} "
                "steps: stopped early. Run notebook 4's training cell to the end and save again")
    if class_names is not None and tuple(recipe["class_names"]) != tuple(class_names):
        return (f"it classifies into {'/'.join(recipe['class_names'])}, but this data has "
                f"{'/'.join(class_names)}. Train one on this data (notebook 4)")
    if train_loader is not None:
        training, dataset = recipe["training"], train_loader.dataset
        now = {"training data": (training.get("train_data_sha256"), data_fingerprint(dataset)),
               "batch size": (training.get("batch_size"), train_loader.batch_size),
               "max_length": (recipe["max_length"], getattr(dataset, "max_length", recipe["max_length"])),
               "training settings": ({k: training["settings"].get(k) for k in LECTURE_SETTINGS},
                                     settings.lecture_settings())}
        changed = [name for name, (then, current) in now.items() if then != current]
        if changed:
            return (f"its {', '.join(changed)} differ from what helpers/settings.py and the data give now. "
                    "Train it again (notebook 4)")
    return None


def find_trained_classifier(model_size=DEFAULT_MODEL, device="cpu", class_names=None, log=print, train_loader=None):
    """Notebook 4's checkpoint, or else the one trained here before: the first that is complete and of
    ``class_names``; each one passed over is reported through ``log`` with the reason. None when neither is."""
    name = active_model_name(model_size)

    def usable(recipe):  # judged before the weights are read: one GPT-2 in memory at a time
        problem = usable_problem(recipe, class_names, train_loader)
        if problem:
            raise _NotUsable(problem)

    for label, folder in (("your notebook 4 checkpoint", default_checkpoint_dir(name)),
                          ("the classifier trained here before", rebuilt_checkpoint_dir(name))):
        if not folder.exists():
            continue
        try:
            model, recipe = load_classifier(folder, expected_model_name=name, device=device, check_recipe=usable)
        except CheckpointError as exc:
            log(f"Not using {label}: {exc}")
            continue
        except _NotUsable as exc:
            log(f"Not using {label} in {display_path(folder)}: {exc}.")
            continue
        return model, recipe, folder
    return None


class _NotUsable(Exception):
    """A checkpoint that loads, but is not the classifier asked for (:func:`usable_problem` says why)."""


def get_trained_classifier(model_size=DEFAULT_MODEL, device=None, retrain=False, class_names=CLASS_NAMES):
    """The fine-tuned classifier: notebook 4's checkpoint, or one trained (once, then kept) if there is none.

    Returns ``(model, recipe)`` and prints where the model came from. A checkpoint of another model, of
    other classes, or of a training stopped early is not used (it says why). In instructor mode it is the
    run prepared before class, verified against its record.
    """
    check_settings()
    device = device or get_device()
    name = active_model_name(model_size)
    if instructor_mode() and not retrain:
        from .instructor import load_prepared_run

        model, recipe = load_prepared_run("exact", model_size, device)
        if recipe["model_name"] == "test-model":
            print_test_model_banner(always=True)
        return attach_prepared_trunk_cache(model), recipe
    loaders = get_spam_dataloaders()  # what the notebooks read now: a classifier of other data is not reused
    with reading_files():  # a checkpoint folder of another account: the workbook's StorageError, naming it
        found = None if retrain else find_trained_classifier(model_size, device, class_names, train_loader=loaders[0])
    if found is not None:
        model, recipe, folder = found
        if model.is_test_model:
            print_test_model_banner(always=True)
        print(f"Loaded the classifier in {display_path(folder)}:\n  {describe(recipe)}")
        return model, recipe
    print("Training one now with the fast engine (the lecture's result; this happens once, then it is kept).")
    model, history = train_spam_classifier(model_size, device, loaders)
    folder = save_classifier(model, rebuilt_checkpoint_dir(name), max_length=loaders[0].dataset.max_length,
                             training=history["training"], saved_by="get_trained_classifier")
    del model, history  # one GPT-2 at a time: the classifier is read back from what was saved
    release_freed_memory()
    model, recipe = load_classifier(folder, expected_model_name=name, device=device)
    print(f"Saved it in {display_path(folder)}:\n  {describe(recipe)}")
    return model, recipe


_LOADED = {}  # prepared caches already opened: the trunk is the same for every classifier


def attach_prepared_trunk_cache(model):
    """Instructor mode: ``model`` reading its frozen trunk from the prepared cache, if there is one.

    Returns a stand-in for ``model`` (same results, many times faster): a :class:`helpers.ReadAsTrained`
    for a loaded classifier (read by its rule, from the cache of its mode), else a :class:`helpers.CachedTop`;
    or ``model`` itself when ``python -m helpers prepare`` built no cache for this trunk.
    """
    rule = getattr(plain_model(model), "reading_rule", None)
    cache = TrunkCache(plain_model(model), CACHE_MODE_FOR[rule["pooling"]] if rule else "exact")
    path = cache.file_for(trunk_cache_dir())
    if path not in _LOADED:
        if not cache.load(trunk_cache_dir()):
            print("Instructor mode: no prepared trunk cache for this model (run `python -m helpers prepare`); "
                  "computing everything live.")
            return model
        _LOADED[path] = cache
    print("Instructor mode: this classifier reads its frozen trunk from the prepared cache "
          "(same results, many times faster).")
    return ReadAsTrained(model, _LOADED[path]) if rule else CachedTop(model, _LOADED[path])
