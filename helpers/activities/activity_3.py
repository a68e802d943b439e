"""Activity 3 (notebook 4): the accuracy and the loss, written by the student."""
import math
import sys

import torch

from .feedback import FAILED, Feedback, call, caller_names, fmt, is_untouched_function, number, untouched

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



def _check_accuracy(fb, fn, data_loader, model, device, num_batches):
    from ..training import calc_accuracy_loader

    name = fb.name("my_calc_accuracy_loader")
    if untouched(fn) or (callable(fn) and is_untouched_function(fn)):
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
        got = call(fb, f"{name} on {what}", fn, *args)
        if got is FAILED:
            if batches == 10:
                fb.note("num_batches may exceed the number of batches: use min(num_batches, len(data_loader))")
            return
        if got is None:
            fb.wrong(f"{name} returns None: is `return` missing?")
            return
        value = number(got)
        if value is None:
            fb.wrong(f"{name} returned {type(got).__name__}; return a number between 0 and 1")
            return
        candidates = _probe_candidates(probe_model, probe_loader, batches)
        if math.isclose(value, candidates["right"], abs_tol=1e-6):
            continue
        mistake = next((m for m, v in candidates.items() if m != "right" and math.isclose(value, v, abs_tol=1e-6)), None)
        if mistake is None:
            other = call(fb, name, fn, *((_probe(invert=True)[1],) + args[1:]))
            if other is FAILED:
                return
            if number(other) is not None and math.isclose(number(other), value, abs_tol=1e-9):
                fb.wrong(f"{name} returns {fmt(value)} whatever the data: compute it from the model's "
                         "predictions and the targets")
                return
            fb.wrong(f"{name} gives {value:.4f} on {what}, expected {candidates['right']:.4f}: the share of "
                     "messages where argmax(model(inputs)[:, -1, :]) equals the target")
            return
        fb.wrong(f"{name} on {what} gives {fmt(value)}, which {_ACCURACY_HINTS[mistake]}")
        return
    expected = calc_accuracy_loader(data_loader, model, device, num_batches=num_batches)
    got = call(fb, f"{name} on the real loader", fn, data_loader, model, device, num_batches)
    if got is FAILED:
        return
    value = number(got)
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
    from ..training import calc_loss_batch

    name = fb.name("my_calc_loss_batch")
    if untouched(fn) or (callable(fn) and is_untouched_function(fn)):
        fb.skip("my_calc_loss_batch")
        return
    if not callable(fn):
        fb.wrong(f"{name} should be a function (def {name}(input_batch, target_batch, model, device): ...)")
        return
    probe_model, probe_loader = _probe()
    inputs, targets = next(iter(probe_loader))
    loss = call(fb, f"{name} on a probe batch", fn, inputs, targets, probe_model, "cpu")
    if loss is FAILED:
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
    real = call(fb, f"{name} on the real loader", fn, real_inputs, real_targets, model, device)
    if real is FAILED:
        return
    expected_real = calc_loss_batch(real_inputs, real_targets, model, device).item()
    if not isinstance(real, torch.Tensor) or not math.isclose(real.item(), expected_real, rel_tol=1e-4, abs_tol=1e-5):
        shown = f"{real.item():.4f}" if isinstance(real, torch.Tensor) and real.numel() == 1 else type(real).__name__
        fb.wrong(f"{name} gives {shown} on the real loader's first batch, calc_loss_batch {expected_real:.4f}: "
                 "does it move the inputs to the device?")
        return
    fb.ok(f"{name} passes the probe and gives {real.item():.4f} on the real loader's first batch, like calc_loss_batch")


def _loss_loader_candidates(model, loader, num_batches):
    """The values the usual mistakes in calc_loss_loader give on the probe: ``{mistake: value}``."""
    import torch.nn.functional as F

    batches = list(loader)
    n = len(batches) if num_batches is None else min(num_batches, len(batches))
    with torch.no_grad():
        losses = [F.cross_entropy(model(x)[:, -1, :], y).item() for x, y in batches]
    sizes = [len(y) for _, y in batches]
    return {
        "right": sum(losses[:n]) / n,
        "sum": sum(losses[:n]),
        "all batches": sum(losses) / len(losses),
        "by loader length": sum(losses[:n]) / len(batches),
        "per message": sum(l * k for l, k in zip(losses[:n], sizes[:n])) / sum(sizes[:n]),
        "one batch more": sum(losses[:n + 1]) / (n + 1),
    }


_LOSS_LOADER_HINTS = {
    "sum": "adds the batch losses but never divides: return total_loss / num_batches",
    "all batches": "ignores num_batches: stop after the first num_batches batches (if i < num_batches ... else: break)",
    "by loader length": "divides by len(data_loader) even when num_batches is smaller: divide by the number of "
                        "batches you added up",
    "per message": "weights each batch by its size; the lecture averages the batch losses (total_loss / num_batches)",
    "one batch more": "adds one batch too many (i <= num_batches?): use i < num_batches",
}


def _check_loss_loader(fb, fn, data_loader, model, device, num_batches):
    from ..training import calc_loss_loader

    key = "my_calc_loss_loader"
    name = fb.name(key)
    if untouched(fn) or (callable(fn) and is_untouched_function(fn)):
        fb.skip(key)
        return
    if not callable(fn):
        fb.wrong(f"{name} should be a function (def {name}(data_loader, model, device, num_batches=None): ...)")
        return
    probe_model, probe_loader = _probe()
    for probe_batches in (None, 2):
        label = f"{name} on the probe" + ("" if probe_batches is None else f" with num_batches={probe_batches}")
        value = call(fb, label, fn, probe_loader, probe_model, "cpu", probe_batches)
        if value is FAILED:
            return
        if value is None or number(value) is None:
            fb.wrong(f"{label} returns {type(value).__name__}, not a number: is `return total_loss / num_batches` "
                     "missing?")
            return
        value = number(value)
        candidates = _loss_loader_candidates(probe_model, probe_loader, probe_batches)
        if not math.isclose(value, candidates["right"], rel_tol=1e-5, abs_tol=1e-6):
            mistake = next((m for m, v in candidates.items()
                            if m != "right" and math.isclose(value, v, rel_tol=1e-5, abs_tol=1e-6)), None)
            fb.wrong(f"{name} {_LOSS_LOADER_HINTS[mistake]}" if mistake else
                     f"{label} gives {fmt(value)}, expected {candidates['right']:.4f}: the mean of "
                     "calc_loss_batch over the first num_batches batches")
            return
    with torch.no_grad():
        value = call(fb, f"{name} on the real loader", fn, data_loader, model, device, num_batches)
        expected = calc_loss_loader(data_loader, model, device, num_batches=num_batches)
    if value is FAILED:
        return
    if number(value) is None or not math.isclose(number(value), expected, rel_tol=1e-4, abs_tol=1e-5):
        shown = fmt(number(value)) if number(value) is not None else type(value).__name__
        fb.wrong(f"{name} gives {shown} on the real loader ({num_batches} batches), calc_loss_loader "
                 f"{expected:.4f}: does it move the inputs to the device?")
        return
    fb.ok(f"{name} passes the probe (the mean of the batch losses, num_batches) and gives {number(value):.4f} on "
          "the real loader, like calc_loss_loader")


def check_activity_3(my_calc_accuracy_loader, my_calc_loss_batch, data_loader, model, device, num_batches=3,
                     my_calc_loss_loader=..., *, points=None):
    """Activity 3 — implement the accuracy and loss functions.

    The functions first run on a probe: a small stand-in model whose predictions depend on the position
    read, over batches of unequal size, with and without ``num_batches``; the usual mistakes give other
    values there, and the hint names the one that matches. Then they run on ``data_loader`` with ``model``
    (``num_batches`` batches) and must agree with ``calc_accuracy_loader``, ``calc_loss_batch`` and
    ``calc_loss_loader``.
    """
    answers = dict(my_calc_accuracy_loader=my_calc_accuracy_loader, my_calc_loss_batch=my_calc_loss_batch,
                   my_calc_loss_loader=my_calc_loss_loader)
    fb = Feedback("Activity 3: implement classification metrics", caller_names(sys._getframe(1), answers))
    # Every pass over a DataLoader draws from PyTorch's global generator; the check leaves it as it was,
    # so the notebook's later passes still see the book's batches.
    with torch.random.fork_rng(devices=[]):
        _check_accuracy(fb, my_calc_accuracy_loader, data_loader, model, device, num_batches)
        _check_loss(fb, my_calc_loss_batch, data_loader, model, device)
        _check_loss_loader(fb, my_calc_loss_loader, data_loader, model, device, num_batches)
    return fb.report(points)

