"""LoRA from scratch, and the strategy comparison of notebook 7."""
import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from helpers import GPTModel, create_dataloaders, prepare_for_classification
from helpers.beyond.lora import LinearWithLoRA, LoRALayer, apply_lora, merge_lora
from helpers.beyond.strategies import STRATEGIES, bag_of_words_baseline, run_strategy

CFG = {"vocab_size": 50257, "context_length": 40, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
       "drop_rate": 0.0, "qkv_bias": True}


def classifier():
    torch.manual_seed(0)
    return prepare_for_classification(GPTModel(CFG))


def batch():
    return torch.randint(0, 50257, (3, 10), generator=torch.Generator().manual_seed(1))


def test_zero_initialised_update_leaves_outputs_unchanged():
    model = classifier()
    x = batch()
    with torch.no_grad():
        before = model(x)
        after = apply_lora(model, rank=4, alpha=8)(x)
    assert torch.equal(before, after)
    assert all(torch.count_nonzero(m.B) == 0 for m in model.modules() if isinstance(m, LoRALayer))


def test_merged_weights_equal_the_unmerged_forward():
    model = apply_lora(classifier(), rank=4, alpha=8)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRALayer):
                module.B.normal_(std=0.1)
        x = batch()
        unmerged = model(x)
        merged = merge_lora(model)
        assert not any(isinstance(m, LinearWithLoRA) for m in merged.modules())
        assert torch.allclose(merged(x), unmerged, atol=1e-5)
        assert not torch.allclose(classifier()(x), unmerged, atol=1e-3)  # the update mattered


def test_only_lora_and_head_train():
    model = apply_lora(classifier(), rank=4, alpha=8)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(name.endswith((".A", ".B")) or name.startswith("out_head.") for name in trainable)
    linears = [m for m in model.modules() if isinstance(m, LinearWithLoRA)]
    assert len(linears) == CFG["n_layers"] * 6  # q, k, v, out_proj and the MLP's two layers per block
    expected = sum(4 * (m.linear.in_features + m.linear.out_features) for m in linears) + CFG["emb_dim"] * 2 + 2
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    frozen = {name: p.clone() for name, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(batch())[:, -1], torch.tensor([0, 1, 1])).backward()
        optimizer.step()
    assert all(torch.equal(p, frozen[name]) for name, p in model.named_parameters() if name in frozen)
    assert any(torch.count_nonzero(m.B) for m in model.modules() if isinstance(m, LoRALayer))


def test_rank_must_be_positive():
    with pytest.raises(ValueError, match="rank"):
        LoRALayer(8, 8, rank=0)


def toy_loaders():
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 50000, (32, 20), generator=g)
    labels = torch.randint(0, 2, (32,), generator=g)
    ds = TensorDataset(ids, labels)
    return create_dataloaders(ds, TensorDataset(ids[:8], labels[:8]), TensorDataset(ids[8:16], labels[8:16]))


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_trains_what_it_says(name, monkeypatch, capsys):
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    row = run_strategy(name, toy_loaders(), num_epochs=2)
    assert set(row) == {"strategy", "epochs", "trainable parameters", "training time (s)", "validation accuracy",
                        "test accuracy"} and row["epochs"] == 2
    assert 0 <= row["validation accuracy"] <= 1 and 0 <= row["test accuracy"] <= 1
    counts = {n: run["trainable parameters"] for n, run in [(name, row)]}
    if name in ("all layers", "random weights, all layers (no pretraining)"):
        assert counts[name] > 3_000_000  # the test model's embedding alone has 3.2M weights
    if name.startswith("LoRA"):
        assert counts[name] < 200_000
    if name == "gradual unfreezing":
        out = capsys.readouterr().out
        assert "stage 2/2 (epoch 2): head, final norm and the top 1 block(s) train" in out
        # each stage's log names its stage and counts the run's steps (4 steps per stage here)
        assert "Stage 1/2 · Ep 1 (Step 000000)" in out and "Stage 2/2 · Ep 2 (Step 000004)" in out
        assert "\nEp 1 (Step" not in out


def test_random_weights_strategy_starts_from_scratch():
    pretrained = classifier()
    fresh = STRATEGIES["random weights, all layers (no pretraining)"](classifier())
    assert all(p.requires_grad for p in fresh.parameters())
    for (name, a), b in zip(pretrained.named_parameters(), fresh.parameters()):
        if name.endswith(("norm1.scale", "norm2.scale", "final_norm.scale")):
            assert torch.equal(b, torch.ones_like(b)), name
        elif a.dim() == 2:  # every weight matrix, embeddings included, is drawn anew
            assert not torch.equal(a, b), name


def test_comparison_table_shows_published_numbers_beside_ours(monkeypatch, capsys):
    from helpers.beyond.strategies import PUBLISHED, comparison_table

    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "0")  # as with GPT-2 small's weights
    rows = [{"strategy": "all layers", "epochs": 5, "test accuracy": 0.5},
            {"strategy": "gradual unfreezing", "epochs": 5, "test accuracy": 0.6}]
    table = comparison_table(rows)
    assert table.loc["all layers", "published test accuracy (another split)"] == PUBLISHED["all layers"][1] == 0.9667
    assert pd.isna(table.loc["gradual unfreezing", "published test accuracy (another split)"])  # none published
    assert table.loc["all layers", "test accuracy"] == 0.5
    # other settings, or the test model: the book's GPT-2 runs are not set beside it, and it says why
    from helpers import settings

    monkeypatch.setattr(settings, "BATCH_SIZE", 4)
    table = comparison_table([{"strategy": "all layers", "epochs": 1, "test accuracy": 0.5}])
    assert pd.isna(table.loc["all layers", "published test accuracy (another split)"])
    assert "left blank: helpers/settings.py sets BATCH_SIZE = 4 (the book: 8)" in capsys.readouterr().out
    monkeypatch.setattr(settings, "BATCH_SIZE", 8)
    monkeypatch.setenv("WORKBOOK_TEST_MODEL", "1")
    assert comparison_table(rows)[["published validation accuracy (another split)"]].isna().all().all()
    assert "TEST MODEL" in capsys.readouterr().out


def test_bag_of_words_baseline_on_the_real_split(split_dir):
    frames = [pd.read_csv(split_dir / f"{name}.csv") for name in ("train", "validation", "test")]
    rows = bag_of_words_baseline(*frames)
    assert [row["strategy"] for row in rows] == ["bag of words: logistic regression", "bag of words: naive Bayes"]
    for row in rows:
        assert row["test accuracy"] > 0.9 and row["validation accuracy"] > 0.9
        assert row["trainable parameters"] > 1000


def test_the_books_lora_scales_by_alpha_and_adapts_the_head():
    ours = apply_lora(classifier(), rank=16, alpha=16)
    book = STRATEGIES["LoRA as the book: scale alpha, head adapted"](classifier())
    assert {m.scale for m in ours.modules() if isinstance(m, LoRALayer)} == {1.0}
    assert {m.scale for m in book.modules() if isinstance(m, LoRALayer)} == {16.0}
    assert isinstance(book.out_head, LinearWithLoRA) and not isinstance(ours.out_head, LinearWithLoRA)
    assert not book.out_head.linear.weight.requires_grad and book.out_head.lora.B.requires_grad
    with pytest.raises(ValueError, match="scaling must be one of"):
        LoRALayer(8, 8, scaling="alpha / rank")
