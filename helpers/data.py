"""The data stage of the lecture: SMS Spam Collection → balanced splits → padded batches.

Functions keep the slide names: ``download_sms_spam_dataset``, ``create_balanced_dataset``,
``random_split`` and ``SpamDataset``.
"""
import contextlib
import hashlib
import math
import numbers
import os
import unicodedata
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from . import settings
from .gpt import model_configs
from .settings import SettingsError
from .storage.download import DownloadError, atomic_write_bytes, download_file, sha256_of
from .storage.files import folder_lock
from .storage.paths import ENV_SMS_ZIP, PROJECT_ROOT, StorageError, data_dir, display_path, reading_files
from .tokenizer import check_max_length, check_tokenizer, get_gpt2_tokenizer
from .weights import model_context_length, test_model_enabled

SMS_SPAM_URLS = (
    "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
    # UCI's older address for the same archive, our mirror when the new one fails
    "https://archive.ics.uci.edu/ml/machine-learning-databases/00228/smsspamcollection.zip",
)
SMS_SPAM_FILE = "SMSSpamCollection"
SMS_SPAM_SHA256 = "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"
ZIP_NAME = "sms_spam_collection.zip"
#: The original SMSSpamCollection is 477,907 bytes; anything far larger is not it (e.g. a zip bomb).
SMS_SPAM_MAX_BYTES = 4 << 20
#: UCI's zip, byte for byte, shipped with the workbook (CC BY 4.0; attribution in datasets/SOURCE.md).
SHIPPED_ZIP = PROJECT_ROOT / "datasets" / ZIP_NAME
SOURCE_NOTE = "SOURCE.txt"  # next to the extracted file: which copy it was extracted from

CLASS_NAMES = settings.CLASS_NAMES  # the labels in the data, in label order (helpers/settings.py)
LABEL_MAP = {name: label for label, name in enumerate(CLASS_NAMES)}
SPLIT_NAMES = ("train", "validation", "test")


class DatasetError(RuntimeError):
    """The dataset is missing, corrupted, cannot be fetched, or cannot train a classifier (your own CSV: empty
    cells, too few rows or classes); the message names the file, its lines, and what to do."""


# --------------------------------------------------------------------------- the settings, checked
def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _has_control_characters(text) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


def dataset_csv_path() -> Path | None:
    """``settings.DATASET_CSV`` as a path (None: the SMS data). A relative path is read from the project's folder,
    so it means one file to the notebooks (which run in ``notebooks/``) and to the command line alike."""
    if settings.DATASET_CSV is None:
        return None
    path = Path(settings.DATASET_CSV).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def check_settings() -> None:
    """Every setting of ``helpers/settings.py``, checked before any work starts (cheap: call it wherever settings
    enter). Raises :class:`SettingsError` naming the first setting the workbook cannot use, its value and the
    values it accepts."""
    def bad(name, must, hint=""):
        raise SettingsError(f"helpers/settings.py sets {name} = {getattr(settings, name)!r}, but it must be {must}."
                            f"{hint} Change it there, then restart the kernel.")

    if settings.MODEL_SIZE not in model_configs:
        bad("MODEL_SIZE", "one of " + ", ".join(map(repr, model_configs)),
            " The test model (WORKBOOK_TEST_MODEL=1) needs one of them too." if test_model_enabled() else "")
    names = settings.CLASS_NAMES
    if isinstance(names, str):
        bad("CLASS_NAMES", "a tuple of two or more class names",
            f" It is one string, read as its letters: a tuple needs commas, e.g. ({names!r}, \"spam\"). "
            f"({names!r}) in parentheses is the string itself.")
    if not isinstance(names, (tuple, list)) or len(names) < 2:
        bad("CLASS_NAMES", "a tuple (or list) of two or more class names, e.g. (\"ham\", \"spam\"): a classifier "
                           "tells at least two classes apart")
    if not all(isinstance(name, str) and name.strip() for name in names):
        bad("CLASS_NAMES", "a tuple of non-empty names (text), e.g. (\"ham\", \"spam\")")
    if any(_has_control_characters(name) for name in names):
        bad("CLASS_NAMES", "names without tabs, line breaks or other control characters")
    repeated = sorted({name for name in names if list(names).count(name) > 1})
    if repeated:
        bad("CLASS_NAMES", "different names, one per class", f" {', '.join(map(repr, repeated))} appears twice.")
    if settings.DATASET_CSV is None and tuple(names) != tuple(settings.BOOK["CLASS_NAMES"]):
        bad("CLASS_NAMES", f"{settings.BOOK['CLASS_NAMES']!r} while DATASET_CSV is None: the SMS Spam Collection's "
                           "classes, in label order", " For other classes, set DATASET_CSV to your own CSV file "
                                                      "(docs/adapting.md).")
    for name in ("BATCH_SIZE", "NUM_EPOCHS", "EVAL_FREQ", "EVAL_ITER"):
        value = getattr(settings, name)
        if not _whole(value) or value < 1:
            bad(name, "a whole number of at least 1")
    if not _real(settings.LEARNING_RATE) or settings.LEARNING_RATE <= 0:
        bad("LEARNING_RATE", "a finite number above 0 (the book's is 5e-5)")
    if not _real(settings.WEIGHT_DECAY) or settings.WEIGHT_DECAY < 0:
        bad("WEIGHT_DECAY", "a finite number of at least 0 (the book's is 0.1)")
    if not _whole(settings.SEED):
        bad("SEED", "a whole number (the book's is 123)")
    context = model_context_length()
    length = settings.MAX_LENGTH
    if length is not None and (not _whole(length) or not 1 <= length <= context):
        which = "the test model" if test_model_enabled() else settings.MODEL_SIZE
        bad("MAX_LENGTH", f"None (the longest training message) or a whole number of tokens from 1 to {context:,}, "
                          f"the context {which} can read")
    if settings.DATASET_CSV is not None:
        if not isinstance(settings.DATASET_CSV, (str, os.PathLike)):
            bad("DATASET_CSV", "None (the SMS Spam Collection) or the path of your CSV file, as text")
        path = dataset_csv_path()
        relative = "" if Path(settings.DATASET_CSV).expanduser().is_absolute() else \
            " (a relative path is read from the project's folder)"
        try:
            with open(path, "rb"):
                pass
        except IsADirectoryError:
            bad("DATASET_CSV", "the path of a CSV file", f" {path} is a folder{relative}.")
        except PermissionError:
            bad("DATASET_CSV", "a file you may read", f" {path} cannot be read by this account: permission denied.")
        except OSError as exc:
            bad("DATASET_CSV", "None (the SMS Spam Collection) or the path of an existing CSV file",
                f" {path}{relative}: {exc.strerror or exc}.")


# --------------------------------------------------------------------------- acquisition
def _offline_help(folder: Path) -> str:
    return (
        f"Download {SMS_SPAM_URLS[0]} on a machine with network access, then either put the zip at "
        f"{display_path(folder / ZIP_NAME)} or set the environment variable {ENV_SMS_ZIP} to its path."
    )


def _extract_verified(zip_path: Path, target: Path, *, remove_bad_zip: bool, note=None) -> Path:
    """Extract SMSSpamCollection from ``zip_path`` to ``target`` if its sha256 is right."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            if archive.getinfo(SMS_SPAM_FILE).flag_bits & 0x1:  # zipfile would raise a bare RuntimeError
                raise DatasetError(f"{display_path(zip_path)} is encrypted (password-protected); UCI's zip is not. "
                                   f"{_offline_help(target.parent.parent)}")
            with archive.open(SMS_SPAM_FILE) as member:
                data = _read_limited(member, zip_path)  # a stream: a zip bomb stops at the limit
    except NotImplementedError as exc:  # zipfile reads only stored, deflate, bzip2 and lzma entries
        raise DatasetError(f"{display_path(zip_path)} stores {SMS_SPAM_FILE} with a compression method Python cannot "
                           f"read ({exc}; e.g. Deflate64, which some Windows tools use for large files). Unzip it "
                           f"with another tool and point {ENV_SMS_ZIP} at the extracted {SMS_SPAM_FILE}, or zip it "
                           f"again with standard deflate. {_offline_help(target.parent.parent)}") from exc
    except (zipfile.BadZipFile, KeyError, EOFError, zipfile.LargeZipFile, zlib.error) as exc:
        if remove_bad_zip:
            zip_path.unlink(missing_ok=True)
        removed = " It was removed from the cache; run again to fetch a fresh copy." if remove_bad_zip else ""
        raise DatasetError(
            f"{display_path(zip_path)} is not a complete SMS Spam Collection zip ({exc}). "
            f"It is probably truncated or corrupted.{removed} {_offline_help(target.parent.parent)}"
        ) from exc
    return _write_verified(data, target, source=zip_path, remove_source=remove_bad_zip, note=note)


def _read_limited(stream, source, limit=None) -> bytes:
    limit = SMS_SPAM_MAX_BYTES if limit is None else limit
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise DatasetError(f"The SMSSpamCollection in {display_path(source)} is larger than {limit >> 20} MB (the "
                           f"original is 0.5 MB): it is not the UCI file. {_offline_help(data_dir())}")
    return data


def _write_verified(data: bytes, target: Path, *, source: Path, remove_source: bool, note=None) -> Path:
    actual = hashlib.sha256(data).hexdigest()
    if actual != SMS_SPAM_SHA256:
        if remove_source:
            source.unlink(missing_ok=True)
        raise DatasetError(
            f"The SMSSpamCollection in {display_path(source)} has sha256 {actual}, expected {SMS_SPAM_SHA256}: "
            f"it is not the original UCI file (edited or corrupted). {_offline_help(target.parent.parent)}"
        )
    atomic_write_bytes(target, data)
    atomic_write_bytes(target.with_name(SOURCE_NOTE), f"{note or display_path(source)}\n".encode("utf-8"))
    return target


def sms_spam_source(data_folder=None) -> str:
    """Which copy the cached ``SMSSpamCollection`` was extracted from (a path, or the URL it came from)."""
    folder = Path(data_folder) if data_folder is not None else data_dir()
    note = folder / "sms_spam_collection" / SOURCE_NOTE
    if not (folder / "sms_spam_collection" / SMS_SPAM_FILE).is_file():
        return "none yet: call download_sms_spam_dataset()"
    text = note.read_text(encoding="utf-8").strip() if note.is_file() else ""
    return text or "not recorded (extracted by an older version of the workbook)"


def _install_local_copy(source: Path, target: Path) -> Path:
    """Use a pre-staged zip or a pre-staged extracted SMSSpamCollection file."""
    if source.is_dir():
        raise DatasetError(f"The pre-staged dataset {source} is a folder; point {ENV_SMS_ZIP} at the zip file itself "
                           f"(e.g. {source / 'sms+spam+collection.zip'}). {_offline_help(target.parent.parent)}")
    if not source.is_file():
        raise DatasetError(f"The pre-staged dataset {source} does not exist. {_offline_help(target.parent.parent)}")
    if zipfile.is_zipfile(source) or source.suffix.lower() == ".zip":
        return _extract_verified(source, target, remove_bad_zip=False)
    with open(source, "rb") as stream:
        data = _read_limited(stream, source)
    return _write_verified(data, target, source=source, remove_source=False)


def download_sms_spam_dataset(local_copy=None, data_folder=None, *, urls=SMS_SPAM_URLS, timeout=30.0, retries=3,
                              shipped=True) -> Path:
    """Return the path of the verified ``SMSSpamCollection`` file, fetching it if needed.

    Where the file comes from, first match wins:

    1. ``local_copy`` (a zip or the extracted file), or the ``WORKBOOK_SMS_ZIP`` environment variable;
    2. the extracted file already cached in ``data/sms_spam_collection/``;
    3. a zip already in ``data/`` (downloaded earlier or pre-staged for a classroom);
    4. the copy shipped with the workbook, ``datasets/sms_spam_collection.zip`` (``shipped=False`` skips it);
    5. a download from UCI (with a mirror, a timeout, retries and a progress bar).

    Whatever the source, the extracted file must have the sha256 of UCI's original.
    ``sms_spam_source()`` says which copy the cached file came from.
    """
    folder = Path(data_folder) if data_folder is not None else data_dir()
    target = folder / "sms_spam_collection" / SMS_SPAM_FILE
    staged = local_copy or os.environ.get(ENV_SMS_ZIP)
    if staged:
        if target.is_file() and sha256_of(target) == SMS_SPAM_SHA256:
            return target
        return _install_local_copy(Path(staged).expanduser(), target)

    if target.is_file():
        if sha256_of(target) == SMS_SPAM_SHA256:
            return target
        target.unlink()  # corrupted cache: rebuild it below

    zip_path = folder / ZIP_NAME
    shipped_problem = ""
    if not zip_path.is_file() and shipped and SHIPPED_ZIP.is_file():
        try:
            return _extract_verified(SHIPPED_ZIP, target, remove_bad_zip=False,
                                     note=f"{display_path(SHIPPED_ZIP)}, the copy shipped with the workbook")
        except DatasetError as exc:  # a damaged checkout: say so, and try the download instead
            shipped_problem = (f"\nThe copy shipped with the workbook is damaged too ({exc}); "
                               f"restore it with: git checkout -- {display_path(SHIPPED_ZIP)}")
    if not zip_path.is_file():
        try:
            download_file(urls, zip_path, timeout=timeout, retries=retries, desc="SMS Spam Collection")
        except DownloadError as exc:
            raise DatasetError(f"The SMS Spam Collection is not here and could not be downloaded.\n{exc}\n\n"
                               f"{_offline_help(folder)}{shipped_problem}") from exc
        return _extract_verified(zip_path, target, remove_bad_zip=True,
                                 note=f"downloaded from {urlparse(urls[0]).netloc} into {display_path(zip_path)}")
    return _extract_verified(zip_path, target, remove_bad_zip=True)


# --------------------------------------------------------------------------- preparation
def load_sms_spam(path=None) -> pd.DataFrame:
    """Read the collection the way the lecture does: tab-separated, columns ``Label`` and ``Text``.

    pandas' default quoting merges three lines that follow a stray quote, so this gives
    5572 rows (ham 4825, spam 747) although the file has 5574 lines; see notebook 1.
    """
    path = Path(path) if path is not None else download_sms_spam_dataset()
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; call download_sms_spam_dataset() to fetch it.")
    return pd.read_csv(path, sep="\t", header=None, names=["Label", "Text"])


def check_frame(df, allowed_labels=None) -> None:
    """A clear error unless ``df`` is a DataFrame with ``Label`` and ``Text`` columns, rows, and (unless
    ``allowed_labels`` is None) only known labels."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame with columns 'Label' and 'Text', got {type(df).__name__}")
    if "Label" not in df.columns or "Text" not in df.columns:
        raise ValueError(f"expected columns 'Label' and 'Text', found {list(df.columns)}")
    if len(df) == 0:
        raise ValueError("the DataFrame has no rows")
    if allowed_labels is None:
        return
    unknown = sorted(set(df["Label"]) - set(allowed_labels), key=str)
    if unknown:
        rows = df.index[~df["Label"].isin(allowed_labels)][:5].tolist()
        raise ValueError(f"unknown label(s) {unknown} (first rows: {rows}); labels must be one of "
                         f"{sorted(allowed_labels, key=str)}")


def check_balanceable(df) -> None:
    """A clear error unless ``df`` is the collection's frame (labels "ham"/"spam") with at least as much ham as spam."""
    if isinstance(df, pd.DataFrame) and "Label" in df.columns and set(df["Label"]) <= {0, 1} and len(df):
        raise ValueError("the labels are already 0/1: balance the frame as loaded (labels \"ham\"/\"spam\"), "
                         "then encode its labels")
    check_frame(df, LABEL_MAP)
    spam, ham = (df["Label"] == "spam").sum(), (df["Label"] == "ham").sum()
    if not 0 < spam <= ham:
        raise ValueError(f"cannot balance {ham} ham against {spam} spam messages")


def create_balanced_dataset(df):
    """Undersample ``ham`` to as many messages as there are ``spam`` (747 + 747 = 1494).

    The slide also shuffles here; the book's code leaves the shuffling to :func:`random_split`, and so do
    we, because the slide's extra shuffle would put other messages into each split than the run the
    slides' numbers come from.
    """
    check_balanceable(df)
    # Separate the classes
    spam_df = df[df["Label"] == "spam"]
    ham_df = df[df["Label"] == "ham"]

    # Undersample ham to match the spam count
    ham_subset = ham_df.sample(n=len(spam_df), random_state=123)

    # Combine (the shuffle follows in random_split)
    balanced_df = pd.concat([ham_subset, spam_df])
    return balanced_df


def encode_labels(df):
    """A copy of ``df`` with ``Label`` mapped ham → 0, spam → 1 (any other label is an error)."""
    check_frame(df, LABEL_MAP)
    encoded = df.copy()
    encoded["Label"] = encoded["Label"].map(LABEL_MAP)
    return encoded


def check_fractions(df, train_frac, validation_frac) -> None:
    """Clear errors for what ``random_split`` cannot split."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"random_split splits a pandas DataFrame (e.g. the balanced frame), got {type(df).__name__}")
    if not (0 < train_frac < 1 and 0 <= validation_frac < 1 and train_frac + validation_frac <= 1):
        raise ValueError(f"fractions must be in (0, 1) and sum to at most 1, got {train_frac} and {validation_frac}")


def random_split(df, train_frac, validation_frac):
    """Shuffle, then cut into train / validation / test; test gets the rest (1045 / 149 / 300)."""
    check_fractions(df, train_frac, validation_frac)
    # Shuffle the entire DataFrame
    df = df.sample(frac=1, random_state=123).reset_index(drop=True)

    # Calculate split indices
    train_end = int(len(df) * train_frac)
    validation_end = train_end + int(len(df) * validation_frac)

    # Split the DataFrame
    train_df = df[:train_end]
    validation_df = df[train_end:validation_end]
    test_df = df[validation_end:]

    return train_df, validation_df, test_df


def split_paths(data_folder=None) -> dict:
    folder = Path(data_folder) if data_folder is not None else data_dir()
    return {name: folder / f"{name}.csv" for name in SPLIT_NAMES}


def _lines(rows, limit=5) -> str:
    """CSV line numbers of some of a frame's rows (a header on line 1: row 0 is line 2), for a message."""
    lines = [f"{row + 2:,}" for row in list(rows)[:limit]]
    more = len(rows) - limit
    return ", ".join(lines) + (f" and {more:,} more" if more > 0 else "")


_REPORTED = set()  # notes this process has printed already (each is said once)


def _note_once(text):
    if text not in _REPORTED:
        _REPORTED.add(text)
        print(text)


def load_labelled_csv(path, class_names=None) -> pd.DataFrame:
    """Your own data: a CSV with a ``text`` and a ``label`` column, as the lecture's ``Label`` (0 … n-1) and ``Text``.

    Labels may be the class names (``class_names``, default ``settings.CLASS_NAMES``) or their ids 0 … n-1.
    Every cell is read as text ("NA", "None" or "null" are messages like any other). A row without text or label,
    a label that is no class, or a class without rows is a :class:`DatasetError` naming the file's lines. Messages
    longer than the model can read are reported: training cuts them to its context.
    """
    names = list(class_names or settings.CLASS_NAMES)
    shown = display_path(path)
    fix = "Fix the file, or set DATASET_CSV in helpers/settings.py to another one (docs/adapting.md)."
    try:
        with reading_files():
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except StorageError:
        raise
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # EmptyDataError and decoding errors are ValueErrors
        raise DatasetError(f"cannot read the dataset {shown}: {exc}. Set DATASET_CSV in helpers/settings.py to a CSV "
                           "file with a text and a label column.") from exc
    missing = [column for column in ("text", "label") if column not in frame.columns]
    if missing:
        raise DatasetError(f"{shown} has the columns {list(frame.columns)}, but needs {missing}: a text and a label "
                           "column (docs/adapting.md)")
    if len(frame) == 0:
        raise DatasetError(f"{shown} has a header but no rows. {fix}")
    texts, labels = frame["text"].astype(str), frame["label"].astype(str)
    for column, values in (("text", texts), ("label", labels)):
        empty = values.index[values.str.strip() == ""]
        if len(empty):
            raise DatasetError(f"{shown} has an empty {column} cell on line {_lines(empty)} (line 1 is the header): "
                               f"every row needs a message and its label. {fix}")
    ids = {name: i for i, name in enumerate(names)} | {str(i): i for i in range(len(names))}
    encoded = labels.map(ids.get)
    unknown = encoded.index[encoded.isna()]
    if len(unknown):
        found = sorted(set(labels[unknown]))
        raise DatasetError(f"{shown} has labels {found[:5]} (line {_lines(unknown)}) that are not among CLASS_NAMES "
                           f"{names} (or their ids 0 … {len(names) - 1}): fix those lines, or set CLASS_NAMES in "
                           "helpers/settings.py to the file's classes, in label order")
    encoded = encoded.astype(int)
    absent = [name for i, name in enumerate(names) if not (encoded == i).any()]
    if absent:
        counts = ", ".join(f"{(encoded == i).sum():,} {name}" for i, name in enumerate(names) if name not in absent)
        raise DatasetError(f"{shown} has no row of the class(es) {absent} ({counts}): a classifier learns only the "
                           f"classes it sees. Add rows of {absent}, or remove them from CLASS_NAMES in "
                           "helpers/settings.py (at least two classes)")
    result = pd.DataFrame({"Label": encoded.to_numpy(), "Text": texts.to_numpy(dtype=object)})
    check_frame(result)  # rows, and the two columns
    _report_long_messages(result["Text"], shown)
    return result


def _report_long_messages(texts, shown):
    """Say which messages are longer than the model can read (with ``MAX_LENGTH = None`` they are cut to it)."""
    if settings.MAX_LENGTH is not None:  # every message is cut to MAX_LENGTH, by your choice
        return
    context = model_context_length()
    if texts.str.len().max() <= context:  # a token holds at least one character: none can be too long
        return
    lengths = pd.Series([len(ids) for ids in get_gpt2_tokenizer().encode_ordinary_batch(texts.tolist())],
                        index=texts.index)
    long = lengths.index[lengths > context]
    if len(long):
        _note_once(f"Note: {len(long):,} message(s) of {shown} (line {_lines(long)}) are longer than the {context:,} "
                   f"tokens the model reads (the longest: {lengths.max():,}); each is cut to its first {context:,} "
                   "tokens, as SpamDataset cuts a message to max_length.")


def check_splits_of_your_data(splits, shown, class_names) -> None:
    """Your own data after the 70/10/20 split: enough training rows for one batch of ``BATCH_SIZE``, every class in
    every split (else :class:`DatasetError`), and a note when validation or test messages also appear among the
    training messages (duplicates in the file)."""
    rows, batch = sum(len(split) for split in splits), settings.BATCH_SIZE
    if len(splits[0]) < batch:
        raise DatasetError(f"{shown} has {rows:,} rows, so {len(splits[0]):,} training rows (70 %): they cannot fill one "
                           f"batch of BATCH_SIZE = {batch:,}, and the training loader drops an incomplete batch "
                           f"(drop_last=True), so it would have nothing to train on. Add rows (at least "
                           f"{math.ceil(batch / 0.7):,}), or set BATCH_SIZE in helpers/settings.py to at most "
                           f"{max(len(splits[0]), 1):,}.")
    for label, name in enumerate(class_names):
        total = sum(int((split["Label"] == label).sum()) for split in splits)
        for split_name, split in zip(SPLIT_NAMES, splits):
            if not (split["Label"] == label).any():
                raise DatasetError(
                    f"{shown}: the class {name!r} has {total:,} row(s), and after the 70/10/20 split the {split_name} "
                    f"split holds none of them ({len(split):,} rows in all). Every class needs rows in the training, "
                    f"validation and test splits: add rows of {name!r} to the file (the validation split takes 10 % "
                    "of the rows: about 30 rows of a class or more make it likely to hold some).")
    seen = set(splits[0]["Text"])
    repeated = {name: int(split["Text"].isin(seen).sum()) for name, split in zip(SPLIT_NAMES[1:], splits[1:])}
    if any(repeated.values()):
        sizes = dict(zip(SPLIT_NAMES[1:], (len(split) for split in splits[1:])))
        found = " and ".join(f"{count:,} of {sizes[name]:,} {name} messages"
                             for name, count in repeated.items() if count)
        _note_once(f"Warning: {found} of {shown} also appear among the training messages (the file repeats "
                   f"messages). Their scores then overstate how the classifier does on new messages: remove the "
                   f"repeats (e.g. frame.drop_duplicates(\"text\")) for an honest test.")


def prepare_spam_splits(local_copy=None, data_folder=None) -> dict:
    """Run the whole data stage and write ``train.csv``, ``validation.csv`` and ``test.csv``.

    Deterministic: every run writes the same bytes, so notebooks can call it to rebuild what
    notebook 1 made. Returns ``{"train": path, "validation": path, "test": path}``.
    """
    check_settings()
    with reading_files():
        if settings.DATASET_CSV is not None:  # your own data (helpers/settings.py, docs/adapting.md)
            source = dataset_csv_path()
            splits = random_split(load_labelled_csv(source), 0.7, 0.1)
            check_splits_of_your_data(splits, display_path(source), list(settings.CLASS_NAMES))
        else:
            raw = load_sms_spam(download_sms_spam_dataset(local_copy, data_folder))
            splits = random_split(encode_labels(create_balanced_dataset(raw)), 0.7, 0.1)
        paths = split_paths(data_folder)
        folder = paths["train"].parent
        with contextlib.suppress(OSError):  # if it cannot be made, the write below says why
            folder.mkdir(parents=True, exist_ok=True)
        with folder_lock(folder):  # the three files as one set, also when two processes write them at once
            for split, path in zip(splits, paths.values()):
                csv = split.to_csv(index=None).encode("utf-8")
                if not (path.is_file() and path.read_bytes() == csv):
                    atomic_write_bytes(path, csv)
    return paths


# --------------------------------------------------------------------------- PyTorch side
def read_split(csv_file) -> pd.DataFrame:
    """One split's CSV, checked: it exists, has ``Label`` and ``Text``, integer labels from 0, and text in every row.

    Texts are read as they are ("NA" or "None" is a message, not a missing value). A split of the data folder
    (``train.csv``, ``validation.csv``, ``test.csv``, written by :func:`prepare_spam_splits`) holds the labels of
    ``CLASS_NAMES`` only. The frame remembers its file (``data.attrs["source"]``), so later checks can name it.
    """
    csv_file = Path(csv_file) if isinstance(csv_file, (str, Path)) else csv_file
    if not isinstance(csv_file, Path):
        raise TypeError(f"csv_file must be the path of a split's CSV file (e.g. data/train.csv), got "
                        f"{type(csv_file).__name__}")
    with reading_files():
        if not csv_file.is_file():
            raise FileNotFoundError(f"{csv_file} does not exist; run prepare_spam_splits() (notebook 1) to write it.")
        try:
            data = pd.read_csv(csv_file, keep_default_na=False, dtype={"Text": str})
        except pd.errors.EmptyDataError as exc:
            raise ValueError(f"{csv_file} is empty; run prepare_spam_splits() to rebuild it.") from exc
        except (ValueError, pd.errors.ParserError) as exc:  # not a CSV table, or not UTF-8 text
            raise DatasetError(f"{display_path(csv_file)} is not a readable CSV table ({exc}); run "
                               "prepare_spam_splits() to rebuild it.") from exc
    try:
        check_frame(data)
    except ValueError as exc:
        raise ValueError(f"{csv_file}: {exc}; run prepare_spam_splits() to rebuild it.") from exc
    if not pd.api.types.is_integer_dtype(data["Label"]) or data["Label"].min() < 0:
        bad = data["Label"][~data["Label"].astype(str).str.fullmatch(r"\d+")].unique()[:3].tolist()
        raise ValueError(f"{csv_file}: labels must be the class numbers 0, 1, ... (encode_labels does that), "
                         f"found {bad}")
    empty = data.index[data["Text"].astype(str).str.strip() == ""]
    if len(empty):
        raise ValueError(f"{csv_file} has rows without text: line {_lines(empty)} (line 1 is the header)")
    _check_split_labels(csv_file, data["Label"])
    data.attrs["source"] = str(csv_file)
    return data


def _check_split_labels(csv_file, labels):
    """A split the workbook wrote to the data folder holds only the labels of ``CLASS_NAMES``."""
    names = list(settings.CLASS_NAMES)
    wrong = labels.index[labels >= len(names)]
    if not len(wrong):
        return
    try:
        ours = csv_file.resolve() in {path.resolve() for path in split_paths().values()}
    except (StorageError, OSError):  # no usable data folder: this file is not one of its splits
        return
    if ours:
        allowed = ", ".join(f"{i} ({name})" for i, name in enumerate(names))
        raise DatasetError(f"{display_path(csv_file)} line {_lines(wrong)}: label {labels[wrong[0]]}, but the classes "
                           f"are {allowed} (CLASS_NAMES in helpers/settings.py). The file was edited, or written for "
                           "other classes: run prepare_spam_splits() to write it again (it rebuilds the splits from "
                           "the dataset), or set CLASS_NAMES to the data's classes.")


def check_dataset_arguments(tokenizer, max_length, pad_token_id) -> None:
    """Clear errors for arguments ``SpamDataset`` cannot use (checked before any message is read), among them a
    ``max_length`` longer than the model can read (its context: 1,024 tokens for GPT-2, 128 for the test model)."""
    check_tokenizer(tokenizer)
    check_max_length(max_length)
    context = model_context_length()
    if max_length is not None and max_length > context:
        which = "the test model" if test_model_enabled() else settings.MODEL_SIZE
        raise ValueError(f"max_length={max_length:,} is longer than {which} can read: its context is {context:,} "
                         f"tokens. Pass max_length={context:,} or less (None: the longest message, at most "
                         f"{context:,}).")
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int):
        raise TypeError(f"pad_token_id must be a whole number, got {type(pad_token_id).__name__}: {pad_token_id!r}")
    vocabulary = getattr(tokenizer, "n_vocab", None)
    if pad_token_id < 0 or (vocabulary is not None and pad_token_id >= vocabulary):
        raise ValueError(f"pad_token_id must be a token id of the vocabulary (50256 is <|endoftext|>), "
                         f"got {pad_token_id}")


class SpamDataset(Dataset):
    """Messages of one split as fixed-length token-id tensors, with their labels.

    ``max_length=None`` uses the longest message of this file (120 tokens for ``train.csv``), at most
    the model's context (1,024 tokens for GPT-2: a longer message could not be read);
    longer messages are truncated and shorter ones padded with ``pad_token_id`` (``<|endoftext|>``).
    """

    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        check_dataset_arguments(tokenizer, max_length, pad_token_id)
        self.data = read_split(csv_file)  # pd.read_csv(csv_file), with clear errors for a missing or wrong file
        self.tokenizer = tokenizer
        self.pad_token_id = pad_token_id

        # Auto-detect the longest message if max_length is not given (at most what the model can read)
        if max_length is None:
            self.max_length = min(max(len(tokenizer.encode(text, disallowed_special=())) for text in self.data["Text"]),
                                  model_context_length())
        else:
            self.max_length = max_length

    def __getitem__(self, index):
        text = self.data.iloc[index]["Text"]
        label = self.data.iloc[index]["Label"]

        # disallowed_special=(): a message containing "<|endoftext|>" is plain text, not the special token
        token_ids = self.tokenizer.encode(text, disallowed_special=())      # tokenize
        token_ids = token_ids[:self.max_length]                              # truncate if necessary
        token_ids += [self.pad_token_id] * (self.max_length - len(token_ids))  # pad with <|endoftext|>

        return torch.tensor(token_ids, dtype=torch.long), torch.tensor(label, dtype=torch.long)

    def __len__(self):
        return len(self.data)


def check_loader_arguments(train_dataset, val_dataset, test_dataset, batch_size) -> None:
    """Clear errors for loaders that could not train or evaluate: a batch size that is no whole number ≥ 1,
    a training set too small for one batch (its loader drops an incomplete batch), an empty validation or test set."""
    if not _whole(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number of messages, at least 1, got {batch_size!r} "
                         "(BATCH_SIZE in helpers/settings.py)")
    if not all(hasattr(dataset, "__len__") for dataset in (train_dataset, val_dataset, test_dataset)):
        return  # an iterable dataset: its size is known only when read
    yours = f" ({display_path(dataset_csv_path())}: 70 % of its rows train)" if settings.DATASET_CSV else ""
    if len(train_dataset) < batch_size:
        raise DatasetError(f"{len(train_dataset):,} training messages cannot fill one batch of {batch_size:,}: the "
                           "training loader drops an incomplete batch (drop_last=True), so it would have no batch to "
                           "train on. Set BATCH_SIZE in helpers/settings.py to at most "
                           f"{max(len(train_dataset), 1):,}, "
                           f"or use more data{yours}.")
    for name, dataset in (("validation", val_dataset), ("test", test_dataset)):
        if len(dataset) == 0:
            raise DatasetError(f"the {name} set holds no messages, so there is nothing to evaluate: use more "
                               f"data{yours}.")


def create_dataloaders(train_dataset, val_dataset, test_dataset, batch_size=settings.BATCH_SIZE, seed=settings.SEED,
                       num_workers=0):
    """The book's loaders: train shuffled and ``drop_last``; validation and test in order.

    Like the book, the training loader has no random generator of its own: every new pass over it
    (every epoch, and every evaluation, which reads it afresh) draws its shuffle from PyTorch's global
    generator. So ``torch.manual_seed(123)`` before a sequence of passes fixes the batches of all of
    them, and the notebooks seed exactly where the book does. ``seed`` (``None``: leave it alone) seeds
    that generator now, as the book does just before building its loaders.
    """
    check_loader_arguments(train_dataset, val_dataset, test_dataset, batch_size)
    if seed is not None:
        torch.manual_seed(seed)
    train_loader = DataLoader(train_dataset, batch_size=batch_size, shuffle=True,
                              num_workers=num_workers, drop_last=True)
    val_loader = DataLoader(val_dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, drop_last=False)
    test_loader = DataLoader(test_dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, drop_last=False)
    return train_loader, val_loader, test_loader


def get_spam_dataloaders(tokenizer=None, batch_size=settings.BATCH_SIZE, seed=settings.SEED, data_folder=None):
    """Everything notebooks 1–2 build, in one call: ``(train_loader, val_loader, test_loader)``.

    Val and test reuse the training set's ``max_length`` (120, or ``settings.MAX_LENGTH``), as on the slides.
    The settings are checked first (:func:`check_settings`).
    """
    check_settings()
    tokenizer = tokenizer or get_gpt2_tokenizer()
    paths = prepare_spam_splits(data_folder=data_folder)
    with reading_files():
        train_dataset = SpamDataset(paths["train"], tokenizer, max_length=settings.MAX_LENGTH)
        val_dataset = SpamDataset(paths["validation"], tokenizer, max_length=train_dataset.max_length)
        test_dataset = SpamDataset(paths["test"], tokenizer, max_length=train_dataset.max_length)
    return create_dataloaders(train_dataset, val_dataset, test_dataset, batch_size=batch_size, seed=seed)
