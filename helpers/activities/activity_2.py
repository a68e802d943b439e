"""Activity 2 (notebook 2): the dataset class and the data loaders."""
import sys

import pandas as pd
import torch

from .. import settings
from ..data import SpamDataset
from .feedback import FAILED, Feedback, as_number, call, caller_names, fmt, untouched


def _describe_items(my_item_ids, ref, index, expected_len, pad_id, split):
    """A hint for an item whose token ids differ from SpamDataset's, naming the usual mistake."""
    ids = list(my_item_ids)
    full = ref.tokenizer.encode(ref.data["Text"].iloc[index], disallowed_special=())
    real = full[:ref.max_length]  # truncated, unpadded
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
    n = call(fb, f"{label}.__len__()", my_ds.__len__)
    if n is FAILED:
        return False
    if n is None:
        fb.wrong(f"{cls_name}.__len__ returns None: is `return` missing? (return len(self.data))")
        return False
    if n != len(ref):
        fb.wrong(f"len({label}) is {n}, expected {len(ref)}: the number of messages (rows of the CSV)")
        return False
    for index in range(len(ref)):
        item = call(fb, f"{label}[{index}]", my_ds.__getitem__, index)
        if item is FAILED:
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


#: The lecture's loaders: (key, split, shuffled, drop_last). With its batch size (settings.BATCH_SIZE, 8) they
#: have 1045 // 8 = 130, ⌈149 / 8⌉ = 19 and ⌈300 / 8⌉ = 38 batches.
LOADERS = (("my_train_loader", "train", True, True), ("my_val_loader", "validation", False, False),
           ("my_test_loader", "test", False, False))


def check_activity_2(MySpamDataset=..., my_train_dataset=..., my_val_dataset=..., first_inputs=..., first_labels=...,
                     n_padding=..., my_test_dataset=..., my_train_loader=..., my_val_loader=..., my_test_loader=..., *,
                     paths, tokenizer, points=None):
    """Activity 2 — implement the dataset and inspect the loaders.

    ``MySpamDataset`` is compared item by item with :class:`helpers.SpamDataset` on the split files
    ``paths`` (a dict with "train", "validation" and "test"): the training file with its automatic max
    length (120), the validation file with max_length=120 and the test file with max_length=20.
    ``my_train_dataset``/``my_val_dataset`` are the student's datasets; ``first_inputs``/``first_labels``
    the first batch of their training loader, and ``n_padding`` the padding tokens of its first message.
    """
    answers = dict(MySpamDataset=MySpamDataset, my_train_dataset=my_train_dataset, my_val_dataset=my_val_dataset,
                   my_test_dataset=my_test_dataset, my_train_loader=my_train_loader, my_val_loader=my_val_loader,
                   my_test_loader=my_test_loader, first_inputs=first_inputs, first_labels=first_labels,
                   n_padding=n_padding)
    fb = Feedback("Activity 2: implement SpamDataset and inspect the loaders", caller_names(sys._getframe(1), answers))
    reference = SpamDataset(paths["train"], tokenizer)
    width = reference.max_length
    _check_dataset_class(fb, MySpamDataset, reference, paths, tokenizer)

    for key, split, expected_len in (("my_train_dataset", "train", len(reference)),
                                     ("my_val_dataset", "validation", None), ("my_test_dataset", "test", None)):
        _check_student_dataset(fb, key, answers[key], split, expected_len, width, paths, tokenizer)
    for key, split, shuffled, dropped in LOADERS:
        expected = len(reference) if split == "train" else len(pd.read_csv(paths[split]))
        _check_loader(fb, key, answers[key], split, shuffled, dropped, expected)

    name_in, name_lab = fb.name("first_inputs"), fb.name("first_labels")
    if untouched(first_inputs):
        fb.skip("first_inputs")
    elif not isinstance(first_inputs, torch.Tensor):
        fb.wrong(f"{name_in} should be a tensor (first_inputs, first_labels = next(iter(my_train_loader))), "
                 f"got {type(first_inputs).__name__}")
    elif first_inputs.dim() != 2 or first_inputs.shape[1] != width:
        fb.wrong(f"{name_in} has shape {list(first_inputs.shape)}, expected [batch size, {width}]: "
                 f"{settings.BATCH_SIZE} messages of {width} token ids")
    elif first_inputs.shape[0] != settings.BATCH_SIZE:
        fb.wrong(f"{name_in} holds {first_inputs.shape[0]} messages; the lecture's loaders use "
                 f"batch_size={settings.BATCH_SIZE}")
    elif first_inputs.dtype != torch.long:
        fb.wrong(f"token ids should be integers (torch.long), got {first_inputs.dtype}")
    else:
        fb.ok(f"{name_in} has shape {list(first_inputs.shape)}: {settings.BATCH_SIZE} messages of {width} token ids")
    if untouched(first_labels):
        fb.skip("first_labels")
    elif not isinstance(first_labels, torch.Tensor) or first_labels.dim() != 1:
        fb.wrong(f"{name_lab} should be a 1-D tensor, one label per message (shape [{settings.BATCH_SIZE}])")
    elif isinstance(first_inputs, torch.Tensor) and first_inputs.dim() == 2 and len(first_labels) != len(first_inputs):
        fb.wrong(f"{name_lab} has {len(first_labels)} labels for {len(first_inputs)} messages; take both from the same batch")
    elif not set(first_labels.tolist()) <= set(range(len(settings.CLASS_NAMES))):
        ids = ", ".join(f"{i} ({name})" for i, name in enumerate(settings.CLASS_NAMES))
        fb.wrong(f"labels should be {ids}, got {sorted(set(first_labels.tolist()))}")
    else:
        fb.ok(f"{name_lab} = {first_labels.tolist()}")

    if untouched(n_padding):
        fb.skip("n_padding")
    elif not (isinstance(first_inputs, torch.Tensor) and first_inputs.dim() == 2):
        fb.wrong(f"{fb.name('n_padding')} needs {name_in} first")
    else:
        expected = int((first_inputs[0] == reference.pad_token_id).sum())
        got = as_number(fb, "n_padding", n_padding)
        if got is None:
            pass
        elif got == expected:
            fb.ok(f"{fb.name('n_padding')} = {expected}: {width - expected} real tokens, then {expected} × "
                  f"{reference.pad_token_id}")
        elif got == width - expected:
            fb.wrong(f"{fb.name('n_padding')} = {fmt(got)} counts the real tokens; count the padding ids: "
                     f"({name_in}[0] == {reference.pad_token_id}).sum()")
        else:
            fb.wrong(f"{fb.name('n_padding')} = {fmt(got)}, expected {expected}: "
                     f"({name_in}[0] == {reference.pad_token_id}).sum()")
    return fb.report(points)


def _check_dataset_class(fb, cls, reference, paths, tokenizer):
    key = "MySpamDataset"
    name = fb.name(key)
    if untouched(cls):
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
            mine = call(fb, f"{name}({args})", cls, paths[split], tokenizer)
        else:
            mine = call(fb, f"{name}({args})", cls, paths[split], tokenizer, max_length=max_length)
        if mine is FAILED:
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
        return ds.__getitem__(0) in (None, Ellipsis) and ds.__len__() in (None, Ellipsis)
    except Exception:
        return False


def _check_student_dataset(fb, key, ds, split, expected_len, width, paths, tokenizer):
    name = fb.name(key)
    if untouched(ds):
        fb.skip(key)
        return
    n = call(fb, f"len({name})", len, ds)
    if n is FAILED:
        return
    expected_len = expected_len if expected_len is not None else len(pd.read_csv(paths[split]))
    if n != expected_len:
        fb.wrong(f"{name} holds {n} messages, expected {expected_len}: build it from paths[\"{split}\"]")
        return
    item = call(fb, f"{name}[0]", ds.__getitem__, 0)
    if item is FAILED:
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



def _check_loader(fb, key, loader, split, shuffled, dropped, expected_messages):
    """A DataLoader with the lecture's batch size, shuffling and drop_last, so it has the lecture's batch count."""
    name = fb.name(key)
    if untouched(loader):
        fb.skip(key)
        return
    if not isinstance(loader, torch.utils.data.DataLoader):
        fb.wrong(f"{name} should be a DataLoader(dataset, batch_size={settings.BATCH_SIZE}, ...), got "
                 f"{type(loader).__name__}")
        return
    messages = call(fb, f"len({name}.dataset)", len, loader.dataset)
    if messages is FAILED:
        return
    size = settings.BATCH_SIZE
    batches = expected_messages // size if dropped else -(-expected_messages // size)
    is_shuffled = isinstance(loader.sampler, torch.utils.data.RandomSampler)
    if loader.batch_size != size:
        fb.wrong(f"{name} has batch_size={loader.batch_size}; the lecture's is {size} ({len(loader)} batches instead "
                 f"of {batches})")
    elif shuffled and not is_shuffled:
        fb.wrong(f"{name} is not shuffled: pass shuffle=True, so each epoch sees the training messages in a new order")
    elif not shuffled and is_shuffled:
        fb.wrong(f"{name} is shuffled; {split} batches need no new order (shuffle=False): only training benefits")
    elif loader.drop_last != dropped:
        fb.wrong(f"{name} has drop_last={loader.drop_last}: " + (
            f"the last, incomplete batch ({messages} = {messages // size} × {size} + {messages % size}) must be "
            f"dropped for training (drop_last=True), so every step sees {size} messages" if dropped else
            f"every {split} message must be scored, so keep the last, smaller batch (drop_last=False)"))
    elif messages != expected_messages or len(loader) != batches:
        fb.wrong(f"{name} has {len(loader)} batches of {messages} messages, expected {batches} of "
                 f"{expected_messages}: is it built from the {split} dataset?")
    else:
        last = messages - (batches - 1) * size
        fb.ok(f"{name}: {batches} batches of {size}" + ("" if dropped or last == size else f" (the last holds {last})"))
