"""The data stage of the lecture: SMS Spam Collection → balanced splits → padded batches.

Functions keep the slide names: ``download_sms_spam_dataset``, ``create_balanced_dataset``,
``random_split`` and ``SpamDataset``.
"""
import hashlib
import os
import zipfile
import zlib
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from . import settings
from .storage.download import DownloadError, atomic_write_bytes, download_file, sha256_of
from .storage.paths import ENV_SMS_ZIP, PROJECT_ROOT, data_dir, display_path
from .tokenizer import check_max_length, check_tokenizer, get_gpt2_tokenizer

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
    """The dataset is missing, corrupted or cannot be fetched; the message says what to do."""


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


def load_labelled_csv(path, class_names=None) -> pd.DataFrame:
    """Your own data: a CSV with a ``text`` and a ``label`` column, as the lecture's ``Label`` (0 … n-1) and ``Text``.

    Labels may be the class names (``class_names``, default ``settings.CLASS_NAMES``) or their ids 0 … n-1.
    """
    names = list(class_names or settings.CLASS_NAMES)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the dataset {path}: {exc}. Set DATASET_CSV in helpers/settings.py to a CSV "
                           "file with a text and a label column.") from exc
    missing = [column for column in ("text", "label") if column not in frame.columns]
    if missing:
        raise DatasetError(f"{path} has the columns {list(frame.columns)}, but needs {missing}: a text and a label "
                           "column (docs/adapting.md)")
    labels = frame["label"]
    ids = {name: i for i, name in enumerate(names)}
    if labels.map(lambda v: isinstance(v, str)).all():
        unknown = sorted(set(labels) - set(names))
        encoded = labels.map(ids)
    else:
        unknown = sorted(set(labels) - set(range(len(names))))
        encoded = labels
    if unknown:
        raise DatasetError(f"{path} has labels {unknown[:5]} that are not among CLASS_NAMES {names} (or their ids "
                           f"0 … {len(names) - 1}): set CLASS_NAMES in helpers/settings.py")
    result = pd.DataFrame({"Label": encoded.astype(int), "Text": frame["text"].astype(str)})
    check_frame(result)  # rows, and the two columns
    return result


def prepare_spam_splits(local_copy=None, data_folder=None) -> dict:
    """Run the whole data stage and write ``train.csv``, ``validation.csv`` and ``test.csv``.

    Deterministic: every run writes the same bytes, so notebooks can call it to rebuild what
    notebook 1 made. Returns ``{"train": path, "validation": path, "test": path}``.
    """
    if settings.DATASET_CSV is not None:  # your own data (helpers/settings.py, docs/adapting.md)
        splits = random_split(load_labelled_csv(settings.DATASET_CSV), 0.7, 0.1)
    else:
        raw = load_sms_spam(download_sms_spam_dataset(local_copy, data_folder))
        splits = random_split(encode_labels(create_balanced_dataset(raw)), 0.7, 0.1)
    paths = split_paths(data_folder)
    for split, path in zip(splits, paths.values()):
        csv = split.to_csv(index=None).encode("utf-8")
        if not (path.is_file() and path.read_bytes() == csv):
            atomic_write_bytes(path, csv)
    return paths


# --------------------------------------------------------------------------- PyTorch side
def read_split(csv_file) -> pd.DataFrame:
    """One split's CSV, checked: it exists, has ``Label`` and ``Text``, integer labels from 0, and text in every row."""
    csv_file = Path(csv_file) if isinstance(csv_file, (str, Path)) else csv_file
    if not isinstance(csv_file, Path):
        raise TypeError(f"csv_file must be the path of a split's CSV file (e.g. data/train.csv), got "
                        f"{type(csv_file).__name__}")
    if not csv_file.is_file():
        raise FileNotFoundError(f"{csv_file} does not exist; run prepare_spam_splits() (notebook 1) to write it.")
    try:
        data = pd.read_csv(csv_file)
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{csv_file} is empty; run prepare_spam_splits() to rebuild it.") from exc
    try:
        check_frame(data)
    except ValueError as exc:
        raise ValueError(f"{csv_file}: {exc}; run prepare_spam_splits() to rebuild it.") from exc
    if not pd.api.types.is_integer_dtype(data["Label"]) or data["Label"].min() < 0:
        bad = data["Label"][~data["Label"].astype(str).str.fullmatch(r"\d+")].unique()[:3].tolist()
        raise ValueError(f"{csv_file}: labels must be the class numbers 0, 1, ... (encode_labels does that), "
                         f"found {bad}")
    if data["Text"].isna().any():
        raise ValueError(f"{csv_file} has rows without text: {data.index[data['Text'].isna()].tolist()[:5]}")
    return data


def check_dataset_arguments(tokenizer, max_length, pad_token_id) -> None:
    """Clear errors for arguments ``SpamDataset`` cannot use (checked before any message is read)."""
    check_tokenizer(tokenizer)
    check_max_length(max_length)
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int):
        raise TypeError(f"pad_token_id must be a whole number, got {type(pad_token_id).__name__}: {pad_token_id!r}")
    vocabulary = getattr(tokenizer, "n_vocab", None)
    if pad_token_id < 0 or (vocabulary is not None and pad_token_id >= vocabulary):
        raise ValueError(f"pad_token_id must be a token id of the vocabulary (50256 is <|endoftext|>), "
                         f"got {pad_token_id}")


class SpamDataset(Dataset):
    """Messages of one split as fixed-length token-id tensors, with their labels.

    ``max_length=None`` uses the longest message of this file (120 tokens for ``train.csv``);
    longer messages are truncated and shorter ones padded with ``pad_token_id`` (``<|endoftext|>``).
    """

    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        check_dataset_arguments(tokenizer, max_length, pad_token_id)
        self.data = read_split(csv_file)  # pd.read_csv(csv_file), with clear errors for a missing or wrong file
        self.tokenizer = tokenizer
        self.pad_token_id = pad_token_id

        # Auto-detect the longest message if max_length is not given
        if max_length is None:
            self.max_length = max(len(tokenizer.encode(text, disallowed_special=())) for text in self.data["Text"])
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


def create_dataloaders(train_dataset, val_dataset, test_dataset, batch_size=settings.BATCH_SIZE, seed=settings.SEED,
                       num_workers=0):
    """The book's loaders: train shuffled and ``drop_last``; validation and test in order.

    Like the book, the training loader has no random generator of its own: every new pass over it
    (every epoch, and every evaluation, which reads it afresh) draws its shuffle from PyTorch's global
    generator. So ``torch.manual_seed(123)`` before a sequence of passes fixes the batches of all of
    them, and the notebooks seed exactly where the book does. ``seed`` (``None``: leave it alone) seeds
    that generator now, as the book does just before building its loaders.
    """
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
    """
    tokenizer = tokenizer or get_gpt2_tokenizer()
    paths = prepare_spam_splits(data_folder=data_folder)
    train_dataset = SpamDataset(paths["train"], tokenizer, max_length=settings.MAX_LENGTH)
    val_dataset = SpamDataset(paths["validation"], tokenizer, max_length=train_dataset.max_length)
    test_dataset = SpamDataset(paths["test"], tokenizer, max_length=train_dataset.max_length)
    return create_dataloaders(train_dataset, val_dataset, test_dataset, batch_size=batch_size, seed=seed)
