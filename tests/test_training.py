"""Loss, accuracy, the training loop and the metrics, on small models and hand-made batches."""
import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import precision_recall_fscore_support

from helpers import (
    GPTModel,
    calc_accuracy_loader,
    calc_loss_batch,
    calc_loss_loader,
    confusion_matrix,
    precision_recall_f1,
    predict_loader,
    prepare_for_classification,
    train_classifier_simple,
)

TINY = {"vocab_size": 50257, "context_length": 32, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
        "drop_rate": 0.0, "qkv_bias": True}


class FixedLogits(torch.nn.Module):
    """A 'model' whose last-token logits are given: lets us count correct answers by hand."""

    def __init__(self, last_logits):
        super().__init__()
        self.last_logits = last_logits
        self.calls = 0

    def forward(self, x):
        out = torch.zeros(x.shape[0], x.shape[1], 2)
        out[:, 0, :] = torch.tensor([5.0, -5.0])  # the first position always says "ham"
        out[:, -1, :] = self.last_logits[self.calls * x.shape[0]:(self.calls + 1) * x.shape[0]]
        self.calls += 1
        return out


def tiny_classifier(seed=0):
    torch.manual_seed(seed)
    return prepare_for_classification(GPTModel(TINY))


def toy_loader(n_batches=4, batch_size=4, seed=1):
    """Separable toy data: spam messages contain token 1000, ham messages token 2000."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        labels = torch.randint(0, 2, (batch_size,), generator=g)
        inputs = torch.randint(0, 500, (batch_size, 12), generator=g)
        inputs[:, 3] = torch.where(labels == 1, 1000, 2000)
        batches.append((inputs, labels))
    return batches


def test_accuracy_equals_a_manual_count():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.2, 0.1], [0.0, 3.0], [2.0, 1.0], [0.0, 0.5]])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    batches = [(torch.zeros(3, 5, dtype=torch.long), labels[:3]), (torch.zeros(3, 5, dtype=torch.long), labels[3:])]
    # predictions: 0,1,0 | 1,0,1 -> correct: yes,no,yes | yes,no,yes = 4 of 6
    assert calc_accuracy_loader(batches, FixedLogits(logits), "cpu") == pytest.approx(4 / 6)
    assert calc_accuracy_loader(batches, FixedLogits(logits), "cpu", num_batches=1) == pytest.approx(2 / 3)


def test_loss_is_cross_entropy_of_the_last_token():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    labels = torch.tensor([1, 0])
    loss = calc_loss_batch(torch.zeros(2, 4, dtype=torch.long), labels, FixedLogits(logits), "cpu")
    by_hand = -(torch.log_softmax(logits, -1)[0, 1] + torch.log_softmax(logits, -1)[1, 0]) / 2
    assert loss.item() == pytest.approx(by_hand.item())
    batches = [(torch.zeros(2, 4, dtype=torch.long), labels)] * 3
    assert calc_loss_loader(batches, FixedLogits(torch.cat([logits] * 3)), "cpu") == pytest.approx(by_hand.item())
    with pytest.raises(ValueError, match="no batches"):
        calc_loss_loader([], FixedLogits(logits), "cpu")


def run_training(seed=0, epochs=3, lr=1e-3):
    model = tiny_classifier(seed)
    loader = toy_loader()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    return model, train_classifier_simple(model, loader, loader, optimizer, "cpu", num_epochs=epochs,
                                          eval_freq=2, eval_iter=4)


def test_training_lowers_the_loss_and_logs_like_the_slides(capsys):
    model = tiny_classifier()
    before = calc_loss_loader(toy_loader(), model, "cpu")
    model, (train_losses, val_losses, train_accs, val_accs, examples_seen) = run_training(epochs=4)
    assert calc_loss_loader(toy_loader(), model, "cpu") < before
    assert examples_seen == 4 * 4 * 4
    assert len(train_losses) == len(val_losses) == 8 and len(train_accs) == len(val_accs) == 4
    out = capsys.readouterr().out
    assert "Ep 1 (Step 000000): Train loss" in out and "Ep 4 (Step 000014)" in out
    assert out.count("Training accuracy:") == 4 and "| Validation accuracy:" in out


def test_only_unfrozen_parameters_change():
    model = tiny_classifier()
    frozen_before = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    run_training_model, _ = run_training()
    for name, value in run_training_model.named_parameters():
        if name in frozen_before:
            assert torch.equal(value, frozen_before[name]), name


def test_same_seed_same_losses():
    assert run_training(seed=3)[1] == run_training(seed=3)[1]
    assert run_training(seed=3)[1][0] != run_training(seed=4)[1][0]


def test_confusion_matrix_and_scores_by_hand_and_sklearn():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 0, 1, 1])
    predictions = torch.tensor([0, 1, 0, 0, 1, 0, 1, 1, 1, 1])
    matrix = confusion_matrix(labels, predictions)
    # by hand: ham 5 (3 right, 2 flagged), spam 5 (4 caught, 1 missed)
    assert matrix.tolist() == [[3, 2], [1, 4]]
    assert matrix.tolist() == sk_confusion_matrix(labels, predictions).tolist()
    precision, recall, f1 = precision_recall_f1(matrix)
    assert (precision, recall) == (4 / 6, 4 / 5)
    assert f1 == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))
    sk = precision_recall_fscore_support(labels, predictions, average="binary", pos_label=1)
    assert (precision, recall, f1) == pytest.approx(sk[:3])
    assert precision_recall_f1(torch.tensor([[5, 0], [3, 0]])) == (0.0, 0.0, 0.0)  # never predicts spam


def test_slide_metrics_example():
    precision, recall, _ = precision_recall_f1(torch.tensor([[795, 30], [25, 150]]))
    assert round(precision * 100, 1) == 83.3 and round(recall * 100, 1) == 85.7


def test_predict_loader_matches_accuracy():
    model = tiny_classifier()
    labels, predictions, probabilities = predict_loader(toy_loader(), model, "cpu")
    assert (labels == predictions).float().mean().item() == pytest.approx(calc_accuracy_loader(toy_loader(), model, "cpu"))
    assert torch.allclose(probabilities.sum(-1), torch.ones(len(labels)))




def test_the_loop_and_the_metrics_refuse_what_they_cannot_use(tiny_classifier, tiny_gpt):
    model, loader = tiny_classifier(), toy_loader()
    language_model = tiny_gpt()  # no surgery: its head predicts tokens
    for call in (lambda: calc_accuracy_loader(loader, language_model, "cpu"),
                 lambda: calc_loss_loader(loader, language_model, "cpu"),
                 lambda: calc_loss_batch(*loader[0], language_model, "cpu")):
        with pytest.raises(ValueError, match="prepare_for_classification"):
            call()
    with pytest.raises(ValueError, match="no batches"):
        calc_accuracy_loader([], model, "cpu")
    with pytest.raises(ValueError, match="num_batches must be a whole number"):
        calc_loss_loader(loader, model, "cpu", num_batches=0)
    optimizer = torch.optim.AdamW(model.parameters())
    with pytest.raises(ValueError, match="eval_freq must be a whole number of at least 1"):
        train_classifier_simple(model, loader, loader, optimizer, "cpu", num_epochs=1, eval_freq=0, eval_iter=1)
    with pytest.raises(TypeError, match="optimizer must be a torch optimizer"):
        train_classifier_simple(model, loader, loader, None, "cpu", num_epochs=1, eval_freq=1, eval_iter=1)
