#!/usr/bin/env python3
"""Memory and CPU each notebook's kernel needs: the numbers a hub is sized from (docs/hub.md).

    python benchmarks/resources.py                         # notebooks 01-06, student and instructor mode
    python benchmarks/resources.py --mode student 03 04    # some notebooks, one mode
    python benchmarks/resources.py --with-07               # notebook 7 too (it trains live: long)
    python benchmarks/resources.py --cells 04              # which cell raised the peak, memory after each (Linux)
    python benchmarks/resources.py --cgroup 2G,1cpu        # all of it inside a cgroup: 2 GB, 1 CPU (root, Linux)
    python benchmarks/resources.py --epochs 1              # notebook 4 trains 1 epoch, not 5 (see below)

Each notebook runs top to bottom in a fresh kernel (nbclient, as nbval and ``nbconvert --execute`` run it),
in order, in a scratch data folder (``WORKBOOK_DATA_DIR``), so later notebooks find what earlier ones
saved, as in class. After the last cell the kernel reports its own peak resident memory
(``getrusage``'s ``ru_maxrss``: the most RAM the kernel process held at any moment) and the CPU-seconds
it used (user + system, all threads). Instructor mode runs ``python -m helpers prepare`` in its scratch
folder first (not counted), then the notebooks with ``WORKBOOK_INSTRUCTOR=1``.

The model is GPT-2 small's architecture: ``WORKBOOK_GPT2_DIR`` if set, else random weights written once by
``tools/random_gpt2_weights.py`` into a temporary folder (memory and time do not depend on the values).
``WORKBOOK_TEST_MODEL=1`` measures the tiny test model instead (a quick check of this script).

``--epochs N`` makes notebook 4's runs N epochs instead of the lecture's 5 (its ``num_epochs = NUM_EPOCHS``
line, in memory). Memory peaks in the first epoch (every epoch holds the same tensors), so the peak is the
same; the CPU-seconds and wall seconds of notebook 4 are then those of N epochs. On 1 CPU the five epochs of
notebook 4 at GPT-2's size take hours; this gives its peak in minutes.

Last line, for the lecture notebooks (the larger of the two modes where both ran):
``peak GB: 01=0.45 02=0.46 … 06=1.10 max=1.38``.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT))

#: Appended to each notebook (in memory): the kernel measures itself, on any OS.
PROBE = """\
import json as _json, resource as _resource, sys as _sys
_self, _children = _resource.getrusage(_resource.RUSAGE_SELF), _resource.getrusage(_resource.RUSAGE_CHILDREN)
print("WORKBOOK_RESOURCES " + _json.dumps({
    "peak_bytes": _self.ru_maxrss * (1 if _sys.platform == "darwin" else 1024),  # Linux reports KiB, macOS bytes
    "cpu_seconds": _self.ru_utime + _self.ru_stime + _children.ru_utime + _children.ru_stime}))
"""


def gb(n_bytes):
    return n_bytes / 1e9


def kernel_memory(client):
    """The kernel process's ``(peak RSS so far, RSS now)`` from /proc (Linux), or ``(None, None)``."""
    try:
        pid = client.km.provisioner.pid
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        return int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024
    except (AttributeError, OSError, ValueError, KeyError):
        return None, None


#: Notebook 4's line that sets its runs' epochs (``--epochs`` replaces it in memory).
EPOCHS_LINE = "num_epochs = NUM_EPOCHS"


def run_notebook(path, timeout, per_cell=False, epochs=None):
    """Execute ``path`` in a fresh kernel; returns ``(peak_bytes, cpu_seconds, wall_seconds, cells)``.

    ``cells``: with ``per_cell``, ``[(cell index, peak so far, RSS after the cell, first line of the cell)]``
    for every cell that changed the kernel's peak or its RSS by more than 20 MB."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if epochs is not None and path.name.startswith("04_"):
        [cell] = [cell for cell in nb.cells if EPOCHS_LINE in cell.source]
        cell.source = cell.source.replace(EPOCHS_LINE, f"num_epochs = {epochs}  # benchmarks/resources.py --epochs")
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    raised, last = [], [0, 0]

    def after_cell(cell, cell_index, **_):
        peak, now = kernel_memory(client)
        if peak is not None and (peak > last[0] + 20e6 or abs(now - last[1]) > 20e6):
            raised.append((cell_index, peak, now, (cell.source.strip().splitlines() or [""])[0][:70]))
            last[:] = peak, now

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_executed=after_cell if per_cell else None)
    start = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - start
    text = "".join(output.get("text", "") for output in nb.cells[-1].outputs if output.get("name") == "stdout")
    if "WORKBOOK_RESOURCES " not in text:
        raise RuntimeError("the kernel did not report its resources (was it stopped?)")
    report = json.loads(text.split("WORKBOOK_RESOURCES ", 1)[1])
    return report["peak_bytes"], report["cpu_seconds"], wall, raised


def prepare_instructor(env):
    """``python -m helpers prepare --no-timing`` in the scratch data folder (what instructor mode replays)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "helpers", "prepare", "--no-timing"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"python -m helpers prepare failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    print(f"  (python -m helpers prepare: {time.perf_counter() - start:.0f} s, not counted)", flush=True)


def measure(mode, notebooks, timeout, per_cell, data_dir, epochs=None):
    """Run ``notebooks`` in ``mode`` ("student" or "instructor"); {name: (peak_bytes, cpu_seconds, wall_seconds)}."""
    env = {**os.environ, "WORKBOOK_DATA_DIR": str(data_dir), "WORKBOOK_INSTRUCTOR": "1" if mode == "instructor" else "0",
           "TQDM_DISABLE": "1"}
    print(f"\n{mode} mode (data folder {data_dir})", flush=True)
    if mode == "instructor":
        prepare_instructor(env)
    saved = dict(os.environ)
    os.environ.update(env)  # the kernels inherit it
    results = {}
    try:
        print("| notebook | peak RSS | CPU-seconds | wall seconds |\n| --- | --- | --- | --- |", flush=True)
        for path in notebooks:
            try:
                peak, cpu, wall, raised = run_notebook(path, timeout, per_cell, epochs)
            except Exception as exc:  # a kernel killed for memory ends here too
                print(f"| {path.name} | FAILED: {type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]} | | |",
                      flush=True)
                results[path.name] = None
                continue
            results[path.name] = (peak, cpu, wall)
            print(f"| {path.name} | {gb(peak):.2f} GB | {cpu:.0f} | {wall:.0f} |", flush=True)
            for index, cell_peak, now, first_line in raised:
                print(f"|   cell {index} | {gb(cell_peak):.2f} GB (now {gb(now):.2f}) | | {first_line} |", flush=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return results


def kernel_threads():
    """What a kernel started from here chooses for PyTorch's threads (the line notebook 1 prints)."""
    code = "import helpers, torch; print(getattr(helpers, 'THREADS_NOTE', f'{torch.get_num_threads()} threads'))"
    result = subprocess.run([sys.executable, "-c", code], cwd=NOTEBOOKS, capture_output=True, text=True)
    return result.stdout.strip().splitlines()[-1] if result.returncode == 0 else "threads: unknown"


def random_weights(folder):
    """GPT-2 small's architecture with random weights (tools/random_gpt2_weights.py), readable by everyone."""
    subprocess.run([sys.executable, str(ROOT / "tools" / "random_gpt2_weights.py"), str(folder)], check=True,
                   capture_output=True)
    (Path(folder) / "gpt2" / "model.safetensors").chmod(0o644)


def summary_line(all_results):
    """``peak GB: 01=… 06=… max=…``: per lecture notebook the largest peak over the modes run."""
    peaks = {}
    for results in all_results.values():
        for name, result in results.items():
            if int(name[:2]) <= 6:
                value = float("inf") if result is None else result[0]
                peaks[name[:2]] = max(peaks.get(name[:2], 0), value)
    shown = " ".join(f"{k}={'FAILED' if v == float('inf') else f'{gb(v):.2f}'}" for k, v in sorted(peaks.items()))
    worst = max(peaks.values(), default=0)
    return f"peak GB: {shown} max={'FAILED' if worst == float('inf') else f'{gb(worst):.2f}'}"


# --------------------------------------------------------------------------- --cgroup: a limited student server
def run_in_cgroup(limits, argv):
    """This script again (``argv``, without --cgroup) in a new cgroup with ``limits`` ("2G,1cpu"), as a hub limits a
    student's server (tools/limited_cgroup.py: Linux, root); then the whole group's use of memory."""
    sys.path.insert(0, str(ROOT / "tools"))
    from limited_cgroup import CgroupUnavailable, LimitedGroup, parse_limits

    memory, cpus = parse_limits(limits)
    try:
        with LimitedGroup(memory, cpus) as group:
            print(f"cgroup: {group.describe()}", flush=True)
            code = subprocess.Popen([sys.executable, __file__, *argv], preexec_fn=group.enter).wait()
            if memory is not None:
                print(f"cgroup: the whole group (this script, the kernels, page cache included) peaked at "
                      f"{gb(group.peak_memory()):.2f} GB of its {gb(memory):.2f} GB; processes killed for memory: "
                      f"{group.oom_kills()}", flush=True)
    except CgroupUnavailable as exc:
        sys.exit(f"--cgroup: {exc}")
    return code


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook numbers, e.g. 03 04 (default: 01-06)")
    parser.add_argument("--mode", choices=("student", "instructor", "both"), default="both")
    parser.add_argument("--with-07", action="store_true", help="notebook 7 as well (student mode: long)")
    parser.add_argument("--cells", action="store_true", help="print each cell that raised the peak or changed the memory held (Linux)")
    parser.add_argument("--cgroup", help="run inside a cgroup with these limits, e.g. 2G,1cpu (root)")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per cell (default 7200)")
    parser.add_argument("--epochs", type=int, help="notebook 4 trains this many epochs, not 5 (same peak, less time)")
    parser.add_argument("--keep", help="a folder for the data folders (kept; an instructor run reuses its prepare)")
    args = parser.parse_args()
    if args.cgroup:
        argv = [a for a in sys.argv[1:] if a != args.cgroup and a != "--cgroup" and not a.startswith("--cgroup=")]
        return run_in_cgroup(args.cgroup, argv)

    chosen = [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
              if (p.name[:2] in args.notebooks if args.notebooks else int(p.name[:2]) <= 6 or args.with_07)]
    import torch

    with tempfile.TemporaryDirectory() as scratch:
        if os.environ.get("WORKBOOK_TEST_MODEL", "") == "1":
            model = "the tiny TEST MODEL (WORKBOOK_TEST_MODEL=1): not GPT-2's numbers"
        else:
            if not os.environ.get("WORKBOOK_GPT2_DIR"):
                random_weights(Path(scratch) / "weights")
                os.environ["WORKBOOK_GPT2_DIR"] = str(Path(scratch) / "weights")
            model = f"GPT-2 small's architecture, weights from {os.environ['WORKBOOK_GPT2_DIR']}"
        print(f"{model}; PyTorch {torch.__version__}; {os.cpu_count()} cores here; {kernel_threads()}")
        if args.epochs is not None:
            print(f"notebook 4 trains {args.epochs} epoch(s), not 5 (--epochs): the same peak memory; its CPU-seconds "
                  f"are for {args.epochs}")
        folders = Path(args.keep) if args.keep else Path(scratch)
        modes = ("student", "instructor") if args.mode == "both" else (args.mode,)
        all_results = {mode: measure(mode, chosen, args.timeout, args.cells, folders / mode, args.epochs)
                       for mode in modes}
    failed = [f"{mode} {name}" for mode, results in all_results.items() for name, r in results.items() if r is None]
    if failed:
        print("failed: " + ", ".join(failed))
    print(summary_line(all_results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
