"""Mixed precision (bfloat16 autocast), used only where the hardware computes it natively.

One setting, ``precision``, for the lecture loop, the fast engine and inference:

* ``"fp32"``: float32 everywhere, the book's numbers (the default of the lecture path);
* ``"bf16"``: matrix multiplies in bfloat16 under ``torch.autocast``; weights, LayerNorms,
  softmax and the loss stay in float32. Used only on a CUDA GPU with bf16 or a CPU with
  bf16 instructions (AVX512-BF16 or AMX); elsewhere PyTorch would emulate it slowly, so we say
  so and keep float32;
* ``"auto"``: bf16 where it is native, float32 elsewhere.
"""
import contextlib
import functools
import platform

import torch

PRECISIONS = ("fp32", "bf16", "auto")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 flags in /proc/cpuinfo; "bf16" on ARM (Features line)


@functools.lru_cache(maxsize=None)
def cpu_bf16_instructions() -> tuple:
    """The CPU's native bfloat16 instruction sets found in ``/proc/cpuinfo`` (empty where none or unknown)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key = line.split(":")[0].strip().lower()
                if key in ("flags", "features"):
                    flags = set(line.split(":", 1)[1].split())
                    wanted = CPU_BF16_FLAGS if platform.machine().lower() in ("x86_64", "amd64") else ("bf16",)
                    return tuple(flag for flag in wanted if flag in flags)
    except OSError:  # not Linux: no reliable way to tell, so no bf16
        pass
    return ()


def bf16_native(device) -> bool:
    """True where ``device`` computes bfloat16 matrix multiplies in hardware."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # PyTorch < 2.3 has no such argument
            return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(cpu_bf16_instructions()) and torch.backends.mkldnn.is_available()
    return False


_ANNOUNCED = set()


def resolve_precision(precision, device, announce=True) -> str:
    """``"fp32"`` or ``"bf16"``: what ``precision`` means on ``device``.

    It says when bf16 is used, or asked for but not native; ``announce="once"`` says it once
    per process (for inference, called per message), ``False`` never.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return "fp32"
    device = torch.device(device)
    resolved = "bf16" if bf16_native(device) else "fp32"
    if resolved == "bf16":
        where = "the GPU" if device.type == "cuda" else f"this CPU ({', '.join(cpu_bf16_instructions())})"
        message = f"Mixed precision: bfloat16 matrix multiplies on {where}; weights and sums stay float32."
    elif precision == "bf16":
        message = f"bfloat16 is not native on this {device.type} (it would be emulated, slowly): using float32."
    else:
        return resolved
    if announce is True or (announce == "once" and message not in _ANNOUNCED):
        _ANNOUNCED.add(message)
        print(message)
    return resolved


def autocast(precision, device):
    """A context that runs its forward passes in ``precision`` (already resolved) on ``device``."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
