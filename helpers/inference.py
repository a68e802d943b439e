"""Classifying a new message with the fine-tuned model, as on the slides.

A classifier trained on messages padded to 120 tokens is read at the last position, so pass the
``max_length`` it was trained with. Without ``max_length`` the message is not padded, and the
model reads its last token.
"""
import torch

from .classifier import check_classifier
from .tokenizer import check_max_length, check_tokenizer


def check_message(text):
    """A clear error for a message that is not text, or has nothing to classify."""
    if not isinstance(text, str):
        raise TypeError(f"a message must be a string, got {type(text).__name__}: {text!r}")
    if not text.strip():
        raise ValueError("the message is empty (or only whitespace); there is nothing to classify")


def check_classify_inputs(text, model, tokenizer, max_length):
    """Clear errors for what ``classify_review`` cannot read: no text, no classifier, too many tokens."""
    check_message(text)
    check_classifier(model)
    check_tokenizer(tokenizer)
    check_max_length(max_length)
    context = model.cfg["context_length"]
    if (max_length or len(tokenizer.encode(text, disallowed_special=()))) > context:
        raise ValueError(f"the model reads at most {context} tokens; pass max_length={min(context, 120)} "
                         "(longer messages are then cut, as in training)")


def classify_review(text, model, tokenizer, device, max_length=None):
    """Classify one message: returns ``(predicted_label, probabilities)``, e.g. ``(1, array([0.013, 0.987]))``."""
    check_classify_inputs(text, model, tokenizer, max_length)
    model.eval()  # Set the model to evaluation mode

    # Tokenize, truncate and pad as in training ("<|endoftext|>" in a message is text, as in SpamDataset)
    token_ids = tokenizer.encode(text, disallowed_special=())
    if max_length:
        token_ids = token_ids[:max_length]
        token_ids += [50256] * (max_length - len(token_ids))  # pad with <|endoftext|>

    # Convert to a tensor and add the batch dimension
    input_tensor = torch.tensor(token_ids, dtype=torch.long).unsqueeze(0).to(device)

    # The model's prediction, read at the last position
    with torch.no_grad():
        logits = model(input_tensor)[:, -1, :]
    probabilities = torch.softmax(logits, dim=-1)
    predicted_label = torch.argmax(logits, dim=-1).item()

    return predicted_label, probabilities.cpu().numpy()[0]
