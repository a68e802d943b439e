"""Checkers for the lecture's hands-on activities.

Each ``check_activity_N`` prints specific feedback and returns True when everything is right.
They never raise for the student's answers: an untouched cell (answers still ``...``) just gets
"not attempted yet", and a wrong answer gets a hint that names the usual mistake it matches.
Messages use the student's own variable names: the keyword names are the notebook's variables,
and a value the notebook holds under another name is reported under that name.
"""
import ast
import inspect
import math
import sys
import textwrap

import numpy as np
import pandas as pd
import torch

from .data import SpamDataset, create_balanced_dataset, random_split


class _Feedback:
    def __init__(self, title, names=None, done="🎉 All correct!"):
        self.title, self.lines, self.all_ok, self.untouched = title, [], True, []
        self.names, self.done = names or {}, done

    def name(self, key):
        return self.names.get(key, key)

    def skip(self, key):
        self.untouched.append(self.name(key))
        self.all_ok = False

    def ok(self, text):
        self.lines.append(f"  ✅ {text}")

    def wrong(self, text):
        self.lines.append(f"  ❌ {text}")
        self.all_ok = False

    def note(self, text):
        self.lines.append(f"     {text}")

    def report(self):
        print(self.title)
        if self.untouched:
            print(f"  ⏳ not attempted yet: {', '.join(self.untouched)} (replace the ... with your code)")
        for line in self.lines:
            print(line)
        if self.all_ok and self.done:
            print(f"  {self.done}")
        return self.all_ok


def _untouched(value):
    return value is Ellipsis


def _caller_names(frame, answers):
    """``{keyword: name}``: the name under which the caller holds each answer, when it is unambiguous."""
    names = {}
    if frame is None or frame.f_locals is not frame.f_globals:
        return names  # only a notebook cell's (module-level) names are the student's
    scope = frame.f_globals
    for key, value in answers.items():
        if value is None or _untouched(value) or isinstance(value, (bool, int, float, str)):
            continue  # small values are shared by many names: keep the keyword
        holders = [n for n, v in scope.items() if v is value and not n.startswith("_")]
        if key not in holders and len(holders) == 1:
            names[key] = holders[0]
    return names


def _fmt(number):
    """A number for reading: whole numbers as such, others to 4 significant digits."""
    number = float(number)
    return f"{number:.0f}" if number.is_integer() else f"{number:.4g}"


def _as_number(fb, key, value):
    """The answer as a float, or None (reported) when it is untouched or not a number."""
    if _untouched(value):
        fb.skip(key)
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, (str, bytes, bool)) or value is None:
        fb.wrong(f"{fb.name(key)} should be a number, got {type(value).__name__}: {value!r}")
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        fb.wrong(f"{fb.name(key)} should be a number, got {type(value).__name__}: {value!r}")
        return None


# --------------------------------------------------------------------------- activity 1
def check_activity_1(df, ham_count=..., spam_count=..., imbalance_ratio=..., my_balanced_df=..., my_splits=...):
    """Activity 1 — explore the SMS Spam dataset.

    ``df`` is the collection as loaded in the notebook; the answers are the student's. The ratio may be
    given as a person states it (6.5, 6.46, ``ham_count / spam_count``); the balanced frame may keep the
    "ham"/"spam" labels or already use 0/1.
    """
    answers = dict(ham_count=ham_count, spam_count=spam_count, imbalance_ratio=imbalance_ratio,
                   my_balanced_df=my_balanced_df, my_splits=my_splits)
    fb = _Feedback("Activity 1: explore the SMS Spam dataset", _caller_names(sys._getframe(1), answers))
    counts = df["Label"].value_counts()
    n_ham, n_spam = int(counts["ham"]), int(counts["spam"])

    for key, expected, label in (("ham_count", n_ham, "ham"), ("spam_count", n_spam, "spam")):
        got = _as_number(fb, key, answers[key])
        if got is None:
            continue
        if got == expected:
            fb.ok(f"{fb.name(key)} = {_fmt(got)}")
        elif got == len(df):
            fb.wrong(f"{fb.name(key)} = {_fmt(got)} is every message; count only the {label} ones: "
                     'df["Label"].value_counts()')
        elif got == n_ham + n_spam - expected:
            fb.wrong(f"{fb.name(key)} = {_fmt(got)} is the number of {'spam' if label == 'ham' else 'ham'} "
                     f"messages; count the {label} ones")
        else:
            fb.wrong(f"{fb.name(key)} = {_fmt(got)}, expected {expected}: "
                     f'count the rows whose Label is "{label}" (df["Label"].value_counts())')

    ratio = _as_number(fb, "imbalance_ratio", imbalance_ratio)
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
            fb.wrong(f"{name} = {_fmt(ratio)}, expected about {expected_ratio:.2f}: "
                     "divide the number of ham messages by the number of spam messages")

    _check_balanced(fb, df, my_balanced_df, n_spam)
    _check_splits(fb, df, my_splits)
    return fb.report()


def _check_balanced(fb, df, balanced, n_spam):
    name = fb.name("my_balanced_df")
    if _untouched(balanced):
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
    if _untouched(splits):
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


# --------------------------------------------------------------------------- student functions
_FAILED = object()


def _is_untouched_function(fn):
    """True when the body of ``fn`` is still only ``...`` (with comments or a docstring)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    return all(isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
               and (stmt.value.value is Ellipsis or isinstance(stmt.value.value, str)) for stmt in node.body)


def _call(fb, label, fn, *args, **kwargs):
    """Call the student's code; ``_FAILED`` (reported) if it raises. Never lets an exception out."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # the student's code: report, never crash the notebook
        left = " (is a ... still left in your code?)" if "ellipsis" in str(exc) else ""
        fb.wrong(f"{label} raised {type(exc).__name__}: {exc}{left}")
        return _FAILED


# --------------------------------------------------------------------------- activity 2
def _describe_items(my_item_ids, ref, index, expected_len, pad_id, split):
    """A hint for an item whose token ids differ from SpamDataset's, naming the usual mistake."""
    ids = list(my_item_ids)
    real = ref.encoded_texts[index]  # truncated, unpadded
    full = ref.tokenizer.encode(ref.data["Text"].iloc[index], disallowed_special=())
    n = len(ids)
    where = f"item {index} of {split}"
    if ids == full and n < expected_len:
        return (f"{where} has {n} ids, not {expected_len}: no padding. Pad every message with pad_token_id "
                f"up to self.max_length: ids + [pad_token_id] * (self.max_length - len(ids))")
    if n == expected_len and ids == [pad_id] * (n - len(real)) + real and len(real) < n:
        return (f"{where} starts with padding: pad on the right, after the message "
                "(the model reads its decision at the last position; notebook 3 shows why)")
    if n != expected_len and ids[:len(real)] == real and set(ids[len(real):]) <= {pad_id}:
        longest_tokens = max(len(ref.tokenizer.encode(t, disallowed_special=())) for t in ref.data["Text"])
        longest_chars = max(len(t) for t in ref.data["Text"])
        if n == longest_chars:
            return (f"{where} is padded to {n}, the longest message in characters; "
                    "take the max over the token-id lists: max(len(ids) for ids in self.encoded_texts)")
        if n == longest_tokens and expected_len != longest_tokens:
            return (f"{where} is padded to {n}, the longest message of this file, instead of the "
                    f"max_length={expected_len} it was given: when max_length is given, truncate to it first, "
                    "then pad every message up to max_length (not to the file's longest)")
        return (f"{where} is padded to {n} ids, expected {expected_len}: the longest message of the file "
                "when max_length is None, the given max_length otherwise")
    if n > expected_len and ids[:len(full)] == full:
        return (f"{where} has {n} ids, more than max_length={expected_len}: long messages are not truncated. "
                "Cut each message to ids[:max_length] before padding")
    if n == expected_len and len(full) > n and ids == full[-n:]:
        return f"{where} keeps the END of a long message; keep its start: ids[:max_length]"
    if n == expected_len and ids[:len(real)] == real and len(set(ids[len(real):])) == 1:
        return f"{where} is padded with id {ids[-1]}; pad with pad_token_id ({pad_id}, <|endoftext|>)"
    if ids[:len(real)] != real[:n]:
        first = next((i for i, (a, b) in enumerate(zip(ids, real)) if a != b), min(n, len(real)))
        return (f"{where} differs from the tokenizer's ids at position {first}: encode each message with "
                "tokenizer.encode(text)")
    return f"{where} has {n} ids that differ from SpamDataset's; compare my_item with SpamDataset's item {index}"


def _compare_dataset(fb, cls_name, my_ds, ref, split, args_text):
    """Compare the student's dataset with SpamDataset item by item; True when they agree."""
    label = f"{cls_name}({args_text})"
    n = _call(fb, f"{label}.__len__()", my_ds.__len__)
    if n is _FAILED:
        return False
    if n is None:
        fb.wrong(f"{cls_name}.__len__ returns None: is `return` missing? (return len(self.data))")
        return False
    if n != len(ref):
        fb.wrong(f"len({label}) is {n}, expected {len(ref)}: the number of messages (rows of the CSV)")
        return False
    for index in range(len(ref)):
        item = _call(fb, f"{label}[{index}]", my_ds.__getitem__, index)
        if item is _FAILED:
            return False
        if item is None:
            fb.wrong(f"{cls_name}.__getitem__ returns None: is `return` missing?")
            return False
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            fb.wrong(f"{cls_name}.__getitem__ should return two tensors (token_ids, label), "
                     f"got {type(item).__name__}")
            return False
        ids, target = item
        ref_ids, ref_target = ref[index]
        if not isinstance(ids, torch.Tensor):
            fb.wrong(f"{cls_name}.__getitem__ returns the token ids as {type(ids).__name__}; batching needs a "
                     "tensor: torch.tensor(ids, dtype=torch.long)")
            return False
        if not isinstance(target, torch.Tensor):
            fb.wrong(f"{cls_name}.__getitem__ returns the label as {type(target).__name__}; return a tensor: "
                     "torch.tensor(label, dtype=torch.long)")
            return False
        if ids.dtype != torch.long:
            fb.wrong(f"the token ids are {ids.dtype}; the embedding layer needs integers: dtype=torch.long")
            return False
        if target.dtype != torch.long:
            fb.wrong(f"the label is {target.dtype}; cross_entropy needs class indices: "
                     "torch.tensor(label, dtype=torch.long)")
            return False
        if ids.dim() != 1:
            fb.wrong(f"the token ids have shape {list(ids.shape)}; one message is a 1-D tensor of max_length ids")
            return False
        if not torch.equal(ids, ref_ids):
            fb.wrong(_describe_items(ids.tolist(), ref, index, len(ref_ids), ref.pad_token_id, split))
            return False
        if target.dim() != 0 or target.item() != ref_target.item():
            fb.wrong(f"item {index} of {split} has label {target.tolist()}, expected {ref_target.item()} "
                     "(the Label column: 0 ham, 1 spam), as a 0-d tensor")
            return False
    return True


def check_activity_2(MySpamDataset=..., my_train_dataset=..., my_val_dataset=..., first_inputs=..., first_labels=...,
                     n_padding=..., *, paths, tokenizer):
    """Activity 2 — implement the dataset and inspect the loaders.

    ``MySpamDataset`` is compared item by item with :class:`helpers.SpamDataset` on the split files
    ``paths`` (a dict with "train", "validation" and "test"): the training file with its automatic max
    length (120), the validation file with max_length=120 and the test file with max_length=20.
    ``my_train_dataset``/``my_val_dataset`` are the student's datasets; ``first_inputs``/``first_labels``
    the first batch of their training loader, and ``n_padding`` the padding tokens of its first message.
    """
    answers = dict(MySpamDataset=MySpamDataset, my_train_dataset=my_train_dataset, my_val_dataset=my_val_dataset,
                   first_inputs=first_inputs, first_labels=first_labels, n_padding=n_padding)
    fb = _Feedback("Activity 2: implement SpamDataset and inspect the loaders", _caller_names(sys._getframe(1), answers))
    reference = SpamDataset(paths["train"], tokenizer)
    width = reference.max_length
    _check_dataset_class(fb, MySpamDataset, reference, paths, tokenizer)

    for key, split, expected_len in (("my_train_dataset", "train", len(reference)),
                                     ("my_val_dataset", "validation", None)):
        _check_student_dataset(fb, key, answers[key], split, expected_len, width, paths, tokenizer)

    name_in, name_lab = fb.name("first_inputs"), fb.name("first_labels")
    if _untouched(first_inputs):
        fb.skip("first_inputs")
    elif not isinstance(first_inputs, torch.Tensor):
        fb.wrong(f"{name_in} should be a tensor (first_inputs, first_labels = next(iter(my_train_loader))), "
                 f"got {type(first_inputs).__name__}")
    elif first_inputs.dim() != 2 or first_inputs.shape[1] != width:
        fb.wrong(f"{name_in} has shape {list(first_inputs.shape)}, expected [batch size, {width}]: "
                 f"8 messages of {width} token ids")
    elif first_inputs.shape[0] != 8:
        fb.wrong(f"{name_in} holds {first_inputs.shape[0]} messages; the lecture's loaders use batch_size=8")
    elif first_inputs.dtype != torch.long:
        fb.wrong(f"token ids should be integers (torch.long), got {first_inputs.dtype}")
    else:
        fb.ok(f"{name_in} has shape {list(first_inputs.shape)}: 8 messages of {width} token ids")
    if _untouched(first_labels):
        fb.skip("first_labels")
    elif not isinstance(first_labels, torch.Tensor) or first_labels.dim() != 1:
        fb.wrong(f"{name_lab} should be a 1-D tensor, one label per message (shape [8])")
    elif isinstance(first_inputs, torch.Tensor) and first_inputs.dim() == 2 and len(first_labels) != len(first_inputs):
        fb.wrong(f"{name_lab} has {len(first_labels)} labels for {len(first_inputs)} messages; take both from the same batch")
    elif not set(first_labels.tolist()) <= {0, 1}:
        fb.wrong(f"labels should be 0 (ham) or 1 (spam), got {sorted(set(first_labels.tolist()))}")
    else:
        fb.ok(f"{name_lab} = {first_labels.tolist()}")

    if _untouched(n_padding):
        fb.skip("n_padding")
    elif not (isinstance(first_inputs, torch.Tensor) and first_inputs.dim() == 2):
        fb.wrong(f"{fb.name('n_padding')} needs {name_in} first")
    else:
        expected = int((first_inputs[0] == reference.pad_token_id).sum())
        got = _as_number(fb, "n_padding", n_padding)
        if got is None:
            pass
        elif got == expected:
            fb.ok(f"{fb.name('n_padding')} = {expected}: {width - expected} real tokens, then {expected} × "
                  f"{reference.pad_token_id}")
        elif got == width - expected:
            fb.wrong(f"{fb.name('n_padding')} = {_fmt(got)} counts the real tokens; count the padding ids: "
                     f"({name_in}[0] == {reference.pad_token_id}).sum()")
        else:
            fb.wrong(f"{fb.name('n_padding')} = {_fmt(got)}, expected {expected}: "
                     f"({name_in}[0] == {reference.pad_token_id}).sum()")
    return fb.report()


def _check_dataset_class(fb, cls, reference, paths, tokenizer):
    key = "MySpamDataset"
    name = fb.name(key)
    if _untouched(cls):
        fb.skip(key)
        return
    if not callable(cls):
        fb.wrong(f"{name} should be a class (class {name}(Dataset): ...)")
        return
    cases = [("train", None, reference),
             ("validation", reference.max_length, SpamDataset(paths["validation"], tokenizer, max_length=reference.max_length)),
             ("test", 20, SpamDataset(paths["test"], tokenizer, max_length=20))]
    for split, max_length, ref in cases:
        args = f'paths["{split}"], tokenizer' + (f", max_length={max_length}" if max_length else "")
        if max_length is None:
            mine = _call(fb, f"{name}({args})", cls, paths[split], tokenizer)
        else:
            mine = _call(fb, f"{name}({args})", cls, paths[split], tokenizer, max_length=max_length)
        if mine is _FAILED:
            return
        if split == "train" and _untouched_dataset(mine):
            fb.skip(key)
            return
        if not _compare_dataset(fb, name, mine, ref, split, args):
            return
    fb.ok(f"{name} gives the same {len(reference)} + {len(cases[1][2])} + {len(cases[2][2])} items as SpamDataset: "
          f"padded to {reference.max_length} (train, validation) and truncated to 20 (test)")


def _untouched_dataset(ds):
    try:
        return ds.__getitem__(0) is None and ds.__len__() is None
    except Exception:
        return False


def _check_student_dataset(fb, key, ds, split, expected_len, width, paths, tokenizer):
    name = fb.name(key)
    if _untouched(ds):
        fb.skip(key)
        return
    n = _call(fb, f"len({name})", len, ds)
    if n is _FAILED:
        return
    expected_len = expected_len if expected_len is not None else len(pd.read_csv(paths[split]))
    if n != expected_len:
        fb.wrong(f"{name} holds {n} messages, expected {expected_len}: build it from paths[\"{split}\"]")
        return
    item = _call(fb, f"{name}[0]", ds.__getitem__, 0)
    if item is _FAILED:
        return
    try:
        got = len(item[0])
    except (TypeError, IndexError, KeyError):
        fb.wrong(f"{name}[0] should be (token_ids, label), got {type(item).__name__}")
        return
    if got == width:
        fb.ok(f"{name}: {n} messages of {width} token ids")
        return
    longest = {other: SpamDataset(paths[other], tokenizer).max_length for other in ("validation", "test")}
    if split != "train" and got == longest[split]:
        fb.wrong(f"{name} pads to {got}, the longest validation message: reuse the training length so every batch "
                 f"has the same shape: max_length=my_train_dataset.max_length ({width})")
    elif got in longest.values():
        other = next(other for other, length in longest.items() if length == got)
        fb.wrong(f"{name} pads to {got}, the longest message of the {other} file; the length comes from the "
                 f"training file ({width}): MySpamDataset(paths[\"train\"], tokenizer)")
    else:
        fb.wrong(f"{name}'s items have {got} token ids, expected {width}")


# --------------------------------------------------------------------------- activity 3
# The probe: a stand-in model that reads a logit pair per token id, so a message's prediction depends on
# WHICH position is read. Every probe message is built from three hidden choices: the class its first token
# says, the class its last token says, and the class its four middle tokens (weight 2) make the mean say.
_PROBE_LOGITS = [[1.0, -1.0], [-1.0, 1.0], [2.0, -2.0], [-2.0, 2.0]]  # ids 0, 1: weight 1; ids 2, 3: weight 2
_PROBE_SEED, _PROBE_SIZE, _PROBE_BATCH = 20, 29, 8  # 29 messages in batches of 8, 8, 8, 5


class _ProbeModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.table = torch.nn.Embedding(len(_PROBE_LOGITS), 2)
        with torch.no_grad():
            self.table.weight.copy_(torch.tensor(_PROBE_LOGITS))

    def forward(self, in_idx):
        return self.table(in_idx)


class _ProbeDataset(torch.utils.data.Dataset):
    def __init__(self, inputs, targets):
        self.inputs, self.targets = inputs, targets

    def __getitem__(self, index):
        return self.inputs[index], self.targets[index]

    def __len__(self):
        return len(self.targets)


def _probe(invert=False):
    """``(model, loader)``: the probe model and a real DataLoader over 29 probe messages (8, 8, 8, 5).

    On the probe the right accuracy is 20/29; every usual mistake gives another value (tests check it).
    ``invert=True`` flips the targets, which changes every answer computed from the data.
    """
    g = torch.Generator().manual_seed(_PROBE_SEED)
    first, last, middle, targets = (torch.randint(0, 2, (_PROBE_SIZE,), generator=g) for _ in range(4))
    targets = 1 - targets if invert else targets
    inputs = torch.stack([first, middle + 2, middle + 2, middle + 2, middle + 2, last], dim=1)
    loader = torch.utils.data.DataLoader(_ProbeDataset(inputs, targets), batch_size=_PROBE_BATCH, shuffle=False)
    return _ProbeModel(), loader


def _probe_candidates(model, loader, num_batches):
    """The values the usual accuracy mistakes give on the probe: ``{mistake: value}``; "right" is the answer."""
    batches = list(loader)
    used = batches if num_batches is None else batches[:num_batches]
    with torch.no_grad():
        outs = [(model(x), y) for x, y in used]
    total = sum(len(y) for _, y in used)

    def correct(pick, flip=False):
        return sum(int((pick(o).argmax(-1) == (1 - y if flip else y)).sum()) for o, y in outs)

    right = correct(lambda o: o[:, -1, :])
    per_batch = [float((o[:, -1, :].argmax(-1) == y).float().mean()) for o, y in outs]
    return {
        "right": right / total,
        "percentage": 100 * right / total,
        "count": right,
        "first token": correct(lambda o: o[:, 0, :]) / total,
        "mean-pooled": correct(lambda o: o.mean(dim=1)) / total,
        "inverted": correct(lambda o: o[:, -1, :], flip=True) / total,
        "first batch only": per_batch[0],
        "ignores num_batches": sum(int((model(x)[:, -1, :].argmax(-1) == y).sum()) for x, y in batches) / len(loader.dataset),
        "denominator: whole dataset": right / len(loader.dataset),
        "denominator: batches × batch size": right / (len(used) * _PROBE_BATCH),
        "mean of batch accuracies": sum(per_batch) / len(per_batch),
    }


_ACCURACY_HINTS = {
    "percentage": "is a percentage; return the fraction correct / total (between 0 and 1)",
    "count": "is the number of correct predictions; divide it by the number of messages looked at",
    "first token": "comes from the FIRST token's logits; the model decides at the last one: model(inputs)[:, -1, :]",
    "mean-pooled": "averages the logits over all positions; read only the last token's: model(inputs)[:, -1, :]",
    "inverted": "counts the WRONG predictions (1 − accuracy): compare predictions == targets",
    "first batch only": "is the accuracy of the first batch only; loop over all batches (up to num_batches)",
    "ignores num_batches": "uses every batch although num_batches was given; stop after num_batches batches",
    "denominator: whole dataset": "divides by len(data_loader.dataset) although only num_batches batches were "
                                  "used; divide by the messages you actually looked at",
    "denominator: batches × batch size": "divides by batches × batch size, but the last batch is shorter; "
                                         "add up len(targets) of each batch",
    "mean of batch accuracies": "averages the batch accuracies, so the short last batch counts as much as a full "
                                "one; count correct and total messages over all batches, then divide once",
}


def _number(value):
    """A returned value as a float (Python, NumPy or one-element tensor), else None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return None


def _check_accuracy(fb, fn, data_loader, model, device, num_batches):
    from .training import calc_accuracy_loader

    name = fb.name("my_calc_accuracy_loader")
    if _untouched(fn) or (callable(fn) and _is_untouched_function(fn)):
        fb.skip("my_calc_accuracy_loader")
        return
    if not callable(fn):
        fb.wrong(f"{name} should be a function (def {name}(data_loader, model, device, num_batches=None): ...)")
        return
    probe_model, probe_loader = _probe()
    runs = [(None, "the probe (batches of 8, 8, 8, 5)"), (2, "the probe with num_batches=2"),
            (10, "the probe with num_batches=10")]
    for batches, what in runs:
        args = (probe_loader, probe_model, "cpu") + (() if batches is None else (batches,))
        got = _call(fb, f"{name} on {what}", fn, *args)
        if got is _FAILED:
            if batches == 10:
                fb.note("num_batches may exceed the number of batches: use min(num_batches, len(data_loader))")
            return
        if got is None:
            fb.wrong(f"{name} returns None: is `return` missing?")
            return
        value = _number(got)
        if value is None:
            fb.wrong(f"{name} returned {type(got).__name__}; return a number between 0 and 1")
            return
        candidates = _probe_candidates(probe_model, probe_loader, batches)
        if math.isclose(value, candidates["right"], abs_tol=1e-6):
            continue
        mistake = next((m for m, v in candidates.items() if m != "right" and math.isclose(value, v, abs_tol=1e-6)), None)
        if mistake is None:
            other = _call(fb, name, fn, *((_probe(invert=True)[1],) + args[1:]))
            if other is _FAILED:
                return
            if _number(other) is not None and math.isclose(_number(other), value, abs_tol=1e-9):
                fb.wrong(f"{name} returns {_fmt(value)} whatever the data: compute it from the model's "
                         "predictions and the targets")
                return
            fb.wrong(f"{name} gives {value:.4f} on {what}, expected {candidates['right']:.4f}: the share of "
                     "messages where argmax(model(inputs)[:, -1, :]) equals the target")
            return
        fb.wrong(f"{name} on {what} gives {_fmt(value)}, which {_ACCURACY_HINTS[mistake]}")
        return
    expected = calc_accuracy_loader(data_loader, model, device, num_batches=num_batches)
    got = _call(fb, f"{name} on the real loader", fn, data_loader, model, device, num_batches)
    if got is _FAILED:
        return
    value = _number(got)
    if value is None or not math.isclose(value, expected, abs_tol=1e-6):
        shown = f"{value:.4f}" if value is not None else type(got).__name__
        fb.wrong(f"{name} gives {shown} on the real loader ({num_batches} batches), calc_accuracy_loader "
                 f"{expected:.4f}: does it move the inputs to the device?")
        return
    fb.ok(f"{name} passes the probe (last token, all batches, num_batches) and gives {value:.4f} on the "
          f"real loader, like calc_accuracy_loader")


def _loss_candidates(model, inputs, targets):
    import torch.nn.functional as F

    with torch.no_grad():
        logits = model(inputs)
        last = logits[:, -1, :]
        return {
            "all positions": F.cross_entropy(logits.flatten(0, 1), targets.repeat_interleave(logits.shape[1])).item(),
            "softmax first": F.cross_entropy(torch.softmax(last, dim=-1), targets).item(),
            "first token": F.cross_entropy(logits[:, 0, :], targets).item(),
            "sum": F.cross_entropy(last, targets, reduction="sum").item(),
            "mean-pooled": F.cross_entropy(logits.mean(dim=1), targets).item(),
            "nll on logits": F.nll_loss(last, targets).item(),
            "inverted": F.cross_entropy(last, 1 - targets).item(),
        }


_LOSS_HINTS = {
    "all positions": "averages over every token position; use the last token's logits only: model(inputs)[:, -1, :]",
    "softmax first": "applies softmax before cross_entropy; cross_entropy expects raw logits (it applies "
                     "log-softmax itself)",
    "first token": "uses the FIRST token's logits; the model decides at the last one: [:, -1, :]",
    "sum": "adds the losses of the batch (reduction=\"sum\"); keep the default mean so the loss does not grow "
           "with the batch size",
    "mean-pooled": "averages the logits over all positions; use the last token's logits only: [:, -1, :]",
    "nll on logits": "uses nll_loss on raw logits; nll_loss expects log-probabilities. Use cross_entropy, "
                     "which does log_softmax + nll_loss",
    "inverted": "compares with the wrong labels; pass target_batch as it is",
}


def _check_loss(fb, fn, data_loader, model, device):
    from .training import calc_loss_batch

    name = fb.name("my_calc_loss_batch")
    if _untouched(fn) or (callable(fn) and _is_untouched_function(fn)):
        fb.skip("my_calc_loss_batch")
        return
    if not callable(fn):
        fb.wrong(f"{name} should be a function (def {name}(input_batch, target_batch, model, device): ...)")
        return
    probe_model, probe_loader = _probe()
    inputs, targets = next(iter(probe_loader))
    loss = _call(fb, f"{name} on a probe batch", fn, inputs, targets, probe_model, "cpu")
    if loss is _FAILED:
        return
    if loss is None:
        fb.wrong(f"{name} returns None: is `return` missing?")
        return
    if not isinstance(loss, torch.Tensor):
        fb.wrong(f"{name} returns a {type(loss).__name__}; return the loss tensor itself (no .item()): "
                 "training calls loss.backward() on it")
        return
    if loss.dim() != 0:
        fb.wrong(f"{name} returns a loss of shape {list(loss.shape)}; return one number: cross_entropy's default "
                 "reduction averages over the batch")
        return
    expected = calc_loss_batch(inputs, targets, probe_model, "cpu").item()
    if not math.isclose(loss.item(), expected, rel_tol=1e-5, abs_tol=1e-6):
        candidates = _loss_candidates(probe_model, inputs, targets)
        mistake = next((m for m, v in candidates.items() if math.isclose(loss.item(), v, rel_tol=1e-5, abs_tol=1e-6)), None)
        if mistake:
            fb.wrong(f"{name} {_LOSS_HINTS[mistake]}")
        else:
            fb.wrong(f"{name} gives {loss.item():.4f} on a probe batch, expected {expected:.4f}: "
                     "torch.nn.functional.cross_entropy(model(input_batch)[:, -1, :], target_batch)")
        return
    if not loss.requires_grad:
        fb.wrong(f"{name} returns a loss without gradient (computed under torch.no_grad() or detached); "
                 "training needs loss.backward()")
        return
    try:
        real_inputs, real_targets = next(iter(data_loader))
    except Exception as exc:  # an empty or broken loader: the probe already checked the function
        fb.wrong(f"cannot read a batch from the data loader: {type(exc).__name__}: {exc}")
        return
    real = _call(fb, f"{name} on the real loader", fn, real_inputs, real_targets, model, device)
    if real is _FAILED:
        return
    expected_real = calc_loss_batch(real_inputs, real_targets, model, device).item()
    if not isinstance(real, torch.Tensor) or not math.isclose(real.item(), expected_real, rel_tol=1e-4, abs_tol=1e-5):
        shown = f"{real.item():.4f}" if isinstance(real, torch.Tensor) and real.numel() == 1 else type(real).__name__
        fb.wrong(f"{name} gives {shown} on the real loader's first batch, calc_loss_batch {expected_real:.4f}: "
                 "does it move the inputs to the device?")
        return
    fb.ok(f"{name} passes the probe and gives {real.item():.4f} on the real loader's first batch, like calc_loss_batch")


def check_activity_3(my_calc_accuracy_loader, my_calc_loss_batch, data_loader, model, device, num_batches=3):
    """Activity 3 — implement the accuracy and loss functions.

    The functions first run on a probe: a small stand-in model whose predictions depend on the position
    read, over batches of unequal size, with and without ``num_batches``; the usual mistakes give other
    values there, and the hint names the one that matches. Then they run on ``data_loader`` with ``model``
    (``num_batches`` batches) and must agree with ``calc_accuracy_loader`` and ``calc_loss_batch``.
    """
    answers = dict(my_calc_accuracy_loader=my_calc_accuracy_loader, my_calc_loss_batch=my_calc_loss_batch)
    fb = _Feedback("Activity 3: implement classification metrics", _caller_names(sys._getframe(1), answers))
    # Every pass over a DataLoader draws from PyTorch's global generator; the check leaves it as it was,
    # so the notebook's later passes still see the book's batches.
    with torch.random.fork_rng(devices=[]):
        _check_accuracy(fb, my_calc_accuracy_loader, data_loader, model, device, num_batches)
        _check_loss(fb, my_calc_loss_batch, data_loader, model, device)
    return fb.report()


# --------------------------------------------------------------------------- activity 4
_QUESTIONS = (
    "What do the messages it disagreed with have in common? Which words or signs (free, win, £, numbers, !!!, "
    "links) might it react to?",
    "Would a person side with you or with the model? What should a filter do with messages it is unsure about?",
)
_EXAMPLES = {"my_spam": '["WINNER! Claim your prize: call 09061701461 now"]',
             "my_ham": '["Running late, see you at 7"]'}


def check_activity_4(my_spam=..., my_ham=..., *, model, tokenizer, device, max_length):
    """Activity 4 — test your own messages: an exploration, not a test.

    ``my_spam`` and ``my_ham`` are lists of messages you wrote to be spam and ham. Each is classified;
    the report says on how many the model agrees with you, lists the ones it disagreed with, and asks
    questions about them. Returns True once both lists were classified.
    """
    from .inference import classify_review

    answers = dict(my_spam=my_spam, my_ham=my_ham)
    fb = _Feedback("Activity 4: test your own messages (an exploration: there is no wrong answer)",
                   _caller_names(sys._getframe(1), answers), done=None)
    agreed, total, disagreed = 0, 0, []
    for key, intended in (("my_spam", 1), ("my_ham", 0)):
        messages, name = answers[key], fb.name(key)
        if _untouched(messages):
            fb.skip(key)
            continue
        if isinstance(messages, str) or not isinstance(messages, (list, tuple)) or not messages:
            fb.wrong(f"{name} should be a non-empty list of messages, e.g. {_EXAMPLES[key]}")
            continue
        for message in messages:
            try:
                label, probabilities = classify_review(message, model, tokenizer, device, max_length)
            except (TypeError, ValueError) as exc:
                fb.wrong(f"{name}: {exc}")
                continue
            total += 1
            verdict = "spam" if label == 1 else "ham"
            shown = message if len(message) <= 60 else message[:57] + "..."
            line = f"{shown!r} → {verdict} (P(spam) = {probabilities[1]:.2f})"
            if label == intended:
                agreed += 1
                fb.lines.append(f"  ✅ {line}")
            else:
                disagreed.append(line)
                fb.lines.append(f"  🤔 {line}: you wrote it as {'spam' if intended else 'ham'}")
    if total:
        fb.note(f"The model agreed with you on {agreed} of {total} messages.")
        if disagreed:
            for question in _QUESTIONS:
                fb.note(f"• {question}")
        else:
            fb.note("• Now try to fool it: a spam without \"free\" or a phone number, or a friendly message "
                    "full of \"!!!\" and numbers.")
    return fb.report()
