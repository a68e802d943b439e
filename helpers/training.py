"""Loss, accuracy and the fine-tuning loop, as on the slides: always on the last token's logits."""
import os
import time

import torch
from tqdm.auto import tqdm

from .paths import ENV_MAX_STEPS
from .precision import autocast, resolve_precision


def calc_accuracy_loader(data_loader, model, device, num_batches=None):
    """Fraction (0.0–1.0) of messages in the first ``num_batches`` batches classified correctly."""
    model.eval()
    correct_predictions, num_examples = 0, 0
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= num_batches:
            break
        input_batch, target_batch = input_batch.to(device), target_batch.to(device)
        with torch.no_grad():
            logits = model(input_batch)[:, -1, :]  # the last token's logits
        predicted_labels = torch.argmax(logits, dim=-1)
        num_examples += predicted_labels.shape[0]
        correct_predictions += (predicted_labels == target_batch).sum().item()
    return correct_predictions / num_examples if num_examples else float("nan")


def calc_loss_batch(input_batch, target_batch, model, device):
    """Cross-entropy of one batch, computed on the last token's logits (a tensor, for ``backward``)."""
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)[:, -1, :]
    return torch.nn.functional.cross_entropy(logits, target_batch)


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Average batch loss over the first ``num_batches`` batches (all by default)."""
    if len(data_loader) == 0:
        return float("nan")
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total_loss = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= num_batches:
            break
        total_loss += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total_loss / num_batches


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Training and validation loss on ``eval_iter`` batches each, without gradients."""
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


def max_steps_from_env():
    """The step cap set by ``WORKBOOK_MAX_STEPS`` (used by CI to keep notebooks fast), or None."""
    value = os.environ.get(ENV_MAX_STEPS, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ENV_MAX_STEPS} must be a positive whole number of training steps, got {value!r}")
    return int(value)


def train_classifier_simple(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter,
                            max_steps=None, precision="fp32"):
    """The lecture's fine-tuning loop.

    Every step: zero the gradients, compute the loss on one batch, backpropagate, update.
    Every ``eval_freq`` steps: print the training and validation loss on ``eval_iter`` batches.
    After every epoch: print the training and validation accuracy on ``eval_iter`` batches.
    ``max_steps`` (optional) stops early after that many steps in all. ``precision="bf16"`` runs
    the forward passes in bfloat16 where the hardware has it (see :mod:`helpers.precision`).

    Returns ``train_losses, val_losses, train_accs, val_accs, examples_seen``.
    """
    train_losses, val_losses, train_accs, val_accs = [], [], [], []
    examples_seen, global_step = 0, -1
    precision = resolve_precision(precision, device)
    total_steps = num_epochs * len(train_loader) if max_steps is None else min(max_steps, num_epochs * len(train_loader))
    start = time.time()
    progress = tqdm(total=total_steps, desc="Training", unit="step")
    for epoch in range(num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            if global_step + 1 >= total_steps:
                break
            optimizer.zero_grad()
            with autocast(precision, device):
                loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            examples_seen += input_batch.shape[0]
            global_step += 1
            progress.update(1)
            progress.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")

            if global_step % eval_freq == 0:
                with autocast(precision, device):
                    train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                tqdm.write(f"Ep {epoch + 1} (Step {global_step:06d}): "
                           f"Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")

        with autocast(precision, device):
            train_accuracy = calc_accuracy_loader(train_loader, model, device, num_batches=eval_iter)
            val_accuracy = calc_accuracy_loader(val_loader, model, device, num_batches=eval_iter)
        tqdm.write(f"Training accuracy: {train_accuracy * 100:.2f}% | Validation accuracy: {val_accuracy * 100:.2f}%")
        train_accs.append(train_accuracy)
        val_accs.append(val_accuracy)
        if global_step + 1 >= total_steps:
            break
    progress.close()
    capped = " (stopped early: max_steps)" if global_step + 1 < num_epochs * len(train_loader) else ""
    tqdm.write(f"Training completed in {(time.time() - start) / 60:.2f} minutes ({global_step + 1} steps{capped}).")
    return train_losses, val_losses, train_accs, val_accs, examples_seen
