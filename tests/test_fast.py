"""The fast engine: equal to the lecture loop (exact), equal to last-real-token reading (flexible), honest refusals."""
import copy
import threading

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch.utils.data import TensorDataset

from helpers import (
    CachedTop,
    FastEngineError,
    GPTModel,
    TrunkCache,
    calc_accuracy_loader,
    classify_texts,
    create_dataloaders,
    prepare_for_classification,
    train_classifier_fast,
    train_classifier_simple,
)
from helpers.fast.blocks import last_block_at, trunk_forward
from helpers.storage.files import checksum_path, write_checked

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
        assert cache.index[row.numpy().tobytes()][2] == int((row != 50256).sum())  # (where, first row, rows)


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


def test_a_dropped_split_is_freed_and_recomputed_when_read_again(tmp_path):
    """Notebook 4 drops the training messages after the exact run: their memory is freed, the validation messages
    stay, a dropped message read again gives the same answer, and a saved cache holds only what is kept."""
    import gc
    import weakref

    model = classifier(torch.float32)
    everything = toy_loaders()[0].dataset
    ids, labels = everything.tensors
    train, val = TensorDataset(ids[16:], labels[16:]), TensorDataset(ids[:16], labels[:16])
    train_loader, val_loader, _ = create_dataloaders(train, val, val, batch_size=8, seed=1)
    cache = TrunkCache(model, "exact", on_disk=False).add_datasets([train], progress=False)
    view = CachedTop(model, cache)
    before = calc_accuracy_loader(train_loader, view, "cpu")
    calc_accuracy_loader(val_loader, view, "cpu")
    trained = weakref.ref(next(iter(cache.index.values()))[0].tensor)  # a training batch's rows, in memory
    cache.drop(train)
    gc.collect()
    assert len(cache) == len(val) and trained() is None  # the training batches' tensors are gone
    reloaded = TrunkCache(model, "exact")
    assert reloaded.load(cache.save(tmp_path).parent) and len(reloaded) == len(val)
    assert calc_accuracy_loader(train_loader, view, "cpu") == before  # run through the trunk again
    assert len(cache) == len(val) + len(train)


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
    from helpers.beyond.lora import apply_lora

    model = classifier(torch.float32)
    reference = classifier(torch.float32)
    _, _, test_loader = toy_loaders()
    inputs = next(iter(test_loader))[0]
    cached = CachedTop(model, TrunkCache(model, "exact"))
    with torch.no_grad():
        assert cached(inputs).shape == (8, 1, 2)  # only the read position, from the cache
        assert torch.allclose(cached(inputs)[:, -1], reference(inputs)[:, -1], atol=1e-5)
        apply_lora(cached)  # the trunk now has trainable LoRA matrices: computed live, full shape
        assert cached(inputs).shape == (8, inputs.shape[1], 2)
        assert torch.allclose(cached(inputs)[:, -1], reference(inputs)[:, -1], atol=1e-5)



# --------------------------------------------------------------------------- 4. corrupted trunk cache
def _cache_and_rows(model, tokenizer, messages):
    ids = [tokenizer.encode(text)[:20] for text in messages]
    rows = torch.tensor([row + [50256] * (20 - len(row)) for row in ids])
    return model, rows, TrunkCache(model, "exact").add(rows)


@pytest.mark.parametrize("damage", ["truncate", "wrong values", "no header", "header past the end", "wrong dtype",
                                    "not finite"])
def test_a_corrupted_trunk_cache_is_deleted_and_rebuilt(tmp_path, tokenizer, capsys, damage, tiny_classifier, messages):
    model, rows, cache = _cache_and_rows(tiny_classifier(), tokenizer, messages)
    path = cache.save(tmp_path)
    width = model.cfg["emb_dim"]
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "no header":  # checksums that match: only the reader's own checks can refuse these
        write_checked(path, b"\xff" * 64)
    elif damage == "header past the end":
        header = b'{"rows": {"dtype": "I64", "shape": [1, 20], "data_offsets": [0, 99999]}}'
        write_checked(path, len(header).to_bytes(8, "little") + header + b"\0" * 160)
    elif damage in ("wrong dtype", "not finite"):
        activations = torch.zeros(len(rows) * 20, width, dtype=torch.float64 if damage == "wrong dtype" else None)
        activations[3, 1] = float("nan") if damage == "not finite" else 0
        write_checked(path, writer=lambda tmp: save_file(
            {"rows": rows, "lengths": torch.full((len(rows),), 20), "activations": activations}, tmp))
    else:  # a valid safetensors file with other values
        tensors = {"rows": rows, "lengths": torch.full((len(rows),), 20),
                   "activations": torch.zeros(len(rows) * 20, model.cfg["emb_dim"])}
        save_file(tensors, str(path))
    fresh = TrunkCache(model, "exact")
    assert fresh.load(tmp_path) is False and len(fresh) == 0
    assert "will be rebuilt" in capsys.readouterr().out and not path.exists()
    fresh.add(rows).save(tmp_path)
    again = TrunkCache(model, "exact")
    assert again.load(tmp_path) and torch.equal(again.lookup(rows, "cpu")[0], cache.lookup(rows, "cpu")[0])


# --------------------------------------------------------------------------- where the activations live
def test_activations_live_in_an_unnamed_file_not_in_the_kernels_memory(tokenizer, tiny_classifier, messages):
    """On disk (the default) a cache holds only its index: the rows are read back by offset, equal to the bytes a
    cache in memory holds, and the file has no name (nothing is left behind, however the kernel ends)."""
    from helpers.fast.engine import _FileRows, _MemoryRows, trunk_cache_dir

    model, rows, on_disk = _cache_and_rows(tiny_classifier(), tokenizer, messages)
    in_memory = TrunkCache(model, "exact", on_disk=False).add(rows)
    assert all(isinstance(where, _FileRows) for where, _, _ in on_disk.index.values())
    assert all(isinstance(where, _MemoryRows) for where, _, _ in in_memory.index.values())
    assert torch.equal(on_disk.lookup(rows, "cpu")[0], in_memory.lookup(rows, "cpu")[0])
    assert list(trunk_cache_dir().iterdir()) == []  # the scratch file is unnamed
    on_disk.close()
    assert len(on_disk) == 0 and torch.equal(on_disk.lookup(rows, "cpu")[0], in_memory.lookup(rows, "cpu")[0])


def test_a_write_stopped_halfway_is_written_over_by_the_next(tmp_path):
    """Ctrl+C while a batch is written leaves part of it in the scratch file; the next batch must start where the
    last complete row ended, or every row after it would be read shifted by a fraction of a row."""
    from helpers.fast.engine import _FileRows, _scratch_file

    rows = _FileRows(_scratch_file(tmp_path), 0, 4 * 4, "scratch")
    first = torch.arange(8.0).view(2, 4)
    assert rows.append(first) == 0
    rows.file.write(b"\x01" * 7)  # half a row: what an interrupted write leaves
    second = torch.arange(100.0, 112.0).view(3, 4)
    assert rows.append(second) == 2
    out = torch.empty(3, 4)
    rows.read(2, out)
    assert torch.equal(out, second)


def test_without_a_writable_data_folder_the_activations_stay_in_memory(tmp_path, monkeypatch, capsys, tokenizer,
                                                                       tiny_classifier, messages):
    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("WORKBOOK_DATA_DIR", str(blocked / "data"))
    model, rows, cache = _cache_and_rows(tiny_classifier(), tokenizer, messages)
    assert "keeps its activations in memory" in capsys.readouterr().out and not cache.on_disk
    reference = TrunkCache(model, "exact", on_disk=False).add(rows)
    assert torch.equal(cache.lookup(rows, "cpu")[0], reference.lookup(rows, "cpu")[0])


@pytest.mark.parametrize("on_disk", [True, False])
def test_a_prepared_cache_is_read_from_its_file_as_it_was_checked(tmp_path, tokenizer, tiny_classifier, messages,
                                                                   on_disk):
    """A loaded cache reads the prepared file by offset (on disk), or holds it in memory; a ``prepare`` that
    replaces or deletes the file afterwards does not change what it reads."""
    model, rows, cache = _cache_and_rows(tiny_classifier(), tokenizer, messages)
    path = cache.save(tmp_path)
    loaded = TrunkCache(model, "exact", on_disk=on_disk)
    assert loaded.load(tmp_path) and len(loaded) == len(cache)
    write_checked(path, b"replaced meanwhile")
    path.unlink()
    assert torch.equal(loaded.lookup(rows, "cpu")[0], cache.lookup(rows, "cpu")[0])
    assert len(loaded) == len(cache)  # read from the file: no trunk pass


# --------------------------------------------------------------------------- 12. concurrent saves
def test_concurrent_trunk_cache_saves_do_not_collide(tmp_path, tokenizer, tiny_classifier, messages):
    _, _, cache = _cache_and_rows(tiny_classifier(), tokenizer, messages)
    errors = []

    def save_many():
        try:
            for _ in range(10):
                cache.save(tmp_path)
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=save_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([cache.file_for(tmp_path).name,
                                                                 checksum_path(cache.file_for(tmp_path)).name])
    assert TrunkCache(cache.model, "exact").load(tmp_path)


# --------------------------------------------------------------------------- the engine's blocks and kernel
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_trunk_blocks_compute_what_the_lecture_blocks_compute(dtype, atol, tiny_classifier):
    from helpers.fast.blocks import TrunkBlock, trunk_blocks

    model = tiny_classifier(n_layers=3).to(dtype)
    for block in model.trf_blocks:  # LayerNorms that are not the identity
        torch.nn.init.normal_(block.norm1.scale), torch.nn.init.normal_(block.norm2.shift)
    x = torch.randn(3, 11, model.cfg["emb_dim"], dtype=dtype)
    with torch.no_grad():
        for block, engine_block in zip(model.trf_blocks[:-1], trunk_blocks(model)):
            assert type(engine_block) is TrunkBlock
            assert torch.allclose(engine_block(x), block(x), atol=atol)
    ids = torch.randint(0, 50000, (2, 9))
    assert torch.allclose(trunk_forward(model, ids, trunk_blocks(model)), trunk_forward(model, ids), atol=atol)


def test_trunk_blocks_leave_the_lecture_model_alone(tiny_classifier):
    """The engine copies or wraps the weights: the model's classes, modules and parameters are unchanged."""
    from helpers.beyond.lora import apply_lora
    from helpers.fast.blocks import TrunkBlock, trunk_blocks

    model = tiny_classifier(n_layers=3)
    before = {name: (type(module), module.forward.__func__) for name, module in model.named_modules()}
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    TrunkCache(model, "exact").add(torch.randint(0, 50000, (4, 10)))
    assert {name: (type(module), module.forward.__func__) for name, module in model.named_modules()} == before
    assert all(torch.equal(state[name], tensor) for name, tensor in model.state_dict().items())
    with_lora = apply_lora(tiny_classifier(n_layers=3))
    blocks = trunk_blocks(with_lora)  # LoRA layers are not the lecture's: those blocks run as they are
    assert all(engine is block for engine, block in zip(blocks, with_lora.trf_blocks))
    with pytest.raises(TypeError, match="plain TransformerBlock"):
        TrunkBlock(with_lora.trf_blocks[0])


def test_linear_gelu_is_the_two_public_steps_and_trains_through_them():
    from helpers.fast.kernels import linear_gelu

    torch.manual_seed(0)
    x, weight, bias = torch.randn(2, 5, 16), torch.randn(24, 16), torch.randn(24)
    expected = torch.nn.functional.gelu(torch.nn.functional.linear(x, weight, bias), approximate="tanh")
    with torch.no_grad():
        assert torch.allclose(linear_gelu(x, weight, bias), expected, atol=1e-5)  # fused, where it exists
        assert torch.equal(linear_gelu(x.double(), weight.double(), bias.double()), expected.double() * 0 +
                           torch.nn.functional.gelu(torch.nn.functional.linear(x.double(), weight.double(),
                                                                               bias.double()), approximate="tanh"))
    weight.requires_grad_(True)  # where a gradient must flow, the public path: backward works
    linear_gelu(x, weight, bias).sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- precision
def test_precision_setting_is_checked_and_announced(monkeypatch, capsys):
    import helpers.fast.precision as precision_module
    from helpers.fast.precision import bf16_native, resolve_precision

    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("float16", "cpu")
    assert resolve_precision("fp32", "cpu") == "fp32" and capsys.readouterr().out == ""
    monkeypatch.setattr(precision_module, "bf16_native", lambda device: False)
    assert resolve_precision("auto", "cpu") == "fp32" and capsys.readouterr().out == ""
    assert resolve_precision("bf16", "cpu") == "fp32"
    assert "not native" in capsys.readouterr().out
    monkeypatch.setattr(precision_module, "bf16_native", lambda device: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    assert "bfloat16" in capsys.readouterr().out
    assert not bf16_native("meta")


def test_cpu_detection_reads_the_instruction_flags():
    import platform

    from helpers.fast.precision import bf16_native

    flags = set(open("/proc/cpuinfo").read().split()) if platform.system() == "Linux" else set()
    expected = bool(flags & {"avx512_bf16", "amx_bf16", "bf16"}) and torch.backends.mkldnn.is_available()
    assert bf16_native("cpu") == expected


def _bf16():
    from helpers.fast.precision import bf16_native

    return bf16_native("cpu")


@pytest.mark.skipif(not _bf16(), reason="this CPU has no native bfloat16")
def test_bf16_inference_agrees_with_float32(tiny_classifier, tokenizer, messages):
    model = tiny_classifier(emb_dim=48, n_layers=3)
    labels, probabilities = classify_texts(messages, model, tokenizer, "cpu")
    labels_bf16, probabilities_bf16 = classify_texts(messages, model, tokenizer, "cpu", precision="bf16")
    assert probabilities_bf16.dtype == np.float32
    assert 0 < np.abs(probabilities_bf16 - probabilities).max() < 0.05  # it really ran in bfloat16, and close
    assert (labels_bf16 == labels).mean() >= 0.75


@pytest.mark.skipif(not _bf16(), reason="this CPU has no native bfloat16")
def test_bf16_trunk_cache_is_as_close_to_float32_as_autocast_and_flexible_bf16_trains(tiny_classifier):
    model = tiny_classifier(emb_dim=48, n_layers=3)
    ids = torch.randint(0, 50000, (4, 20))
    cache = TrunkCache(model, "exact", precision="bf16").add(ids)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast_only = trunk_forward(model, ids).float()
        float32 = trunk_forward(model, ids)
    stored = torch.stack([cache.lookup(row[None], "cpu")[0][0] for row in ids])
    autocast_error = (autocast_only - float32).abs().max()
    assert stored.dtype == torch.float32
    assert 0 < (stored - float32).abs().max() <= 1.5 * autocast_error
    assert cache.file_for("x").name.startswith("trunk-exact-bf16-")
    assert cache._blocks is not None  # the bf16 copy of the trunk's weights: kept for the next message looked up
    cache.add_datasets([TensorDataset(torch.randint(0, 50000, (4, 20)), torch.zeros(4))], progress=False)
    assert cache._blocks is None and len(cache) == 8  # a bulk fill lets it go (0.17 GB at GPT-2 small's size)
    data = TensorDataset(torch.randint(0, 50000, (16, 20)), torch.randint(0, 2, (16,)))
    loaders = create_dataloaders(data, data, data, batch_size=4)
    model = tiny_classifier(emb_dim=48, n_layers=3)
    before = model.out_head.weight.clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    torch.manual_seed(5)
    log = train_classifier_fast(model, *loaders[:2], optimizer, "cpu", 1, 2, 2, mode="flexible")  # bf16 by default
    assert not torch.equal(before, model.out_head.weight) and all(0 <= acc <= 1 for acc in log[2])
    # the trunk pass ran in bf16, the steps in float32: the lecture loop on the same bf16 cache gives the same
    twin = tiny_classifier(emb_dim=48, n_layers=3)
    twin_optimizer = torch.optim.AdamW(twin.parameters(), lr=1e-3)
    torch.manual_seed(5)
    train_classifier_simple(CachedTop(twin, TrunkCache(twin, "flexible", precision="bf16")), *loaders[:2],
                            twin_optimizer, "cpu", 1, 2, 2)
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="precision"):
        train_classifier_fast(model, *loaders[:2], optimizer, "cpu", 1, 2, 2, mode="exact",
                              cache=TrunkCache(model, "exact"), precision="bf16")


@pytest.mark.skipif(not _bf16(), reason="this CPU has no native bfloat16")
def test_a_bf16_bulk_fill_casts_one_block_at_a_time_and_stores_the_same_values(tiny_classifier, monkeypatch):
    import helpers.fast.engine as engine

    model = tiny_classifier(emb_dim=48, n_layers=3)
    data = TensorDataset(torch.randint(0, 50000, (12, 20)), torch.zeros(12))
    kept = TrunkCache(model, "flexible", precision="bf16").add(data.tensors[0])  # the whole bf16 copy, kept
    assert kept._blocks is not None

    def whole_copy(*args, **kwargs):
        raise AssertionError("a bulk fill made the whole bf16 copy of the trunk")

    monkeypatch.setattr(engine, "trunk_blocks", whole_copy)
    bulk = TrunkCache(model, "flexible", precision="bf16").add_datasets([data], progress=False)
    assert bulk._blocks is None and len(bulk) == 12
    for row in data.tensors[0]:
        assert torch.equal(bulk.lookup(row[None], "cpu")[0], kept.lookup(row[None], "cpu")[0])


def test_the_fill_line_counts_repeated_messages_as_repeats_not_as_cached_before(capsys):
    model = classifier(torch.float32)
    ids = torch.randint(0, 50000, (12, 10))
    ids[5] = ids[4]  # the same message twice, as the SMS data has
    train = TensorDataset(ids, torch.randint(0, 2, (12,)))
    val = TensorDataset(torch.randint(0, 50000, (4, 10)), torch.randint(0, 2, (4,)))
    loaders = create_dataloaders(train, val, val, batch_size=4)
    cache = TrunkCache(model, "exact")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    train_classifier_fast(model, loaders[0], loaders[1], optimizer, "cpu", num_epochs=1, eval_freq=5, eval_iter=1,
                          cache=cache)
    assert "Trunk cache: 16 training and validation messages (1 is a repeat) in" in capsys.readouterr().out
    train_classifier_fast(model, loaders[0], loaders[1], optimizer, "cpu", num_epochs=1, eval_freq=5, eval_iter=1,
                          cache=cache)
    assert "(1 is a repeat; 15 were cached before)" in capsys.readouterr().out
