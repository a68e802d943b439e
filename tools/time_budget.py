#!/usr/bin/env python3
"""Time each notebook top to bottom, as a student runs it (maintainers' tool), and state the times once.

    python tools/time_budget.py                          # notebooks 01-07, in order, in a fresh kernel each
    python tools/time_budget.py 04 05                    # some of them
    python tools/time_budget.py --project-07             # notebook 7 with GPT-2: projected, not run
    python tools/time_budget.py --scaling                # a training step on 1 thread against all cores
    python tools/time_budget.py --write                  # docs/time_budget.json -> notebooks and README

One number for one fact: the measured times live in ``docs/time_budget.json`` (edit it after measuring), and
``--write`` renders them into each notebook's first cell ("Time to run this notebook", one line per
audience) and into README's table; tests/test_project.py checks both agree with the file.

Runs with whatever the environment selects: WORKBOOK_TEST_MODEL=1 for the test model, WORKBOOK_GPT2_DIR for
GPT-2 weights (tools/random_gpt2_weights.py writes random ones: speed does not depend on the values),
WORKBOOK_INSTRUCTOR=1 for instructor mode (after `python -m helpers prepare`), WORKBOOK_DATA_DIR for a
scratch data folder. Each notebook runs as `jupyter nbconvert --execute` from notebooks/ (a fresh kernel,
its start included), in order, so later notebooks find what earlier ones saved, as in class.

``--project-07`` does not train: for each of notebook 7's runs (its default, quick settings) it times two
training steps and one evaluation batch and projects the whole run, as ``run_exercise`` does before training.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BUDGET = ROOT / "docs" / "time_budget.json"
TIME_HEADING = "> ⏱ **Time to run this notebook**"
README_START, README_END = "<!-- time table: tools/time_budget.py --write -->", "<!-- end of the time table -->"


def load_budget() -> dict:
    return json.loads(BUDGET.read_text(encoding="utf-8"))


def notebook_time_block(number, budget=None) -> str:
    """The time lines of notebook ``number`` ("04"): one line per audience, for its first cell."""
    entry = (budget or load_budget())["notebooks"][number]
    laptop = f"{entry['laptop']} ({entry['two_cores']} on 2 cores)"
    if entry.get("note"):
        laptop += f"; {entry['note']}"
    return "\n".join([f"{TIME_HEADING}, top to bottom:",
                      f"> * GPT-2 small on a laptop CPU: {laptop}",
                      f"> * with the test model: {entry['test_model']}",
                      f"> * in instructor mode: {entry['instructor']}"])


def readme_time_table(budget=None) -> str:
    budget = budget or load_budget()
    rows = ["| notebook | GPT-2 small, 4–8-core laptop (estimated) | GPT-2 small, 2-core CPU (measured) | test model "
            "| instructor mode |", "| --- | --- | --- | --- | --- |"]
    for number, entry in budget["notebooks"].items():
        two_cores = entry["two_cores"] + (f" ({entry['note']})" if number == "03" else "")
        rows.append(f"| {number} | {entry['laptop']} | {two_cores} | {entry['test_model']} | {entry['instructor']} |")
    return "\n".join(rows)


def with_time_block(source, number, budget=None) -> str:
    """A first cell's text with its time lines replaced by what ``docs/time_budget.json`` says."""
    lines, out, skipping = source.split("\n"), [], False
    for line in lines:
        if line.startswith(TIME_HEADING):
            out.append(notebook_time_block(number, budget))
            skipping = True
            continue
        if skipping and line.startswith("> "):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out)


def write_times():
    """Render docs/time_budget.json into every notebook's first cell and into README's table."""
    import nbformat

    budget = load_budget()
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        updated = with_time_block(nb.cells[0].source, path.name[:2], budget)
        if updated != nb.cells[0].source:
            nb.cells[0].source = updated
            nbformat.write(nb, path)
            print(f"time lines written in {path.name}")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(README_START) + len(README_START), readme.index(README_END)
    (ROOT / "README.md").write_text(readme[:start] + "\n" + readme_time_table(budget) + "\n" + readme[end:],
                                    encoding="utf-8")
    print("time table written in README.md")


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
    if "--write" in args:
        write_times()
    elif "--project-07" in args:
        project_notebook_7()
    elif "--scaling" in args:
        thread_scaling()
    else:
        time_notebooks([a for a in args if not a.startswith("-")])
