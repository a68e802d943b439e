"""One fused CPU kernel: a linear layer and the tanh-GELU after it, where no gradient flows.

On a CPU, PyTorch's tanh-approximate GELU is slow: 3.3 ms for 960 × 3072 floats (one block's MLP
on a batch of 8 messages padded to 120), five times a ``tanh`` over the same floats, on the
project's CPU. oneDNN applies it inside the matrix multiply before it
(``torch.ops.mkldnn._linear_pointwise``, the fusion PyTorch's own compiler emits on CPUs), to the
float32 sums before they are stored. That kernel has no backward, so it is used only where
autograd needs nothing from the layer: inference, evaluation and frozen blocks. It is checked
once per dtype against the two steps run separately, and used only if it agrees.
"""
import torch
import torch.nn.functional as F

_AGREES = {}  # dtype -> whether oneDNN's fused kernel computes what it should on this machine


def fused_linear_gelu(x, weight, bias=None):
    """``F.gelu(F.linear(x, weight, bias), approximate="tanh")`` in one oneDNN kernel, or ``None`` where
    that kernel cannot be used (then the caller runs the two steps).

    It can be used on a CPU when nothing needs a gradient through it (see the module's docstring).
    Under autocast, float32 inputs are cast to autocast's dtype first, as ``F.linear`` would cast them.
    """
    if x.device.type != "cpu" or _needs_grad(x, weight, bias):
        return None
    if torch.is_autocast_enabled("cpu") and x.dtype == torch.float32:
        dtype = torch.get_autocast_dtype("cpu")
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    same_dtype = x.dtype == weight.dtype and (bias is None or bias.dtype == x.dtype)
    if not (same_dtype and x.is_contiguous() and weight.is_contiguous() and fused_linear_gelu_works(x.dtype)):
        return None  # the check below ran on contiguous tensors of one dtype: nothing else is trusted
    try:
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "tanh")
    except RuntimeError:  # a shape or layout this build's kernel refuses: do not try it again
        _AGREES[x.dtype] = False
        return None


def _needs_grad(*tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def fused_linear_gelu_works(dtype):
    """Whether oneDNN's fused linear + tanh-GELU kernel exists here and agrees with the two steps in ``dtype``."""
    if dtype not in _AGREES:
        try:
            with torch.autocast("cpu", enabled=False), torch.no_grad():  # the reference must run in ``dtype``
                _AGREES[dtype] = _agrees(dtype)
        except (AttributeError, RuntimeError):
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
