"""Activity checkers, tried as a student would: untouched cells never crash, every usual wrong answer is
rejected with the hint that names its mistake, and right answers written in several styles are accepted."""

import re
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from helpers import (SpamDataset, calc_loss_batch, calc_loss_loader, check_activity_1, check_activity_2,
                     check_activity_3, check_activity_4, classify_review,
                     create_dataloaders, download_sms_spam_dataset,
                     load_sms_spam, random_split, spam_checker)
from helpers.storage.paths import PROJECT_ROOT

SOLUTIONS = PROJECT_ROOT / "notebooks" / "solutions"


def run_solution(name, namespace):
    exec(compile((SOLUTIONS / name).read_text(), name, "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def df(staged_zip, tmp_path_factory):
    return load_sms_spam(download_sms_spam_dataset(staged_zip, tmp_path_factory.mktemp("raw")))


@pytest.fixture(scope="module")
def paths(split_dir):
    return {name: split_dir / f"{name}.csv" for name in ("train", "validation", "test")}


# --------------------------------------------------------------------------- activity 1
def test_activity_1_untouched(df, capsys):
    assert check_activity_1(df) is False
    out = capsys.readouterr().out
    assert "not attempted yet: ham_count, spam_count, imbalance_ratio, my_balanced_df, my_splits" in out
    assert "❌" not in out


@pytest.mark.parametrize("ratio", [6.5, 6.46, 6.459, 4825 / 747, np.float64(6.5), torch.tensor(6.46)])
def test_activity_1_accepts_the_ratio_as_a_person_states_it(df, capsys, ratio):
    check_activity_1(df, imbalance_ratio=ratio)
    out = capsys.readouterr().out
    assert "✅ imbalance_ratio ≈" in out and "about 6.5 ham messages per spam message" in out
    assert "6.459170" not in out  # rounded for reading


def balanced(df, labels="words"):
    spam = df[df["Label"] == "spam"]
    frame = pd.concat([df[df["Label"] == "ham"].sample(n=len(spam), random_state=1), spam])
    if labels == "numbers":
        frame = frame.assign(Label=frame["Label"].map({"ham": 0, "spam": 1}))
    return frame


@pytest.mark.parametrize("labels", ["words", "numbers"])
def test_activity_1_right_answers_in_several_styles(df, capsys, labels):
    frame = balanced(df, labels)
    counts = df["Label"].value_counts()
    assert check_activity_1(df, ham_count=counts["ham"], spam_count=747.0, imbalance_ratio=6.5,
                            my_balanced_df=frame, my_splits=list(random_split(frame, 0.7, 0.1))) is True
    out = capsys.readouterr().out
    assert "747 ham and 747 spam" in out and "1045 / 149 / 300" in out and "All correct" in out


def test_activity_1_solution_passes(df, capsys):
    ns = run_solution("activity_1.py", {"df": df, "pd": pd, "random_split": random_split})
    assert check_activity_1(df, ham_count=ns["ham_count"], spam_count=ns["spam_count"],
                            imbalance_ratio=ns["imbalance_ratio"], my_balanced_df=ns["my_balanced_df"],
                            my_splits=ns["my_splits"]) is True
    assert "All correct" in capsys.readouterr().out


WRONG_1 = [
    (dict(ham_count=4827), "ham_count = 4827, expected 4825"),
    (dict(ham_count=5572), "is every message; count only the ham ones"),
    (dict(spam_count=4825), "is the number of ham messages; count the spam ones"),
    (dict(spam_count="many"), "spam_count should be a number, got str"),
    (dict(imbalance_ratio=747 / 4825), "is spam per ham; the ratio is ham per spam"),
    (dict(imbalance_ratio=13.4), "is the share of spam among all messages"),
    (dict(imbalance_ratio=5572 / 747), "divides all messages by the spam ones"),
    (dict(imbalance_ratio=7), "expected about 6.46"),
    (dict(my_balanced_df="df"), "my_balanced_df should be a DataFrame"),
    (dict(my_balanced_df="all ham"), "keeps all 4825 ham messages; undersample ham to 747"),
    (dict(my_balanced_df="twice"), "holds some rows twice"),
    (dict(my_splits=(1, 2)), "my_splits should be the three DataFrames"),
    (dict(my_splits="whole df"), "splits all 5572 messages; split the balanced DataFrame"),
    (dict(my_splits="80/10"), "expected 1045 / 149 / 300"),
]


@pytest.mark.parametrize("answer, hint", WRONG_1, ids=[h[:30] for _, h in WRONG_1])
def test_activity_1_wrong_answers_get_specific_hints(df, capsys, answer, hint):
    frame = balanced(df)
    ham = df[df["Label"] == "ham"]
    spam = df[df["Label"] == "spam"]
    stand_ins = {"all ham": df, "twice": pd.concat([ham.sample(n=747, replace=True, random_state=0), spam]),
                 "whole df": random_split(df, 0.7, 0.1), "80/10": random_split(frame, 0.8, 0.1)}
    answer = {key: stand_ins.get(value, value) if isinstance(value, str) else value for key, value in answer.items()}
    assert check_activity_1(df, **answer) is False
    out = capsys.readouterr().out
    assert "❌ " in out and hint in out, out


def test_activity_1_names_the_students_variables(df, capsys):
    cell = {"df": df, "frame": balanced(df), "check_activity_1": check_activity_1}  # a notebook's namespace
    exec("my_own_balance = frame.head(10)\ncheck_activity_1(df, my_balanced_df=my_own_balance)", cell)
    assert "❌ my_own_balance has" in capsys.readouterr().out
    exec("check_activity_1(df, my_balanced_df=frame.head(10))", cell)  # an expression: the keyword is the name
    assert "❌ my_balanced_df has" in capsys.readouterr().out


# --------------------------------------------------------------------------- activity 2
class Good(Dataset):
    """The book's SpamDataset, written another way: padding in __getitem__, labels read up front."""

    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        frame = pd.read_csv(csv_file)
        self.labels = frame["Label"].tolist()
        self.ids = [tokenizer.encode(text) for text in frame["Text"]]
        self.max_length = max_length or max(map(len, self.ids))
        self.pad = pad_token_id

    def tokens(self, index):
        ids = self.ids[index][: self.max_length]
        return ids + [self.pad] * (self.max_length - len(ids))

    def __getitem__(self, index):
        return torch.tensor(self.tokens(index)), torch.tensor(self.labels[index])

    def __len__(self):
        return len(self.labels)


def variant(name, **methods):
    return type(name, (Good,), methods)


def _left(self, index):
    ids = self.ids[index][: self.max_length]
    return [self.pad] * (self.max_length - len(ids)) + ids


def _pad_then_truncate(self, index):  # pads to the file's longest message, truncates afterwards
    longest = max(map(len, self.ids))
    return (self.ids[index] + [self.pad] * (longest - len(self.ids[index])))[: self.max_length]


def _own_max_init(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
    Good.__init__(self, csv_file, tokenizer, None, pad_token_id)  # ignores max_length


def _chars_init(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
    Good.__init__(self, csv_file, tokenizer, max_length, pad_token_id)
    if max_length is None:
        self.max_length = int(pd.read_csv(csv_file)["Text"].str.len().max())


WRONG_2 = [
    (variant("NoPadding", tokens=lambda self, i: self.ids[i][: self.max_length]), "no padding"),
    (variant("LeftPadding", tokens=_left), "starts with padding: pad on the right"),
    (variant("PadThenTruncate", tokens=_pad_then_truncate), "truncate to it first, then pad every message up to max_length"),
    (variant("OwnMax", __init__=_own_max_init), "the longest message of this file, instead of the max_length=120"),
    (variant("NoTruncation", tokens=lambda self, i: self.ids[i] + [self.pad] * (self.max_length - len(self.ids[i]))),
     "long messages are not truncated"),
    (variant("KeepsEnd", tokens=lambda self, i: self.ids[i][-self.max_length:] + [self.pad] * (self.max_length - len(self.ids[i][-self.max_length:]))),
     "keeps the END of a long message"),
    (variant("CharMax", __init__=_chars_init), "the longest message in characters"),
    (variant("ZeroPad", tokens=lambda self, i: Good.tokens(self, i) if len(self.ids[i]) >= self.max_length
             else self.ids[i] + [0] * (self.max_length - len(self.ids[i]))), "is padded with id 0; pad with pad_token_id"),
    (variant("Lists", __getitem__=lambda self, i: (self.tokens(i), torch.tensor(self.labels[i]))),
     "returns the token ids as list; batching needs a tensor"),
    (variant("FloatIds", __getitem__=lambda self, i: (torch.tensor(self.tokens(i), dtype=torch.float), torch.tensor(self.labels[i]))),
     "the token ids are torch.float32"),
    (variant("FloatLabels", __getitem__=lambda self, i: (torch.tensor(self.tokens(i)), torch.tensor(self.labels[i], dtype=torch.float))),
     "the label is torch.float32; cross_entropy needs class indices"),
    (variant("IntLabel", __getitem__=lambda self, i: (torch.tensor(self.tokens(i)), self.labels[i])),
     "returns the label as int; return a tensor"),
    (variant("NoReturn", __getitem__=lambda self, i: None), "__getitem__ returns None: is `return` missing?"),
    (variant("NoLen", __len__=lambda self: None), "__len__ returns None: is `return` missing?"),
    (variant("Crashes", __getitem__=lambda self, i: self.encoded_texts[i]), "raised AttributeError"),
]


@pytest.mark.parametrize("cls, hint", WRONG_2, ids=[c.__name__ for c, _ in WRONG_2])
def test_activity_2_wrong_datasets_get_specific_hints(paths, tokenizer, capsys, cls, hint):
    assert check_activity_2(cls, paths=paths, tokenizer=tokenizer) is False
    out = capsys.readouterr().out
    assert "❌ " in out and hint in out, out


class Untouched(Dataset):
    """The notebook's skeleton, as handed out."""

    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        self.data = pd.read_csv(csv_file)
        self.encoded_texts = ...
        if max_length is None:
            self.max_length = ...
        else:
            self.max_length = max_length
            ...
        ...

    def __getitem__(self, index):
        ...

    def __len__(self):
        ...


class HalfDone(Untouched):
    def __init__(self, csv_file, tokenizer, max_length=None, pad_token_id=50256):
        self.data = pd.read_csv(csv_file)
        self.encoded_texts = ...
        self.max_length = max(len(ids) for ids in self.encoded_texts)


def test_activity_2_half_done_skeleton(paths, tokenizer, capsys):
    assert check_activity_2(HalfDone, paths=paths, tokenizer=tokenizer) is False
    assert "raised TypeError: 'ellipsis' object is not iterable (is a ... still left in your code?)" in capsys.readouterr().out


def test_activity_2_untouched(paths, tokenizer, capsys):
    assert check_activity_2(Untouched, ..., ..., ..., ..., ..., paths=paths, tokenizer=tokenizer) is False
    out = capsys.readouterr().out
    assert ("not attempted yet: MySpamDataset, my_train_dataset, my_val_dataset, my_test_dataset, my_train_loader, "
            "my_val_loader, my_test_loader, first_inputs, first_labels, n_padding") in out
    assert "❌" not in out


def book_style(paths, tokenizer):
    return run_solution("activity_2.py", {"paths": paths, "tokenizer": tokenizer})  # it imports what it needs


def test_activity_2_solution_passes(paths, tokenizer, capsys):
    ns = book_style(paths, tokenizer)
    assert check_activity_2(ns["MySpamDataset"], ns["my_train_dataset"], ns["my_val_dataset"], ns["first_inputs"],
                            ns["first_labels"], ns["n_padding"], **loaders_of(ns), paths=paths, tokenizer=tokenizer)
    out = capsys.readouterr().out
    assert "same 1045 + 149 + 300 items as SpamDataset" in out and "All correct" in out
    assert "my_train_loader: 130 batches of 8" in out and "my_val_loader: 19 batches of 8 (the last holds 5)" in out
    assert "my_test_loader: 38 batches of 8 (the last holds 4)" in out


def loaders_of(ns):
    return {key: ns[key] for key in ("my_test_dataset", "my_train_loader", "my_val_loader", "my_test_loader")}


@pytest.mark.parametrize("key, loader, hint", [
    ("my_train_loader", lambda ds: DataLoader(ds["train"], batch_size=8, shuffle=True), "drop_last=False: the last, "
     "incomplete batch (1045 = 130 × 8 + 5) must be dropped"),
    ("my_train_loader", lambda ds: DataLoader(ds["train"], batch_size=8, drop_last=True), "is not shuffled"),
    ("my_val_loader", lambda ds: DataLoader(ds["validation"], batch_size=8, drop_last=True), "keep the last, smaller "
     "batch (drop_last=False)"),
    ("my_test_loader", lambda ds: DataLoader(ds["test"], batch_size=8, shuffle=True), "test batches need no new order"),
    ("my_val_loader", lambda ds: DataLoader(ds["validation"], batch_size=16), "batch_size=16; the lecture's is 8 "
     "(10 batches instead of 19)"),
    ("my_test_loader", lambda ds: DataLoader(ds["validation"], batch_size=8), "has 19 batches of 149 messages, "
     "expected 38 of 300: is it built from the test dataset?"),
    ("my_val_loader", lambda ds: ds["validation"], "should be a DataLoader(dataset, batch_size=8, ...), got"),
])
def test_activity_2_wrong_loaders_get_specific_hints(paths, tokenizer, capsys, key, loader, hint):
    ns = book_style(paths, tokenizer)
    datasets = {"train": ns["my_train_dataset"], "validation": ns["my_val_dataset"], "test": ns["my_test_dataset"]}
    answers = loaders_of(ns) | {key: loader(datasets)}
    assert check_activity_2(ns["MySpamDataset"], ns["my_train_dataset"], ns["my_val_dataset"], ns["first_inputs"],
                            ns["first_labels"], ns["n_padding"], **answers, paths=paths, tokenizer=tokenizer) is False
    out = capsys.readouterr().out
    assert hint in out, out


def test_activity_2_other_right_answers(paths, tokenizer, capsys):
    train = Good(paths["train"], tokenizer)
    val = Good(paths["validation"], tokenizer, max_length=train.max_length)
    loader = create_dataloaders(train, val, val)[0]
    inputs, labels = next(iter(loader))
    n_padding = (inputs[0] == 50256).sum()  # a tensor is a fine count too
    test = Good(paths["test"], tokenizer, max_length=train.max_length)
    three = dict(zip(("my_train_loader", "my_val_loader", "my_test_loader"), create_dataloaders(train, val, test)))
    assert check_activity_2(Good, train, val, inputs, labels, n_padding, my_test_dataset=test, **three, paths=paths,
                            tokenizer=tokenizer) is True
    assert check_activity_2(SpamDataset, paths=paths, tokenizer=tokenizer) is False  # helpers' own class passes...
    assert "✅ MySpamDataset gives the same" in capsys.readouterr().out  # ...the other answers are missing


def test_activity_2_wrong_loader_answers(paths, tokenizer, capsys):
    ns = book_style(paths, tokenizer)
    own_val = ns["MySpamDataset"](paths["validation"], tokenizer)  # its own longest message
    inputs, labels = ns["first_inputs"], ns["first_labels"]
    assert check_activity_2(my_train_dataset=ns["my_val_dataset"], my_val_dataset=own_val, first_inputs=inputs[:, :50],
                            first_labels=labels[:4], paths=paths, tokenizer=tokenizer) is False
    out = capsys.readouterr().out
    assert "my_train_dataset holds 149 messages, expected 1045" in out
    assert "reuse the training length so every batch has the same shape" in out
    assert "has shape [8, 50], expected [batch size, 120]" in out
    assert "first_labels has 4 labels for 8 messages" in out
    wrong_train = ns["MySpamDataset"](paths["train"], tokenizer, max_length=own_val.max_length)
    assert check_activity_2(my_train_dataset=wrong_train, paths=paths, tokenizer=tokenizer) is False
    assert "the longest message of the validation file; the length comes from the training file" in capsys.readouterr().out
    assert check_activity_2(first_inputs=inputs, n_padding=120 - ns["n_padding"], paths=paths, tokenizer=tokenizer) is False
    assert "counts the real tokens" in capsys.readouterr().out
    assert check_activity_2(first_inputs=inputs, n_padding="37", paths=paths, tokenizer=tokenizer) is False
    assert "n_padding should be a number, got str" in capsys.readouterr().out


# --------------------------------------------------------------------------- activity 3
def reference_accuracy(data_loader, model, device, num_batches=None):
    model.eval()
    correct, total = 0, 0
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    for i, (inputs, targets) in enumerate(data_loader):
        if i >= num_batches:
            break
        with torch.no_grad():
            predictions = model(inputs.to(device))[:, -1, :].argmax(dim=-1)
        correct += (predictions == targets.to(device)).sum().item()
        total += len(targets)
    return correct / total


def accuracy_variant(pick=lambda o: o[:, -1, :], flip=False, scale="fraction", limit=True, batches="all"):
    def accuracy(data_loader, model, device, num_batches=None):
        correct, total, per_batch = 0, 0, []
        for i, (x, y) in enumerate(data_loader):
            if limit and num_batches is not None and i >= num_batches:
                break
            if batches == "first" and i == 1:
                break
            hits = (pick(model(x.to(device))).argmax(-1) == ((1 - y) if flip else y).to(device)).sum().item()
            correct, total = correct + hits, total + len(y)
            per_batch.append(hits / len(y))
        if scale == "percent":
            return 100 * correct / total
        if scale == "count":
            return correct
        if scale == "dataset":
            return correct / len(data_loader.dataset)
        if scale == "batch size":
            return correct / (len(per_batch) * data_loader.batch_size)
        if scale == "batch mean":
            return sum(per_batch) / len(per_batch)
        return correct / total
    return accuracy


def no_return_accuracy(data_loader, model, device, num_batches=None):
    correct = sum((model(x)[:, -1, :].argmax(-1) == y).sum().item() for x, y in data_loader)  # noqa: F841


def too_many_batches(data_loader, model, device, num_batches=None):
    batches = iter(data_loader)
    correct = total = 0
    for _ in range(len(data_loader) if num_batches is None else num_batches):
        x, y = next(batches)
        correct, total = correct + (model(x)[:, -1, :].argmax(-1) == y).sum().item(), total + len(y)
    return correct / total


WRONG_ACCURACY = {
    "more batches than there are": (too_many_batches, "use min(num_batches, len(data_loader))"),
    "constant": (lambda *args, **kwargs: 0.5, "returns 0.5 whatever the data"),
    "first token": (accuracy_variant(pick=lambda o: o[:, 0, :]), "FIRST token's logits"),
    "mean-pooled": (accuracy_variant(pick=lambda o: o.mean(dim=1)), "averages the logits over all positions"),
    "ignores num_batches": (accuracy_variant(limit=False), "uses every batch although num_batches was given"),
    "first batch only": (accuracy_variant(batches="first"), "is the accuracy of the first batch only"),
    "inverted": (accuracy_variant(flip=True), "counts the WRONG predictions"),
    "percentage": (accuracy_variant(scale="percent"), "is a percentage"),
    "count": (accuracy_variant(scale="count"), "is the number of correct predictions"),
    "whole dataset": (accuracy_variant(scale="dataset"), "divides by len(data_loader.dataset)"),
    "batches x batch size": (accuracy_variant(scale="batch size"), "the last batch is shorter"),
    "mean of batches": (accuracy_variant(scale="batch mean"), "averages the batch accuracies"),
    "no return": (no_return_accuracy, "returns None: is `return` missing?"),
    "crashes": (lambda loader, model, device, num_batches=None: model(loader), "raised"),
    "string": (lambda *args, **kwargs: "0.69", "returned str; return a number between 0 and 1"),
}


def loss_variant(kind):
    def loss(input_batch, target_batch, model, device):
        logits = model(input_batch.to(device))
        target = target_batch.to(device)
        if kind == "item":
            return F.cross_entropy(logits[:, -1, :], target).item()
        if kind == "all positions":
            return F.cross_entropy(logits.flatten(0, 1), target.repeat_interleave(logits.shape[1]))
        if kind == "softmax":
            return F.cross_entropy(torch.softmax(logits[:, -1, :], dim=-1), target)
        if kind == "first":
            return F.cross_entropy(logits[:, 0, :], target)
        if kind == "sum":
            return F.cross_entropy(logits[:, -1, :], target, reduction="sum")
        if kind == "mean-pooled":
            return F.cross_entropy(logits.mean(dim=1), target)
        if kind == "nll":
            return F.nll_loss(logits[:, -1, :], target)
        if kind == "none":
            return F.cross_entropy(logits[:, -1, :], target, reduction="none")
        if kind == "detached":
            return F.cross_entropy(logits[:, -1, :], target).detach()
        if kind == "no return":
            F.cross_entropy(logits[:, -1, :], target)
    return loss


WRONG_LOSS = {
    "item": "returns a float; return the loss tensor itself (no .item())",
    "all positions": "averages over every token position",
    "softmax": "applies softmax before cross_entropy",
    "first": "uses the FIRST token's logits",
    "sum": 'reduction="sum"',
    "mean-pooled": "averages the logits over all positions",
    "nll": "uses nll_loss on raw logits",
    "none": "returns a loss of shape [8]",
    "detached": "returns a loss without gradient",
    "no return": "returns None: is `return` missing?",
}


@pytest.fixture(scope="module")
def real(split_dir, tokenizer, tiny_classifier):
    """A real validation loader (8, ..., 5 messages) and a tiny classifier."""
    train = SpamDataset(split_dir / "train.csv", tokenizer)
    val = SpamDataset(split_dir / "validation.csv", tokenizer, max_length=train.max_length)
    return create_dataloaders(train, val, val)[1], tiny_classifier()


@pytest.mark.parametrize("mistake", list(WRONG_ACCURACY))
def test_activity_3_wrong_accuracy_gets_specific_hint(real, capsys, mistake):
    fn, hint = WRONG_ACCURACY[mistake]
    loader, model = real
    assert check_activity_3(fn, ..., loader, model, "cpu") is False
    out = capsys.readouterr().out
    assert "❌ my_calc_accuracy_loader" in out and hint in out, out


@pytest.mark.parametrize("mistake", list(WRONG_LOSS))
def test_activity_3_wrong_loss_gets_specific_hint(real, capsys, mistake):
    loader, model = real
    assert check_activity_3(..., loss_variant(mistake), loader, model, "cpu") is False
    out = capsys.readouterr().out
    assert "❌ my_calc_loss_batch" in out and WRONG_LOSS[mistake] in out, out


def other_style_accuracy(data_loader, model, device, num_batches=None):
    """Right too: zip over a range, tensors accumulated, a tensor returned."""
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    hits = torch.tensor([])
    for _, (x, y) in zip(range(n), data_loader):
        with torch.no_grad():
            hits = torch.cat([hits, (model(x.to(device))[:, -1].argmax(-1) == y.to(device)).float().cpu()])
    return hits.mean()


def other_style_loss(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))[:, -1, :]
    return torch.nn.CrossEntropyLoss()(logits, target_batch.to(device))


def log_softmax_loss(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))[:, -1, :]
    return F.nll_loss(torch.log_softmax(logits, dim=-1), target_batch.to(device))


@pytest.mark.parametrize("accuracy, loss", [
    ("solution", "solution"), (other_style_accuracy, other_style_loss), (reference_accuracy, log_softmax_loss)])
def test_activity_3_right_answers_pass(real, capsys, accuracy, loss):
    ns = run_solution("activity_3.py", {"torch": torch})
    accuracy = ns["my_calc_accuracy_loader"] if accuracy == "solution" else accuracy
    loss = ns["my_calc_loss_batch"] if loss == "solution" else loss
    loader, model = real
    assert check_activity_3(accuracy, loss, loader, model, "cpu", my_calc_loss_loader=ns["my_calc_loss_loader"]) \
        is True, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "passes the probe" in out and "All correct" in out
    assert "my_calc_loss_loader passes the probe (the mean of the batch losses, num_batches)" in out


def test_activity_3_accepts_a_plain_list_of_batches(real, capsys):
    loader, model = real
    batches = list(loader)[:3]
    assert check_activity_3(reference_accuracy, other_style_loss, batches, model, "cpu",
                            my_calc_loss_loader=calc_loss_loader) is True


def test_activity_3_untouched(real, capsys):
    def my_calc_accuracy_loader(data_loader, model, device, num_batches=None):
        ...

    def my_calc_loss_batch(input_batch, target_batch, model, device):
        """Return the loss tensor."""
        ...

    loader, model = real
    assert check_activity_3(my_calc_accuracy_loader, my_calc_loss_batch, loader, model, "cpu") is False
    out = capsys.readouterr().out
    assert "not attempted yet: my_calc_accuracy_loader, my_calc_loss_batch, my_calc_loss_loader" in out
    assert "❌" not in out


def loss_loader_variant(mistake):
    """calc_loss_loader with one of the usual mistakes."""
    def fn(data_loader, model, device, num_batches=None):
        batches = list(data_loader)
        n = len(batches) if num_batches is None or mistake == "all batches" else min(num_batches, len(batches))
        n = n + 1 if mistake == "one batch more" else n
        used = batches[:n]
        losses = [calc_loss_batch(x, y, model, device).item() for x, y in used]
        if mistake == "sum":
            return sum(losses)
        if mistake == "by loader length":
            return sum(losses) / len(batches)
        if mistake == "per message":
            return sum(l * len(y) for l, (_, y) in zip(losses, used)) / sum(len(y) for _, y in used)
        if mistake == "no return":
            return None
        return sum(losses) / n
    return fn


@pytest.mark.parametrize("mistake, hint", [
    ("sum", "never divides"), ("all batches", "ignores num_batches"), ("by loader length", "len(data_loader)"),
    ("per message", "weights each batch by its size"), ("one batch more", "one batch too many"),
    ("no return", "returns NoneType, not a number"),
])
def test_activity_3_wrong_loss_loaders_get_specific_hints(real, capsys, mistake, hint):
    loader, model = real
    assert check_activity_3(..., ..., loader, model, "cpu", my_calc_loss_loader=loss_loader_variant(mistake)) is False
    out = capsys.readouterr().out
    assert "❌" in out and hint in out, out


# --------------------------------------------------------------------------- activity 4
class Says(torch.nn.Module):
    """A stand-in classifier: spam exactly when the message contains the token of "WIN"."""

    def __init__(self, tokenizer):
        super().__init__()
        self.cfg = {"context_length": 128}
        self.class_names = ("ham", "spam")
        self.win = tokenizer.encode("WIN")[0]

    def forward(self, x):
        spam = (x == self.win).any(dim=1, keepdim=True).float()
        return torch.cat([1 - spam, spam], dim=-1).unsqueeze(1).expand(-1, x.shape[1], -1) * 4


def test_activity_4_untouched_and_wrong_types(tokenizer, capsys):
    kwargs = dict(model=Says(tokenizer), tokenizer=tokenizer, device="cpu", max_length=120)
    assert check_activity_4(**kwargs) is False
    out = capsys.readouterr().out
    assert "not attempted yet: my_spam, my_ham" in out and "❌" not in out
    assert check_activity_4("WIN now", "see you", **kwargs) is False
    out = capsys.readouterr().out
    assert 'my_spam should be a non-empty list of messages, e.g. ["WINNER!' in out
    assert 'my_ham should be a non-empty list of messages, e.g. ["Running late' in out
    assert check_activity_4(["WIN now", ""], ["ok", 3], **kwargs) is False
    out = capsys.readouterr().out
    assert "my_spam: the message is empty" in out and "my_ham: a message must be a string" in out


def test_activity_4_reports_agreement_and_never_says_all_correct(tokenizer, capsys):
    kwargs = dict(model=Says(tokenizer), tokenizer=tokenizer, device="cpu", max_length=120)
    assert check_activity_4(["Free prize, call now", "WIN a cruise"], ["WIN the match tonight?", "see you at 7"],
                            **kwargs) is True
    out = capsys.readouterr().out
    assert "The model agreed with you on 2 of 4 messages." in out
    assert "🤔 'Free prize, call now' → ham" in out and "🤔 'WIN the match tonight?' → spam" in out
    assert "What do the messages it disagreed with have in common?" in out
    assert "All correct" not in out and "❌" not in out
    assert check_activity_4(["WIN"], ["hi"], **kwargs) is True
    out = capsys.readouterr().out
    assert "agreed with you on 2 of 2" in out and "try to fool it" in out and "All correct" not in out


def test_activity_4_and_the_widget_use_the_classifiers_own_classes(tokenizer, tiny_classifier, capsys):
    """They used to assume class 1 is spam whatever the classifier: a 3-class one was read as ham/spam."""
    from helpers import spam_checker

    three = tiny_classifier(num_classes=3)
    three.class_names = ("ham", "spam", "phishing")
    with pytest.raises(ValueError, match="ham/spam classifier; this one's classes are ham/spam/phishing"):
        check_activity_4(["WIN"], ["hi"], model=three, tokenizer=tokenizer, device="cpu", max_length=20)
    box = spam_checker(three, tokenizer, "cpu", 20)
    label, probabilities = box.check("Your account is locked")
    verdict, bar = box.children[2], box.children[1].children[1]
    assert ["Ham", "Spam", "phishing"][label] in verdict.value and bar.description == f"P({three.class_names[label]})"
    assert bar.value == pytest.approx(float(probabilities[label]))
    swapped = tiny_classifier()
    swapped.class_names = ("spam", "ham")  # a classifier whose class 0 is spam
    kwargs = dict(model=swapped, tokenizer=tokenizer, device="cpu", max_length=20)
    label = classify_review("Free money", swapped, tokenizer, "cpu", 20)[0]
    check_activity_4(["Free money"], ["see you"], **kwargs)
    out = capsys.readouterr().out
    assert f"→ {swapped.class_names[label]} " in out


def test_activity_4_example_runs(tokenizer, capsys):
    ns = run_solution("activity_4.py", {})
    assert check_activity_4(ns["my_spam"], ns["my_ham"], model=Says(tokenizer), tokenizer=tokenizer, device="cpu",
                            max_length=120) is True


def test_activity_3_check_leaves_the_global_generator_alone():
    """Passes over a DataLoader draw from PyTorch's generator; the check must not shift the book's batches."""
    from torch.utils.data import DataLoader, TensorDataset

    from helpers import (GPTModel, calc_accuracy_loader, calc_loss_batch,
                         check_activity_3, prepare_for_classification)

    torch.manual_seed(0)
    model = prepare_for_classification(GPTModel({"vocab_size": 50257, "context_length": 16, "emb_dim": 8,
                                                 "n_heads": 2, "n_layers": 1, "drop_rate": 0.0, "qkv_bias": True}))
    loader = DataLoader(TensorDataset(torch.randint(0, 50257, (24, 16)), torch.randint(0, 2, (24,))), batch_size=8)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    check_activity_3(calc_accuracy_loader, calc_loss_batch, loader, model, "cpu")
    assert torch.equal(torch.get_rng_state(), before)


@pytest.fixture(scope="module")
def model(tiny_classifier):
    return tiny_classifier(emb_dim=64)


def test_widget_builds_and_classifies_without_a_front_end(model, tokenizer):
    box = spam_checker(model, tokenizer, "cpu", 120, initial_text="Free money!")
    label, probabilities = box.check("Free money!")
    assert box.children[1].children[1].value == pytest.approx(float(probabilities[1]))
    assert ("Spam" if label == 1 else "Ham") in box.children[2].value
    assert box.check("   ") is None and "empty" in box.children[2].value


def test_activity_4(model, tokenizer, capsys):
    kwargs = dict(model=model, tokenizer=tokenizer, device="cpu", max_length=120)
    assert check_activity_4(**kwargs) is False
    assert "not attempted yet: my_spam, my_ham" in capsys.readouterr().out
    assert check_activity_4("just one string", ["ok"], **kwargs) is False
    assert "should be a non-empty list" in capsys.readouterr().out
    namespace = {}
    exec((PROJECT_ROOT / "notebooks" / "solutions" / "activity_4.py").read_text(), namespace)
    assert check_activity_4(namespace["my_spam"], namespace["my_ham"], **kwargs) is True
    out = capsys.readouterr().out
    assert "The model agreed with you on" in out and "P(spam)" in out


def test_activity_2_skeleton_as_handed_out_is_not_attempted(paths, tokenizer, capsys):
    import json

    cells = json.loads((PROJECT_ROOT / "notebooks" / "02_dataloaders.ipynb").read_text())["cells"]
    skeleton = "\n".join("".join(c["source"]) for c in cells if "".join(c["source"]).startswith("# Activity 2"))
    ns = {"paths": paths, "tokenizer": tokenizer}
    exec(skeleton, ns)
    keys = ("my_train_dataset", "my_val_dataset", "first_inputs", "first_labels", "n_padding")
    assert check_activity_2(ns["MySpamDataset"], *(ns[k] for k in keys), **loaders_of(ns), paths=paths,
                            tokenizer=tokenizer) is False
    out = capsys.readouterr().out
    assert "not attempted yet: MySpamDataset," in out and "❌" not in out, out


# --------------------------------------------------------------------------- answers come after the checks
ANSWERS = {  # activity: (its notebook, the helpers whose code is the activity's answer)
    1: ("01_dataset.ipynb", ["create_balanced_dataset", "random_split"]),
    2: ("02_dataloaders.ipynb", ["SpamDataset", "create_dataloaders"]),
    3: ("04_training.ipynb", ["calc_accuracy_loader", "calc_loss_batch", "calc_loss_loader"]),
}


@pytest.mark.parametrize("activity", sorted(ANSWERS))
def test_no_activity_shows_its_answer_before_its_check(activity):
    """The reference code of an activity is shown only after its check cell, under a 'compare yours'
    heading, so neither the notebook nor its slides give the answer away."""
    import json

    name, answers = ANSWERS[activity]
    cells = json.loads((PROJECT_ROOT / "notebooks" / name).read_text())["cells"]
    sources = ["".join(cell["source"]) for cell in cells]
    [check] = [i for i, s in enumerate(sources) if f"check_activity_{activity}(" in s and cells[i]["cell_type"] == "code"]
    for answer in answers:
        shown = [i for i, s in enumerate(sources) if f"show_source({answer})" in s]
        assert shown, f"{name}: the code of {answer} is never shown"
        assert all(i > check for i in shown), f"{name}: {answer}'s code is shown in cell {shown[0]}, before the check ({check})"
        heading = max(i for i in range(check, shown[0]) if cells[i]["cell_type"] == "markdown")
        assert re.search(r"compare yours", sources[heading], re.I), f"{name}: no 'compare yours' heading above {answer}"


def test_activity_4_and_the_widget_say_the_test_models_verdicts_are_noise(tokenizer, capsys):
    """With the test model, no question invites students to read meaning into random verdicts (issue 33)."""
    from helpers import spam_checker

    model = Says(tokenizer)
    model.is_test_model = True
    check_activity_4(["Free prize, call now", "WIN a cruise"], ["see you at 7"], model=model, tokenizer=tokenizer,
                     device="cpu", max_length=120)
    out = capsys.readouterr().out
    assert "its verdicts are noise" in out and "What do the messages it disagreed with" not in out
    verdict = spam_checker(model, tokenizer, "cpu", 120, initial_text="WIN a cruise").children[2].value
    assert "Spam" in verdict and "this verdict is noise" in verdict
    model.is_test_model = False
    assert "noise" not in spam_checker(model, tokenizer, "cpu", 120, initial_text="WIN a cruise").children[2].value


def test_notebook_1_leaves_the_imbalance_question_to_the_students():
    """Activity 1 asks what accuracy an always-"ham" model gets: the notebook answers it (87 %) only after the check."""
    import json

    cells = json.loads((PROJECT_ROOT / "notebooks" / "01_dataset.ipynb").read_text())["cells"]
    sources = ["".join(cell["source"]) for cell in cells]
    check = next(i for i, s in enumerate(sources) if "check_activity_1(" in s)
    assert all("87 %" not in s for s in sources[:check]) and any("87 %" in s for s in sources[check:])
