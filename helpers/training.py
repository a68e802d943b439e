"""Accuracy, loss and the fine-tuning loop, as on the slides: always on the last token's logits."""
import torch

from .classifier import check_classifier
from .storage.progress import progress


def check_evaluation_inputs(data_loader, model, num_batches):
    """Clear errors for what the accuracy and loss functions cannot evaluate."""
    check_classifier(model)
    if isinstance(data_loader, torch.utils.data.Dataset):
        raise TypeError("pass a DataLoader (batches of inputs and labels), not the Dataset itself: "
                        "e.g. val_loader, not val_loader.dataset")
    if num_batches is not None and (isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1):
        raise ValueError(f"num_batches must be a whole number of batches of at least 1 (or None for all), "
                         f"got {num_batches!r}")
    if len(data_loader) == 0:
        raise ValueError("the data loader has no batches: nothing to evaluate")


def check_training_inputs(model, optimizer, num_epochs, eval_freq, eval_iter):
    """Clear errors for what ``train_classifier_simple`` cannot train with."""
    check_classifier(model)
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must be a torch optimizer (e.g. torch.optim.AdamW(model.parameters(), ...)), "
                        f"got {type(optimizer).__name__}")
    for name, value in (("num_epochs", num_epochs), ("eval_freq", eval_freq), ("eval_iter", eval_iter)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")


def calc_accuracy_loader(data_loader, model, device, num_batches=None):
    """Fraction (0.0–1.0) of messages in the first ``num_batches`` batches classified correctly."""
    check_evaluation_inputs(data_loader, model, num_batches)
    model.eval()
    correct_predictions, num_examples = 0, 0

    if num_batches is None:
        num_batches = len(data_loader)
    else:
        num_batches = min(num_batches, len(data_loader))

    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i < num_batches:
            input_batch = input_batch.to(device)
            target_batch = target_batch.to(device)

            with torch.no_grad():
                logits = model(input_batch)[:, -1, :]  # logits of the last output token
            predicted_labels = torch.argmax(logits, dim=-1)
            num_examples += predicted_labels.shape[0]
            correct_predictions += (predicted_labels == target_batch).sum().item()
        else:
            break
    return correct_predictions / num_examples


def calc_loss_batch(input_batch, target_batch, model, device):
    """Cross-entropy of one batch on the last token's logits (a tensor, so ``backward`` can follow)."""
    check_classifier(model)
    input_batch = input_batch.to(device)
    target_batch = target_batch.to(device)
    logits = model(input_batch)[:, -1, :]  # logits of the last output token
    loss = torch.nn.functional.cross_entropy(logits, target_batch)
    return loss


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Average batch loss over the first ``num_batches`` batches (all by default)."""
    check_evaluation_inputs(data_loader, model, num_batches)
    total_loss = 0.0
    if num_batches is None:
        num_batches = len(data_loader)
    else:
        num_batches = min(num_batches, len(data_loader))

    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i < num_batches:
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            total_loss += loss.item()
        else:
            break
    return total_loss / num_batches


def evaluate_model(model, train_loader, val_loader, device, eval_iter):
    """Training and validation loss on ``eval_iter`` batches each, without gradients."""
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


_RUN = {"bar": None}  # the training run's one progress bar, shared by its epochs


def progress_bar(data_loader, epoch, num_epochs):
    """One pass over ``data_loader`` (one iterator: one shuffle, as without the bar), counted on the run's single
    progress bar: "Epoch 2/5", the steps of the whole run, and the time left as measured on this machine."""
    bar = _RUN["bar"]
    if epoch == 0 or bar is None or bar.disable:  # a new run: a new bar (an interrupted run's old one goes)
        if bar is not None:
            bar.close()
        bar = _RUN["bar"] = progress(total=num_epochs * len(data_loader), unit="step", leave=False)
    bar.set_description(f"Epoch {epoch + 1}/{num_epochs}", refresh=False)
    for batch in data_loader:
        yield batch
        bar.update()
    if epoch == num_epochs - 1:
        bar.close()


def train_classifier_simple(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter):
    """The lecture's fine-tuning loop; returns ``train_losses, val_losses, train_accs, val_accs, examples_seen``."""
    check_training_inputs(model, optimizer, num_epochs, eval_freq, eval_iter)
    # Initialize lists to track losses and examples seen
    train_losses, val_losses, train_accs, val_accs = [], [], [], []
    examples_seen, global_step = 0, -1

    # Main training loop
    for epoch in range(num_epochs):
        model.train()  # Set model to training mode

        for input_batch, target_batch in progress_bar(train_loader, epoch, num_epochs):
            optimizer.zero_grad()  # Reset loss gradients from the previous batch iteration
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()  # Calculate loss gradients
            optimizer.step()  # Update model weights using loss gradients
            examples_seen += input_batch.shape[0]  # New: track examples instead of tokens
            global_step += 1

            # Optional evaluation step
            if global_step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                print(f"Ep {epoch + 1} (Step {global_step:06d}): "
                      f"Train loss {train_loss:.3f}, Val loss {val_loss:.3f}")

        # Calculate accuracy after each epoch
        train_accuracy = calc_accuracy_loader(train_loader, model, device, num_batches=eval_iter)
        val_accuracy = calc_accuracy_loader(val_loader, model, device, num_batches=eval_iter)
        print(f"Training accuracy: {train_accuracy * 100:.2f}% | ", end="")
        print(f"Validation accuracy: {val_accuracy * 100:.2f}%")
        train_accs.append(train_accuracy)
        val_accs.append(val_accuracy)

    return train_losses, val_losses, train_accs, val_accs, examples_seen
