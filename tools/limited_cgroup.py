#!/usr/bin/env python3
"""Run a command in a new cgroup with a memory limit and a CPU quota, as a hub limits a student's server
(maintainers' tool; Linux, as root; cgroup v1 or v2).

    python tools/limited_cgroup.py 2G,1cpu -- python benchmarks/resources.py --mode student
    python tools/limited_cgroup.py 0.5cpu -- python -c "import helpers, torch; print(torch.get_num_threads())"

The group is made below this process's own cgroup (so whatever limits that one has still apply), the
command and everything it starts run in it, and afterwards the group's peak memory use, how often it hit
the limit and how many processes the kernel killed for memory are printed (to stderr), then the group is
removed. Exit status: the command's. ``benchmarks/resources.py --cgroup`` and tests/test_threads.py use it.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.classroom.threads import cgroup_folder  # noqa: E402  (the workbook's own cgroup reading)

PERIOD_US = 100_000


class CgroupUnavailable(RuntimeError):
    """This machine cannot make a limited cgroup here (not root, not Linux, no cgroup controllers)."""


def parse_limits(text):
    """``"2G,1cpu"`` -> ``(2 * 1024**3, 1.0)``; either part may be left out (None)."""
    memory, cpus = None, None
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part.endswith("cpu"):
            cpus = float(part[:-3])
        else:
            units = {"k": 1024, "m": 1024**2, "g": 1024**3}
            memory = int(float(part[:-1]) * units[part[-1]]) if part[-1] in units else int(part)
    if memory is None and cpus is None:
        raise ValueError(f"limits look like 2G,1cpu (memory, CPUs; either may be left out), not {text!r}")
    return memory, cpus


class LimitedGroup:
    """``with LimitedGroup(memory_bytes, cpus) as group: subprocess.Popen(..., preexec_fn=group.enter)``."""

    def __init__(self, memory_bytes=None, cpus=None):
        self.memory_bytes, self.cpus = memory_bytes, cpus
        self.folders = {}  # controller -> the new group's folder ("v2": one folder for all)

    def __enter__(self):
        if os.geteuid() != 0:
            raise CgroupUnavailable("making a cgroup needs root")
        name = f"workbook-limited-{os.getpid()}-{time.monotonic_ns()}"
        wanted = [c for c, limit in (("memory", self.memory_bytes), ("cpu", self.cpus)) if limit is not None]
        try:
            for controller in wanted:
                parent = cgroup_folder(controller)
                if parent is None:
                    raise CgroupUnavailable(f"no cgroup {controller} controller is mounted")
                version = 2 if (parent / "cgroup.controllers").exists() else 1
                key = "v2" if version == 2 else controller
                if key not in self.folders:
                    if version == 2:
                        enabled = (parent / "cgroup.subtree_control").read_text().split()
                        if not set(wanted) <= set(enabled):
                            raise CgroupUnavailable(f"{parent} does not delegate {wanted} to its children")
                    (parent / name).mkdir()
                    self.folders[key] = parent / name
            self._write_limits()
        except OSError as exc:
            self.__exit__(None, None, None)
            raise CgroupUnavailable(f"cannot make a limited cgroup: {exc}") from exc
        except CgroupUnavailable:
            self.__exit__(None, None, None)
            raise
        return self

    def _write_limits(self):
        if "v2" in self.folders:
            folder = self.folders["v2"]
            if self.cpus is not None:
                (folder / "cpu.max").write_text(f"{int(self.cpus * PERIOD_US)} {PERIOD_US}")
            if self.memory_bytes is not None:
                (folder / "memory.max").write_text(str(self.memory_bytes))
                if (folder / "memory.swap.max").exists():
                    (folder / "memory.swap.max").write_text("0")
            return
        if "cpu" in self.folders:
            (self.folders["cpu"] / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.folders["cpu"] / "cpu.cfs_quota_us").write_text(str(int(self.cpus * PERIOD_US)))
        if "memory" in self.folders:
            folder = self.folders["memory"]
            (folder / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
            if (folder / "memory.memsw.limit_in_bytes").exists():  # no swapping past the limit either
                (folder / "memory.memsw.limit_in_bytes").write_text(str(self.memory_bytes))

    def enter(self):
        """Move the calling process into the group (a ``preexec_fn``: the child moves itself before it starts)."""
        for folder in self.folders.values():
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def _memory_file(self, v1_name, v2_name):
        folder = self.folders.get("v2") or self.folders.get("memory")
        if folder is None:
            return None
        path = folder / (v2_name if "v2" in self.folders else v1_name)
        return path.read_text() if path.exists() else None

    def peak_memory(self):
        """The group's peak memory use in bytes (page cache included), or None where the kernel does not say."""
        text = self._memory_file("memory.max_usage_in_bytes", "memory.peak")
        return int(text) if text else None

    def limit_hits(self):
        if "v2" in self.folders:
            events = dict(line.split() for line in (self._memory_file("", "memory.events") or "").splitlines())
            return int(events.get("max", 0))
        text = self._memory_file("memory.failcnt", "")
        return int(text) if text else 0

    def oom_kills(self):
        name = ("", "memory.events") if "v2" in self.folders else ("memory.oom_control", "")
        lines = dict(line.split() for line in (self._memory_file(*name) or "").splitlines() if len(line.split()) == 2)
        return int(lines.get("oom_kill", 0))

    def describe(self):
        parts = [f"memory {self.memory_bytes / 1e9:.2f} GB" if self.memory_bytes else "",
                 f"{self.cpus:g} CPU" if self.cpus else ""]
        return f"{', '.join(p for p in parts if p)} ({', '.join(str(f) for f in self.folders.values())})"

    def __exit__(self, *exc):
        for folder in self.folders.values():
            for _ in range(50):  # its processes may take a moment to be gone
                try:
                    left = (folder / "cgroup.procs").read_text().split()
                    for pid in left:  # stragglers go back to the parent group
                        (folder.parent / "cgroup.procs").write_text(pid)
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
        return False


def run(limits, command):
    """Run ``command`` in a new group with ``limits`` ("2G,1cpu"); its exit status. Prints the group's use."""
    memory, cpus = parse_limits(limits)
    with LimitedGroup(memory, cpus) as group:
        print(f"cgroup: {group.describe()}", file=sys.stderr, flush=True)
        code = subprocess.Popen(command, preexec_fn=group.enter).wait()
        if memory is not None:
            peak = group.peak_memory()
            print(f"cgroup: peak memory use {peak / 1e9:.2f} GB (page cache included) of the {memory / 1e9:.2f} GB "
                  f"limit; the limit was hit {group.limit_hits()} times (the kernel then reclaims cache); "
                  f"processes killed for memory: {group.oom_kills()}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 3 or args[1] != "--":
        sys.exit("usage: python tools/limited_cgroup.py 2G,1cpu -- command [arguments]")
    try:
        sys.exit(run(args[0], args[2:]))
    except CgroupUnavailable as exc:
        sys.exit(f"limited_cgroup: {exc}")
