"""The cached trained classifier that notebooks 5 and 6 start from."""
import torch

from helpers import get_trained_classifier


def test_trains_once_then_loads_the_checkpoint(monkeypatch, tmp_path, staged_zip, capsys):
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBOOK_SMS_ZIP", str(staged_zip))
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    first, recipe = get_trained_classifier(device="cpu")
    out = capsys.readouterr().out
    assert "Training one now" in out and "Ep 5 (Step 000600)" in out
    assert recipe["model_name"] == "test-model" and recipe["training"]["engine"] == "exact"
    assert "trained with the fast engine, exact mode for 650 of 650 steps" in out and "-rebuilt" in out
    second, _ = get_trained_classifier(device="cpu")
    out = capsys.readouterr().out
    assert "Loaded the classifier in" in out and "Training" not in out and "TEST MODEL" in out
    assert "saved by get_trained_classifier" in out
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
