"""Checkers for the lecture's hands-on activities.

Each ``check_activity_N`` prints specific feedback and returns True when everything is right.
They never raise for the student's answers: an untouched cell (answers still ``...``) just gets
"not attempted yet", and a wrong type gets an explanation.
"""
import math

import pandas as pd
import torch

from .data import LABEL_MAP, create_balanced_dataset, random_split


class _Feedback:
    def __init__(self, title):
        self.title, self.lines, self.all_ok, self.untouched = title, [], True, []

    def skip(self, name):
        self.untouched.append(name)
        self.all_ok = False

    def ok(self, text):
        self.lines.append(f"  ✅ {text}")

    def wrong(self, text):
        self.lines.append(f"  ❌ {text}")
        self.all_ok = False

    def report(self):
        print(self.title)
        if self.untouched:
            print(f"  ⏳ not attempted yet: {', '.join(self.untouched)} (replace the ... with your code)")
        for line in self.lines:
            print(line)
        if self.all_ok:
            print("  🎉 All correct!")
        return self.all_ok


def _untouched(value):
    return value is Ellipsis


def _check_number(fb, name, value, expected, explain, tol=0.0):
    if _untouched(value):
        fb.skip(name)
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        fb.wrong(f"{name} should be a number, got {type(value).__name__}: {value!r}")
        return
    if math.isclose(number, expected, abs_tol=tol):
        fb.ok(f"{name} = {value}")
    else:
        fb.wrong(f"{name} = {value}, expected {expected}. {explain}")


def check_activity_1(df, ham_count=..., spam_count=..., imbalance_ratio=..., balanced_df=..., splits=...):
    """Activity 1 — explore the SMS Spam dataset.

    ``df`` is the collection as loaded in the notebook; the answers are the student's.
    """
    fb = _Feedback("Activity 1: explore the SMS Spam dataset")
    counts = df["Label"].value_counts()
    _check_number(fb, "ham_count", ham_count, int(counts["ham"]), 'Count the rows whose Label is "ham": df["Label"].value_counts().')
    _check_number(fb, "spam_count", spam_count, int(counts["spam"]), 'Count the rows whose Label is "spam".')
    _check_number(fb, "imbalance_ratio", imbalance_ratio, counts["ham"] / counts["spam"],
                  "Divide the number of ham messages by the number of spam messages.", tol=0.01)

    if _untouched(balanced_df):
        fb.skip("balanced_df")
    elif not isinstance(balanced_df, pd.DataFrame):
        fb.wrong(f"balanced_df should be a DataFrame, got {type(balanced_df).__name__}")
    else:
        got = balanced_df["Label"].value_counts().to_dict() if "Label" in balanced_df else {}
        expected = create_balanced_dataset(df)["Label"].value_counts().to_dict()
        if got == expected:
            fb.ok(f"balanced_df has {len(balanced_df)} rows: {got}")
        elif set(got) == set(LABEL_MAP.values()):
            fb.wrong("balanced_df already has 0/1 labels; check the counts before encoding: "
                     f"expected {expected}, got {got}")
        else:
            fb.wrong(f"balanced_df label counts are {got}, expected {expected}. "
                     "Undersample ham to the number of spam messages: ham_df.sample(n=len(spam_df), random_state=123).")

    if _untouched(splits):
        fb.skip("splits")
    else:
        try:
            sizes = [len(part) for part in splits]
        except TypeError:
            sizes = None
        expected_sizes = [len(part) for part in random_split(create_balanced_dataset(df), 0.7, 0.1)]
        if sizes == expected_sizes:
            fb.ok(f"split sizes {sizes}")
        elif sizes is None or len(sizes) != 3:
            fb.wrong("splits should be the three DataFrames random_split returns: (train, validation, test)")
        elif sum(sizes) != sum(expected_sizes):
            fb.wrong(f"the splits hold {sum(sizes)} messages in all; split the balanced dataset ({sum(expected_sizes)} rows)")
        else:
            fb.wrong(f"split sizes {sizes}, expected {expected_sizes}: use random_split(balanced_df, 0.7, 0.1)")
    return fb.report()


def check_activity_2(train_loader, first_inputs=..., first_labels=..., n_padding=..., truncated_length=...):
    """Activity 2 — build and inspect the DataLoaders.

    ``first_inputs``/``first_labels``: the first batch of ``train_loader``;
    ``n_padding``: how many padding tokens the first message of that batch has;
    ``truncated_length``: the length of any item of a SpamDataset built with ``max_length=20``.
    """
    fb = _Feedback("Activity 2: build and inspect the DataLoaders")
    dataset = train_loader.dataset
    batch_size = train_loader.batch_size
    expected_shape = (batch_size, dataset.max_length)
    if _untouched(first_inputs):
        fb.skip("first_inputs")
    elif not isinstance(first_inputs, torch.Tensor):
        fb.wrong(f"first_inputs should be a tensor (inputs, labels = next(iter(train_loader))), got {type(first_inputs).__name__}")
    elif tuple(first_inputs.shape) != expected_shape:
        fb.wrong(f"first_inputs has shape {list(first_inputs.shape)}, expected {list(expected_shape)}: "
                 "batch size × max_length")
    elif first_inputs.dtype != torch.long:
        fb.wrong(f"token ids should be integers (torch.long), got {first_inputs.dtype}")
    else:
        fb.ok(f"first_inputs has shape {list(first_inputs.shape)}")
    if _untouched(first_labels):
        fb.skip("first_labels")
    elif not isinstance(first_labels, torch.Tensor) or tuple(first_labels.shape) != (batch_size,):
        fb.wrong(f"first_labels should be a tensor of shape [{batch_size}], one label per message")
    elif not set(first_labels.tolist()) <= {0, 1}:
        fb.wrong(f"labels should be 0 (ham) or 1 (spam), got {sorted(set(first_labels.tolist()))}")
    else:
        fb.ok(f"first_labels = {first_labels.tolist()}")
    if _untouched(n_padding):
        fb.skip("n_padding")
    elif isinstance(first_inputs, torch.Tensor) and first_inputs.dim() == 2:
        expected = int((first_inputs[0] == dataset.pad_token_id).sum())
        _check_number(fb, "n_padding", n_padding, expected,
                      f"Count the positions of the first message equal to the padding id {dataset.pad_token_id}.")
    else:
        fb.wrong("n_padding needs first_inputs first")
    _check_number(fb, "truncated_length", truncated_length, 20,
                  "With max_length=20 every message becomes exactly 20 ids: long ones are cut, short ones padded.")
    return fb.report()


_FAILED = object()


def _call_student(fb, name, fn, *args, **kwargs):
    """Call the student's function; ``_FAILED`` (reported) if it is not a function or raises."""
    if not callable(fn):
        fb.wrong(f"{name} should be a function (def {name}(...): ...)")
        return _FAILED
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # the student's code: report, never crash the notebook
        fb.wrong(f"{name} raised {type(exc).__name__}: {exc}")
        return _FAILED


def check_activity_3(my_calc_accuracy_loader, my_calc_loss_batch, data_loader, model, device, num_batches=3):
    """Activity 3 — implement the accuracy and loss functions.

    Runs the student's functions on ``num_batches`` batches and compares them with ``helpers``;
    when they differ, it checks the usual mistakes and names the one that matches.
    """
    from .training import calc_accuracy_loader, calc_loss_batch

    fb = _Feedback("Activity 3: implement classification metrics")
    batches = [batch for _, batch in zip(range(num_batches), data_loader)]

    expected_acc = calc_accuracy_loader(batches, model, device)
    acc = _call_student(fb, "my_calc_accuracy_loader", my_calc_accuracy_loader, batches, model, device)
    if acc is None:  # the body is still "..."
        fb.skip("my_calc_accuracy_loader")
    elif acc is not _FAILED:
        acc = acc.item() if isinstance(acc, torch.Tensor) else acc
        with torch.no_grad():
            first_token = sum((model(x.to(device))[:, 0, :].argmax(-1) == y.to(device)).sum().item()
                              for x, y in batches) / sum(len(y) for _, y in batches)
        n = sum(len(y) for _, y in batches)
        if not isinstance(acc, (int, float)):
            fb.wrong(f"my_calc_accuracy_loader returned {type(acc).__name__}; return a number between 0 and 1")
        elif math.isclose(acc, expected_acc, abs_tol=1e-9):
            fb.ok(f"accuracy {acc:.4f} matches calc_accuracy_loader")
        elif math.isclose(acc, expected_acc * 100, abs_tol=1e-6):
            fb.wrong(f"accuracy {acc} is a percentage; return the fraction correct / total ({expected_acc:.4f})")
        elif math.isclose(acc, expected_acc * n, abs_tol=1e-6):
            fb.wrong(f"accuracy {acc} is the number of correct predictions; divide by the number of examples ({n})")
        elif math.isclose(acc, first_token, abs_tol=1e-9) and not math.isclose(first_token, expected_acc):
            fb.wrong("your accuracy uses the FIRST token's logits; the model decides at the last one: [:, -1, :]")
        else:
            fb.wrong(f"accuracy {acc:.4f}, expected {expected_acc:.4f}: take argmax of model(inputs)[:, -1, :] "
                     "and compare it with the targets")

    inputs, targets = batches[0]
    expected_loss = calc_loss_batch(inputs, targets, model, device)
    loss = _call_student(fb, "my_calc_loss_batch", my_calc_loss_batch, inputs, targets, model, device)
    if loss is None:
        fb.skip("my_calc_loss_batch")
    elif loss is not _FAILED:
        with torch.no_grad():
            all_logits = model(inputs.to(device))
            all_positions = torch.nn.functional.cross_entropy(
                all_logits.flatten(0, 1), targets.to(device).repeat_interleave(all_logits.shape[1])).item()
            on_probabilities = torch.nn.functional.cross_entropy(
                torch.softmax(all_logits[:, -1, :], dim=-1), targets.to(device)).item()
        if not isinstance(loss, torch.Tensor):
            fb.wrong(f"my_calc_loss_batch returned {type(loss).__name__}; return the loss tensor itself "
                     "(training calls loss.backward(), so no .item())")
        elif loss.dim() != 0:
            fb.wrong(f"the loss has shape {list(loss.shape)}; cross_entropy's default averages it to one number")
        elif math.isclose(loss.item(), expected_loss.item(), rel_tol=1e-5, abs_tol=1e-6):
            fb.ok(f"loss {loss.item():.4f} matches calc_loss_batch")
        elif math.isclose(loss.item(), all_positions, rel_tol=1e-5):
            fb.wrong("your loss averages over every token position; use the last token only: [:, -1, :]")
        elif math.isclose(loss.item(), on_probabilities, rel_tol=1e-5):
            fb.wrong("you applied softmax before cross_entropy; it expects raw logits (it applies log-softmax itself)")
        else:
            fb.wrong(f"loss {loss.item():.4f}, expected {expected_loss.item():.4f}: "
                     "torch.nn.functional.cross_entropy(model(inputs)[:, -1, :], targets)")
    return fb.report()


def check_activity_4(my_spam=..., my_ham=..., *, model, tokenizer, device, max_length):
    """Activity 4 — test your own messages.

    ``my_spam`` and ``my_ham`` are lists of messages you wrote to be spam and ham. The check
    classifies each and reports where the model agrees with you, so you can look for patterns.
    """
    from .inference import classify_review

    fb = _Feedback("Activity 4: test your own messages")
    for name, messages, intended in (("my_spam", my_spam, 1), ("my_ham", my_ham, 0)):
        if _untouched(messages):
            fb.skip(name)
            continue
        if isinstance(messages, str) or not isinstance(messages, (list, tuple)) or not messages:
            fb.wrong(f"{name} should be a non-empty list of messages, e.g. [\"WIN a free cruise! Reply YES\"]")
            continue
        agreed = 0
        for message in messages:
            try:
                label, probabilities = classify_review(message, model, tokenizer, device, max_length)
            except (TypeError, ValueError) as exc:
                fb.wrong(f"{message!r}: {exc}")
                continue
            verdict = "spam" if label == 1 else "ham"
            line = f"{message[:60]!r} → {verdict} (P(spam) = {probabilities[1]:.3f})"
            if label == intended:
                agreed += 1
                fb.ok(line)
            else:
                fb.lines.append(f"  🤔 {line}: the model disagrees with you. Why might that be?")
        fb.lines.append(f"     {name}: the model agreed on {agreed} of {len(messages)}")
    if not fb.untouched and not any(line.lstrip().startswith("❌") for line in fb.lines):
        fb.all_ok = True
    return fb.report()
