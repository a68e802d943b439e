"""LoRA (low-rank adaptation), from scratch: train a small update ``A·B`` next to each frozen weight.

A frozen ``Linear`` layer computes ``x W^T + b``. LoRA adds ``scale · (x A) B`` with ``A`` of shape
``[in, rank]`` and ``B`` of shape ``[rank, out]``: ``rank · (in + out)`` new parameters instead of
``in · out``. ``B`` starts at zero, so the adapted model starts out exactly equal to the original;
``scale = alpha / rank`` keeps the update's size comparable across ranks. After training, the update
can be merged into the weight (``W + scale · (A B)^T``), so inference costs nothing extra.

The book's bonus script scales by ``alpha`` itself (``scaling="alpha"``: 16 times larger at rank 16 and
alpha 16) and also wraps the new output head (``skip=()``); both are options here.
"""
import math

import torch
import torch.nn as nn


SCALINGS = ("rank", "alpha")


class LoRALayer(nn.Module):
    """The update ``scale · (x A) B``: ``scale`` is ``alpha / rank`` (``scaling="rank"``) or ``alpha`` (the book's)."""

    def __init__(self, in_features, out_features, rank=8, alpha=16.0, scaling="rank"):
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be at least 1, got {rank}")
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
        self.A = nn.Parameter(torch.empty(in_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # like nn.Linear's own weights
        self.B = nn.Parameter(torch.zeros(rank, out_features))  # zero: no change at the start
        self.scale = alpha / rank if scaling == "rank" else alpha

    def forward(self, x):
        return self.scale * (x @ self.A @ self.B)


class LinearWithLoRA(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update."""

    def __init__(self, linear: nn.Linear, rank=8, alpha=16.0, scaling="rank"):
        super().__init__()
        self.linear = linear
        self.in_features, self.out_features = linear.in_features, linear.out_features  # as nn.Linear's
        self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha, scaling).to(linear.weight.device)

    def forward(self, x):
        return self.linear(x) + self.lora(x)

    def merged(self) -> nn.Linear:
        """One ``nn.Linear`` computing the same function: the update folded into the weight."""
        merged = nn.Linear(self.linear.in_features, self.linear.out_features, bias=self.linear.bias is not None)
        with torch.no_grad():
            merged.weight.copy_(self.linear.weight + self.lora.scale * (self.lora.A @ self.lora.B).T)
            if self.linear.bias is not None:
                merged.bias.copy_(self.linear.bias)
        return merged.to(self.linear.weight.device)


def apply_lora(model, rank=8, alpha=16.0, skip=("out_head",), scaling="rank"):
    """Wrap every ``nn.Linear`` of ``model`` (except ``skip``) with LoRA and freeze all else.

    Trainable afterwards: the LoRA matrices and the modules named in ``skip`` (the classification
    head, which is new and must learn from scratch). ``scaling="alpha", skip=()`` is the book's setting.
    """
    for param in model.parameters():
        param.requires_grad = False

    def wrap(module, prefix=""):
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if full in skip:
                continue
            if isinstance(child, nn.Linear):
                setattr(module, name, LinearWithLoRA(child, rank, alpha, scaling))
            else:
                wrap(child, full + ".")

    wrap(model)
    for name in skip:
        for param in model.get_submodule(name).parameters():
            param.requires_grad = True
    return model


def merge_lora(model):
    """Replace every ``LinearWithLoRA`` by its merged ``nn.Linear`` (in place); returns ``model``."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, LinearWithLoRA):
                setattr(module, name, child.merged())
    return model
