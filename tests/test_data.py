"""The data stage: acquisition, preparation, SpamDataset and the loaders."""
import hashlib
import io
import tracemalloc
import zipfile

import pandas as pd
import pytest
import torch

from helpers import (
    DatasetError,
    SpamDataset,
    create_balanced_dataset,
    create_dataloaders,
    download_sms_spam_dataset,
    encode_labels,
    get_gpt2_tokenizer,
    load_sms_spam,
    prepare_spam_splits,
    random_split,
    sms_spam_source,
)
from helpers.data import SMS_SPAM_SHA256, SPLIT_NAMES
from helpers.storage.paths import PROJECT_ROOT

SHIPPED_ZIP = PROJECT_ROOT / "datasets" / "sms_spam_collection.zip"

# Facts from shared/data/SOURCE.md, not from our code.
RAW_LINES = {"ham": 4827, "spam": 747}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- acquisition
def test_prestaged_zip_is_extracted_and_verified(staged_zip, offline_env):
    path = download_sms_spam_dataset(local_copy=staged_zip)
    assert path.parent.parent == offline_env
    assert sha256(path) == SMS_SPAM_SHA256
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5574
    assert sum(line.startswith("spam\t") for line in lines) == RAW_LINES["spam"]


def test_environment_variable_selects_the_staged_copy(staged_zip, offline_env, monkeypatch):
    monkeypatch.setenv("WORKBOOK_SMS_ZIP", str(staged_zip))
    assert sha256(download_sms_spam_dataset()) == SMS_SPAM_SHA256


def test_prestaged_extracted_file_is_accepted(staged_zip, offline_env, tmp_path):
    plain = tmp_path / "SMSSpamCollection"
    plain.write_bytes(zipfile.ZipFile(staged_zip).read("SMSSpamCollection"))
    assert sha256(download_sms_spam_dataset(local_copy=plain)) == SMS_SPAM_SHA256


def test_zip_dropped_into_data_folder_is_used_without_network(staged_zip, offline_env):
    offline_env.mkdir(parents=True)
    (offline_env / "sms_spam_collection.zip").write_bytes(staged_zip.read_bytes())
    path = download_sms_spam_dataset(urls=["http://127.0.0.1:9/never-contacted.zip"], retries=1)
    assert sha256(path) == SMS_SPAM_SHA256


def test_shipped_copy_is_used_without_network(staged_zip, offline_env, monkeypatch):
    monkeypatch.setattr("helpers.data.SHIPPED_ZIP", SHIPPED_ZIP)
    path = download_sms_spam_dataset(urls=["http://127.0.0.1:9/never-contacted.zip"], retries=1)
    assert sha256(path) == SMS_SPAM_SHA256
    assert sms_spam_source() == "datasets/sms_spam_collection.zip, the copy shipped with the workbook"
    assert not (offline_env / "sms_spam_collection.zip").exists()  # extracted in place, not copied


def test_shipped_copy_is_uci_zip_byte_for_byte():
    # sha256 of UCI's archive, from shared/data/SOURCE.md (not from our code)
    assert sha256(SHIPPED_ZIP) == "1587ea43e58e82b14ff1f5425c88e17f8496bfcdb67a583dbff9eefaf9963ce3"
    assert "CC BY 4.0" in (SHIPPED_ZIP.parent / "SOURCE.md").read_text(encoding="utf-8")


def test_student_can_skip_the_shipped_copy_and_download(staged_zip, offline_env, file_server, monkeypatch):
    monkeypatch.setattr("helpers.data.SHIPPED_ZIP", SHIPPED_ZIP)
    root, url = file_server
    (root / "sms.zip").write_bytes(staged_zip.read_bytes())
    path = download_sms_spam_dataset(urls=[f"{url}/sms.zip"], retries=1, shipped=False)
    assert sha256(path) == SMS_SPAM_SHA256
    assert (offline_env / "sms_spam_collection.zip").read_bytes() == staged_zip.read_bytes()
    assert sms_spam_source() == f"downloaded from {url[len('http://'):]} into {(offline_env / 'sms_spam_collection.zip').resolve()}"


def test_damaged_shipped_copy_falls_back_to_download_and_says_how_to_restore(staged_zip, offline_env, tmp_path, monkeypatch):
    damaged = tmp_path / "datasets" / "sms_spam_collection.zip"
    damaged.parent.mkdir()
    damaged.write_bytes(staged_zip.read_bytes()[:50_000])
    monkeypatch.setattr("helpers.data.SHIPPED_ZIP", damaged)
    with pytest.raises(DatasetError, match="shipped with the workbook is damaged.*git checkout"):
        download_sms_spam_dataset(urls=["http://127.0.0.1:9/sms.zip"], retries=1, timeout=2)
    assert damaged.exists()  # never deleted: it belongs to the checkout


def test_download_from_server_with_mirror(staged_zip, offline_env, file_server):
    root, url = file_server
    (root / "mirror.zip").write_bytes(staged_zip.read_bytes())
    path = download_sms_spam_dataset(urls=[f"{url}/missing.zip", f"{url}/mirror.zip"], retries=2, timeout=5)
    assert sha256(path) == SMS_SPAM_SHA256
    assert (offline_env / "sms_spam_collection.zip").read_bytes() == staged_zip.read_bytes()
    assert not list(offline_env.rglob("*.part"))


def test_offline_with_nothing_cached_says_what_to_do(offline_env):
    with pytest.raises(DatasetError) as info:
        download_sms_spam_dataset(urls=["http://127.0.0.1:9/sms.zip"], retries=1, timeout=2)
    message = str(info.value)
    assert "archive.ics.uci.edu" in message and "WORKBOOK_SMS_ZIP" in message and "data" in message
    assert not list(offline_env.rglob("*.zip")) and not list(offline_env.rglob("*.part"))


def test_truncated_downloaded_zip_is_refused_and_removed(staged_zip, offline_env, file_server):
    root, url = file_server
    (root / "sms.zip").write_bytes(staged_zip.read_bytes()[: 100_000])
    with pytest.raises(DatasetError, match="truncated or corrupted"):
        download_sms_spam_dataset(urls=[f"{url}/sms.zip"], retries=1)
    assert not (offline_env / "sms_spam_collection.zip").exists()
    assert not (offline_env / "sms_spam_collection" / "SMSSpamCollection").exists()
    # the next run with a good file works: nothing corrupted was left behind
    (root / "sms.zip").write_bytes(staged_zip.read_bytes())
    assert sha256(download_sms_spam_dataset(urls=[f"{url}/sms.zip"], retries=1)) == SMS_SPAM_SHA256


def test_truncated_prestaged_zip_names_the_file_and_keeps_it(staged_zip, offline_env, tmp_path):
    bad = tmp_path / "broken.zip"
    bad.write_bytes(staged_zip.read_bytes()[:-5000])
    with pytest.raises(DatasetError, match="broken.zip"):
        download_sms_spam_dataset(local_copy=bad)
    assert bad.exists()  # a user's own file is not deleted
    assert not (offline_env / "sms_spam_collection" / "SMSSpamCollection").exists()


def test_edited_data_file_fails_the_hash_check(staged_zip, offline_env, tmp_path):
    data = zipfile.ZipFile(staged_zip).read("SMSSpamCollection").replace(b"Free", b"Fr33", 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("SMSSpamCollection", data)
    edited = tmp_path / "edited.zip"
    edited.write_bytes(buffer.getvalue())
    with pytest.raises(DatasetError, match="sha256"):
        download_sms_spam_dataset(local_copy=edited)


def test_missing_prestaged_path_is_a_clear_error(offline_env, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        download_sms_spam_dataset(local_copy=tmp_path / "nowhere.zip")


def test_corrupted_cache_is_rebuilt(staged_zip, offline_env):
    path = download_sms_spam_dataset(local_copy=staged_zip)
    path.write_text("ham\tnot the real file\n")
    (offline_env / "sms_spam_collection.zip").write_bytes(staged_zip.read_bytes())
    assert sha256(download_sms_spam_dataset(urls=["http://127.0.0.1:9/x.zip"], retries=1)) == SMS_SPAM_SHA256


# --------------------------------------------------------------------------- preparation
@pytest.fixture(scope="module")
def raw_df(staged_zip, tmp_path_factory):
    return load_sms_spam(download_sms_spam_dataset(staged_zip, tmp_path_factory.mktemp("raw")))


def test_lecture_reading_gives_5572_rows(raw_df):
    assert len(raw_df) == 5572
    assert raw_df["Label"].value_counts().to_dict() == {"ham": 4825, "spam": 747}
    assert raw_df["Text"].notna().all()


def test_balancing_keeps_all_spam_and_samples_ham(raw_df):
    balanced = create_balanced_dataset(raw_df)
    assert balanced["Label"].value_counts().to_dict() == {"ham": 747, "spam": 747}
    spam_texts = set(raw_df.loc[raw_df["Label"] == "spam", "Text"])
    assert set(balanced.loc[balanced["Label"] == "spam", "Text"]) == spam_texts
    assert balanced.index.is_unique and set(balanced.index) <= set(raw_df.index)
    assert create_balanced_dataset(raw_df).equals(balanced)  # seeded


def test_label_encoding_and_unknown_label(raw_df):
    encoded = encode_labels(raw_df.head(20))
    assert encoded["Label"].tolist() == [{"ham": 0, "spam": 1}[x] for x in raw_df.head(20)["Label"]]
    bad = raw_df.head(5).copy()
    bad.loc[bad.index[2], "Label"] = "Spam"
    with pytest.raises(ValueError, match="unknown label.*Spam"):
        encode_labels(bad)
    with pytest.raises(ValueError, match="unknown label"):
        create_balanced_dataset(bad)


def test_empty_frame_is_refused():
    with pytest.raises(ValueError, match="no rows"):
        create_balanced_dataset(pd.DataFrame({"Label": [], "Text": []}))


def test_random_split_sizes_and_disjointness(raw_df):
    balanced = encode_labels(create_balanced_dataset(raw_df))
    train, val, test = random_split(balanced, 0.7, 0.1)
    assert (len(train), len(val), len(test)) == (1045, 149, 300)
    # together the three parts are exactly the balanced set, each row once (some texts repeat in the data)
    rows = sorted(map(tuple, pd.concat([train, val, test])[["Label", "Text"]].values.tolist()))
    assert rows == sorted(map(tuple, balanced[["Label", "Text"]].values.tolist()))
    with pytest.raises(ValueError, match="fractions"):
        random_split(balanced, 0.9, 0.2)


def test_prepare_twice_gives_identical_csvs(staged_zip, tmp_path):
    first = prepare_spam_splits(local_copy=staged_zip, data_folder=tmp_path / "a")
    second = prepare_spam_splits(local_copy=staged_zip, data_folder=tmp_path / "b")
    for name in SPLIT_NAMES:
        assert first[name].read_bytes() == second[name].read_bytes()
    rows = {name: len(pd.read_csv(first[name])) for name in SPLIT_NAMES}
    assert rows == {"train": 1045, "validation": 149, "test": 300}


# --------------------------------------------------------------------------- SpamDataset and loaders
@pytest.fixture(scope="module")
def tokenizer():
    return get_gpt2_tokenizer()


def test_spam_dataset_detects_120_and_pads_with_endoftext(split_dir, tokenizer):
    train = SpamDataset(split_dir / "train.csv", tokenizer)
    assert train.max_length == 120
    frame = pd.read_csv(split_dir / "train.csv")
    assert train.max_length == max(len(tokenizer.encode(t)) for t in frame["Text"])
    ids, label = train[0]
    n_real = len(tokenizer.encode(frame["Text"][0]))
    assert ids.shape == (120,) and ids.dtype == torch.long
    assert ids[:n_real].tolist() == tokenizer.encode(frame["Text"][0])
    assert (ids[n_real:] == 50256).all()
    assert label.item() == frame["Label"][0]


def test_spam_dataset_truncates(split_dir, tokenizer):
    short = SpamDataset(split_dir / "test.csv", tokenizer, max_length=10)
    frame = pd.read_csv(split_dir / "test.csv")
    for i in range(len(short)):
        ids, _ = short[i]
        assert ids.tolist()[: min(10, len(tokenizer.encode(frame["Text"][i])))] == tokenizer.encode(frame["Text"][i])[:10]
        assert len(ids) == 10


def test_spam_dataset_bad_inputs(tmp_path, tokenizer):
    with pytest.raises(FileNotFoundError, match="prepare_spam_splits"):
        SpamDataset(tmp_path / "missing.csv", tokenizer)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        SpamDataset(empty, tokenizer)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("Label,Text\nham,hello\nspam,what\n")  # not encoded yet
    with pytest.raises(ValueError, match="labels must be the class numbers 0, 1, ... \\(encode_labels"):
        SpamDataset(wrong, tokenizer)
    three = tmp_path / "three.csv"
    three.write_text("Label,Text\n0,hello\n2,what\n1,now\n")  # any number of classes
    assert [SpamDataset(three, tokenizer)[i][1].item() for i in range(3)] == [0, 2, 1]
    for bad, error, match in ((None, TypeError, "path of a split's CSV"), ):
        with pytest.raises(error, match=match):
            SpamDataset(bad, tokenizer)
    for kwargs, error, match in (({"tokenizer": "gpt2"}, TypeError, "tokenizer object with .encode"),
                                 ({"max_length": 12.5}, TypeError, "max_length must be a whole number"),
                                 ({"max_length": 0}, ValueError, "positive number of tokens"),
                                 ({"pad_token_id": 60000}, ValueError, "pad_token_id must be a token id")):
        with pytest.raises(error, match=match):
            SpamDataset(three, **{"tokenizer": tokenizer, **kwargs})
    header_only = tmp_path / "header.csv"
    header_only.write_text("Label,Text\n")
    with pytest.raises(ValueError, match="no rows"):
        SpamDataset(header_only, tokenizer)


def test_loaders_match_the_lecture(split_dir, tokenizer):
    train = SpamDataset(split_dir / "train.csv", tokenizer)
    val = SpamDataset(split_dir / "validation.csv", tokenizer, max_length=train.max_length)
    test = SpamDataset(split_dir / "test.csv", tokenizer, max_length=train.max_length)
    loaders = create_dataloaders(train, val, test, batch_size=8)
    assert [len(loader) for loader in loaders] == [130, 19, 38]
    inputs, targets = next(iter(loaders[0]))
    assert inputs.shape == (8, 120) and targets.shape == (8,)
    assert sum(len(y) for _, y in loaders[1]) == 149
    # seeded: two fresh sets of loaders yield the same epochs; each epoch is reshuffled
    epochs = lambda loader: [[y.tolist() for _, y in loader] for _ in range(2)]  # noqa: E731
    first, second = epochs(create_dataloaders(train, val, test)[0]), epochs(create_dataloaders(train, val, test)[0])
    assert first == second
    assert first[0] != first[1]



# --------------------------------------------------------------------------- 8. zip bomb
def test_zip_bomb_is_refused_while_streaming(tmp_path):
    bomb = tmp_path / "sms_spam_collection.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("SMSSpamCollection", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 20)
            for _ in range(64):  # 64 MB of zeros, ~64 KB compressed
                member.write(block)
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match="larger than 4 MB"):
            download_sms_spam_dataset(local_copy=bomb, data_folder=tmp_path / "data")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16e6  # the 64 MB member was never held whole
    assert not (tmp_path / "data" / "sms_spam_collection" / "SMSSpamCollection").exists()


def test_balancing_and_splitting_name_the_usual_mistakes(staged_zip, tmp_path):
    from helpers import create_balanced_dataset, encode_labels, load_sms_spam, random_split

    df = load_sms_spam(download_sms_spam_dataset(staged_zip, tmp_path))
    with pytest.raises(ValueError, match="already 0/1: balance the frame as loaded"):
        create_balanced_dataset(encode_labels(df))
    with pytest.raises(TypeError, match="splits a pandas DataFrame"):
        random_split("data/train.csv", 0.7, 0.1)


def test_an_encrypted_zip_or_a_folder_for_the_staged_zip_is_a_clear_error(tmp_path, monkeypatch):
    encrypted = tmp_path / "encrypted.zip"
    with zipfile.ZipFile(encrypted, "w") as archive:
        archive.writestr("SMSSpamCollection", b"ham\thello\n")
    data = bytearray(encrypted.read_bytes())
    data[6] |= 0x01  # the "encrypted" flag in the local header
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x01  # and in the central directory
    encrypted.write_bytes(bytes(data))
    monkeypatch.setenv("WORKBOOK_SMS_ZIP", str(encrypted))
    with pytest.raises(DatasetError, match="is encrypted"):
        download_sms_spam_dataset(data_folder=tmp_path / "data")
    monkeypatch.setenv("WORKBOOK_SMS_ZIP", str(tmp_path))
    with pytest.raises(DatasetError, match="is a folder; point WORKBOOK_SMS_ZIP at the zip file itself"):
        download_sms_spam_dataset(data_folder=tmp_path / "data")


# --------------------------------------------------------------------------- issue 32: items 17, 18, 23
def test_a_zip_whose_entry_python_cannot_decompress_is_a_dataset_error(tmp_path):
    """Item 17: an entry stored with Deflate64 (some Windows tools) raised zipfile's bare NotImplementedError."""
    deflate64 = tmp_path / "sms_spam_collection.zip"
    with zipfile.ZipFile(deflate64, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("SMSSpamCollection", b"ham\thello\n" * 50)
    data = bytearray(deflate64.read_bytes())
    data[8:10] = (9).to_bytes(2, "little")  # compression method 9, Deflate64, in the local header ...
    central = data.rfind(b"PK\x01\x02")
    data[central + 10:central + 12] = (9).to_bytes(2, "little")  # ... and in the central directory
    deflate64.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="compression method Python cannot read.*Deflate64.*WORKBOOK_SMS_ZIP"):
        download_sms_spam_dataset(local_copy=deflate64, data_folder=tmp_path / "data")


def test_a_split_of_the_data_folder_edited_to_hold_another_label_is_refused(monkeypatch, tmp_path, staged_zip,
                                                                            tokenizer, tiny_gpt):
    """Item 18: label 2 in a 2-class split was accepted, then failed inside the loss with IndexError."""
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path))
    paths = prepare_spam_splits(local_copy=staged_zip)
    frame = pd.read_csv(paths["train"])
    frame.loc[5, "Label"] = 2
    frame.to_csv(paths["train"], index=None)
    with pytest.raises(DatasetError, match=r"train.csv line 7: label 2, but the classes are 0 \(ham\), 1 \(spam\).*"
                                           r"prepare_spam_splits\(\)"):
        SpamDataset(paths["train"], tokenizer)
    # a file of three classes elsewhere (notebook 7's example) is read as it is; the model then says what fits
    from helpers import calc_loss_batch, calc_loss_loader, prepare_for_classification, train_classifier_simple

    three = tmp_path / "elsewhere" / "three_class_train.csv"
    three.parent.mkdir()
    frame.to_csv(three, index=None)
    dataset = SpamDataset(three, tokenizer, max_length=16)
    loader = create_dataloaders(dataset, dataset, dataset, batch_size=8)[0]
    model = prepare_for_classification(tiny_gpt())
    with pytest.raises(ValueError, match=r"three_class_train.csv line 7 .*label 2, but this classifier has 2 outputs.*"
                                         r"num_classes=3"):
        calc_loss_loader(loader, model, "cpu")
    with pytest.raises(ValueError, match="label 2, but this classifier has 2 outputs"):
        train_classifier_simple(model, loader, loader, torch.optim.AdamW(model.parameters()), "cpu", 1, 1, 1)
    with pytest.raises(ValueError, match="holds label 2, but the classifier has 2 outputs"):
        calc_loss_batch(torch.zeros(2, 16, dtype=torch.long), torch.tensor([0, 2]), model, "cpu")


def test_no_batch_is_made_longer_than_the_model_reads(monkeypatch, tmp_path, tokenizer, tiny_classifier):
    from helpers import calc_accuracy_loader, calc_loss_batch

    """Items 1 and 23: a message longer than the context (or max_length=5000) reached the model: IndexError from
    the embedding, or, for a 2 MB message, 420,000-token batches and 10 GB of memory."""
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")  # the test model reads 128 tokens
    long = tmp_path / "long.csv"
    pd.DataFrame({"Label": [0, 1, 0], "Text": ["short", "win " * 300, "ok " * 500_000]}).to_csv(long, index=None)
    tracemalloc.start()
    try:
        dataset = SpamDataset(long, tokenizer)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dataset.max_length == 128 and dataset[2][0].shape == (128,)  # cut to the context, as to a max_length
    assert peak < 100e6
    with pytest.raises(ValueError, match="max_length=5,000 is longer than the test model can read: its context is "
                                         "128 tokens. Pass max_length=128 or less"):
        SpamDataset(long, tokenizer, max_length=5000)
    model = tiny_classifier(context_length=64)  # a model that reads less than the dataset gives
    loader = create_dataloaders(dataset, dataset, dataset, batch_size=1)[1]
    with pytest.raises(ValueError, match="pads every message to 128 tokens, but this model reads at most 64"):
        calc_accuracy_loader(loader, model, "cpu")
    with pytest.raises(ValueError, match="messages of 128 tokens, but the model reads at most 64"):
        calc_loss_batch(*next(iter(loader)), model, "cpu")


def test_loaders_refuse_a_batch_size_they_cannot_fill(split_dir, tokenizer):
    """Item 5: 7 training rows and a batch of 8 gave a loader of 0 batches, noticed only after training started."""
    from helpers import settings

    train = SpamDataset(split_dir / "train.csv", tokenizer)
    small = torch.utils.data.Subset(train, range(7))
    with pytest.raises(DatasetError, match="7 training messages cannot fill one batch of 8: the training loader drops "
                                           "an incomplete batch.*BATCH_SIZE in helpers/settings.py to at most 7"):
        create_dataloaders(small, train, train, batch_size=8)
    with pytest.raises(DatasetError, match="1,045 training messages cannot fill one batch of 10,000"):
        create_dataloaders(train, train, train, batch_size=10_000)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a whole number"):
            create_dataloaders(train, train, train, batch_size=bad)
    with pytest.raises(DatasetError, match="the validation set holds no messages"):
        create_dataloaders(train, torch.utils.data.Subset(train, []), train)
    assert settings.BATCH_SIZE == 8
