"""The book's three chapter-6 exercises, runnable: each trains its variant, then sets your test accuracy beside
the book's and beside the chapter's 95.67 %.

* **6.1**: pad every message to the model's full context (1024 tokens for GPT-2) instead of the longest one (120);
* **6.2**: fine-tune the whole model instead of the last block, final norm and head;
* **6.3**: read the classifier's answer at the *first* token instead of the last.

Everything else is the lecture's: the same split, seeded head, optimizer, epochs and loop.
"""
import time

import torch

from .. import settings
from ..classifier import build_spam_classifier
from ..data import SpamDataset, check_settings, create_dataloaders, get_spam_dataloaders, prepare_spam_splits
from ..training import calc_accuracy_loader, train_classifier_simple
from .strategies import STRATEGIES, book_comparison_problem  # exercise 6.2 is the "all layers" strategy
from .timing import estimate_seconds

#: The chapter's own test accuracy (the book's run of notebook 4's recipe).
CHAPTER_TEST_ACCURACY = 0.9567
#: What the book's exercise solutions report (ch06/01_main-chapter-code/exercise-solutions.ipynb). They were
#: run by the book's bonus script, which shuffles once more before splitting: another split than the chapter's.
BOOK_EXERCISES = {
    "6.1": ("pad to the full context instead of the longest message", 0.7833),
    "6.2": ("fine-tune the whole model", 0.9667),
    "6.3": ("train on the first token instead of the last", 0.7500),
}


class ReadsFirstToken(torch.nn.Module):
    """Exercise 6.3: the classifier answers from the first token's output instead of the last one's.

    With causal attention the first position sees only the first token, so running just that token gives
    exactly its logits (120 times less work). Returns ``[batch, 1, classes]``: the lecture's functions, which
    read ``model(x)[:, -1, :]``, read position 0.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def __getattr__(self, name):  # cfg, out_head, ... are the classifier's
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["model"], name)

    def forward(self, input_ids):
        return self.model(input_ids[:, :1])


def exercise_setup(number, tokenizer, model_size=None, device="cpu"):
    """``(model, loaders)`` for exercise ``number`` ("6.1", "6.2" or "6.3"), before training."""
    if number not in BOOK_EXERCISES:
        raise ValueError(f"the book's chapter 6 has exercises {list(BOOK_EXERCISES)}, not {number!r}")
    model = build_spam_classifier(model_size or settings.MODEL_SIZE, device)
    if number == "6.1":
        context = model.cfg["context_length"]  # 1024 for GPT-2; every message padded that far
        paths = prepare_spam_splits()
        datasets = [SpamDataset(paths[name], tokenizer, max_length=context) for name in ("train", "validation", "test")]
        return model, create_dataloaders(*datasets)
    loaders = get_spam_dataloaders(tokenizer)
    return (STRATEGIES["all layers"](model) if number == "6.2" else ReadsFirstToken(model)), loaders


def run_exercise(number, tokenizer, model_size=None, device="cpu", num_epochs=None, max_minutes=30, run_long=False,
                 same_as=None):
    """Train exercise ``number``'s variant as the lecture trains, and return its row for :func:`exercise_table`.

    It first says how long the run will take here. A run longer than ``max_minutes`` is skipped unless
    ``run_long=True`` (the row then has the book's number and no accuracy of yours). ``same_as``: for 6.2,
    the "all layers" row of :func:`~helpers.beyond.strategies.run_strategy`, the same training: reused when it
    ran the same number of epochs, instead of training it again.
    """
    if number not in BOOK_EXERCISES:
        raise ValueError(f"the book's chapter 6 has exercises {list(BOOK_EXERCISES)}, not {number!r}")
    check_settings()
    title, book = BOOK_EXERCISES[number]
    num_epochs = num_epochs or settings.NUM_EPOCHS
    row = {"exercise": number, "variant": title, "book's test accuracy (another split)": book,
           "chapter's test accuracy": CHAPTER_TEST_ACCURACY}
    problem = book_comparison_problem(model_size)
    if problem:  # the book's numbers hold only for its model, data and settings
        print(f"Exercise {number}: the book's numbers are not set beside this run: {problem}.")
        row |= {"book's test accuracy (another split)": None, "chapter's test accuracy": None,
                "not comparable with the book": problem}
    if (number == "6.2" and same_as is not None and same_as.get("epochs") == num_epochs
            and "test accuracy" in same_as and "training time (s)" in same_as):
        print(f"Exercise 6.2 ({title}) is the \"all layers\" strategy trained above for {num_epochs} epoch(s): "
              "its row is reused, nothing is trained again.")
        return row | {"your test accuracy": same_as["test accuracy"], "training time (s)": same_as["training time (s)"]}
    model, loaders = exercise_setup(number, tokenizer, model_size, device)
    seconds = estimate_seconds(model, loaders, num_epochs)
    steps = num_epochs * len(loaders[0])
    print(f"Exercise {number} ({title}): {steps} steps, about {seconds / 60:.1f} minutes on this machine.")
    if seconds > max_minutes * 60 and not run_long:
        print(f"That is longer than max_minutes={max_minutes}: not run. Pass run_long=True to run it anyway "
              f"(or run it on a GPU). The book reports {book:.2%}.")
        return row | {"your test accuracy": None, "training time (s)": None}
    torch.manual_seed(123)  # as the lecture seeds before training: the same batches
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.LEARNING_RATE, weight_decay=settings.WEIGHT_DECAY)
    start = time.time()
    train_classifier_simple(model, loaders[0], loaders[1], optimizer, device, num_epochs=num_epochs,
                            eval_freq=settings.EVAL_FREQ, eval_iter=settings.EVAL_ITER)
    row["training time (s)"] = time.time() - start
    row["your test accuracy"] = calc_accuracy_loader(loaders[2], model, device)
    return row


def exercise_table(rows):
    """The exercises side by side: yours, the book's, the chapter's. The book's columns are left out when none of
    the runs is comparable with the book's (another model, data or settings), and it says why."""
    import pandas as pd

    rows = list(rows)
    columns = ["variant", "your test accuracy", "book's test accuracy (another split)", "chapter's test accuracy",
               "training time (s)"]
    reasons = list(dict.fromkeys(row["not comparable with the book"] for row in rows
                                 if row.get("not comparable with the book")))
    table = pd.DataFrame(rows).set_index("exercise")[columns]
    if reasons:
        books = ["book's test accuracy (another split)", "chapter's test accuracy"]
        if all(row.get("not comparable with the book") for row in rows):
            table = table.drop(columns=books)
        print(f"The book's numbers are left out beside runs they do not hold for: {'; '.join(reasons)}.")
    return table
