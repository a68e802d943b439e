"""Deployment measurements: int8 quantization, the bf16 row where native, sizes and agreement."""
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from helpers import bf16_native, compare_fp32_int8, quantize_int8
from helpers.classroom.performance import prediction_agreement, serialized_size_mb


@pytest.fixture(scope="module")
def model(tiny_classifier):
    return tiny_classifier(emb_dim=64)


def padded_batches(tokenizer, messages, width=40, batch_size=3):
    rows = [(tokenizer.encode(text)[:width] + [50256] * width)[:width] for text in messages]
    labels = torch.tensor([1, 0, 1, 0, 0, 1, 0, 1][:len(rows)])
    return DataLoader(TensorDataset(torch.tensor(rows), labels), batch_size=batch_size)


def test_int8_quantization_agrees_and_shrinks(model, tokenizer, messages, tiny_classifier):
    quantized = quantize_int8(model)
    quantized_linears = [m for m in quantized.modules() if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")]
    assert len(quantized_linears) == sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert prediction_agreement(model, quantized, padded_batches(tokenizer, messages), "cpu")["agreement"] >= 5 / 6
    wide = tiny_classifier(vocab_size=1000, emb_dim=128)
    assert serialized_size_mb(quantize_int8(wide)) < 0.5 * serialized_size_mb(wide)  # Linear weights dominate


def test_deployment_table_has_a_bf16_row_only_where_native(model, tokenizer, messages, monkeypatch, capsys):
    loader = padded_batches(tokenizer, messages, batch_size=4)
    table = compare_fp32_int8(model, tokenizer, messages, 40, loader, batch_sizes=(4,))
    expected = ["float32", "int8 (dynamic)"] + (["bfloat16 (autocast)"] if bf16_native("cpu") else [])
    assert list(table.index) == expected
    assert not table.isna().any().any()  # every cell filled: float32 agrees with itself
    assert table.loc["float32", "agreement with float32"] == 1.0
    if bf16_native("cpu"):
        assert table.loc["bfloat16 (autocast)", "agreement with float32"] >= 0.75
    monkeypatch.setattr("helpers.classroom.performance.bf16_native", lambda device: False)
    assert "bfloat16 (autocast)" not in compare_fp32_int8(model, tokenizer, messages, 40, loader, batch_sizes=(4,)).index
    assert "No bfloat16 row" in capsys.readouterr().out
