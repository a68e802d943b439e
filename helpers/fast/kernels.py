"""The engine's one use of private PyTorch API: a linear layer and the tanh-GELU after it in one kernel.

On a CPU, PyTorch's tanh-approximate GELU is slow (3.3 ms for 960 × 3072 floats, five times a
``tanh`` over the same floats, on the project's CPU). oneDNN can apply it inside the matrix
multiply before it (``torch.ops.mkldnn._linear_pointwise``, the fusion PyTorch's own compiler
emits on CPUs). That op is private and has no backward, so it is used only here, by the engine's
own trunk blocks (:mod:`helpers.fast.blocks`), where no gradient flows; it is checked once per
dtype against the two public steps, and wherever it is missing, disagrees or does not apply, the
caller runs the public path: ``F.gelu(F.linear(x, weight, bias), approximate="tanh")``.
"""
import torch
import torch.nn.functional as F

_AGREES = {}  # dtype -> whether oneDNN's fused kernel exists here and agrees with the public path


def linear_gelu(x, weight, bias=None):
    """``gelu(linear(x, weight, bias))`` (tanh approximation): one fused kernel where it applies, else two steps."""
    fused = _fused_linear_gelu(x, weight, bias)
    return F.gelu(F.linear(x, weight, bias), approximate="tanh") if fused is None else fused


def _fused_linear_gelu(x, weight, bias):
    """The fused kernel's result, or ``None`` where it does not apply (then the caller runs the public path)."""
    tensors = (x, weight) if bias is None else (x, weight, bias)
    if any(t.device.type != "cpu" for t in tensors) or (torch.is_grad_enabled() and any(t.requires_grad for t in tensors)):
        return None
    if torch.is_autocast_enabled("cpu") and x.dtype == torch.float32:  # as F.linear would cast them
        dtype = torch.get_autocast_dtype("cpu")
        x, weight, bias = x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype)
    if not (all(t.dtype == x.dtype and t.is_contiguous() for t in (x, weight, *(() if bias is None else (bias,))))
            and fused_kernel_agrees(x.dtype)):
        return None  # the check ran on contiguous tensors of one dtype: nothing else is trusted
    try:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "tanh")
    except RuntimeError:  # shapes that do not fit, say: the public path then says what is wrong
        return None


def fused_kernel_agrees(dtype) -> bool:
    """Whether the fused kernel exists in this PyTorch and agrees with the public path in ``dtype`` (checked once)."""
    if dtype not in _AGREES:
        try:
            with torch.autocast("cpu", enabled=False), torch.no_grad():
                _AGREES[dtype] = _agrees(dtype)
        except (AttributeError, RuntimeError):  # the private op moved or is missing: the public path
            _AGREES[dtype] = False
    return _AGREES[dtype]


def _agrees(dtype):
    if dtype not in (torch.float32, torch.bfloat16) or not torch.backends.mkldnn.is_available():
        return False
    generator = torch.Generator().manual_seed(0)
    x, weight, bias = (torch.randn(*shape, generator=generator).to(dtype) for shape in ((2, 3, 32), (64, 32), (64,)))
    fused = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "tanh").float()
    expected = F.gelu(F.linear(x.float(), weight.float(), bias.float()), approximate="tanh")
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    return fused.shape == expected.shape and bool(torch.allclose(fused, expected, rtol=tolerance, atol=tolerance))
