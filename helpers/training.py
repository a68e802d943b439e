"""Accuracy, loss and the fine-tuning loop, as on the slides: always on the last token's logits."""
import torch

from .classifier import check_classifier
from .storage.progress import progress


def _lines(rows, limit=5):
    shown = ", ".join(f"{row + 2:,}" for row in list(rows)[:limit])
    return shown + (f" and {len(rows) - limit:,} more" if len(rows) > limit else "")


def check_loader_fits_model(data_loader, model, name="the data loader"):
    """Clear errors, before the first batch, for data the model cannot read: messages padded longer than its
    context, or labels that are not among its outputs (a split with a label of another class)."""
    dataset = getattr(data_loader, "dataset", None)
    cfg, head = getattr(model, "cfg", None), getattr(model, "out_head", None)
    length = getattr(dataset, "max_length", None)
    if cfg is not None and isinstance(length, int) and length > cfg["context_length"]:
        raise ValueError(f"{name} pads every message to {length:,} tokens, but this model reads at most "
                         f"{cfg['context_length']:,} (its context): build the dataset with "
                         f"max_length={cfg['context_length']:,} or less (SpamDataset(..., max_length=...)).")
    frame = getattr(dataset, "data", None)
    labels = frame["Label"] if hasattr(frame, "columns") and "Label" in frame.columns else None
    if head is not None and labels is not None and len(labels) and labels.max() >= head.out_features:
        wrong = labels.index[labels >= head.out_features]
        source = frame.attrs.get("source", "the dataset")
        raise ValueError(f"{source} line {_lines(wrong)} (line 1 is the header): label {labels[wrong[0]]}, but this "
                         f"classifier has {head.out_features} outputs, for labels 0 … {head.out_features - 1}. Build "
                         f"it with num_classes={int(labels.max()) + 1} (build_spam_classifier(..., num_classes=...)), "
                         "or, if the file was edited, write the splits again with prepare_spam_splits().")


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
    check_loader_fits_model(data_loader, model)


def check_batch(input_batch, target_batch, model):
    """Clear errors for a batch the classifier cannot read: longer than its context, or labels it has no output for."""
    check_classifier(model)
    cfg, head = getattr(model, "cfg", None), getattr(model, "out_head", None)
    if cfg is not None and getattr(input_batch, "ndim", 0) == 2 and input_batch.shape[1] > cfg["context_length"]:
        raise ValueError(f"this batch holds messages of {input_batch.shape[1]:,} tokens, but the model reads at most "
                         f"{cfg['context_length']:,} (its context): pad or cut them to max_length="
                         f"{cfg['context_length']:,} or less in the dataset.")
    if head is not None and torch.is_tensor(target_batch) and target_batch.numel():
        low, high = int(target_batch.min()), int(target_batch.max())  # labels come from the loader, on the CPU
        if low < 0 or high >= head.out_features:
            raise ValueError(f"this batch holds label {high if high >= head.out_features else low}, but the classifier "
                             f"has {head.out_features} outputs, for labels 0 … {head.out_features - 1}: the data has "
                             "other classes than the model (build it with num_classes=...).")


def check_training_inputs(model, train_loader, val_loader, optimizer, num_epochs, eval_freq, eval_iter):
    """Clear errors for what ``train_classifier_simple`` cannot train with, before the first step."""
    check_classifier(model)
    for name, loader, usual in (("training", train_loader, "train_loader"), ("validation", val_loader, "val_loader")):
        if isinstance(loader, torch.utils.data.Dataset):
            raise TypeError(f"pass the {name} DataLoader, not its Dataset (e.g. {usual}, not {usual}.dataset)")
        if len(loader) == 0:
            dataset, size = getattr(loader, "dataset", None), getattr(loader, "batch_size", None)
            why = (f": {len(dataset):,} {name} messages cannot fill one batch of {size:,}, and the training loader "
                   "drops an incomplete batch (drop_last=True). Use a smaller batch size (BATCH_SIZE in "
                   "helpers/settings.py) or more data" if name == "training" and dataset is not None and size else "")
            task = "train on" if name == "training" else "evaluate"
            raise ValueError(f"the {name} loader has no batches, so there is nothing to {task}{why}.")
        check_loader_fits_model(loader, model, f"the {name} loader")
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
    check_batch(input_batch, target_batch, model)
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
    check_training_inputs(model, train_loader, val_loader, optimizer, num_epochs, eval_freq, eval_iter)
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
