"""The faster paths compute the lecture's math: fused attention, inference that does less, bf16 only where native."""
import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import helpers.precision as precision_module
from helpers import GPTModel, classify_review, classify_texts, get_gpt2_tokenizer, prepare_for_classification
from helpers.gpt import MultiHeadAttention, causal_attention
from helpers.precision import autocast, bf16_native, resolve_precision

CFG = {"vocab_size": 50257, "context_length": 64, "emb_dim": 48, "n_heads": 4, "n_layers": 3,
       "drop_rate": 0.0, "qkv_bias": True}
MESSAGES = ["Free money! Click now!", "ok", "Meeting at 3pm today, bring the slides and the budget numbers please",
            "URGENT: Claim your reward now!!! Call 09061701461", "see you", "Win a free prize today!",
            "Your package will arrive tomorrow between 9 and 5", "k"]


def classifier(dtype=torch.float32):
    torch.manual_seed(0)
    model = prepare_for_classification(GPTModel(CFG))
    torch.nn.init.normal_(model.out_head.weight, std=0.5)
    return model.to(dtype).eval()


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-6), (torch.float64, 1e-13)])
def test_fused_attention_equals_the_written_out_math(dtype, atol):
    torch.manual_seed(1)
    q, k, v = (torch.randn(3, 4, 17, 8, dtype=dtype) for _ in range(3))
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(fused, causal_attention(q, k, v), atol=atol)
    # and a whole model, forward and backward
    model, ids = classifier(dtype), torch.randint(0, 50000, (2, 30))
    model.train()
    out_fused = model(ids)
    grad_fused = torch.autograd.grad(out_fused.sum(), model.trf_blocks[-1].att.W_query.weight)[0]
    MultiHeadAttention.fused = False
    try:
        out_explicit = model(ids)
        grad_explicit = torch.autograd.grad(out_explicit.sum(), model.trf_blocks[-1].att.W_query.weight)[0]
    finally:
        MultiHeadAttention.fused = True
    assert torch.allclose(out_fused, out_explicit, atol=10 * atol)
    assert torch.allclose(grad_fused, grad_explicit, atol=100 * atol)


def test_dropout_runs_the_written_out_math():
    torch.manual_seed(0)
    att = MultiHeadAttention(16, 16, 2, dropout=0.5).train()
    x = torch.randn(1, 5, 16)
    torch.manual_seed(3)
    out = att(x)
    att.fused = False
    torch.manual_seed(3)
    assert torch.equal(out, att(x))


def today(model, tokenizer, texts, max_length):
    """What inference computed before: the whole model, one message at a time."""
    probabilities = []
    for text in texts:
        ids = tokenizer.encode(text, disallowed_special=())[:max_length or CFG["context_length"]]
        if max_length:
            ids += [50256] * (max_length - len(ids))
        with torch.no_grad():
            probabilities.append(torch.softmax(model(torch.tensor([ids]))[0, -1], dim=-1).numpy())
    return np.array(probabilities)


@pytest.mark.parametrize("max_length, batch_size", [(None, 3), (None, 32), (40, 3)])
def test_inference_that_does_less_gives_todays_results(max_length, batch_size, monkeypatch):
    tokenizer, model = get_gpt2_tokenizer(), classifier()
    monkeypatch.setattr(MultiHeadAttention, "fused", False)
    expected = today(model, tokenizer, MESSAGES, max_length)
    monkeypatch.setattr(MultiHeadAttention, "fused", True)
    labels, probabilities = classify_texts(MESSAGES, model, tokenizer, "cpu", max_length, batch_size)
    assert np.abs(probabilities - expected).max() <= 1e-6
    assert labels.tolist() == expected.argmax(axis=1).tolist()
    single = np.array([classify_review(text, model, tokenizer, "cpu", max_length)[1] for text in MESSAGES])
    assert np.abs(single - expected).max() <= 1e-6
    assert np.abs(expected[:, None] - expected[None]).max(axis=2)[~np.eye(len(MESSAGES), dtype=bool)].min() > 1e-5
    # (each message gets its own probabilities, so the order of the results is really checked)


def test_precision_setting_is_checked_and_announced(monkeypatch, capsys):
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


def test_cpu_detection_reads_the_instruction_flags(monkeypatch, tmp_path):
    flags = set(open("/proc/cpuinfo").read().split()) if precision_module.platform.system() == "Linux" else set()
    expected = bool(flags & {"avx512_bf16", "amx_bf16", "bf16"}) and torch.backends.mkldnn.is_available()
    assert bf16_native("cpu") == expected


@pytest.mark.skipif(not bf16_native("cpu"), reason="this CPU has no native bfloat16")
def test_bf16_inference_agrees_with_float32():
    tokenizer, model = get_gpt2_tokenizer(), classifier()
    labels, probabilities = classify_texts(MESSAGES, model, tokenizer, "cpu")
    labels_bf16, probabilities_bf16 = classify_texts(MESSAGES, model, tokenizer, "cpu", precision="bf16")
    assert probabilities_bf16.dtype == np.float32
    assert np.abs(probabilities_bf16 - probabilities).max() < 0.05
    assert 0 < np.abs(probabilities_bf16 - probabilities).max()  # it really ran in bfloat16
    assert (labels_bf16 == labels).mean() >= 0.75
    with autocast("bf16", "cpu"):
        assert model.trf_blocks[0].att.W_query(torch.randn(2, CFG["emb_dim"])).dtype == torch.bfloat16


def test_deployment_table_has_a_bf16_row_only_where_native(monkeypatch, capsys):
    from torch.utils.data import DataLoader, TensorDataset

    from helpers import compare_fp32_int8

    tokenizer, model = get_gpt2_tokenizer(), classifier()
    ids = torch.tensor([(tokenizer.encode(text) + [50256] * 40)[:40] for text in MESSAGES])
    loader = DataLoader(TensorDataset(ids, torch.tensor([1, 0, 0, 1, 0, 1, 0, 0])), batch_size=4)
    table = compare_fp32_int8(model, tokenizer, MESSAGES, 40, loader, batch_sizes=(4,))
    expected = ["float32", "int8 (dynamic)"] + (["bfloat16 (autocast)"] if bf16_native("cpu") else [])
    assert list(table.index) == expected
    assert not table.isna().any().any()  # every cell filled: float32 agrees with itself
    assert table.loc["float32", "agreement with float32"] == 1.0
    if bf16_native("cpu"):
        assert table.loc["bfloat16 (autocast)", "agreement with float32"] >= 0.75
    monkeypatch.setattr("helpers.performance.bf16_native", lambda device: False)
    assert "bfloat16 (autocast)" not in compare_fp32_int8(model, tokenizer, MESSAGES, 40, loader, batch_sizes=(4,)).index
    assert "No bfloat16 row" in capsys.readouterr().out


@pytest.mark.skipif(not bf16_native("cpu"), reason="this CPU has no native bfloat16")
def test_bf16_trunk_cache_computes_what_autocast_does_and_flexible_bf16_trains(monkeypatch):
    from helpers import TrunkCache, train_classifier_fast
    from helpers.fast import trunk_forward

    model = classifier()
    ids = torch.randint(0, 50000, (4, 20))
    cache = TrunkCache(model, "exact", precision="bf16").add(ids)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast_only = trunk_forward(model, ids).float()
        float32 = trunk_forward(model, ids)
    stored = torch.stack([cache.activations[cache.index[row.numpy().tobytes()]] for row in ids])
    # bf16 rounding in other places (stacked q/k/v, GELU fused into its multiply), no more: as close to
    # float32 as autocast, and within autocast's own error of it
    autocast_error = (autocast_only - float32).abs().max()
    assert stored.dtype == torch.float32
    assert 0 < (stored - float32).abs().max() <= 1.5 * autocast_error
    assert (stored - autocast_only).abs().max() <= 2 * autocast_error
    # without the fused GELU kernel (another PyTorch, a GPU) the blocks compute exactly what autocast does
    import helpers.kernels as kernels

    monkeypatch.setitem(kernels._AGREES, torch.bfloat16, False)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_unfused = trunk_forward(model, ids).float()
    unfused = TrunkCache(model, "exact", precision="bf16").add(ids)
    assert torch.equal(torch.stack([unfused.activations[unfused.index[row.numpy().tobytes()]] for row in ids]),
                       autocast_unfused)
    assert cache.file_for("x").name.startswith("trunk-exact-bf16-")
    # flexible mode defaults to bf16 here; the loop's log and accuracy stay sane
    from torch.utils.data import TensorDataset

    from helpers import create_dataloaders

    data = TensorDataset(torch.randint(0, 50000, (16, 20)), torch.randint(0, 2, (16,)))
    loaders = create_dataloaders(data, data, data, batch_size=4)
    model = classifier()
    before = model.out_head.weight.clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    torch.manual_seed(5)
    log = train_classifier_fast(model, *loaders[:2], optimizer, "cpu", 1, 2, 2, mode="flexible")
    assert not torch.equal(before, model.out_head.weight) and all(0 <= acc <= 1 for acc in log[2])
    # the trunk pass ran in bf16, the steps in float32: the same as the lecture loop in float32 on a bf16 cache
    from helpers import CachedTop
    from helpers.training import train_classifier_simple

    twin = classifier()
    twin_optimizer = torch.optim.AdamW(twin.parameters(), lr=1e-3)
    torch.manual_seed(5)
    train_classifier_simple(CachedTop(twin, TrunkCache(twin, "flexible", precision="bf16")), *loaders[:2],
                            twin_optimizer, "cpu", 1, 2, 2, precision="fp32")
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="precision"):
        train_classifier_fast(model, *loaders[:2], optimizer, "cpu", 1, 2, 2, mode="exact",
                              cache=TrunkCache(model, "exact"), precision="bf16")


@pytest.mark.skipif(not bf16_native("cpu"), reason="this CPU has no native bfloat16")
def test_bf16_trunk_skips_the_padding_and_gives_every_real_token_what_the_padded_batch_gives():
    from helpers import TrunkCache
    from helpers.fast import bf16_trunk_blocks, packed_trunk_forward, trunk_forward

    model = classifier()
    blocks = bf16_trunk_blocks(model)
    torch.manual_seed(3)
    lengths = torch.tensor([5, 12, 1, 12, 7, 3])
    ids = torch.randint(0, 50000, (len(lengths), 12))
    ids[torch.arange(12)[None, :] >= lengths[:, None]] = 50256  # padding after each message
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            padded = trunk_forward(model, ids, blocks)
            packed = packed_trunk_forward(model, ids, lengths, blocks)
        float32 = trunk_forward(model, ids)
    real = [slice(0, n) for n in lengths.tolist()]
    # bf16 rounding may differ with the number of rows a multiply gets, by far less than bf16's own error
    tolerance = 0.25 * max((padded[i, r] - float32[i, r]).abs().max() for i, r in enumerate(real))
    assert tolerance > 0 and packed.shape == (int(lengths.sum()), CFG["emb_dim"])
    pieces = torch.split(packed, lengths.tolist())
    for i, r in enumerate(real):
        assert (pieces[i] - padded[i, r]).abs().max() <= tolerance, f"message {i}"
    # a flexible bf16 cache stores exactly these, message by message
    cache = TrunkCache(model, "flexible", precision="bf16").add(ids)
    for row, piece in zip(ids, pieces):
        stored = cache.activations[cache.index[row.numpy().tobytes()]]
        assert stored.shape == piece.shape and (stored - piece).abs().max() <= tolerance


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_fused_layer_norm_equals_the_written_out_math(dtype, atol):
    norm = classifier(dtype).trf_blocks[0].norm1
    torch.nn.init.normal_(norm.scale)
    torch.nn.init.normal_(norm.shift)
    x = 3 * torch.randn(2, 7, CFG["emb_dim"], dtype=dtype) + 1
    assert torch.allclose(norm(x), norm.normalize(x), atol=atol)


def test_bf16_trunk_copies_keep_a_frozen_lora_trunk_working():
    from helpers.fast import Bf16TrunkBlock, bf16_trunk_blocks, trunk_forward
    from helpers.lora import apply_lora

    plain, with_lora = classifier(), apply_lora(classifier()).eval()
    assert all(type(block) is Bf16TrunkBlock for block in bf16_trunk_blocks(plain))
    blocks = bf16_trunk_blocks(with_lora)  # LinearWithLoRA layers: cast copies of the blocks instead
    assert not any(type(block) is Bf16TrunkBlock for block in blocks)
    ids = torch.randint(0, 50000, (2, 10))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(trunk_forward(with_lora, ids, blocks), trunk_forward(with_lora, ids))


def test_fused_mlp_runs_where_no_gradient_flows_computes_the_layers_and_leaves_training_its_gradients(monkeypatch):
    import helpers.kernels as kernels
    from helpers.lora import apply_lora

    fused_calls, real = [], kernels.fused_linear_gelu

    def spy(*args):
        result = real(*args)
        fused_calls.append(result is not None)
        return result
    monkeypatch.setattr(kernels, "fused_linear_gelu", spy)
    available = kernels.fused_linear_gelu_works(torch.float32)
    model, ids = classifier(), torch.randint(0, 50000, (3, 25))

    def run(fused):  # logits and the last block's fc1 gradient, with or without the fused kernel
        with monkeypatch.context() as patch:
            if not fused:
                patch.setitem(kernels._AGREES, torch.float32, False)
            with torch.no_grad():
                evaluated = model(ids)
            model.zero_grad()
            model(ids)[:, -1].sum().backward()
            return evaluated, model.trf_blocks[-1].ff.layers[0].weight.grad.clone()

    fused_calls.clear()
    logits, grad = run(fused=True)
    # evaluation: every block fused; training: the two frozen blocks only (the last one trains)
    assert fused_calls == [available] * 3 + [available, available, False]
    reference_logits, reference_grad = run(fused=False)
    assert torch.allclose(logits, reference_logits, atol=1e-5)
    assert torch.allclose(grad, reference_grad, atol=1e-5) and grad.abs().sum() > 0
    # the kernel is never asked where autograd needs the layer
    x, weight = torch.randn(2, 48), torch.randn(192, 48)
    assert kernels.fused_linear_gelu(x.requires_grad_(), weight) is None
    assert kernels.fused_linear_gelu(x.detach(), weight.requires_grad_()) is None
    with torch.no_grad():  # nor on a layout its check did not cover
        assert kernels.fused_linear_gelu(torch.randn(48, 2).t(), weight) is None
        assert (kernels.fused_linear_gelu(x.detach(), weight) is not None) == available
    # weights elsewhere than the input: the error they always gave, never what the kernel would make of it
    misplaced = classifier().trf_blocks[0].ff
    misplaced.layers[0].to("meta")
    with torch.no_grad(), pytest.raises((RuntimeError, NotImplementedError)):
        misplaced(torch.randn(2, 3, 48))
    # a default device set for the session does not turn the kernel off
    torch.set_default_device("cpu")
    try:
        with torch.no_grad():
            assert (kernels.fused_linear_gelu(x.detach(), weight) is not None) == available
    finally:
        torch.set_default_device(None)
    # a PyTorch whose private state has moved: no fusion, and no error
    with monkeypatch.context() as patch, torch.no_grad():
        patch.delattr(torch._C._functorch, "peek_interpreter_stack")
        assert kernels.fused_linear_gelu(x.detach(), weight) is None
    # a replaced layer (LoRA) runs the module's own layers
    fused_calls.clear()
    lora = apply_lora(classifier(), rank=2)
    with torch.no_grad():
        lora(ids)
    assert fused_calls.count(True) == 0


@pytest.mark.skipif(not bf16_native("cpu"), reason="this CPU has no native bfloat16")
def test_fused_mlp_under_bf16_autocast_computes_in_bf16_as_autocast_does(monkeypatch):
    import helpers.kernels as kernels

    mlp, x, used, real = classifier().trf_blocks[0].ff, torch.randn(2, 9, 48), [], kernels.fused_linear_gelu
    monkeypatch.setattr(kernels, "fused_linear_gelu", lambda *args: used.append(real(*args)) or used[-1])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fused = mlp(x)
        assert used[0] is not None  # the fused kernel ran, in bf16
        monkeypatch.setitem(kernels._AGREES, torch.bfloat16, False)
        unfused = mlp(x)
    exact = mlp(x)
    assert fused.dtype == unfused.dtype == torch.bfloat16
    assert (fused.float() - exact).abs().max() <= 1.5 * (unfused.float() - exact).abs().max()


def _ablate_gelu(model):  # a forward hook that replaces the GELU's output: the fused kernel would skip it
    model.trf_blocks[0].ff.layers[1].register_forward_hook(lambda module, args, output: torch.zeros_like(output))


def _prune_and_step(model):  # pruning recomputes fc1's weight in a pre-hook, from a mask and the trained weight
    import torch.nn.utils.prune as prune

    fc1 = model.trf_blocks[0].ff.layers[0].requires_grad_(True)  # trainable, so the step changes it
    prune.l1_unstructured(fc1, "weight", amount=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model(torch.randint(0, 50000, (2, 7))).logsumexp(-1).mean().backward()
    optimizer.step()


def _extra_layer(model):  # a FeedForward whose layers are no longer (Linear, GELU, Linear)
    for block in model.trf_blocks:
        block.ff.layers.append(torch.nn.Dropout(0.0))


class _Halved(torch.nn.Sequential):
    def forward(self, x):
        return super().forward(x) / 2


def _sequential_subclass(model):  # a Sequential with a forward of its own
    model.trf_blocks[0].ff.layers = _Halved(*model.trf_blocks[0].ff.layers)


def _forward_replaced(model):  # as some libraries patch an instance's forward
    fc1 = model.trf_blocks[0].ff.layers[0]
    fc1.forward = (lambda forward: lambda x: forward(x) * 2)(fc1.forward)


@pytest.mark.parametrize("change", [_ablate_gelu, _prune_and_step, _extra_layer, _sequential_subclass,
                                    _forward_replaced])
def test_fused_mlp_steps_aside_for_hooked_or_replaced_layers(change, monkeypatch):
    import helpers.kernels as kernels

    model, ids = classifier(), torch.randint(0, 50000, (2, 11))
    change(model)
    with torch.no_grad():
        fused_if_allowed = model(ids)
        monkeypatch.setitem(kernels._AGREES, torch.float32, False)
        two_steps = model(ids)
    assert torch.allclose(fused_if_allowed, two_steps, atol=1e-5)  # the other blocks may fuse: rounding only


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning", "ignore::UserWarning")
def test_fused_mlp_steps_aside_for_tracing_transforms_and_dispatch_modes():
    import torch.autograd.forward_ad as forward_ad
    from torch.utils.flop_counter import FlopCounterMode

    model, ids = classifier(), torch.randint(0, 50000, (2, 11))
    mlp, x = model.trf_blocks[0].ff, torch.randn(1, 5, 48)
    with torch.no_grad():
        expected = model(ids)
        # compiled (ahead-of-time autograd, no C++ compiler needed) and traced: the same function
        assert torch.allclose(torch.compile(model, backend="aot_eager")(ids), expected, atol=1e-5)
        assert torch.allclose(torch.jit.trace(model, ids)(ids), expected, atol=1e-5)
        # forward-mode AD carries tangents, which the fused kernel would drop, even under no_grad
        assert torch.allclose(torch.func.jacfwd(mlp)(x), torch.func.jacrev(mlp)(x), atol=1e-5)
        # FX traces the two steps, and a tensor subclass sees them
        assert torch.allclose(torch.fx.symbolic_trace(mlp)(x), mlp.layers(x), atol=1e-5)
        SeenOperations.names = set()
        mlp(x.as_subclass(SeenOperations))
        assert "gelu" in SeenOperations.names and "_linear_pointwise" not in SeenOperations.names
        # so does forward-mode AD without torch.func
        tangent = torch.randn_like(x)
        with forward_ad.dual_level():
            carried = forward_ad.unpack_dual(mlp(forward_ad.make_dual(x, tangent))).tangent
        assert carried is not None and torch.allclose(carried, torch.func.jvp(mlp, (x,), (tangent,))[1], atol=1e-5)
        # a FLOP counter sees the first multiply (and with it the same count as the layers run one by one)
        with FlopCounterMode(display=False) as counter:
            mlp(x)
        assert counter.get_total_flops() == 2 * 2 * 5 * 48 * 192
        # and a dispatch mode sees the operations it would see without the kernel
        with RecordOperations() as recorded:
            mlp(x)
        assert "mkldnn._linear_pointwise" not in recorded.names and "aten.gelu" in recorded.names
    torch._dynamo.reset()


class SeenOperations(torch.Tensor):
    names = set()

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.names.add(getattr(func, "__name__", str(func)))
        return super().__torch_function__(func, types, args, kwargs or {})


class RecordOperations(TorchDispatchMode):
    def __enter__(self):
        self.names = set()
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))
