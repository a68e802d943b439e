"""Classifying new messages with the fine-tuned model: one at a time, or many at once.

The classifier was trained on messages padded to ``max_length`` (120) and reads the logits of
the last position, so inference must pad the same way. A classifier loaded with
``load_classifier`` (or saved with ``save_classifier``) carries its checkpoint's reading rule
(``max_length`` and ``pooling``), and both functions apply it when ``max_length`` is not given.
"""
import numpy as np
import torch

from .fast import is_plain_block, last_block_at, trunk_forward
from .gpt import GPTModel
from .precision import autocast, resolve_precision
from .tokenizer import END_OF_TEXT_ID


def _token_ids(text, tokenizer, limit):
    if not isinstance(text, str):
        raise TypeError(f"a message must be a string, got {type(text).__name__}: {text!r}")
    if not text.strip():
        raise ValueError("the message is empty (or only whitespace); there is nothing to classify")
    # disallowed_special=(): a message that *contains* "<|endoftext|>" is just text, not a special token
    return tokenizer.encode(text, disallowed_special=())[:limit]


def _check_count(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a whole number of {'tokens' if name == 'max_length' else 'messages'}, "
                        f"got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


def _reading_rule(model, max_length):
    """``(limit, pooling)``: how many tokens to keep and which position to read ("last" or "last_real").

    A model that carries its checkpoint's rule (``model.reading_rule``) is read that way; an
    explicit ``max_length`` that contradicts a "last" rule would read another position, so it is refused.
    """
    _check_count("max_length", max_length, allow_none=True)
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


def _last_block_is_plain(model):
    """True for a plain :class:`GPTModel` whose last block is the lecture's (no LoRA, no int8 layers)."""
    if type(model) is not GPTModel:  # e.g. a classifier reading a trunk cache: it has its own forward
        return False
    return is_plain_block(model.trf_blocks[-1])


@torch.no_grad()
def read_logits(model, batch, positions, precision="fp32"):
    """The classifier's logits at one position per message, ``[batch, classes]`` in float32.

    A plain GPTModel computes its last block only at the positions read (see
    :func:`helpers.fast.last_block_at`): same numbers as ``model(batch)[rows, positions]``, up to
    float rounding. Any other model runs its full forward pass.
    """
    with autocast(precision, batch.device):
        if _last_block_is_plain(model):
            x = last_block_at(model.trf_blocks[-1], trunk_forward(model, batch), positions)
            return model.out_head(model.final_norm(x))[:, 0].float()
        outputs = model(batch)
        if outputs.shape[1] == 1 < batch.shape[1]:  # a model that returns only its last position (helpers.fast)
            if (positions != batch.shape[1] - 1).any():
                raise ValueError("this model returns only the last position's logits, so it cannot read "
                                 "messages at their own length; pass max_length (e.g. 120)")
            return outputs[:, 0].float()
        return outputs[torch.arange(len(batch), device=batch.device), positions].float()


def classify_review(text, model, tokenizer, device, max_length=None, precision="fp32"):
    """Classify one message: returns ``(predicted_label, probabilities)``, e.g. ``(1, array([0.013, 0.987]))``.

    The message is truncated to ``max_length`` tokens (or the model's context) and padded to
    ``max_length`` with ``<|endoftext|>``, as in training. Label 0 is ham, 1 is spam.
    ``precision="bf16"`` runs it in bfloat16 where the hardware has it (see :mod:`helpers.precision`).
    """
    model.eval()
    precision = resolve_precision(precision, device, announce="once")
    limit, pooling = _reading_rule(model, max_length)
    token_ids = _token_ids(text, tokenizer, limit)
    if pooling == "last":
        token_ids += [END_OF_TEXT_ID] * (limit - len(token_ids))
    input_tensor = torch.tensor(token_ids, dtype=torch.long).unsqueeze(0).to(device)
    logits = read_logits(model, input_tensor, torch.tensor([len(token_ids) - 1], device=input_tensor.device), precision)
    probabilities = torch.softmax(logits, dim=-1)
    return int(torch.argmax(logits, dim=-1).item()), probabilities.cpu().numpy()[0]


def classify_texts(texts, model, tokenizer, device, max_length=None, batch_size=32, precision="fp32"):
    """Classify many messages in batches; returns ``(labels, probabilities)`` as NumPy arrays.

    Gives the same results as calling :func:`classify_review` on each message. With "last_real"
    pooling (a flexible checkpoint, or no ``max_length`` and no reading rule) each message is read at
    its own last token: the causal mask makes the padding after it invisible, so messages are batched
    with others of similar length (less padding to compute) and the results are put back in the
    original order.
    """
    if isinstance(texts, str):
        raise TypeError("classify_texts takes a list of messages; for one message use classify_review")
    _check_count("batch_size", batch_size)
    model.eval()
    precision = resolve_precision(precision, device, announce="once")
    limit, pooling = _reading_rule(model, max_length)
    encoded = [_token_ids(text, tokenizer, limit) for text in texts]
    if not encoded:
        return np.zeros(0, dtype=np.int64), np.zeros((0, model.out_head.out_features), dtype=np.float32)
    lengths = torch.tensor([len(ids) for ids in encoded])
    padded = pooling == "last"
    order = torch.arange(len(encoded)) if padded else torch.argsort(lengths, stable=True)
    logits = []
    for start in range(0, len(encoded), batch_size):
        chunk = order[start:start + batch_size].tolist()
        width = limit if padded else int(lengths[chunk].max())
        batch = torch.tensor([encoded[i] + [END_OF_TEXT_ID] * (width - len(encoded[i])) for i in chunk],
                             dtype=torch.long).to(device)
        # padded reading: every message at the last position, as in training; else at its own last token
        positions = torch.full((len(chunk),), width - 1) if padded else lengths[chunk] - 1
        logits.append(read_logits(model, batch, positions.to(batch.device), precision).cpu())
    logits = torch.cat(logits)[torch.argsort(order)]  # back to the messages' order
    return logits.argmax(dim=-1).numpy(), torch.softmax(logits, dim=-1).numpy()
