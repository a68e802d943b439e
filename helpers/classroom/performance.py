"""Measuring a classifier for deployment: latency, throughput, memory, size, and int8 quantization.

Every number is measured on the machine that runs it; nothing here is a fixed expectation.
"""
import copy
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from ..fast.engine import StandIn, plain_model
from ..fast.inference import classify_texts
from ..fast.precision import autocast, bf16_native
from ..inference import classify_review
from ..metrics import predict_loader
from ..training import calc_loss_batch, calc_loss_loader
from .pipeline import LECTURE_SETTINGS


class Float32Logits(StandIn):
    """``model`` with its logits returned in float32 (under bf16 autocast they come out in bfloat16)."""

    def forward(self, input_ids):
        return self.model(input_ids).float()


def latency_ms(model, tokenizer, device, texts, max_length, repeats=3, precision="fp32"):
    """Median and 95th-percentile time to classify one message (batch of 1), in milliseconds."""
    times = []
    model = Float32Logits(model) if precision == "bf16" else model
    with autocast(precision, device):  # the lecture's classify_review, in bf16 when asked
        classify_review(texts[0], model, tokenizer, device, max_length)  # warm-up
        for _ in range(repeats):
            for text in texts:
                start = time.perf_counter()
                classify_review(text, model, tokenizer, device, max_length)
                times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))]}


def throughput(model, tokenizer, device, texts, max_length, batch_sizes=(1, 8, 32), precision="fp32"):
    """Messages classified per second at each batch size."""
    results = {}
    for batch_size in batch_sizes:
        classify_texts(texts[:batch_size], model, tokenizer, device, max_length, batch_size, precision)  # warm-up
        start = time.perf_counter()
        classify_texts(texts, model, tokenizer, device, max_length, batch_size, precision)
        results[batch_size] = len(texts) / (time.perf_counter() - start)
    return results


def serialized_size_mb(model):
    """Size of the model's weights when saved (what a deployment ships), in MB: saved to a temporary file,
    which ``torch.save`` writes as it goes (in memory it would need the model's size again)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "weights.pt"
        torch.save(model.state_dict(), path)
        return path.stat().st_size / 1e6


def peak_memory_mb():
    """This process's peak resident memory so far, in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3  # bytes on macOS, KiB on Linux


def quantize_int8(model):
    """A copy of ``model`` whose Linear layers use dynamic int8 quantization (CPU only).

    Weights are stored as 8-bit integers; activations are quantized on the fly, per batch.
    Embeddings and LayerNorms stay in float32: they are ``model``'s own tensors, shared, not copied (the copy
    holds only its new int8 weights beside ``model``, instead of GPT-2's 500 MB again). ``model`` is unchanged.
    """
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:
        raise RuntimeError("this PyTorch no longer ships torch.ao.quantization.quantize_dynamic; "
                           "use PyTorch ≤ 2.13 for this comparison, or the torchao package") from exc
    model = plain_model(model)
    if any(t.device.type != "cpu" for t in (*model.parameters(), *model.buffers())):
        model = copy.deepcopy(model).cpu()  # quantized layers run on the CPU only
    shared = {id(t): t for t in (*model.parameters(), *model.buffers())}  # the copy's modules, the same tensors
    skeleton = copy.deepcopy(model, memo=shared).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        return quantize_dynamic(skeleton, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def prediction_agreement(model_a, model_b, data_loader, device_a, device_b="cpu", precision_b="fp32"):
    """Share of messages on which two models predict the same class, and each one's accuracy."""
    labels, pred_a, _ = predict_loader(data_loader, model_a, device_a)
    with autocast(precision_b, device_b):
        _, pred_b, _ = predict_loader(data_loader, model_b, device_b)
    return {"agreement": (pred_a == pred_b).float().mean().item(),
            "accuracy_a": (pred_a == labels).float().mean().item(),
            "accuracy_b": (pred_b == labels).float().mean().item()}


def compare_fp32_int8(model, tokenizer, texts, max_length, data_loader, batch_sizes=(1, 8, 32)):
    """Measure the float32 model, its int8-quantized copy and (where the CPU has native bf16)
    bfloat16 autocast on the CPU; returns a table (DataFrame), one row each.

    The bf16 row keeps float32 weights (its size on disk is float32's) and runs the matrix
    multiplies in bfloat16. Where the CPU would only emulate bf16, there is no bf16 row, and it says so.
    """
    import pandas as pd

    fp32 = plain_model(model)  # measured as it is (a copy would hold GPT-2's 500 MB twice), on the CPU
    if any(t.device.type != "cpu" for t in (*fp32.parameters(), *fp32.buffers())):
        fp32 = copy.deepcopy(fp32).cpu()
    was_training = fp32.training
    fp32.eval()
    candidates = [("float32", fp32, "fp32"), ("int8 (dynamic)", quantize_int8(fp32), "fp32")]
    if bf16_native("cpu"):
        candidates.append(("bfloat16 (autocast)", fp32, "bf16"))
    else:
        print("No bfloat16 row: this CPU has no native bf16 instructions (AVX512-BF16 or AMX), "
              "so PyTorch would emulate it, slower than float32.")
    rows = {}
    for name, candidate, precision in candidates:
        row = {"size on disk (MB)": serialized_size_mb(candidate)}
        row |= {f"latency {k.split('_')[0]} (ms)": v for k, v in
                latency_ms(candidate, tokenizer, "cpu", texts[:20], max_length, precision=precision).items()}
        row |= {f"msgs/s @ batch {b}": v for b, v in throughput(candidate, tokenizer, "cpu", texts, max_length,
                                                                 batch_sizes, precision).items()}
        row["peak memory so far (MB)"] = peak_memory_mb()
        if name == "float32":
            row["agreement with float32"] = 1.0  # the reference agrees with itself (no blank cell)
        else:
            agreement = prediction_agreement(fp32, candidate, data_loader, "cpu", precision_b=precision)
            rows["float32"]["test accuracy"] = agreement["accuracy_a"]
            row["test accuracy"] = agreement["accuracy_b"]
            row["agreement with float32"] = agreement["agreement"]
        rows[name] = row
    fp32.train(was_training)
    return pd.DataFrame(rows).T


# --------------------------------------------------------------------------- training speed
def seconds_per_step(model, train_loader, optimizer, steps, device="cpu", precision="fp32"):
    """Time the lecture loop's step (zero_grad, loss, backward, update) over ``steps`` batches.

    ``precision`` is a resolved one (``"fp32"`` or ``"bf16"``, see :mod:`helpers.fast.precision`).
    """
    model.train()
    batches = iter(train_loader)
    start = time.perf_counter()
    for _ in range(steps):
        input_batch, target_batch = next(batches)
        optimizer.zero_grad()
        with autocast(precision, device):
            loss = calc_loss_batch(input_batch, target_batch, model, device)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def seconds_per_eval_batch(model, loader, batches=3, device="cpu", precision="fp32"):
    """Time the loss of one evaluation batch (no gradients), averaged over ``batches``."""
    model.eval()
    start = time.perf_counter()
    with torch.no_grad(), autocast(precision, device):
        calc_loss_loader(loader, model, device, num_batches=batches)
    return (time.perf_counter() - start) / batches


def project_training_seconds(step_seconds, eval_batch_seconds, steps_per_epoch, one_time_seconds=0.0,
                             settings=LECTURE_SETTINGS):
    """Seconds for the lecture's whole run: all steps, every periodic evaluation, every epoch's accuracy."""
    steps = settings["num_epochs"] * steps_per_epoch
    evaluations = len(range(0, steps, settings["eval_freq"])) + settings["num_epochs"]
    return one_time_seconds + steps * step_seconds + evaluations * 2 * settings["eval_iter"] * eval_batch_seconds
