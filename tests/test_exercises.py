"""The book's chapter-6 exercises: each variant does what the exercise asks, and reports beside the book."""
import pytest
import torch

from helpers import BOOK_EXERCISES, CHAPTER_TEST_ACCURACY, ReadsFirstToken, exercise_table, run_exercise
from helpers.beyond.exercises import estimate_seconds, exercise_setup


@pytest.fixture
def test_model(monkeypatch, tmp_path, staged_zip):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBOOK_SMS_ZIP", str(staged_zip))


def test_first_token_reads_exactly_position_0(tiny_classifier):
    model = tiny_classifier()
    x = torch.randint(0, 50257, (3, 20))
    with torch.no_grad():
        assert torch.allclose(ReadsFirstToken(model)(x)[:, -1], model(x)[:, 0], atol=1e-6)
    assert ReadsFirstToken(model).out_head is model.out_head  # the lecture's checks see the classifier


def test_each_variant_is_set_up_as_its_exercise_asks(test_model, tokenizer):
    model, loaders = exercise_setup("6.1", tokenizer)
    assert next(iter(loaders[0]))[0].shape == (8, model.cfg["context_length"])  # padded to the full context
    assert [len(loader) for loader in loaders] == [130, 19, 38]
    model, _ = exercise_setup("6.2", tokenizer)
    assert all(p.requires_grad for p in model.parameters())
    model, loaders = exercise_setup("6.3", tokenizer)
    assert isinstance(model, ReadsFirstToken) and next(iter(loaders[0]))[0].shape == (8, 120)
    with pytest.raises(ValueError, match="exercises \\['6.1', '6.2', '6.3'\\], not '6.4'"):
        exercise_setup("6.4", tokenizer)


def test_the_estimate_leaves_the_lectures_batches_alone(test_model, tokenizer):
    model, loaders = exercise_setup("6.3", tokenizer)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    before = {name: p.clone() for name, p in model.named_parameters()}
    assert estimate_seconds(model, loaders) > 0
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())  # timed on a copy


def test_an_exercise_runs_and_reports_beside_the_book(test_model, tokenizer, capsys):
    row = run_exercise("6.3", tokenizer, num_epochs=1)
    out = capsys.readouterr().out
    assert "Exercise 6.3 (train on the first token instead of the last): 130 steps, about" in out
    assert 0 <= row["your test accuracy"] <= 1 and row["book's test accuracy (another split)"] == 0.75
    skipped = run_exercise("6.1", tokenizer, num_epochs=1, max_minutes=0)
    assert skipped["your test accuracy"] is None and "run_long=True" in capsys.readouterr().out
    table = exercise_table([row, skipped])
    assert table.loc["6.3", "chapter's test accuracy"] == CHAPTER_TEST_ACCURACY == 0.9567
    assert list(table.index) == ["6.3", "6.1"] and BOOK_EXERCISES["6.2"][1] == 0.9667


def test_exercise_6_2_reuses_the_all_layers_row_of_the_same_epochs(test_model, tokenizer, capsys):
    row = {"strategy": "all layers", "epochs": 1, "test accuracy": 0.5, "training time (s)": 12.0}
    reused = run_exercise("6.2", tokenizer, num_epochs=1, same_as=row)
    assert reused["your test accuracy"] == 0.5 and reused["training time (s)"] == 12.0
    assert "its row is reused, nothing is trained again" in capsys.readouterr().out
    # another number of epochs is another run: trained (here skipped by max_minutes, so nothing trains)
    other = run_exercise("6.2", tokenizer, num_epochs=2, same_as=row, max_minutes=0)
    assert other["your test accuracy"] is None and "not run" in capsys.readouterr().out
