"""The lecture's settings, in one place.

Everything that trains, evaluates, replays or checks reads them from here: the notebooks, instructor mode,
the activities' checkers, the strategies, the exercises and the benchmarks. To adapt the workbook (another
GPT-2 size, fewer epochs, another batch size, your own classes), change them here; ``docs/adapting.md``
says what else, if anything, to change. The values below are the book's, and the book's reference numbers
are shown only while they stay so.
"""
#: Which GPT-2: "gpt2-small (124M)", "gpt2-medium (355M)", "gpt2-large (774M)" or "gpt2-xl (1558M)".
MODEL_SIZE = "gpt2-small (124M)"
#: The data's class names, in label order: label 0 is CLASS_NAMES[0], and so on.
CLASS_NAMES = ("ham", "spam")
BATCH_SIZE = 8
NUM_EPOCHS = 5
LEARNING_RATE = 5e-5
WEIGHT_DECAY = 0.1
EVAL_FREQ = 50   # evaluate every 50 steps ...
EVAL_ITER = 5    # ... on 5 batches of each loader
MAX_LENGTH = None  # tokens per message; None: the longest training message (120 for the SMS data)
#: None: the SMS Spam Collection, balanced as in the lecture. Or the path of your own CSV file with a ``text``
#: and a ``label`` column (labels as CLASS_NAMES, or 0 … n-1); it is split 70/10/20 as the lecture splits.
DATASET_CSV = None
SEED = 123

#: The book's own values of the settings above: its reference numbers hold only for these.
BOOK = {"MODEL_SIZE": "gpt2-small (124M)", "CLASS_NAMES": ("ham", "spam"), "BATCH_SIZE": 8, "NUM_EPOCHS": 5,
        "LEARNING_RATE": 5e-5, "WEIGHT_DECAY": 0.1, "EVAL_FREQ": 50, "EVAL_ITER": 5, "MAX_LENGTH": None, "SEED": 123,
        "DATASET_CSV": None}


class SettingsError(ValueError):
    """A setting in this file has a value the workbook cannot use; the message names it, its value and what it
    accepts (see ``helpers.data.check_settings``, which checks them all before any work starts)."""


def current() -> dict:
    """The settings as they are now. Change them by editing this file and restarting the kernel: a value changed
    at run time reaches the code that reads it at call time, but not the defaults already bound at import."""
    return {name: globals()[name] for name in BOOK}


#: What the book's ``MAX_LENGTH = None`` resolves to on its own data: the longest training message, 120 tokens.
BOOK_RESOLVED_MAX_LENGTH = 120


def _as_compared(name, value, dataset_csv):
    """A setting's value as the book's numbers see it: a list of class names is the same names as a tuple, and
    on the book's data an explicit ``MAX_LENGTH = 120`` is what ``None`` resolves to."""
    if name == "CLASS_NAMES" and isinstance(value, (list, tuple)):
        return tuple(value)
    if name == "MAX_LENGTH" and value is None and dataset_csv is None:
        return BOOK_RESOLVED_MAX_LENGTH
    return value


def differences_from_the_book() -> dict:
    """``{name: (yours, the book's)}`` for every setting that is not the book's (a list equal to the book's tuple,
    or ``MAX_LENGTH = 120`` on the book's data, counts as the book's)."""
    yours, book = current(), BOOK
    return {name: (value, book[name]) for name, value in yours.items()
            if _as_compared(name, value, yours["DATASET_CSV"]) != _as_compared(name, book[name], book["DATASET_CSV"])}


def lecture_settings() -> dict:
    """The training settings as the training code names them (``num_epochs``, ``lr``, …)."""
    return {"num_epochs": NUM_EPOCHS, "lr": LEARNING_RATE, "weight_decay": WEIGHT_DECAY, "eval_freq": EVAL_FREQ,
            "eval_iter": EVAL_ITER}
