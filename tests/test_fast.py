"""The fast engine: equal to the lecture loop (exact), equal to last-real-token reading (flexible), honest refusals."""
import copy

import pytest
import torch
from torch.utils.data import TensorDataset

from helpers import (
    CachedTop,
    FastEngineError,
    GPTModel,
    TrunkCache,
    calc_accuracy_loader,
    create_dataloaders,
    prepare_for_classification,
    train_classifier_fast,
    train_classifier_simple,
)
from helpers.fast import last_block_at, trunk_forward

CFG = {"vocab_size": 50257, "context_length": 40, "emb_dim": 32, "n_heads": 4, "n_layers": 3,
       "drop_rate": 0.0, "qkv_bias": True}


def toy_loaders(n=48, width=30, seed=5):
    """Padded messages of random lengths, in the lecture's loader setup (train shuffled, seeded)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, width, (n,), generator=g)
    ids = torch.randint(0, 50000, (n, width), generator=g)
    for i, length in enumerate(lengths):
        ids[i, length:] = 50256
    labels = torch.randint(0, 2, (n,), generator=g)
    return create_dataloaders(TensorDataset(ids, labels), TensorDataset(ids[:16], labels[:16]),
                              TensorDataset(ids[16:32], labels[16:32]), batch_size=8, seed=1)


def classifier(dtype=torch.float64, **cfg):
    torch.manual_seed(0)
    return prepare_for_classification(GPTModel({**CFG, **cfg})).to(dtype)


def train(model, fast, mode="exact", epochs=4):
    train_loader, val_loader, _ = toy_loaders()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    trainer = train_classifier_fast if fast else train_classifier_simple
    extra = {"mode": mode} if fast else {}
    return trainer(model, train_loader, val_loader, optimizer, "cpu", num_epochs=epochs, eval_freq=3, eval_iter=2, **extra)


def test_exact_mode_equals_the_lecture_loop_in_float64():
    lecture, fast = classifier(), classifier()
    lecture_log = train(lecture, fast=False)
    fast_log = train(fast, fast=True)
    for (name, a), b in zip(lecture.named_parameters(), fast.parameters()):
        assert (a - b).abs().max().item() <= 1e-9, name
    assert fast_log[2:] == lecture_log[2:]  # accuracies and examples seen
    assert all(abs(x - y) <= 1e-9 for x, y in zip(fast_log[0] + fast_log[1], lecture_log[0] + lecture_log[1]))
    assert any((a != b).any() for a, b in zip(lecture.parameters(), classifier().parameters()))  # it did train


def test_exact_mode_in_float32_stays_close():
    lecture, fast = classifier(torch.float32), classifier(torch.float32)
    train(lecture, fast=False, epochs=2)
    train(fast, fast=True, epochs=2)
    inputs = torch.cat([x for x, _ in toy_loaders()[2]])
    with torch.no_grad():
        assert torch.allclose(lecture(inputs)[:, -1], fast(inputs)[:, -1], atol=1e-4)
    # The last block's key bias shifts every score of a query equally, which softmax ignores: its
    # gradient is zero up to rounding, and AdamW turns that noise into steps that differ between runs.
    key_bias = f"trf_blocks.{CFG['n_layers'] - 1}.att.W_key.bias"
    for (name, a), b in zip(lecture.named_parameters(), fast.parameters()):
        if name != key_bias:
            assert (a - b).abs().max().item() <= 1e-4, name
    loss = torch.nn.functional.cross_entropy(lecture(inputs)[:, -1], torch.zeros(len(inputs), dtype=torch.long))
    gradient = torch.autograd.grad(loss, dict(lecture.named_parameters())[key_bias])[0]
    assert gradient.abs().max() < 1e-6


def test_last_block_at_matches_the_full_block():
    model = classifier()
    block = model.trf_blocks[-1]
    with torch.no_grad():  # a LayerNorm and biases far from their initial values: every term counts
        for param in (block.norm1.scale, block.norm1.shift, block.att.W_key.bias, block.att.W_value.bias):
            param.copy_(torch.randn_like(param))
    x = torch.randn(3, 12, CFG["emb_dim"], dtype=torch.float64)
    positions = torch.tensor([11, 4, 0])
    full = block(x)[torch.arange(3), positions]
    partial = last_block_at(block, x, positions)[:, 0]
    assert torch.allclose(partial, full, atol=1e-12)
    # and it trains the same: equal gradients for every parameter of the block
    weights = torch.randn_like(full)
    grads_full = torch.autograd.grad((full * weights).sum(), list(block.parameters()))
    grads_partial = torch.autograd.grad((partial * weights).sum(), list(block.parameters()), allow_unused=True)
    for (name, _), a, b in zip(block.named_parameters(), grads_full, grads_partial):
        assert b is not None, f"{name} left out of the computation (no gradient, no weight decay)"
        assert torch.allclose(a, b, atol=1e-10), name


def test_flexible_mode_reads_the_last_real_token():
    model = classifier(torch.float32)
    _, _, test_loader = toy_loaders()
    view = CachedTop(model, TrunkCache(model, "flexible"))
    for inputs, _ in test_loader:
        lengths = (inputs != 50256).sum(dim=1)
        with torch.no_grad():
            expected = model(inputs)[torch.arange(len(inputs)), lengths - 1]
            assert torch.allclose(view(inputs)[:, 0], expected, atol=1e-5)
    # and its trunk keeps each message's real tokens only
    cache = view.cache
    for row, _ in test_loader.dataset:
        assert len(cache.activations[cache.index[row.numpy().tobytes()]]) == int((row != 50256).sum())


def test_flexible_training_runs_and_differs_from_exact():
    exact, flexible = classifier(torch.float32), classifier(torch.float32)
    train(exact, fast=True, mode="exact", epochs=1)
    train(flexible, fast=True, mode="flexible", epochs=1)
    assert any((a - b).abs().max() > 1e-6 for a, b in zip(exact.parameters(), flexible.parameters()))


def test_refuses_dropout_and_deeper_training():
    with pytest.raises(FastEngineError, match="drop_rate"):
        train(classifier(drop_rate=0.1), fast=True)
    deeper = classifier()
    for param in deeper.trf_blocks[-2].parameters():
        param.requires_grad = True
    with pytest.raises(FastEngineError, match="below the last block"):
        train(deeper, fast=True)


def test_fallback_is_announced_and_equals_the_lecture_loop(capsys):
    lecture, fallback = classifier(), classifier()
    for model in (lecture, fallback):
        for param in model.trf_blocks[-2].parameters():
            param.requires_grad = True
    train(lecture, fast=False, epochs=1)
    train_loader, val_loader, _ = toy_loaders()
    optimizer = torch.optim.AdamW(fallback.parameters(), lr=1e-3, weight_decay=0.1)
    train_classifier_fast(fallback, train_loader, val_loader, optimizer, "cpu", num_epochs=1, eval_freq=3,
                          eval_iter=2, fallback=True)
    assert "Falling back to the lecture loop" in capsys.readouterr().out
    assert all(torch.equal(a, b) for a, b in zip(lecture.parameters(), fallback.parameters()))


def test_cache_fills_lazily_and_evaluates_any_loader():
    model = classifier(torch.float32)
    train_loader, val_loader, test_loader = toy_loaders()
    cache = TrunkCache(model, "exact")
    view = CachedTop(model, cache)
    assert len(cache) == 0
    assert calc_accuracy_loader(test_loader, view, "cpu") == calc_accuracy_loader(test_loader, model, "cpu")
    assert len(cache) == 16
    cache.add(torch.stack([row for row, _ in test_loader.dataset]))  # already there: nothing added
    assert len(cache) == 16


def test_cache_on_disk_is_keyed_by_the_trunk(tmp_path):
    model = classifier(torch.float32)
    train_loader, _, _ = toy_loaders()
    cache = TrunkCache(model, "flexible").add_datasets([train_loader.dataset], progress=False)
    path = cache.save(tmp_path)
    reloaded = TrunkCache(model, "flexible")
    assert reloaded.load(tmp_path) and len(reloaded) == len(cache)
    inputs, _ = next(iter(toy_loaders()[0]))
    a, pa = cache.lookup(inputs, "cpu")
    b, pb = reloaded.lookup(inputs, "cpu")
    assert torch.equal(a, b) and torch.equal(pa, pb)
    assert len(reloaded) == len(cache)  # the lookup needed no new trunk pass
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.trf_blocks[0].ff.layers[0].weight.add_(0.01)
    other = TrunkCache(changed, "flexible")
    assert other.file_for(tmp_path) != path and not other.load(tmp_path)
    assert TrunkCache(model, "exact").file_for(tmp_path) != path


def test_trunk_of_padded_and_unpadded_message_agree():
    model = classifier()
    ids = torch.randint(0, 50000, (1, 9))
    padded = torch.cat([ids, torch.full((1, 6), 50256)], dim=1)
    assert torch.allclose(trunk_forward(model, ids)[0], trunk_forward(model, padded)[0, :9], atol=1e-12)


def test_cached_trunk_classifier_computes_live_once_the_trunk_trains():
    from helpers import use_trunk_cache
    from helpers.lora import apply_lora

    model = classifier(torch.float32)
    reference = classifier(torch.float32)
    _, _, test_loader = toy_loaders()
    inputs = next(iter(test_loader))[0]
    cached = use_trunk_cache(model, TrunkCache(model, "exact"))
    with torch.no_grad():
        assert cached(inputs).shape == (8, 1, 2)  # only the read position, from the cache
        assert torch.allclose(cached(inputs)[:, -1], reference(inputs)[:, -1], atol=1e-5)
        apply_lora(cached)  # the trunk now has trainable LoRA matrices: computed live, full shape
        assert cached(inputs).shape == (8, inputs.shape[1], 2)
        assert torch.allclose(cached(inputs)[:, -1], reference(inputs)[:, -1], atol=1e-5)
