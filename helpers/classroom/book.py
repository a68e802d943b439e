"""The book's own chapter 6 run: what it prints, and the student's numbers beside it.

Given OpenAI's GPT-2 small weights, the notebooks see the same messages in the same order as the
book's run, because they seed PyTorch's global generator where the book does (see
:func:`helpers.create_dataloaders`). So the numbers below are what a student should get, up to
float rounding on other hardware (the book ran on Apple's MPS).
"""
import torch

from .. import settings
from ..weights import test_model_enabled
from .pipeline import DEFAULT_MODEL, LECTURE_SETTINGS

BOOK_SEED = 123
BOOK_STEPS, BOOK_MAX_LENGTH = 650, 120  # 5 epochs of 130 batches of 8, every message padded to 120 tokens
BOOK_DEVICE = 'an Apple "mps" GPU, torch 2.9.0'

#: Accuracy (%) and loss printed by the book before training (10 batches / 5 batches) and after it (full sets).
BOOK_METRICS = {
    "initial": {"train_accuracy": 46.25, "val_accuracy": 45.00, "test_accuracy": 48.75,
                "train_loss": 2.453, "val_loss": 2.583, "test_loss": 2.322},
    "final": {"train_accuracy": 97.21, "val_accuracy": 97.32, "test_accuracy": 95.67},
}

#: The book's training log: losses every 50 steps, accuracy (%) after each epoch.
BOOK_LOG = {
    "steps": [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 600],
    "train_losses": [2.153, 0.617, 0.523, 0.561, 0.419, 0.409, 0.333, 0.340, 0.136, 0.153, 0.222, 0.207, 0.083],
    "val_losses": [2.392, 0.637, 0.557, 0.489, 0.397, 0.353, 0.320, 0.306, 0.200, 0.132, 0.137, 0.143, 0.074],
    "train_accs": [70.00, 82.50, 90.00, 100.00, 100.00],
    "val_accs": [72.50, 85.00, 90.00, 97.50, 97.50],
    "minutes": 1.07,
}

_ROW_NAMES = {"train_accuracy": "training accuracy (%)", "val_accuracy": "validation accuracy (%)",
              "test_accuracy": "test accuracy (%)", "train_loss": "training loss", "val_loss": "validation loss",
              "test_loss": "test loss"}


def book_training_log(steps_per_epoch=130) -> str:
    """The book's training log, line by line as ``train_classifier_simple`` prints it."""
    lines, epoch = [], 1
    for step, train_loss, val_loss in zip(BOOK_LOG["steps"], BOOK_LOG["train_losses"], BOOK_LOG["val_losses"]):
        while step >= epoch * steps_per_epoch:
            lines.append(_accuracy_line(BOOK_LOG["train_accs"][epoch - 1], BOOK_LOG["val_accs"][epoch - 1]))
            epoch += 1
        lines.append(f"Ep {epoch} (Step {step:06d}): Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")
    lines.append(_accuracy_line(BOOK_LOG["train_accs"][-1], BOOK_LOG["val_accs"][-1]))
    lines.append(f"Training completed in {BOOK_LOG['minutes']:.2f} minutes.")
    return "\n".join(lines)


def _accuracy_line(train, val):
    return f"Training accuracy: {train:.2f}% | Validation accuracy: {val:.2f}%"


def _comparable(model_size, trained=None) -> bool:
    """Say why a comparison would mean nothing, if it would; True when the book's numbers apply.

    ``trained``: the recipe of a loaded classifier (its provenance says how it was trained)."""
    if trained is not None:
        if trained["model_name"] != settings.BOOK["MODEL_SIZE"]:
            which = ("the tiny random TEST MODEL" if trained["model_name"] == "test-model"
                     else repr(trained["model_name"]))
            print(f"The book's numbers come from {settings.BOOK['MODEL_SIZE']} with OpenAI's weights; this classifier "
                  f"was trained from {which}, so they are not comparable.")
            return False
        training = trained["training"]
        used = {k: training["settings"].get(k) for k in LECTURE_SETTINGS}
        if training["engine"] not in ("lecture", "exact") or trained["pooling"] != "last":
            print(f"The book's numbers are for the lecture's model; this classifier was trained by "
                  f"{training['engine']!r} and reads {trained['pooling']!r}, so they are not comparable.")
            return False
        book_run = (training["steps_planned"] == BOOK_STEPS and training.get("batch_size", 8) == settings.BOOK["BATCH_SIZE"]
                    and trained.get("max_length") == BOOK_MAX_LENGTH and trained.get("class_names", ["ham", "spam"])
                    == list(settings.BOOK["CLASS_NAMES"]))
        if not book_run:
            print(f"The book's numbers are for its run: {BOOK_STEPS} steps of {settings.BOOK['BATCH_SIZE']} messages "
                  f"padded to {BOOK_MAX_LENGTH} tokens, classes ham/spam. This classifier was trained "
                  f"{training['steps_planned']} steps of {training.get('batch_size')} messages padded to "
                  f"{trained.get('max_length')}, so they are not comparable.")
            return False
        if training["steps_done"] != training["steps_planned"] or used != LECTURE_SETTINGS:
            print(f"The book's numbers are for the lecture's full training {LECTURE_SETTINGS}; this classifier "
                  f"was trained {training['steps_done']} of {training['steps_planned']} steps with {used}, "
                  "so they are not comparable.")
            return False
    changed = settings.differences_from_the_book()
    if changed:
        shown = ", ".join(f"{name} = {yours!r} (the book: {book!r})" for name, (yours, book) in changed.items())
        print(f"The book's numbers are for its own settings; helpers/settings.py sets {shown}, so they are not "
              "comparable.")
        return False
    if test_model_enabled():
        print("The book's numbers come from OpenAI's GPT-2 small weights. This run uses the tiny random TEST "
              "MODEL, so a side-by-side comparison would mean nothing: run with the real weights to compare.")
        return False
    if model_size != DEFAULT_MODEL:
        print(f"The book's numbers are for {DEFAULT_MODEL}; this run uses {model_size}, so they are not comparable.")
        return False
    return True


def compare_with_book(stage, model_size=DEFAULT_MODEL, trained=None, **yours):
    """A table of the book's numbers next to yours, with the difference, or a note why there is none.

    ``stage`` is ``"initial"`` (before training) or ``"final"`` (after it); pass your values by the
    notebook's names, accuracies as fractions: ``compare_with_book("initial", train_accuracy=0.4625, ...)``.
    ``trained``: for a loaded classifier, its recipe; a classifier not trained as the book's was is not compared.
    """
    import pandas as pd

    if stage not in BOOK_METRICS:
        raise ValueError(f"stage must be one of {list(BOOK_METRICS)}, got {stage!r}")
    unknown = sorted(set(yours) - set(BOOK_METRICS[stage]))
    if unknown:
        raise ValueError(f"the book prints no {unknown} at the {stage!r} stage; "
                         f"known: {list(BOOK_METRICS[stage])}")
    if not _comparable(model_size, trained):
        return None
    rows = {}
    for key, value in yours.items():
        book = BOOK_METRICS[stage][key]
        value = float(value) * 100 if key.endswith("accuracy") else float(value)
        rows[_ROW_NAMES[key]] = {"book": book, "yours": round(value, 3), "difference": round(value - book, 3)}
    return pd.DataFrame(rows).T


def compare_log_with_book(train_losses, val_losses, train_accs, val_accs, model_size=DEFAULT_MODEL,
                          eval_freq=LECTURE_SETTINGS["eval_freq"]):
    """The book's training log beside yours: one row per evaluation (losses) and per epoch (accuracy), the
    training and validation values side by side, with the larger of their two differences.

    With the test model it prints the book's log for reference instead (a comparison would mean nothing).
    """
    import pandas as pd

    if not _comparable(model_size):
        print("\nThe book's log, for reference:\n" + book_training_log())
        return None
    rows = {}  # one row per evaluation, the training and validation values side by side
    for i, step in enumerate(BOOK_LOG["steps"][:len(train_losses)]):
        rows[f"step {step}: loss"] = (BOOK_LOG["train_losses"][i], train_losses[i],
                                      BOOK_LOG["val_losses"][i], val_losses[i])
    for epoch in range(min(len(train_accs), len(BOOK_LOG["train_accs"]))):
        rows[f"epoch {epoch + 1}: accuracy (%)"] = (BOOK_LOG["train_accs"][epoch], train_accs[epoch] * 100,
                                                   BOOK_LOG["val_accs"][epoch], val_accs[epoch] * 100)
    columns = ["training: book", "training: yours", "validation: book", "validation: yours"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns).astype(float)
    table["largest difference"] = pd.concat([(table["training: yours"] - table["training: book"]).abs(),
                                             (table["validation: yours"] - table["validation: book"]).abs()],
                                            axis=1).max(axis=1)
    return table.round(3)


def _read_batches(loader, num_batches):  # as calc_loss_loader / calc_accuracy_loader iterate a loader
    for i, _ in enumerate(loader):
        if i >= min(num_batches, len(loader)):
            break


def seed_as_after_initial_accuracy(train_loader, val_loader, test_loader, num_batches=10, seed=BOOK_SEED):
    """Put PyTorch's global generator where the book's first accuracy cell left it, without a model.

    The book measures the initial losses right after that cell, without seeding again: its training
    loader then shuffles on from where the accuracy passes left it. Re-running only the loss cell (or
    running it twice) would see other batches; after this call it sees the book's.
    """
    torch.manual_seed(seed)
    for loader in (train_loader, val_loader, test_loader):
        _read_batches(loader, num_batches)


def seed_as_after_training(train_loader, val_loader, recipe=None, seed=BOOK_SEED):
    """Put PyTorch's global generator where the lecture's training left it, without training.

    The book evaluates the full training set right after training, in the same session, and its
    training loader drops the last 5 of 1045 messages of a shuffle drawn from that generator. To
    drop the same 5 in a later notebook, this seeds as the book did before training and then makes
    every pass over the loaders that ``train_classifier_simple`` makes (each epoch, each evaluation),
    reading batches only: no model, no gradients, a fraction of a second.

    ``recipe`` is the checkpoint's recipe (see :func:`helpers.load_classifier`): its ``"training"``
    entry says which settings the classifier was trained with (default: the lecture's).
    """
    training = (recipe or {}).get("training") or {}
    settings = {**LECTURE_SETTINGS, **(training.get("settings") or {})} if isinstance(training, dict) else None
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1  # noqa: E731
    if settings is None or not all(whole(settings[k]) for k in ("num_epochs", "eval_freq", "eval_iter")):
        raise ValueError(f"the recipe's training entry {training!r} needs whole numbers ≥ 1 for num_epochs, "
                         "eval_freq and eval_iter; retrain the classifier (notebook 4).")
    num_epochs, eval_freq, eval_iter = settings["num_epochs"], settings["eval_freq"], settings["eval_iter"]

    def evaluation_pass(loader):
        _read_batches(loader, eval_iter)

    torch.manual_seed(seed)
    global_step = -1
    for _ in range(num_epochs):
        for _batch in train_loader:
            global_step += 1
            if global_step % eval_freq == 0:
                evaluation_pass(train_loader)
                evaluation_pass(val_loader)
        evaluation_pass(train_loader)
        evaluation_pass(val_loader)
