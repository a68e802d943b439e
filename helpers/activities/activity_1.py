"""Activity 1 (notebook 1): explore the dataset, balance it and split it."""
import math
import sys

import pandas as pd

from ..data import create_balanced_dataset, random_split
from .feedback import Feedback, as_number, caller_names, fmt, untouched


def check_activity_1(df, ham_count=..., spam_count=..., imbalance_ratio=..., my_balanced_df=..., my_splits=..., *,
                     points=None):
    """Activity 1 — explore the SMS Spam dataset.

    ``df`` is the collection as loaded in the notebook; the answers are the student's. The ratio may be
    given as a person states it (6.5, 6.46, ``ham_count / spam_count``); the balanced frame may keep the
    "ham"/"spam" labels or already use 0/1.
    """
    answers = dict(ham_count=ham_count, spam_count=spam_count, imbalance_ratio=imbalance_ratio,
                   my_balanced_df=my_balanced_df, my_splits=my_splits)
    fb = Feedback("Activity 1: explore the SMS Spam dataset", caller_names(sys._getframe(1), answers))
    counts = df["Label"].value_counts()
    n_ham, n_spam = int(counts["ham"]), int(counts["spam"])

    for key, expected, label in (("ham_count", n_ham, "ham"), ("spam_count", n_spam, "spam")):
        got = as_number(fb, key, answers[key])
        if got is None:
            continue
        if got == expected:
            fb.ok(f"{fb.name(key)} = {fmt(got)}")
        elif got == len(df):
            fb.wrong(f"{fb.name(key)} = {fmt(got)} is every message; count only the {label} ones: "
                     'df["Label"].value_counts()')
        elif got == n_ham + n_spam - expected:
            fb.wrong(f"{fb.name(key)} = {fmt(got)} is the number of {'spam' if label == 'ham' else 'ham'} "
                     f"messages; count the {label} ones")
        else:
            fb.wrong(f"{fb.name(key)} = {fmt(got)}, expected {expected}: "
                     f'count the rows whose Label is "{label}" (df["Label"].value_counts())')

    ratio = as_number(fb, "imbalance_ratio", imbalance_ratio)
    expected_ratio = n_ham / n_spam
    if ratio is not None:
        name = fb.name("imbalance_ratio")
        if abs(ratio - expected_ratio) <= 0.05:  # 6.5, 6.46, 6.459… and 4825/747 all state the same ratio
            fb.ok(f"{name} ≈ {ratio:.2f}: about {expected_ratio:.1f} ham messages per spam message")
        elif math.isclose(ratio, n_spam / n_ham, rel_tol=0.01):
            fb.wrong(f"{name} ≈ {ratio:.3f} is spam per ham; the ratio is ham per spam: {n_ham} / {n_spam}")
        elif math.isclose(ratio, n_spam / len(df), rel_tol=0.01) or math.isclose(ratio, 100 * n_spam / len(df), rel_tol=0.01):
            fb.wrong(f"{name} ≈ {ratio:.3g} is the share of spam among all messages; "
                     f"divide the ham count by the spam count instead")
        elif math.isclose(ratio, len(df) / n_spam, rel_tol=0.01):
            fb.wrong(f"{name} ≈ {ratio:.2f} divides all messages by the spam ones; divide only the ham ones")
        else:
            fb.wrong(f"{name} = {fmt(ratio)}, expected about {expected_ratio:.2f}: "
                     "divide the number of ham messages by the number of spam messages")

    _check_balanced(fb, df, my_balanced_df, n_spam)
    _check_splits(fb, df, my_splits)
    return fb.report(points)


def _check_balanced(fb, df, balanced, n_spam):
    name = fb.name("my_balanced_df")
    if untouched(balanced):
        fb.skip("my_balanced_df")
        return
    if not isinstance(balanced, pd.DataFrame):
        fb.wrong(f"{name} should be a DataFrame, got {type(balanced).__name__}: pd.concat([ham_subset, spam_df])")
        return
    if "Label" not in balanced.columns or "Text" not in balanced.columns:
        fb.wrong(f"{name} should keep the columns Label and Text, it has {list(balanced.columns)}")
        return
    counts = {str(k): int(v) for k, v in balanced["Label"].value_counts().items()}
    as_words = {"ham": counts.get("ham", counts.get("0", 0)), "spam": counts.get("spam", counts.get("1", 0))}
    if set(counts) - {"ham", "spam", "0", "1"}:
        fb.wrong(f"{name} has labels {sorted(counts)}; keep \"ham\"/\"spam\" (or 0/1)")
    elif balanced.index.duplicated().any():
        fb.wrong(f"{name} holds some rows twice: sample ham without replacement "
                 "(ham_df.sample(n=len(spam_df), random_state=123))")
    elif as_words == {"ham": n_spam, "spam": n_spam}:
        fb.ok(f"{name} has {len(balanced)} rows: {n_spam} ham and {n_spam} spam")
    elif as_words["ham"] == len(df) - n_spam:
        fb.wrong(f"{name} keeps all {as_words['ham']} ham messages; undersample ham to {n_spam}: "
                 "ham_df.sample(n=len(spam_df), random_state=123)")
    elif as_words["spam"] != n_spam:
        fb.wrong(f"{name} has {as_words['spam']} spam messages; keep all {n_spam} of them")
    else:
        fb.wrong(f"{name} has {as_words['ham']} ham and {as_words['spam']} spam messages; "
                 f"sample {n_spam} ham so that both classes have {n_spam}")


def _check_splits(fb, df, splits):
    name = fb.name("my_splits")
    if untouched(splits):
        fb.skip("my_splits")
        return
    expected = [len(part) for part in random_split(create_balanced_dataset(df), 0.7, 0.1)]
    try:
        sizes = [len(part) for part in splits] if not isinstance(splits, (str, pd.DataFrame)) else None
    except TypeError:
        sizes = None
    if sizes == expected:
        fb.ok(f"{name}: {sizes[0]} / {sizes[1]} / {sizes[2]} messages for train / validation / test")
    elif sizes is None or len(sizes) != 3:
        fb.wrong(f"{name} should be the three DataFrames random_split returns: "
                 "random_split(my_balanced_df, 0.7, 0.1)")
    elif sum(sizes) == len(df):
        fb.wrong(f"{name} splits all {len(df)} messages; split the balanced DataFrame ({sum(expected)} rows)")
    elif sum(sizes) != sum(expected):
        fb.wrong(f"{name} holds {sum(sizes)} messages in all; split the balanced DataFrame ({sum(expected)} rows)")
    else:
        fb.wrong(f"{name} has {' / '.join(map(str, sizes))} messages, expected "
                 f"{' / '.join(map(str, expected))} (70 % / 10 % / the rest): random_split(my_balanced_df, 0.7, 0.1)")

