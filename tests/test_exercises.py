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


def test_an_exercise_runs_and_reports_beside_the_book(test_model, tokenizer, capsys, monkeypatch):
    monkeypatch.setattr("helpers.beyond.strategies.test_model_enabled", lambda: False)  # as GPT-2 small would be
    row = run_exercise("6.3", tokenizer, num_epochs=1, max_minutes=0)  # notebook 7's quick run (skipped: not trained)
    out = capsys.readouterr().out
    assert "Exercise 6.3 (train on the first token instead of the last): 130 steps, about" in out
    assert row["your test accuracy"] is None and row["book's test accuracy (another split)"] == 0.75
    monkeypatch.undo()
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    trained = run_exercise("6.3", tokenizer, num_epochs=1)
    assert 0 <= trained["your test accuracy"] <= 1
    skipped = run_exercise("6.1", tokenizer, num_epochs=1, max_minutes=0)
    assert skipped["your test accuracy"] is None and "run_long=True" in capsys.readouterr().out
    table = exercise_table([row, trained, skipped])  # the comparable run keeps the book's numbers, the others not
    assert table["chapter's test accuracy"].iloc[0] == CHAPTER_TEST_ACCURACY == 0.9567
    assert table["chapter's test accuracy"].iloc[1:].isna().all()
    assert list(table.index) == ["6.3", "6.3", "6.1"] and BOOK_EXERCISES["6.2"][1] == 0.9667


def test_the_books_numbers_stand_only_beside_a_run_of_its_model_data_and_settings(test_model, tokenizer, capsys,
                                                                                 monkeypatch, tmp_path):
    """Issue 32, item 9: run_exercise and exercise_table showed the book's 75.00 % and 95.67 % beside a run with
    NUM_EPOCHS = 1 and your own CSV."""
    from helpers import settings
    from helpers.beyond.strategies import book_comparison_problem

    lines = "\n".join(f"{'WIN cash now' if i % 2 else 'see you soon'} {i},{'spam' if i % 2 else 'ham'}"
                      for i in range(80))
    (tmp_path / "mine.csv").write_text("text,label\n" + lines + "\n")
    monkeypatch.setattr(settings, "DATASET_CSV", str(tmp_path / "mine.csv"))
    monkeypatch.setattr(settings, "NUM_EPOCHS", 1)
    row = run_exercise("6.3", tokenizer)
    out = capsys.readouterr().out
    assert row["book's test accuracy (another split)"] is None and row["chapter's test accuracy"] is None
    assert "the book's numbers are not set beside this run: this run uses the tiny random TEST MODEL" in out
    table = exercise_table([row])
    assert list(table.columns) == ["variant", "your test accuracy", "training time (s)"]
    assert "left out beside runs they do not hold for" in capsys.readouterr().out
    monkeypatch.setattr("helpers.beyond.strategies.test_model_enabled", lambda: False)
    assert "DATASET_CSV = " in book_comparison_problem()  # your own data
    assert "NUM_EPOCHS" not in book_comparison_problem()  # the run's epochs are its own (notebook 7 passes them)
    monkeypatch.setattr(settings, "DATASET_CSV", None)
    assert book_comparison_problem() is None
    monkeypatch.setattr(settings, "BATCH_SIZE", 4)
    assert book_comparison_problem() == "helpers/settings.py sets BATCH_SIZE = 4 (the book: 8)"
    monkeypatch.setattr(settings, "BATCH_SIZE", 8)
    monkeypatch.setattr(settings, "CLASS_NAMES", ["ham", "spam"])  # a list of the book's names is the book's
    monkeypatch.setattr(settings, "MAX_LENGTH", 120)  # what the book's None resolves to on its data
    assert book_comparison_problem() is None
    assert book_comparison_problem("gpt2-medium (355M)") == "this run uses gpt2-medium (355M), the book's runs " \
                                                            "gpt2-small (124M)"


def test_exercise_6_2_reuses_the_all_layers_row_of_the_same_epochs(test_model, tokenizer, capsys):
    row = {"strategy": "all layers", "epochs": 1, "test accuracy": 0.5, "training time (s)": 12.0}
    reused = run_exercise("6.2", tokenizer, num_epochs=1, same_as=row)
    assert reused["your test accuracy"] == 0.5 and reused["training time (s)"] == 12.0
    assert "its row is reused, nothing is trained again" in capsys.readouterr().out
    # another number of epochs is another run: trained (here skipped by max_minutes, so nothing trains)
    other = run_exercise("6.2", tokenizer, num_epochs=2, same_as=row, max_minutes=0)
    assert other["your test accuracy"] is None and "not run" in capsys.readouterr().out
