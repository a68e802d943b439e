"""Classifying new messages with the fine-tuned model: one at a time, or many at once.

The classifier was trained on messages padded to ``max_length`` (120) and reads the logits of
the last position, so inference must pad the same way. A classifier loaded with
``load_classifier`` (or saved with ``save_classifier``) carries its checkpoint's reading rule
(``max_length`` and ``pooling``), and both functions apply it when ``max_length`` is not given.
"""
import numpy as np
import torch

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


def classify_review(text, model, tokenizer, device, max_length=None):
    """Classify one message: returns ``(predicted_label, probabilities)``, e.g. ``(1, array([0.013, 0.987]))``.

    The message is truncated to ``max_length`` tokens (or the model's context) and padded to
    ``max_length`` with ``<|endoftext|>``, as in training. Label 0 is ham, 1 is spam.
    """
    model.eval()
    limit, pooling = _reading_rule(model, max_length)
    token_ids = _token_ids(text, tokenizer, limit)
    if pooling == "last":
        token_ids += [END_OF_TEXT_ID] * (limit - len(token_ids))
    input_tensor = torch.tensor(token_ids, dtype=torch.long).unsqueeze(0).to(device)
    with torch.no_grad():  # "last_real": unpadded, so the last position is the last real token
        logits = model(input_tensor)[:, -1, :]
    probabilities = torch.softmax(logits, dim=-1)
    return int(torch.argmax(logits, dim=-1).item()), probabilities.cpu().numpy()[0]


def classify_texts(texts, model, tokenizer, device, max_length=None, batch_size=32):
    """Classify many messages in batches; returns ``(labels, probabilities)`` as NumPy arrays.

    Gives the same results as calling :func:`classify_review` on each message. With "last_real"
    pooling (a flexible checkpoint, or no ``max_length`` and no reading rule) each batch is padded
    only to its longest message and every message is read at its own last token: the causal mask makes the padding after it invisible.
    """
    if isinstance(texts, str):
        raise TypeError("classify_texts takes a list of messages; for one message use classify_review")
    _check_count("batch_size", batch_size)
    model.eval()
    limit, pooling = _reading_rule(model, max_length)
    encoded = [_token_ids(text, tokenizer, limit) for text in texts]
    labels, probabilities = [], []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = limit if pooling == "last" else max(len(ids) for ids in chunk)
        batch = torch.tensor([ids + [END_OF_TEXT_ID] * (width - len(ids)) for ids in chunk], dtype=torch.long)
        with torch.no_grad():
            outputs = model(batch.to(device))
            if pooling == "last":  # every message is read at the last position, as in training
                logits = outputs[:, -1, :]
            else:  # each message at its own last token
                logits = outputs[torch.arange(len(chunk)), torch.tensor([len(ids) - 1 for ids in chunk])]
        probabilities.append(torch.softmax(logits, dim=-1).cpu())
        labels.append(logits.argmax(dim=-1).cpu())
    if not encoded:
        return np.zeros(0, dtype=np.int64), np.zeros((0, model.out_head.out_features), dtype=np.float32)
    return torch.cat(labels).numpy(), torch.cat(probabilities).numpy()
