"""Evaluation beyond accuracy: predictions, the confusion matrix, precision, recall and F1.

Written out by hand on purpose: these few lines *are* the lesson. (The tests check them
against scikit-learn.)
"""
import torch


@torch.no_grad()
def predict_loader(data_loader, model, device):
    """Labels, predicted labels and class probabilities for every message of ``data_loader``."""
    model.eval()
    labels, predictions, probabilities = [], [], []
    for input_batch, target_batch in data_loader:
        logits = model(input_batch.to(device))[:, -1, :]
        probabilities.append(torch.softmax(logits, dim=-1).cpu())
        predictions.append(logits.argmax(dim=-1).cpu())
        labels.append(target_batch)
    return torch.cat(labels), torch.cat(predictions), torch.cat(probabilities)


def check_class_ids(labels, predictions, num_classes):
    """A clear error when a label or prediction is not a class id from 0 to ``num_classes`` - 1."""
    for name, values in (("labels", labels), ("predictions", predictions)):
        values = torch.as_tensor(values)
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} hold class {values.max().item()}, but num_classes={num_classes}: pass "
                             f"num_classes={values.max().item() + 1} (the classifier's number of classes)")


def confusion_matrix(labels, predictions, num_classes=2):
    """``matrix[actual, predicted]`` = how many messages of class ``actual`` got ``predicted``."""
    check_class_ids(labels, predictions, num_classes)
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for actual, predicted in zip(labels.tolist(), predictions.tolist()):
        matrix[actual, predicted] += 1
    return matrix


def precision_recall_f1(matrix, positive=1):
    """Precision, recall and F1 for the ``positive`` class (spam) from a confusion matrix.

    precision = TP / (TP + FP): of the messages flagged as spam, how many were spam?
    recall    = TP / (TP + FN): of the spam messages, how many were caught?
    F1        = their harmonic mean, 2·P·R / (P + R).
    A ratio with nothing to count (0 / 0) is reported as 0.0.
    """
    tp = matrix[positive, positive].item()
    fp = matrix[:, positive].sum().item() - tp
    fn = matrix[positive, :].sum().item() - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
