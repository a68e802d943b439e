"""PyTorch's threads: as many as the CPUs this process may use, not the machine's cores.

On a shared server (a JupyterHub, Binder, a container) a student's kernel may use, say, 2 CPUs of a 64-core
machine. PyTorch sizes its thread pool to the 64 cores, so every kernel starts 64 threads that take turns on
2 CPUs, and each matrix multiply waits for the slowest of them: many times slower than 2 threads. When the
workbook is imported it counts what the process may use, the smallest of

* the cgroup CPU quota (a container's or a hub's CPU limit): cgroup v2 ``cpu.max`` ("50000 100000" is half
  a CPU; "max" is no limit), or cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (a quota of -1 is no
  limit), of the process's own cgroup (``/proc/self/cgroup``) and of every cgroup above it;
* the CPUs in the process's affinity mask (``taskset``, Kubernetes' CPU manager, ``docker --cpuset-cpus``);
* the machine's cores,
* ``CPU_LIMIT``, where JupyterHub sets it (its spawners do, from ``c.Spawner.cpu_limit``, also those that do
  not enforce the limit, such as the local-process spawner),

rounded down, and at least 1. ``WORKBOOK_THREADS=N`` sets it instead; ``OMP_NUM_THREADS`` (read by PyTorch
itself) is left in charge when set. :data:`helpers.THREADS_NOTE` says in one line what was chosen and why.
"""
import math
import os
from pathlib import Path

ENV_THREADS = "WORKBOOK_THREADS"


class ThreadsError(ValueError):
    """``WORKBOOK_THREADS`` is not a whole number of threads, 1 or more."""


def _read(path):
    try:
        return Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _mounts(root):
    """Cgroup mounts from ``/proc/self/mountinfo``: ``[(version, controllers, mount root, mount point)]``."""
    text = _read(Path(root) / "proc/self/mountinfo") or ""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if len(fields) < dash + 4 or len(fields) < 5:
            continue
        fstype, super_options = fields[dash + 1], fields[dash + 3]
        if fstype == "cgroup2":
            mounts.append((2, set(), fields[3], fields[4]))
        elif fstype == "cgroup":
            mounts.append((1, set(super_options.split(",")), fields[3], fields[4]))
    return mounts


def _own_cgroups(root):
    """The process's cgroups from ``/proc/self/cgroup``: ``[(version, controllers, path)]``."""
    groups = []
    for line in (_read(Path(root) / "proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            groups.append((2, set(), path))
        else:
            groups.append((1, set(controllers.split(",")), path))
    return groups


def _folders(root, mount_root, mount_point, path):
    """The cgroup folders from the process's own up to the mount's top (limits above apply too)."""
    top = Path(root) / mount_point.lstrip("/")
    relative = path
    if mount_root != "/" and (path == mount_root or path.startswith(mount_root.rstrip("/") + "/")):
        relative = path[len(mount_root.rstrip("/")):]  # the mount shows a subtree (a container's cgroup namespace)
    folder = top / relative.lstrip("/")
    if not folder.is_dir():  # the path lies outside what is mounted here: only the mount's own limits are visible
        return [top]
    folders = [folder]
    while folder != top and top in folder.parents:
        folder = folder.parent
        folders.append(folder)
    return folders


def cgroup_folder(controller="cpu", root="/"):
    """The process's own cgroup folder for a cgroup v1 ``controller`` ("cpu", "memory"), else its cgroup v2
    folder (where every controller lives); None when neither is mounted here."""
    mounts = _mounts(root)
    for wanted in (1, 2):
        for version, controllers, path in _own_cgroups(root):
            if version != wanted or (version == 1 and controller not in controllers):
                continue
            for mount_version, mount_controllers, mount_root, mount_point in mounts:
                if mount_version == version and (version == 2 or controller in mount_controllers):
                    return _folders(root, mount_root, mount_point, path)[0]
    return None


def _quota_v2(folder):
    text = _read(folder / "cpu.max")
    if not text:
        return None
    parts = text.split()
    if parts[0] == "max":
        return None
    period = int(parts[1]) if len(parts) > 1 else 100000
    return (int(parts[0]) / period, f"cgroup cpu.max {' '.join(parts)}")


def _quota_v1(folder):
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    if quota is None or period is None or int(quota) <= 0 or int(period) <= 0:
        return None
    return (int(quota) / int(period), f"cgroup cpu.cfs_quota_us {quota} / cpu.cfs_period_us {period}")


def cgroup_cpu_quota(root="/"):
    """The smallest cgroup CPU quota over the process's cgroup and those above it, as ``(CPUs, where)``;
    None when there is none (no limit, no cgroups, not Linux). ``root``: read files below it (tests)."""
    found = []
    try:
        mounts = _mounts(root)
        for version, controllers, path in _own_cgroups(root):
            if version == 1 and "cpu" not in controllers:
                continue
            for mount_version, mount_controllers, mount_root, mount_point in mounts:
                if mount_version != version or (version == 1 and "cpu" not in mount_controllers):
                    continue
                read = _quota_v2 if version == 2 else _quota_v1
                found += [q for q in map(read, _folders(root, mount_root, mount_point, path)) if q is not None]
    except (ValueError, OSError, IndexError):  # an unreadable or unexpected file: no quota known
        return None
    return min(found, default=None)


def affinity_cpus():
    """The number of CPUs this process may run on (its affinity mask), or None where the OS does not say."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def threads_choice(environ=None, root="/"):
    """``(threads, one line saying why)``: ``WORKBOOK_THREADS``, else the smallest of the cgroup CPU quota
    (rounded down), the affinity mask and the core count, at least 1; None as threads where
    ``OMP_NUM_THREADS`` is set (PyTorch already follows it)."""
    environ = os.environ if environ is None else environ
    setting = environ.get(ENV_THREADS, "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ThreadsError(f"{ENV_THREADS}={setting!r} is not a number of threads: set it to a whole number, "
                               f"1 or more (e.g. {ENV_THREADS}=2), or unset it to use the CPUs this process may use.")
        return int(setting), f"PyTorch uses {int(setting)} thread{'s' if int(setting) > 1 else ''}, set by {ENV_THREADS}."
    if environ.get("OMP_NUM_THREADS", "").strip():
        return None, (f"PyTorch's threads follow OMP_NUM_THREADS={environ['OMP_NUM_THREADS'].strip()} "
                      f"(set {ENV_THREADS} to override).")
    cores = os.cpu_count() or 1
    limits = [(cores, f"{_cpus(cores)} on this machine")]
    affinity = affinity_cpus()
    if affinity is not None:
        limits.append((affinity, f"{_cpus(affinity)} in its affinity mask"))
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        limits.append((quota[0], f"a quota of {_cpus(quota[0])} ({quota[1]})"))
    try:
        hub_limit = float(environ.get("CPU_LIMIT", "") or "nan")
    except ValueError:
        hub_limit = float("nan")
    if hub_limit > 0:  # NaN (unset or unreadable) is not
        limits.append((hub_limit, f"{_cpus(hub_limit)} by the hub's CPU_LIMIT"))
    threads = max(1, math.floor(min(limits)[0] + 1e-9))
    return threads, (f"PyTorch uses {threads} thread{'s' if threads > 1 else ''}: this process may use "
                     f"{'; '.join(text for _, text in sorted(limits))}. Set {ENV_THREADS} to change it.")


def _cpus(number):
    return f"{number:g} CPU{'' if number == 1 else 's'}"


def set_torch_threads():
    """Set PyTorch's threads to :func:`threads_choice`'s; returns its line (``helpers.THREADS_NOTE``)."""
    import torch

    threads, note = threads_choice()
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return note
