"""Fast batch inference: many messages at once, computing only what is read.

:func:`classify_texts` gives the same results as calling the lecture's ``classify_review`` on each
message (tested), faster: the frozen blocks run as the engine's :class:`~helpers.fast.blocks.TrunkBlock`,
the last block only at the position read (:func:`~helpers.fast.blocks.last_block_at`), and messages
read at their own length are batched with others of similar length (less padding to compute).
"""
import numpy as np
import torch
import torch.nn.functional as F

from ..classifier import check_classifier
from ..inference import check_message
from ..tokenizer import END_OF_TEXT_ID, check_max_length
from .blocks import is_plain_block, last_block_at, trunk_blocks, trunk_forward
from .engine import StandIn, check_fast_engine_applicable, plain_model, top_logits
from .precision import autocast, resolve_precision


def _check_batch_size(value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"batch_size must be a whole number of messages, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"batch_size must be at least 1, got {value}")


def reading_rule(model, max_length):
    """``(limit, pooling)``: how many tokens to keep and which position to read ("last" or "last_real").

    A model that carries its checkpoint's rule (``model.reading_rule``) is read that way; an explicit
    ``max_length`` that contradicts a "last" rule would read another position, so it is refused.
    Otherwise, as ``classify_review`` does: with ``max_length`` pad to it and read the last position;
    without it read the last real token.
    """
    check_max_length(max_length)
    rule = getattr(model, "reading_rule", None)
    if rule is not None:
        if max_length is not None and rule["pooling"] == "last" and max_length != rule["max_length"]:
            raise ValueError(f"this classifier was trained on messages padded to {rule['max_length']} tokens and "
                             f"reads the last position; max_length={max_length} would read another one. "
                             f"Pass max_length={rule['max_length']} or leave it out.")
        max_length = rule["max_length"] if max_length is None else max_length
        pooling = rule["pooling"]
    else:
        pooling = "last" if max_length is not None else "last_real"
    context = model.cfg["context_length"]
    return (context if max_length is None else min(int(max_length), context)), pooling


@torch.no_grad()
def read_logits(model, batch, positions, blocks=None):
    """The classifier's logits at one position per message, ``[batch, classes]`` in float32.

    A model whose last block is the lecture's plain block runs the trunk (``blocks``, the engine's
    versions by default) and its last block only at the positions read: the same numbers as
    ``model(batch)[rows, positions]``, up to float rounding. Any other model runs its full forward pass.
    """
    if is_plain_block(model.trf_blocks[-1]):
        x = trunk_forward(model, batch, blocks if blocks is not None else trunk_blocks(model))
        return model.out_head(model.final_norm(last_block_at(model.trf_blocks[-1], x, positions)))[:, 0].float()
    return model(batch)[torch.arange(len(batch), device=batch.device), positions].float()


def classify_texts(texts, model, tokenizer, device, max_length=None, batch_size=32, precision="fp32"):
    """Classify many messages in batches; returns ``(labels, probabilities)`` as NumPy arrays.

    Gives the same results as :func:`helpers.classify_review` on each message with the same
    ``max_length`` (or the checkpoint's reading rule, for a model loaded with ``load_classifier``).
    Where ``classify_review`` refuses a message longer than the model's context (no ``max_length``),
    this cuts it at the context.
    ``precision="bf16"`` runs it in bfloat16 where the hardware has it (see :mod:`helpers.fast.precision`).
    """
    if isinstance(texts, str):
        raise TypeError("classify_texts takes a list of messages; for one message use classify_review")
    _check_batch_size(batch_size)
    texts = list(texts)  # a generator is read once, here
    model = plain_model(model)
    check_classifier(model)
    model.eval()
    precision = resolve_precision(precision, device, announce="once")
    limit, pooling = reading_rule(model, max_length)
    for text in texts:
        check_message(text)
    # disallowed_special=(): a message that *contains* "<|endoftext|>" is just text, not a special token
    encoded = [tokenizer.encode(text, disallowed_special=())[:limit] for text in texts]
    if not encoded:
        return np.zeros(0, dtype=np.int64), np.zeros((0, model.out_head.out_features), dtype=np.float32)
    lengths = torch.tensor([len(ids) for ids in encoded])
    padded = pooling == "last"
    order = torch.arange(len(encoded)) if padded else torch.argsort(lengths, stable=True)
    blocks = trunk_blocks(model)  # float32 wrappers of the model's weights: nothing is copied
    logits = []
    for start in range(0, len(encoded), batch_size):
        chunk = order[start:start + batch_size].tolist()
        width = limit if padded else int(lengths[chunk].max())
        batch = torch.tensor([encoded[i] + [END_OF_TEXT_ID] * (width - len(encoded[i])) for i in chunk],
                             dtype=torch.long).to(device)
        # padded reading: every message at the last position, as in training; else at its own last token
        positions = torch.full((len(chunk),), width - 1) if padded else lengths[chunk] - 1
        with autocast(precision, device):
            logits.append(read_logits(model, batch, positions.to(device), blocks).cpu())
    logits = torch.cat(logits)[torch.argsort(order)]  # back to the messages' order
    return logits.argmax(dim=-1).numpy(), torch.softmax(logits, dim=-1).numpy()


#: The trunk cache mode that reads as each pooling does.
CACHE_MODE_FOR = {"last": "exact", "last_real": "flexible"}


class ReadAsTrained(StandIn):
    """Stands in for a loaded classifier and reads every batch by its checkpoint's reading rule, so the
    lecture's own ``calc_accuracy_loader``, ``predict_loader`` and ``classify_review`` read it as it was trained:

    * ``"last"`` (the lecture's model): each message cut or padded to ``max_length``, read at the last position,
      so ``classify_review`` without ``max_length`` still pads as in training;
    * ``"last_real"`` (flexible mode): each message read at its last real token, wherever the padding starts.

    Returns logits ``[batch, 1, classes]``. With ``cache`` (a :class:`~helpers.fast.engine.TrunkCache` of the
    matching mode) the frozen trunk is read from it, after checking that it still fits the model's weights.
    """

    def __init__(self, model, cache=None):
        super().__init__(model)
        rule = getattr(self.model, "reading_rule", None)
        if rule is None:
            raise ValueError("this model carries no reading rule: ReadAsTrained is for classifiers loaded with "
                             "load_classifier (or get_trained_classifier)")
        if cache is not None:
            if cache.mode != CACHE_MODE_FOR[rule["pooling"]]:
                raise ValueError(f"a classifier that reads {rule['pooling']!r} needs a {CACHE_MODE_FOR[rule['pooling']]!r} "
                                 f"trunk cache, not a {cache.mode!r} one")
            cache.check_fits(self.model)
        self.cache = cache

    def forward(self, input_ids):
        rule = self.model.reading_rule
        pad = rule["pad_token_id"]
        if rule["pooling"] == "last":
            input_ids = input_ids[:, :rule["max_length"]]
            input_ids = F.pad(input_ids, (0, rule["max_length"] - input_ids.shape[1]), value=pad)
            positions = torch.full((len(input_ids),), input_ids.shape[1] - 1, device=input_ids.device)
        else:  # padding comes only after a message's tokens (a typed "<|endoftext|>" is encoded as text)
            positions = ((input_ids != pad).sum(dim=1) - 1).clamp(min=0)
        if self.cache is not None:
            try:
                check_fast_engine_applicable(self.model)
            except ValueError:  # its trunk was made trainable since: computed live below
                pass
            else:
                self.cache.check_fits(self.model)
                return top_logits(self.model, self.cache, input_ids)
        if torch.is_grad_enabled():  # training through it: the full forward pass, with gradients
            return self.model(input_ids)[torch.arange(len(input_ids), device=input_ids.device), positions][:, None, :]
        return read_logits(self.model, input_ids, positions)[:, None, :]  # reading: the engine's faster path
