"""The workbook's flow meets the same messages in the same order as the book's run, pass for pass.

The book builds its loaders right after ``torch.manual_seed(123)``, with no generator of their own, so
every pass over the training loader draws its shuffle from PyTorch's global generator; it reseeds before
the initial metrics and before training. Below, the book's procedure is written out the book's way and
replayed next to the workbook's helpers, as notebooks 4 and 5 call them, on a small model.
"""
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from helpers import (
    BOOK_METRICS,
    PROJECT_ROOT,
    GPTModel,
    calc_accuracy_loader,
    book_training_log,
    calc_loss_loader,
    compare_log_with_book,
    compare_with_book,
    get_gpt2_tokenizer,
    get_spam_dataloaders,
    prepare_for_classification,
    seed_as_after_initial_accuracy,
    seed_as_after_training,
    train_classifier_simple,
)

SMALL = {"vocab_size": 50257, "context_length": 120, "emb_dim": 16, "n_heads": 2, "n_layers": 2,
         "drop_rate": 0.0, "qkv_bias": True}
EPOCHS = 2


class Recorder(nn.Module):
    """The model, plus a list of every batch of token ids it was called on, in order."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, input_ids):
        self.seen.append(input_ids.clone())
        return self.model(input_ids)


def small_classifier():
    torch.manual_seed(0)  # the "pretrained" weights: the same in both flows
    return Recorder(prepare_for_classification(GPTModel(SMALL)))


# ----------------------------------------------------------------- the book's procedure, the book's way
def book_calc_accuracy_loader(data_loader, model, device, num_batches=None):
    model.eval()
    correct_predictions, num_examples = 0, 0
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i < num_batches:
            with torch.no_grad():
                logits = model(input_batch)[:, -1, :]
            predicted_labels = torch.argmax(logits, dim=-1)
            num_examples += predicted_labels.shape[0]
            correct_predictions += (predicted_labels == target_batch).sum().item()
        else:
            break
    return correct_predictions / num_examples


def book_calc_loss_batch(input_batch, target_batch, model, device):
    logits = model(input_batch)[:, -1, :]
    return torch.nn.functional.cross_entropy(logits, target_batch)


def book_calc_loss_loader(data_loader, model, device, num_batches=None):
    total_loss = 0.0
    num_batches = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i < num_batches:
            total_loss += book_calc_loss_batch(input_batch, target_batch, model, device).item()
        else:
            break
    return total_loss / num_batches


def book_train(model, train_loader, val_loader, optimizer, device, num_epochs, eval_freq, eval_iter):
    train_losses, val_losses, train_accs, val_accs = [], [], [], []
    examples_seen, global_step = 0, -1
    for _ in range(num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            loss = book_calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            examples_seen += input_batch.shape[0]
            global_step += 1
            if global_step % eval_freq == 0:
                model.eval()
                with torch.no_grad():
                    train_losses.append(book_calc_loss_loader(train_loader, model, device, num_batches=eval_iter))
                    val_losses.append(book_calc_loss_loader(val_loader, model, device, num_batches=eval_iter))
                model.train()
        train_accs.append(book_calc_accuracy_loader(train_loader, model, device, num_batches=eval_iter))
        val_accs.append(book_calc_accuracy_loader(val_loader, model, device, num_batches=eval_iter))
    return train_losses, val_losses, train_accs, val_accs, examples_seen


def book_run(datasets, own_generator=False, epochs=EPOCHS):
    """Chapter 6 from the loaders to the final training accuracy; returns the model and what it printed."""
    torch.manual_seed(123)
    extra = {"generator": torch.Generator().manual_seed(123)} if own_generator else {}
    train_loader = DataLoader(datasets[0], batch_size=8, shuffle=True, num_workers=0, drop_last=True, **extra)
    val_loader = DataLoader(datasets[1], batch_size=8, num_workers=0, drop_last=False)
    test_loader = DataLoader(datasets[2], batch_size=8, num_workers=0, drop_last=False)
    model = small_classifier()
    torch.manual_seed(123)
    printed = [book_calc_accuracy_loader(loader, model, "cpu", num_batches=10)
               for loader in (train_loader, val_loader, test_loader)]
    with torch.no_grad():
        printed += [book_calc_loss_loader(loader, model, "cpu", num_batches=5)
                    for loader in (train_loader, val_loader, test_loader)]
    torch.manual_seed(123)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.1)
    log = book_train(model, train_loader, val_loader, optimizer, "cpu", num_epochs=epochs, eval_freq=50, eval_iter=5)
    rng_after_training = torch.get_rng_state()
    final = book_calc_accuracy_loader(train_loader, model, "cpu")
    return model, printed, log, rng_after_training, final


# ----------------------------------------------------------------- the workbook's flow (notebooks 4 and 5)
def workbook_run(split_dir, tokenizer):
    train_loader, val_loader, test_loader = get_spam_dataloaders(tokenizer, data_folder=split_dir)
    model = small_classifier()
    torch.manual_seed(123)                                                     # notebook 4, initial accuracy
    printed = [calc_accuracy_loader(loader, model, "cpu", num_batches=10)
               for loader in (train_loader, val_loader, test_loader)]
    torch.manual_seed(7)                                                       # as if other cells ran between
    for reader in (model, model.model):  # notebook 4's loss cell, run again (unrecorded): the same batches
        seed_as_after_initial_accuracy(train_loader, val_loader, test_loader)  # (without it: 0.738, not 0.871)
        with torch.no_grad():
            losses = [calc_loss_loader(loader, reader, "cpu", num_batches=5)
                      for loader in (train_loader, val_loader, test_loader)]
        assert reader is model or losses == printed[3:]
        printed += losses if reader is model else []
    torch.manual_seed(123)                                                     # notebook 4, training
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.1)
    log = train_classifier_simple(model, train_loader, val_loader, optimizer, "cpu", num_epochs=EPOCHS,
                                  eval_freq=50, eval_iter=5)
    rng_after_training = torch.get_rng_state()
    torch.manual_seed(999)                                                     # a later notebook, another state
    seed_as_after_training(train_loader, val_loader, {"training": {"settings": {"num_epochs": EPOCHS}}})
    final = calc_accuracy_loader(train_loader, model, "cpu")                   # notebook 5, full training set
    return model, printed, log, rng_after_training, final


@pytest.fixture(scope="module")
def tokenizer():
    return get_gpt2_tokenizer()


@pytest.fixture(scope="module")
def runs(split_dir, tokenizer):
    datasets = [loader.dataset for loader in get_spam_dataloaders(tokenizer, data_folder=split_dir)]
    return book_run(datasets), workbook_run(split_dir, tokenizer), book_run(datasets, own_generator=True, epochs=0)


def test_every_pass_sees_the_books_batches_in_the_books_order(runs):
    (book, *_), (ours, *_), _ = runs
    # 3 accuracy passes of 10(+1) batches, 3 loss passes of 5(+1), 2 epochs of 130 steps with
    # evaluations at steps 0, 50, ..., 250, and the per-epoch accuracies, then the final pass.
    assert len(ours.seen) == len(book.seen) > 2 * 130
    for i, (a, b) in enumerate(zip(book.seen, ours.seen)):
        assert torch.equal(a, b), f"batch {i} differs"


def test_the_same_numbers_are_printed(runs):
    (book_model, book_printed, book_log, book_rng, book_final), (model, printed, log, rng, final), _ = runs
    assert printed == book_printed                          # initial accuracy (10 batches) and loss (5)
    assert log == book_log                                  # losses every 50 steps, accuracies per epoch
    assert len(log[0]) == 6 and log[4] == EPOCHS * 130 * 8
    assert torch.equal(rng, book_rng)                       # the generator where training left it
    assert final == book_final                              # the same 5 training messages dropped
    for a, b in zip(book_model.parameters(), model.parameters()):
        assert torch.equal(a, b)


def test_a_loader_with_its_own_generator_sees_other_batches(runs):
    """The check above can fail: the previous workbook's seeded train loader gave another order."""
    (book, *_), _, (own_generator, *_) = runs
    first_train_batches = [torch.equal(a, b) for a, b in zip(book.seen[:11], own_generator.seen[:11])]
    assert not all(first_train_batches)


# ----------------------------------------------------------------- the book's values, beside the student's
REFERENCE = PROJECT_ROOT.parent / "shared" / "lecture" / "book_ch06_reference.md"


def test_the_books_log_is_the_reference_files():
    if not REFERENCE.is_file():
        pytest.skip(f"{REFERENCE} is not here (it lies beside the checkout in CI)")
    text = REFERENCE.read_text()
    logged = text.split("- Training log:\n```\n")[1].split("```")[0].strip()
    assert book_training_log() == logged
    for name, value in [("train", "46.25"), ("validation", "45.00"), ("test", "48.75")]:
        assert f"{name} {value} %" in text
    assert "train 97.21 %, validation 97.32 %, test 95.67 %" in text
    assert BOOK_METRICS["final"] == {"train_accuracy": 97.21, "val_accuracy": 97.32, "test_accuracy": 95.67}


def test_compare_with_book_shows_the_difference(monkeypatch):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    table = compare_with_book("initial", train_accuracy=0.475, val_loss=2.5)
    assert table.loc["training accuracy (%)"].tolist() == [46.25, 47.5, 1.25]
    assert table.loc["validation loss"].tolist() == [2.583, 2.5, -0.083]
    with pytest.raises(ValueError, match="train_loss"):
        compare_with_book("final", train_loss=0.1)  # the book prints no final loss


def test_compare_log_with_book_lines_up_evaluations(monkeypatch):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    table = compare_log_with_book([2.153, 0.6], [2.4, 0.637], [0.7], [0.75])
    assert table.loc["step 0: loss"].tolist() == [2.153, 2.153, 2.392, 2.4, pytest.approx(0.008)]
    assert table.loc["epoch 1: accuracy (%)"].tolist() == [70.0, 70.0, 72.5, 75.0, 2.5]
    assert len(table) == 2 + 1  # only what this (short) run logged
    assert len(compare_log_with_book([], [], [], [])) == 0  # stopped before the first evaluation: no rows


def test_with_the_test_model_there_is_no_comparison(monkeypatch, capsys):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    assert compare_with_book("final", test_accuracy=0.5) is None
    assert compare_log_with_book([0.7], [0.7], [0.5], [0.5]) is None
    out = capsys.readouterr().out
    assert "TEST MODEL" in out and "would mean nothing" in out
    assert "Ep 1 (Step 000000): Train loss 2.153, Val loss 2.392" in out  # the book's log, for reference


@pytest.mark.parametrize("training", [{"settings": {"eval_freq": "50"}}, {"settings": {"num_epochs": 0}}, "five epochs",
                                      {"settings": {"eval_iter": True}}])
def test_seed_as_after_training_refuses_a_malformed_recipe(training):
    with pytest.raises(ValueError, match="retrain the classifier"):
        seed_as_after_training([], [], {"training": training})


def test_a_classifier_not_trained_as_the_books_is_not_compared(monkeypatch, capsys, full_training):
    """Notebook 5 passes the checkpoint's recipe: its provenance says whether the book's numbers apply."""
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")
    recipe = {"model_name": "gpt2-small (124M)", "pooling": "last", "max_length": 120, "class_names": ["ham", "spam"],
              "training": full_training}
    assert compare_with_book("final", trained=recipe, test_accuracy=0.96) is not None
    # a checkpoint of the test model, read while WORKBOOK_TEST_MODEL=0: its own name says what it is
    assert compare_with_book("final", trained={**recipe, "model_name": "test-model"}, test_accuracy=0.96) is None
    assert "trained from the tiny random TEST MODEL" in capsys.readouterr().out
    for change, reason in ((dict(steps_done=2), "trained 2 of 650 steps"), (dict(engine="flexible"), "'flexible'"),
                           (dict(settings=dict(full_training["settings"], lr=1e-4)), "'lr': 0.0001"),
                           (dict(steps_planned=1305, steps_done=1305, batch_size=4), "1305 steps of 4 messages")):
        assert compare_with_book("final", trained={**recipe, "training": {**full_training, **change}},
                                 test_accuracy=0.96) is None
        assert reason in capsys.readouterr().out
    assert compare_with_book("final", trained={**recipe, "max_length": 60}, test_accuracy=0.96) is None
    assert "padded to 60, so they are not comparable" in capsys.readouterr().out
