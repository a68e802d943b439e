"""One fused CPU kernel: a linear layer and the tanh-GELU after it, where no gradient flows.

On a CPU, PyTorch's tanh-approximate GELU is slow: 3.3 ms for 960 × 3072 floats (one block's MLP
on a batch of 8 messages padded to 120), five times a ``tanh`` over the same floats, on the
project's CPU. oneDNN applies it inside the matrix multiply before it
(``torch.ops.mkldnn._linear_pointwise``, the fusion PyTorch's own compiler emits on CPUs), to the
float32 sums before they are stored. That kernel has no backward, so it is used only where
autograd needs nothing from the layer: inference, evaluation and frozen blocks. It is checked
once per dtype against the two steps run separately, and used only if it agrees. Anything that
watches or transforms the computation gets the two steps, as before: hooks on the layers (pruning
uses them) or a replaced ``forward``, tensor subclasses and FX tracing, ``torch.compile``,
``torch.jit`` and ``torch.export``, forward-mode AD and ``torch.func`` transforms, and dispatch or
torch-function modes such as ``FlopCounterMode``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules import module as _module

_AGREES = {}  # dtype -> whether oneDNN's fused kernel computes what it should on this machine


def fused_mlp_hidden(layers, x):
    """``gelu(fc1(x))`` for a ``FeedForward``'s ``layers`` (``nn.Linear``, tanh ``nn.GELU``, ``nn.Linear``) in
    one kernel, or ``None`` where that kernel cannot be used: layers of another kind (LoRA, int8), layers
    with hooks, or a call :func:`fused_linear_gelu` refuses. Then the caller runs ``layers`` as they are."""
    if not (type(layers) is nn.Sequential and len(layers) == 3):
        return None
    fc1, gelu, _ = layers
    if type(fc1) is not nn.Linear or type(gelu) is not nn.GELU or gelu.approximate != "tanh":
        return None
    if _hooked_or_overridden(layers, fc1, gelu):
        return None
    return fused_linear_gelu(x, fc1.weight, fc1.bias)


def _hooked_or_overridden(*modules):
    """Hooks on these modules or on every module, or a ``forward`` replaced on one of them (as some libraries do)."""
    hook_tables = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    global_tables = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                     "_global_backward_pre_hooks")
    return (any(getattr(module, table, None) for module in modules for table in hook_tables)
            or any("forward" in vars(module) for module in modules)
            or any(getattr(_module, table, None) for table in global_tables))


def fused_linear_gelu(x, weight, bias=None):
    """``F.gelu(F.linear(x, weight, bias), approximate="tanh")`` in one oneDNN kernel, or ``None`` where
    that kernel cannot be used (then the caller runs the two steps).

    It can be used on a CPU when nothing needs a gradient through it (see the module's docstring).
    Under autocast, float32 inputs are cast to autocast's dtype first, as ``F.linear`` would cast them.
    """
    tensors = (x, weight) if bias is None else (x, weight, bias)
    if type(x) is not torch.Tensor or any(type(t) not in (torch.Tensor, nn.Parameter) for t in tensors):
        return None  # a tensor subclass, or an FX proxy: it expects to see the two steps
    if any(t.device.type != "cpu" for t in tensors) or _needs_grad(*tensors) or _watched_or_transformed():
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
    except RuntimeError:  # e.g. shapes that do not fit: the two steps then say what is wrong
        return None


def _needs_grad(*tensors):
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _watched_or_transformed():
    """Whether something traces, transforms or intercepts operations now (the fused op has no rules for it).

    It asks PyTorch's private state; a PyTorch where any of that has moved counts as watched (no fusion)."""
    try:
        import torch.autograd.forward_ad as forward_ad
        from torch.overrides import _get_current_function_mode_stack
        from torch.utils._device import DeviceContext
        from torch.utils._python_dispatch import _get_current_dispatch_mode

        return (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()
                or forward_ad._current_level >= 0                      # forward-mode AD: tangents ride along
                or torch._C._functorch.peek_interpreter_stack() is not None  # torch.func transforms
                or _get_current_dispatch_mode() is not None             # FlopCounterMode, FakeTensorMode, ...
                # a torch-function mode would see the fused op instead of the two steps, except the harmless
                # one that torch.set_default_device and ``with torch.device(...)`` push
                or any(not isinstance(mode, DeviceContext) for mode in _get_current_function_mode_stack()))
    except (AttributeError, ImportError):
        return True


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
    x, weight, bias = (torch.randn(*shape, generator=generator, device="cpu").to(dtype)
                       for shape in ((2, 3, 32), (64, 32), (64,)))
    fused = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], "tanh").float()
    expected = F.gelu(F.linear(x.float(), weight.float(), bias.float()), approximate="tanh")
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    return fused.shape == expected.shape and bool(torch.allclose(fused, expected, rtol=tolerance, atol=tolerance))
