"""Classifying new messages with the fine-tuned model: one at a time, or many at once.

The classifier was trained on messages padded to ``max_length`` (120) and reads the logits of
the last position, so inference must pad the same way: pass the checkpoint's ``max_length``.
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


def _limit(model, max_length):
    context = model.cfg["context_length"]
    return context if max_length is None else min(max_length, context)


def classify_review(text, model, tokenizer, device, max_length=None):
    """Classify one message: returns ``(predicted_label, probabilities)``, e.g. ``(1, array([0.013, 0.987]))``.

    The message is truncated to ``max_length`` tokens (or the model's context) and padded to
    ``max_length`` with ``<|endoftext|>``, as in training. Label 0 is ham, 1 is spam.
    """
    model.eval()
    limit = _limit(model, max_length)
    token_ids = _token_ids(text, tokenizer, limit)
    if max_length:
        token_ids += [END_OF_TEXT_ID] * (limit - len(token_ids))
    input_tensor = torch.tensor(token_ids, dtype=torch.long).unsqueeze(0).to(device)
    with torch.no_grad():
        logits = model(input_tensor)[:, -1, :]
    probabilities = torch.softmax(logits, dim=-1)
    return int(torch.argmax(logits, dim=-1).item()), probabilities.cpu().numpy()[0]


def classify_texts(texts, model, tokenizer, device, max_length=None, batch_size=32):
    """Classify many messages in batches; returns ``(labels, probabilities)`` as NumPy arrays.

    Gives the same results as calling :func:`classify_review` on each message. Without
    ``max_length`` each batch is padded only to its longest message and every message is read
    at its own last token: the causal mask makes the padding after it invisible.
    """
    if isinstance(texts, str):
        raise TypeError("classify_texts takes a list of messages; for one message use classify_review")
    model.eval()
    limit = _limit(model, max_length)
    encoded = [_token_ids(text, tokenizer, limit) for text in texts]
    labels, probabilities = [], []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = limit if max_length else max(len(ids) for ids in chunk)
        batch = torch.tensor([ids + [END_OF_TEXT_ID] * (width - len(ids)) for ids in chunk], dtype=torch.long)
        with torch.no_grad():
            outputs = model(batch.to(device))
            if max_length:  # every message is read at the last position, as in training
                logits = outputs[:, -1, :]
            else:  # each message at its own last token
                logits = outputs[torch.arange(len(chunk)), torch.tensor([len(ids) - 1 for ids in chunk])]
        probabilities.append(torch.softmax(logits, dim=-1).cpu())
        labels.append(logits.argmax(dim=-1).cpu())
    if not encoded:
        return np.zeros(0, dtype=np.int64), np.zeros((0, model.out_head.out_features), dtype=np.float32)
    return torch.cat(labels).numpy(), torch.cat(probabilities).numpy()
