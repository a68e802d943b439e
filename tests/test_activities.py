"""Activity checkers: untouched cells never crash, wrong answers get specific feedback, solutions pass."""
import pandas as pd
import pytest

from helpers import (
    SpamDataset,
    check_activity_1,
    check_activity_2,
    create_dataloaders,
    download_sms_spam_dataset,
    get_gpt2_tokenizer,
    load_sms_spam,
    random_split,
)
from helpers.paths import PROJECT_ROOT

SOLUTIONS = PROJECT_ROOT / "notebooks" / "solutions"


def run_solution(name, namespace):
    exec(compile((SOLUTIONS / name).read_text(), name, "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def df(staged_zip, tmp_path_factory):
    return load_sms_spam(download_sms_spam_dataset(staged_zip, tmp_path_factory.mktemp("raw")))


@pytest.fixture(scope="module")
def loaders(split_dir):
    tokenizer = get_gpt2_tokenizer()
    train = SpamDataset(split_dir / "train.csv", tokenizer)
    val = SpamDataset(split_dir / "validation.csv", tokenizer, max_length=120)
    test = SpamDataset(split_dir / "test.csv", tokenizer, max_length=120)
    return create_dataloaders(train, val, test)


def test_activity_1_untouched(df, capsys):
    assert check_activity_1(df) is False
    assert "not attempted yet: ham_count, spam_count, imbalance_ratio, balanced_df, splits" in capsys.readouterr().out


def test_activity_1_wrong_answers_get_specific_feedback(df, capsys):
    assert check_activity_1(df, ham_count=4827, spam_count="many", imbalance_ratio=6.46,
                            balanced_df=df.head(10), splits=(1, 2)) is False
    out = capsys.readouterr().out
    assert "ham_count = 4827, expected 4825" in out
    assert "spam_count should be a number" in out
    assert "✅ imbalance_ratio" in out
    assert "balanced_df label counts" in out
    assert "splits should be the three DataFrames" in out


def test_activity_1_solution_passes(df, capsys):
    ns = run_solution("activity_1.py", {"df": df, "pd": pd, "random_split": random_split})
    assert check_activity_1(df, ham_count=ns["ham_count"], spam_count=ns["spam_count"],
                            imbalance_ratio=ns["imbalance_ratio"], balanced_df=ns["my_balanced_df"],
                            splits=ns["my_splits"]) is True
    assert "All correct" in capsys.readouterr().out


def test_activity_2_untouched_and_wrong(loaders, capsys):
    train_loader = loaders[0]
    assert check_activity_2(train_loader, first_inputs=..., first_labels=...) is False
    assert "not attempted yet: first_inputs, first_labels, n_padding, truncated_length" in capsys.readouterr().out
    inputs, labels = next(iter(train_loader))
    assert check_activity_2(train_loader, first_inputs=inputs[:, :50], first_labels=labels,
                            n_padding=0, truncated_length=120) is False
    out = capsys.readouterr().out
    assert "shape [8, 50], expected [8, 120]" in out
    assert "truncated_length = 120, expected 20" in out


def test_activity_2_solution_passes(loaders, split_dir, capsys):
    paths = {name: split_dir / f"{name}.csv" for name in ("train", "validation", "test")}
    ns = run_solution("activity_2.py", {"train_loader": loaders[0], "SpamDataset": SpamDataset,
                                        "paths": paths, "tokenizer": get_gpt2_tokenizer()})
    assert check_activity_2(loaders[0], first_inputs=ns["first_inputs"], first_labels=ns["first_labels"],
                            n_padding=ns["n_padding"], truncated_length=ns["truncated_length"]) is True
