"""Saving and reloading the fine-tuned classifier: one safetensors file that carries its own recipe.

A checkpoint is **one file**, ``classifier.safetensors`` (with its checksum beside it, ``….sha256``: copy both):
the weights, and in its metadata the recipe
(what rebuilds the model: architecture, classes, reading rule) and the provenance (what produced it:
the engine, steps done out of steps planned, the trunk's fingerprint). The file is written atomically
with its checksum, so a reader sees either the previous save or the new one, never a mix, and a write
stopped half way is refused, never trusted.

A loaded classifier comes back as a :class:`~helpers.fast.inference.ReadAsTrained`: every reader (the
lecture's accuracy and loss, ``predict_loader``, ``classify_review``, the widget) reads it as it was trained.
"""
import json
import re
import time
from pathlib import Path

import torch
from safetensors.torch import save_model

from ..classifier import check_classifier, unfreeze_top
from ..data import CLASS_NAMES
from ..fast.engine import plain_model, trunk_fingerprint
from ..fast.inference import ReadAsTrained
from ..gpt import CONFIG_KEYS, GPTModel, get_model_config, model_configs
from ..storage.files import (CorruptFileError, checksum_path, open_checked, read_exactly_at, read_safetensors_header,
                             write_checked)
from ..storage.paths import StorageError, data_dir, display_path
from ..weights import TEST_MODEL_CONFIG

CHECKPOINT_FILE = "classifier.safetensors"
METADATA_KEY = "workbook.classifier"
FORMAT = 2
LEGACY_FILES = ("model.safetensors", "classifier.json")  # format 1: weights and recipe in two files
RECIPE_KEYS = ("format", "model_name", "config", "num_classes", "class_names", "max_length", "pad_token_id",
               "pooling", "trainable_blocks", "training", "trunk_fingerprint")
#: How a classifier reads a message: "last" pads it to max_length and reads the last position (the
#: lecture's model); "last_real" reads the message's last real token (the fast engine's flexible mode).
POOLINGS = ("last", "last_real")
#: What can train a classifier: the lecture's loop, or the fast engine in one of its modes.
ENGINES = {"lecture": "the lecture loop (train_classifier_simple)", "exact": "the fast engine, exact mode",
           "flexible": "the fast engine, flexible mode", "flexible-bf16": "the fast engine, flexible mode in bf16"}
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
MAX_HEADER_BYTES = 100_000_000


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or not the classifier that was asked for."""


#: What a checkpoint's text (class names, who saved it) may not put on a terminal as it is: control characters
#: (escape sequences that clear or recolour the screen, tabs and line breaks that split a record), line and
#: paragraph separators, and the bidirectional overrides that reorder what is shown. Each is written as an escape.
CONTROL_ESCAPES = {code: ({9: "\\t", 10: "\\n", 13: "\\r"}.get(code) or
                          (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"))
                   for code in [*range(0x20), *range(0x7f, 0xa0), 0x2028, 0x2029, *range(0x202a, 0x202f),
                                *range(0x2066, 0x206a)]}


def plain_text(text) -> str:
    """``text`` as plain text for a terminal: every control character written as an escape (``\\x1b``, ``\\t`` …)."""
    return str(text).translate(CONTROL_ESCAPES)


def model_name(model) -> str:
    """A short name for the model's origin: the GPT-2 size, or "test-model"."""
    if getattr(model, "is_test_model", False):
        return "test-model"
    return getattr(model, "model_size", None) or f"gpt-{model.cfg['n_layers']}x{model.cfg['emb_dim']}"


def _slug(name):
    return name.replace(" ", "-").replace("(", "").replace(")", "")


def default_checkpoint_dir(name: str) -> Path:
    """Where notebook 4 saves *your* classifier: ``data/checkpoints/<model>``."""
    return data_dir() / "checkpoints" / _slug(name)


def rebuilt_checkpoint_dir(name: str) -> Path:
    """Where :func:`helpers.get_trained_classifier` keeps a classifier it had to train itself."""
    return data_dir() / "checkpoints" / f"{_slug(name)}-rebuilt"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------- provenance
def optimizer_steps(optimizer) -> int:
    """How many steps ``optimizer`` has taken, from its own state (Adam, AdamW and their kin count them)."""
    if not any(isinstance(optimizer, kind) for kind in _COUNTING):
        raise ValueError(f"{type(optimizer).__name__} does not count its steps, so training_record cannot know how "
                         "far training got: pass steps_done=... (the number of optimizer.step() calls)")
    steps = [state["step"] for state in optimizer.state.values() if "step" in state]
    return int(max(steps, default=0))


_COUNTING = tuple(getattr(torch.optim, name) for name in ("Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Adagrad")
                  if hasattr(torch.optim, name))


def data_fingerprint(dataset) -> str:
    """SHA-256 of a dataset's messages and labels (a ``SpamDataset``'s ``data``), to tell one split from another."""
    import hashlib

    frame = getattr(dataset, "data", None)
    if frame is None:
        return ""
    return hashlib.sha256(frame.to_csv(index=False).encode("utf-8")).hexdigest()


def training_record(model, optimizer, train_loader, num_epochs, eval_freq, eval_iter, engine="lecture",
                    seconds=None, steps_done=None) -> dict:
    """What trained ``model``, for :func:`save_classifier`: the engine, its settings, and the steps done.

    The steps done are counted by ``optimizer`` itself, so a run stopped early (the Stop button) is
    recorded as such: "trained 2 of 650 steps".
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be the torch.optim optimizer that trained the model, got "
                        f"{type(optimizer).__name__}")
    for name, value in (("num_epochs", num_epochs), ("eval_freq", eval_freq), ("eval_iter", eval_iter)):
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}")
    replayed = getattr(plain_model(model), "replayed_run", None)
    if replayed and steps_done is None and optimizer_steps(optimizer) == 0:  # instructor mode replayed it:
        return dict(plain_model(model).provenance["training"])  # what trained it is the prepared run
    own = {id(p) for p in plain_model(model).parameters()}
    if any(id(p) not in own for group in optimizer.param_groups for p in group["params"]):
        raise ValueError("this optimizer does not train this model: was `model` built again after training? "
                         "Save the model the optimizer trained, or train again.")
    group = optimizer.param_groups[0]
    settings = {"num_epochs": num_epochs, "lr": float(group["lr"]), "weight_decay": float(group.get("weight_decay", 0)),
                "eval_freq": eval_freq, "eval_iter": eval_iter}
    return {"engine": engine, "settings": settings,
            "steps_done": optimizer_steps(optimizer) if steps_done is None else steps_done,
            "steps_planned": num_epochs * len(train_loader), "batch_size": getattr(train_loader, "batch_size", None),
            "train_data_sha256": data_fingerprint(getattr(train_loader, "dataset", None)),
            "seconds": None if seconds is None else round(float(seconds), 1)}


def stopped_early(recipe) -> bool:
    return recipe["training"]["steps_done"] < recipe["training"]["steps_planned"]


def describe(recipe) -> str:
    """Where a classifier came from, in one line: "test-model, classes ham/spam; trained with … for 650 of 650 steps; …"."""
    training = recipe["training"]
    steps = f"{training['steps_done']} of {training['steps_planned']} steps"
    if stopped_early(recipe):
        steps += ": stopped early"
    if recipe["pooling"] == "last":
        reads = f"reads position {recipe['max_length'] - 1} of messages padded to {recipe['max_length']} tokens"
    else:
        reads = f"reads each message's last real token (at most {recipe['max_length']} tokens)"
    saved = f"; saved by {plain_text(recipe['saved_by'])}" if recipe.get("saved_by") else ""
    saved += f" on {plain_text(recipe['saved_at'])}" if recipe.get("saved_at") else ""
    name = plain_text(recipe["model_name"])
    if name == "test-model":
        name += " (the TEST MODEL: random weights, not GPT-2)"
    classes = "/".join(plain_text(name) for name in recipe["class_names"])
    return f"{name}, classes {classes}; trained with {ENGINES[training['engine']]} for {steps}; {reads}{saved}"


# --------------------------------------------------------------------------- saving
def save_classifier(model, folder, *, max_length, training, class_names=None, pad_token_id=50256, pooling="last",
                    saved_by=None) -> Path:
    """Write ``model`` with its recipe and provenance to ``folder/classifier.safetensors``, atomically.

    ``training`` says what trained it (see :func:`training_record`); ``class_names`` defaults to
    ("ham", "spam") for two classes. Returns the folder.
    """
    model = plain_model(model)
    check_classifier(model)
    num_classes = model.out_head.out_features
    if class_names is None:
        if num_classes != len(CLASS_NAMES):
            raise ValueError(f"this classifier has {num_classes} classes: pass class_names=[...] with their names")
        class_names = CLASS_NAMES
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    recipe = {
        "format": FORMAT,
        "model_name": model_name(model),
        "config": model.cfg,
        "num_classes": num_classes,
        "class_names": list(class_names),
        "max_length": max_length,
        "pad_token_id": pad_token_id,
        "pooling": pooling,
        "trainable_blocks": sum(any(p.requires_grad for p in block.parameters()) for block in model.trf_blocks),
        "training": training,
        "trunk_fingerprint": trunk_fingerprint(model),
        "saved_by": saved_by,
        "saved_at": time.strftime("%Y-%m-%d %H:%M"),
    }
    try:  # the same rules a reader applies, so nothing is saved that could not be read back
        validate_recipe(recipe, where="save_classifier", advice="pass a valid value for it")
        with torch.device("meta"):
            skeleton = _build(recipe)
        _check_shapes("save_classifier: this model", {name: (tuple(t.shape), "F32") for name, t in
                                                      model.state_dict().items()}, skeleton)
    except CheckpointError as exc:
        adapters = [name for name in model.state_dict() if ".lora." in name]
        if adapters:
            raise ValueError(f"save_classifier: this model has {len(adapters)} LoRA adapter tensors (e.g. "
                             f"{adapters[0]!r}) that are not merged into its weights, so load_classifier could not "
                             "rebuild it. Merge them first: merge_lora(model), then save (the merged model computes "
                             "the same outputs).") from None
        raise ValueError(str(exc)) from None
    folder = Path(folder)
    metadata = {METADATA_KEY: json.dumps(recipe)}
    write_checked(folder / CHECKPOINT_FILE, writer=lambda tmp: save_model(model, tmp, metadata=metadata))
    _clean_up(folder)
    attach_recipe(model, recipe)
    return folder


def _clean_up(folder):
    """Remove a format-1 checkpoint this save replaces (old temporaries: see ``write_atomically``)."""
    try:
        for name in LEGACY_FILES:
            for path in (folder / name, folder / f"{name}.sha256"):
                path.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot tidy {display_path(folder)}: {exc.strerror or exc}") from exc


def attach_recipe(model, recipe):
    """The loaded or saved model carries its recipe: its reading rule, classes and provenance."""
    model.reading_rule = {"max_length": recipe["max_length"], "pooling": recipe["pooling"],
                          "pad_token_id": recipe["pad_token_id"]}
    model.class_names = tuple(recipe["class_names"])
    model.provenance = recipe
    return model


# --------------------------------------------------------------------------- validating
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


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate_recipe(recipe, where="the recipe", advice="train and save the classifier again (notebook 4)") -> dict:
    """Check every field of a classifier recipe; raises :class:`CheckpointError` naming the first bad one."""
    def bad(field, value, must):
        raise CheckpointError(f"{where}: {field} is {json_repr(value)}, but it must be {must}; {advice}.")

    if not isinstance(recipe, dict):
        raise CheckpointError(f"{where} holds {json_repr(recipe)}, not a recipe object; {advice}.")
    missing = [key for key in RECIPE_KEYS if key not in recipe]
    if missing:
        raise CheckpointError(f"{where} lacks {missing}; {advice}.")
    if recipe["format"] != FORMAT:
        bad("format", recipe["format"], f"{FORMAT} (this workbook's checkpoint format)")
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
    named = _named_config(recipe["model_name"])
    if named is not None:  # a checkpoint is what it says: the test model's, or that GPT-2 size's architecture
        differs = [key for key in CONFIG_KEYS if key != "drop_rate" and config[key] != named[key]]
        if differs:
            key = differs[0]
            bad(f"config.{key}", config[key], f"{json_repr(named[key])}, as in {recipe['model_name']!r}, the model "
                                              "its model_name says it is (the name and the weights disagree)")
    if not (_is_int(recipe["num_classes"]) and 2 <= recipe["num_classes"] <= 10_000):
        bad("num_classes", recipe["num_classes"], "an integer from 2 to 10,000")
    names = recipe["class_names"]
    if (not isinstance(names, list) or len(names) != recipe["num_classes"] or len(set(map(str, names))) != len(names)
            or not all(isinstance(n, str) and n.strip() for n in names)):
        bad("class_names", names, f"a list of {recipe['num_classes']} different, non-empty names")
    if not (_is_int(recipe["max_length"]) and 1 <= recipe["max_length"] <= config["context_length"]):
        bad("max_length", recipe["max_length"], f"a number of tokens from 1 to the context length "
                                                f"({config['context_length']})")
    if not (_is_int(recipe["pad_token_id"]) and 0 <= recipe["pad_token_id"] < config["vocab_size"]):
        bad("pad_token_id", recipe["pad_token_id"], f"a token id from 0 to {config['vocab_size'] - 1}")
    if recipe["pooling"] not in POOLINGS:
        bad("pooling", recipe["pooling"], " or ".join(map(repr, POOLINGS)))
    blocks = recipe["trainable_blocks"]
    if not (_is_int(blocks) and 0 <= blocks <= config["n_layers"]):
        bad("trainable_blocks", blocks, f"an integer from 0 to n_layers ({config['n_layers']})")
    _validate_training(recipe["training"], bad)
    fingerprint = recipe["trunk_fingerprint"]
    if not (isinstance(fingerprint, str) and len(fingerprint) == 64 and set(fingerprint) <= set("0123456789abcdef")):
        bad("trunk_fingerprint", fingerprint, "a SHA-256 in hex")
    for key in ("saved_by", "saved_at"):
        if recipe.get(key) is not None and not isinstance(recipe[key], str):
            bad(key, recipe[key], "text")
    return recipe


def _named_config(name):
    """The architecture a model name stands for: the test model's, a GPT-2 size's, or None (another model)."""
    if name == "test-model":
        return TEST_MODEL_CONFIG
    return get_model_config(name) if name in model_configs else None


def _validate_training(training, bad):
    if not isinstance(training, dict):
        bad("training", training, "an object saying what trained the classifier (see training_record)")
    if training.get("engine") not in ENGINES:
        bad("training.engine", training.get("engine"), " or ".join(map(repr, ENGINES)))
    planned, done = training.get("steps_planned"), training.get("steps_done")
    if not (_is_int(planned) and planned >= 1):
        bad("training.steps_planned", planned, "a whole number ≥ 1")
    if not (_is_int(done) and 0 <= done <= planned):
        bad("training.steps_done", done, f"a whole number from 0 to steps_planned ({planned})")
    settings = training.get("settings")
    if not isinstance(settings, dict):
        bad("training.settings", settings, "an object with num_epochs, lr, weight_decay, eval_freq, eval_iter")
    for key in ("num_epochs", "eval_freq", "eval_iter"):
        if not (_is_int(settings.get(key)) and settings[key] >= 1):
            bad(f"training.settings.{key}", settings.get(key), "a whole number ≥ 1")
    for key in ("lr", "weight_decay"):
        if not (_number(settings.get(key)) and settings[key] >= 0):
            bad(f"training.settings.{key}", settings.get(key), "a number ≥ 0")
    if training.get("batch_size") is not None and not (_is_int(training["batch_size"]) and training["batch_size"] >= 1):
        bad("training.batch_size", training["batch_size"], "a whole number ≥ 1")
    if not isinstance(training.get("train_data_sha256", ""), str):
        bad("training.train_data_sha256", training["train_data_sha256"], "a SHA-256 in hex")
    if training.get("seconds") is not None and not (_number(training["seconds"]) and training["seconds"] >= 0):
        bad("training.seconds", training["seconds"], "a number of seconds, or null")


def json_repr(value):
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- reading
def _missing(folder):
    if any((folder / name).is_file() for name in LEGACY_FILES):
        return CheckpointError(f"{display_path(folder)} holds a checkpoint in an older format (model.safetensors "
                               "with classifier.json), which records no provenance: train and save again "
                               "(notebook 4).")
    return CheckpointError(f"no classifier checkpoint in {display_path(folder)}: run notebook 4 to train and "
                           "save one.")


def checkpoint_folder(path) -> Path:
    """The folder of a checkpoint, given the folder or its ``classifier.safetensors`` itself."""
    path = Path(path)
    if path.name == CHECKPOINT_FILE and path.is_file():
        return path.parent
    if path.is_file():
        raise CheckpointError(f"{display_path(path)} is a file, not a classifier checkpoint: pass the folder that "
                              f"holds {CHECKPOINT_FILE} (or that file itself).")
    return path


#: The checkpoint's float types, as safetensors names them.
TORCH_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}


def _read_file(folder):
    """The checkpoint, checked against its checksum: ``(the open file, its recipe, its tensors)``, the tensors as
    ``(header entries, {name: (shape, dtype)}, where the data starts, the file's length)``. The weights are then
    read from this open file, one tensor at a time: the very bytes that were checked (a checkpoint saved over it
    meanwhile is another file), and never the whole 500 MB in memory beside the model. The caller closes it."""
    folder = checkpoint_folder(folder)
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        raise _missing(folder)
    try:
        file = open_checked(path)  # checked in one pass; the weights are read from it later, one tensor at a time
    except CorruptFileError as exc:
        if not checksum_path(path).is_file():
            raise CheckpointError(f"{display_path(path)} has no checksum file beside it ({checksum_path(path).name}): "
                                  "a copied checkpoint needs both files, or train and save the classifier again.") from exc
        raise CheckpointError(f"{exc}; train and save the classifier again.") from exc
    except OSError as exc:
        raise CheckpointError(f"cannot read {display_path(path)}: {exc.strerror or exc}. Check its permissions, or "
                              "train and save the classifier again.") from exc
    try:
        try:
            header, start, length = read_safetensors_header(file, MAX_HEADER_BYTES)
            recipe = json.loads(header.get("__metadata__", {})[METADATA_KEY])
            entries = {name: info for name, info in header.items() if name != "__metadata__"}
            shapes = {name: (tuple(info["shape"]), info["dtype"]) for name, info in entries.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{display_path(path)} is not a classifier checkpoint of this workbook ({exc!r}); "
                                  "train and save the classifier again.") from exc
        return file, validate_recipe(recipe, where=display_path(path)), (entries, shapes, start, length)
    except BaseException:
        file.close()
        raise


def _read_weights(file, tensors, model):
    """Copy the checkpoint's tensors into ``model`` one at a time, from the checked open ``file``."""
    entries, _, start, length = tensors
    state = model.state_dict()
    with torch.no_grad():
        for name, info in entries.items():
            begin, end = info["data_offsets"]
            target = state[name]
            dtype = TORCH_DTYPES[info["dtype"]]
            size = target.numel() * dtype.itemsize
            if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin and end - begin == size
                    and start + end <= length):
                raise ValueError(f"tensor {name!r}'s bytes lie outside the file or do not fit its shape")
            raw = torch.empty(size, dtype=torch.uint8)
            try:
                read_exactly_at(file, start + begin, raw.numpy())
            except ValueError:
                raise ValueError(f"tensor {name!r} is cut off") from None
            target.copy_(raw.view(dtype).view(target.shape))
            del raw


def read_recipe(folder) -> dict:
    """The recipe and provenance of the checkpoint in ``folder``, checked (the weights are not loaded)."""
    file, recipe, _ = _read_file(Path(folder))
    file.close()
    return recipe


def _check_shapes(path, shapes, model):
    """Before allocating anything: the file's tensors have the names, shapes and float types the model needs."""
    expected = {name: tuple(p.shape) for name, p in model.state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit its recipe (missing {missing[:3]}, unexpected {unexpected[:3]}); "
                              "train and save the classifier again.")
    for name, shape in expected.items():
        if shapes[name][0] != shape:
            raise CheckpointError(f"{path} cannot be loaded into the model its recipe describes: tensor {name!r} "
                                  f"has shape {list(shapes[name][0])}, the recipe needs {list(shape)}; train and "
                                  "save the classifier again.")
        if shapes[name][1] not in FLOAT_DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} holds {shapes[name][1]} values, not floating-point "
                                  "weights; train and save the classifier again.")


def load_classifier(folder, expected_model_name=None, device="cpu", check_recipe=None, into=None):
    """Rebuild the classifier saved in ``folder`` (or given as its ``classifier.safetensors``); returns
    ``(model, recipe)``.

    ``model`` is a :class:`~helpers.fast.inference.ReadAsTrained`: it reads every batch by the checkpoint's
    reading rule. With ``expected_model_name`` (e.g. "gpt2-small (124M)" or "test-model"), a checkpoint of
    any other model is refused with a message that says which one it holds. ``check_recipe(recipe)``, if given,
    runs before any weight is read (it may raise, to refuse the checkpoint without loading its 500 MB).

    ``into``: a classifier with the checkpoint's tensor names and shapes to read the weights into, in place of
    building another (one GPT-2 in memory, not two); it keeps its device and its train/eval mode. Nothing in it
    changes before the file, its recipe and its shapes are checked; a check after that (NaN values, the trunk's
    provenance) raises with ``into`` holding the file's weights.
    """
    folder = checkpoint_folder(folder)
    file, recipe, tensors = _read_file(folder)
    with file:
        where = display_path(folder / CHECKPOINT_FILE)
        if expected_model_name is not None and recipe["model_name"] != expected_model_name:
            raise CheckpointError(f"the checkpoint in {display_path(folder)} was trained from {recipe['model_name']!r}, "
                                  f"not {expected_model_name!r}; train a new one (notebook 4) or choose that model.")
        if check_recipe is not None:
            check_recipe(recipe)
        with torch.device("meta"):  # shapes only: nothing is allocated before the file is checked
            skeleton = _build(recipe)
        _check_shapes(where, tensors[1], skeleton)
        if into is not None:
            _check_shapes(where, tensors[1], into)
        model = _build(recipe) if into is None else into
        try:
            _read_weights(file, tensors, model)
        except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
            raise CheckpointError(f"{where} cannot be loaded into the model its recipe describes ({exc}); train and "
                                  "save the classifier again.") from exc
    for name, tensor in model.state_dict().items():
        if not all(torch.isfinite(part).all() for part in tensor.reshape(-1).split(1 << 22)):  # in parts: little memory
            raise CheckpointError(f"{where}: tensor {name!r} holds NaN or infinite values (corrupted, or a training "
                                  "run that diverged); train and save the classifier again.")
    if trunk_fingerprint(model) != recipe["trunk_fingerprint"]:
        raise CheckpointError(f"{where}: its trunk weights are not the ones its provenance records; train and save "
                              "the classifier again.")
    for param in model.parameters():  # frozen as the surgery left it: only the top trains
        param.requires_grad = False
    for param in model.out_head.parameters():
        param.requires_grad = True
    unfreeze_top(model, recipe["trainable_blocks"])
    model.is_test_model = recipe["model_name"] == "test-model"
    model.model_size = None if model.is_test_model else recipe["model_name"]
    attach_recipe(model, recipe)
    return ReadAsTrained(model if into is not None else model.to(device).eval()), recipe


def _build(recipe):
    model = GPTModel(recipe["config"])
    model.out_head = torch.nn.Linear(recipe["config"]["emb_dim"], recipe["num_classes"])
    return model
