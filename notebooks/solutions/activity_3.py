# Solution to hands-on activity 3: implement classification metrics
def my_calc_accuracy_loader(data_loader, model, device, num_batches=None):
    model.eval()
    correct, total = 0, 0
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    for i, (inputs, targets) in enumerate(data_loader):
        if i >= num_batches:
            break
        with torch.no_grad():
            logits = model(inputs.to(device))[:, -1, :]  # the last token decides
        correct += (logits.argmax(dim=-1) == targets.to(device)).sum().item()
        total += len(targets)
    return correct / total


def my_calc_loss_batch(input_batch, target_batch, model, device):
    logits = model(input_batch.to(device))[:, -1, :]
    return torch.nn.functional.cross_entropy(logits, target_batch.to(device))  # a tensor: no .item()


def my_calc_loss_loader(data_loader, model, device, num_batches=None):
    total_loss = 0.0
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    for i, (inputs, targets) in enumerate(data_loader):
        if i >= num_batches:
            break
        total_loss += my_calc_loss_batch(inputs, targets, model, device).item()
    return total_loss / num_batches  # the mean of the batch losses
