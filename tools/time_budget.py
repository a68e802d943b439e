#!/usr/bin/env python3
"""Time each notebook top to bottom, as a student runs it (maintainers' tool; README's time table).

    python tools/time_budget.py                          # notebooks 01-07, in order, in a fresh kernel each
    python tools/time_budget.py 04 05                    # some of them
    python tools/time_budget.py --project-07             # notebook 7 with GPT-2: projected, not run
    python tools/time_budget.py --scaling                # a training step on 1 thread against all cores

Runs with whatever the environment selects: WORKBOOK_TEST_MODEL=1 for the test model, WORKBOOK_GPT2_DIR for
GPT-2 weights (tools/random_gpt2_weights.py writes random ones: speed does not depend on the values),
WORKBOOK_INSTRUCTOR=1 for instructor mode (after `python -m helpers prepare`), WORKBOOK_DATA_DIR for a
scratch data folder. Each notebook runs as `jupyter nbconvert --execute` from notebooks/ (a fresh kernel,
its start included), in order, so later notebooks find what earlier ones saved, as in class.

``--project-07`` does not train: for each of notebook 7's runs (its default, quick settings) it times two
training steps and one evaluation batch and projects the whole run, as ``run_exercise`` does before training.
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def time_notebooks(prefixes):
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
            if prefixes and path.name[:2] not in prefixes:
                continue
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
                                     "--ExecutePreprocessor.timeout=7200", "--output-dir", scratch, str(path)],
                                    cwd=NOTEBOOKS, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
            status = "ok" if result.returncode == 0 else f"FAILED: {last[:200]}"
            rows.append((path.name, seconds, status))
            print(f"| {path.name} | {seconds:.0f} s | {seconds / 60:.1f} min | {status} |", flush=True)
    return rows


def project_notebook_7():
    """Notebook 7's runs at its defaults (NUM_EPOCHS = 1, MAX_MINUTES = 10), projected from timed steps."""
    import contextlib
    import io

    sys.path.insert(0, str(ROOT))
    from helpers import STRATEGIES, build_spam_classifier, get_gpt2_tokenizer, get_spam_dataloaders, settings
    from helpers.beyond.exercises import exercise_setup
    from helpers.beyond.strategies import _gradual_unfreezing_stage
    from helpers.beyond.timing import estimate_seconds

    num_epochs, max_minutes = 1, 10
    tokenizer = get_gpt2_tokenizer()
    loaders = get_spam_dataloaders(tokenizer)
    total = 0.0
    for name, strategy in STRATEGIES.items():
        with contextlib.redirect_stdout(io.StringIO()):
            model = build_spam_classifier(settings.MODEL_SIZE, "cpu")
        model = strategy(model) if strategy is not None else _gradual_unfreezing_stage(model, num_epochs - 1)
        seconds = estimate_seconds(model, loaders, num_epochs)
        total += seconds
        print(f"| {name} | {seconds / 60:.1f} min |", flush=True)
        if name.startswith("lecture"):  # "3 classes" trains the lecture's setting again, on the same messages
            total += seconds
            print(f"| 3 classes (the lecture's setting again) | {seconds / 60:.1f} min |", flush=True)
    for number in ("6.1", "6.3"):  # 6.2 reuses the "all layers" row
        with contextlib.redirect_stdout(io.StringIO()):
            model, exercise_loaders = exercise_setup(number, tokenizer, settings.MODEL_SIZE, "cpu")
        seconds = estimate_seconds(model, exercise_loaders, num_epochs)
        skipped = seconds > max_minutes * 60
        total += 0 if skipped else seconds
        print(f"| exercise {number} | {seconds / 60:.1f} min{' (skipped: over MAX_MINUTES)' if skipped else ''} |")
    print(f"| notebook 7, quick (defaults), projected (its LoRA check and baseline take seconds) | {total / 60:.1f} min |")


def thread_scaling(steps=4):
    """Seconds per lecture training step (GPT-2 small's size) with 1 thread and with all of this machine's:
    how much more cores buy, for estimating other machines."""
    import torch

    sys.path.insert(0, str(ROOT))
    from helpers import build_spam_classifier, calc_loss_batch, get_gpt2_tokenizer, get_spam_dataloaders, settings

    loader = get_spam_dataloaders(get_gpt2_tokenizer())[0]
    model = build_spam_classifier(settings.MODEL_SIZE, "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.LEARNING_RATE, weight_decay=settings.WEIGHT_DECAY)
    batches = [batch for batch, _ in zip(loader, range(steps + 1))]
    results = {}
    for threads in [1, torch.get_num_threads()] * 2:  # interleaved, twice: the machine's load hits both
        torch.set_num_threads(threads)
        times = []
        for inputs, targets in batches:
            start = time.perf_counter()
            optimizer.zero_grad()
            calc_loss_batch(inputs, targets, model, "cpu").backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        results.setdefault(threads, []).append(min(times[1:]))
    for threads, times in results.items():
        print(f"| {threads} thread(s) | {min(times):.3f} s per step |")
    one, many = min(results[1]), min(results[max(results)])
    print(f"| speed-up, {max(results)} threads over 1 | {one / many:.2f}x |")


if __name__ == "__main__":
    args = sys.argv[1:]
    print(f"WORKBOOK_TEST_MODEL={os.environ.get('WORKBOOK_TEST_MODEL', '')} "
          f"WORKBOOK_GPT2_DIR={os.environ.get('WORKBOOK_GPT2_DIR', '')} "
          f"WORKBOOK_INSTRUCTOR={os.environ.get('WORKBOOK_INSTRUCTOR', '')} cores={os.cpu_count()}")
    if "--project-07" in args:
        project_notebook_7()
    elif "--scaling" in args:
        thread_scaling()
    else:
        time_notebooks([a for a in args if not a.startswith("-")])
