"""PyTorch's threads follow the CPUs the process may use: cgroup quota (v1, v2), affinity, cores."""
import os
import subprocess
import sys

import pytest

from helpers.classroom.threads import ThreadsError, cgroup_cpu_quota, cgroup_folder, threads_choice
from helpers.storage.paths import PROJECT_ROOT

V1_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 {root} /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""
V2_MOUNTS = "30 23 0:26 {root} /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def fake_system(tmp_path, mountinfo, own, files):
    """A folder laid out like / : proc/self/{mountinfo,cgroup} and the cgroup files ``files`` ({path: text})."""
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(mountinfo)
    (tmp_path / "proc/self/cgroup").write_text(own)
    for path, text in files.items():
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).write_text(text)
    return tmp_path


def v1(tmp_path, own_path, quotas, mount_root="/"):
    """cgroup v1, cpu and cpuacct mounted together; ``quotas``: {group path below the mount: (quota, period)}."""
    files = {}
    for group, (quota, period) in quotas.items():
        folder = "/sys/fs/cgroup/cpu,cpuacct" + group.rstrip("/")
        files |= {f"{folder}/cpu.cfs_quota_us": f"{quota}\n", f"{folder}/cpu.cfs_period_us": f"{period}\n"}
    own = f"4:memory:{own_path}\n3:cpu,cpuacct:{own_path}\n0::/\n"
    return fake_system(tmp_path, V1_MOUNTS.format(root=mount_root), own, files)


def v2(tmp_path, own_path, cpu_max, mount_root="/"):
    """cgroup v2 only; ``cpu_max``: {group path below the mount: the text of its cpu.max}."""
    files = {f"/sys/fs/cgroup{group.rstrip('/')}/cpu.max": f"{text}\n" for group, text in cpu_max.items()}
    return fake_system(tmp_path, V2_MOUNTS.format(root=mount_root), f"0::{own_path}\n", files)


def test_v1_quota_over_period(tmp_path):
    root = v1(tmp_path, "/student", {"/": (-1, 100000), "/student": (50000, 100000)})
    cpus, where = cgroup_cpu_quota(root)
    assert cpus == 0.5 and "cpu.cfs_quota_us 50000 / cpu.cfs_period_us 100000" in where


def test_v1_no_quota_is_no_limit(tmp_path):
    assert cgroup_cpu_quota(v1(tmp_path, "/student", {"/": (-1, 100000), "/student": (-1, 100000)})) is None


def test_v1_nested_groups_take_the_smallest_quota_above_too(tmp_path):
    """A hub's pod limits 2 CPUs; the kernel's own group inside it has none: the pod's applies."""
    quotas = {"/": (-1, 100000), "/kubepods": (200000, 100000), "/kubepods/pod1": (-1, 100000),
              "/kubepods/pod1/kernel": (-1, 100000)}
    assert cgroup_cpu_quota(v1(tmp_path, "/kubepods/pod1/kernel", quotas))[0] == 2.0
    quotas["/kubepods/pod1/kernel"] = (150000, 100000)  # and a smaller one deeper wins
    assert cgroup_cpu_quota(v1(tmp_path / "again", "/kubepods/pod1/kernel", quotas))[0] == 1.5


def test_v1_container_sees_its_own_subtree(tmp_path):
    """In a container the mount shows only its own cgroup (mount root /docker/abc) at the mount point."""
    root = v1(tmp_path, "/docker/abc", {"/": (25000, 100000)}, mount_root="/docker/abc")
    assert cgroup_cpu_quota(root)[0] == 0.25


def test_v2_cpu_max(tmp_path):
    assert cgroup_cpu_quota(v2(tmp_path, "/user.slice/jupyter-ada", {"/user.slice/jupyter-ada": "150000 100000"}))[0] \
        == 1.5


def test_v2_max_is_no_limit(tmp_path):
    assert cgroup_cpu_quota(v2(tmp_path, "/user.slice/jupyter-ada", {"/user.slice/jupyter-ada": "max 100000"})) is None


def test_v2_nested_takes_the_parent_limit(tmp_path):
    cpu_max = {"/kubepods.slice": "max 100000", "/kubepods.slice/pod": "200000 100000",
               "/kubepods.slice/pod/container": "max 100000"}
    cpus, where = cgroup_cpu_quota(v2(tmp_path, "/kubepods.slice/pod/container", cpu_max))
    assert cpus == 2.0 and "cpu.max 200000 100000" in where


def test_v2_namespaced_container_path_is_slash(tmp_path):
    """With a cgroup namespace /proc/self/cgroup says "0::/" and the mount is the container's group."""
    assert cgroup_cpu_quota(v2(tmp_path, "/", {"/": "50000 100000"}))[0] == 0.5


@pytest.mark.parametrize("files", [{}, {"/sys/fs/cgroup/cpu.max": "garbage\n"}, {"/sys/fs/cgroup/cpu.max": "\n"}])
def test_missing_or_unreadable_files_mean_no_quota(tmp_path, files):
    root = fake_system(tmp_path, V2_MOUNTS.format(root="/"), "0::/\n", files)
    assert cgroup_cpu_quota(root) is None


def test_no_proc_at_all_means_no_quota(tmp_path):
    assert cgroup_cpu_quota(tmp_path) is None  # macOS, Windows, a chroot without /proc


def test_own_group_outside_the_mount_falls_back_to_the_mount(tmp_path):
    root = v2(tmp_path, "/elsewhere/group", {"/": "100000 100000"})
    assert cgroup_cpu_quota(root)[0] == 1.0


def test_cgroup_folder_finds_the_process_group(tmp_path):
    root = v1(tmp_path, "/kubepods/pod1", {"/kubepods/pod1": (-1, 100000)})
    assert cgroup_folder("cpu", root) == root / "sys/fs/cgroup/cpu,cpuacct/kubepods/pod1"


def test_threads_are_the_smallest_limit_rounded_down_at_least_one(tmp_path):
    threads, note = threads_choice({}, v1(tmp_path / "a", "/s", {"/s": (50000, 100000)}))
    assert threads == 1 and "0.5 CPUs" in note and "WORKBOOK_THREADS" in note
    threads, _ = threads_choice({}, v1(tmp_path / "b", "/s", {"/s": (190000, 100000)}))
    assert threads == min(1, os.cpu_count(), len(os.sched_getaffinity(0)))
    threads, note = threads_choice({}, v1(tmp_path / "c", "/s", {"/s": (-1, 100000)}))
    assert threads == min(os.cpu_count(), len(os.sched_getaffinity(0))) and "quota" not in note


def test_the_hubs_cpu_limit_counts_too(tmp_path):
    """JupyterHub's spawners set CPU_LIMIT from c.Spawner.cpu_limit, also where they do not enforce it."""
    root = v1(tmp_path, "/s", {"/s": (-1, 100000)})
    threads, note = threads_choice({"CPU_LIMIT": "0.5"}, root)
    assert threads == 1 and "0.5 CPUs by the hub's CPU_LIMIT" in note
    assert threads_choice({"CPU_LIMIT": "64"}, root)[0] == min(os.cpu_count(), len(os.sched_getaffinity(0)))
    assert threads_choice({"CPU_LIMIT": "lots"}, root) == threads_choice({}, root)


def test_the_variable_overrides_and_omp_is_respected(tmp_path):
    root = v1(tmp_path, "/s", {"/s": (50000, 100000)})
    assert threads_choice({"WORKBOOK_THREADS": "3"}, root) == (3, "PyTorch uses 3 threads, set by WORKBOOK_THREADS.")
    threads, note = threads_choice({"OMP_NUM_THREADS": "4"}, root)
    assert threads is None and "OMP_NUM_THREADS=4" in note
    for wrong in ("0", "two", "-1", "1.5"):
        with pytest.raises(ThreadsError, match="WORKBOOK_THREADS.*whole number"):
            threads_choice({"WORKBOOK_THREADS": wrong}, root)


def _threads_of_a_new_process(env=None, prefix=()):
    code = "import helpers, torch; print(torch.get_num_threads()); print(helpers.THREADS_NOTE)"
    env = {key: value for key, value in {**os.environ, **(env or {})}.items() if value is not None}
    result = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    threads, note = result.stdout.strip().splitlines()[-2:]
    return int(threads), note


def test_import_helpers_sets_the_threads():
    env = {"OMP_NUM_THREADS": None, "WORKBOOK_THREADS": "1"}
    assert _threads_of_a_new_process(env) == (1, "PyTorch uses 1 thread, set by WORKBOOK_THREADS.")


def _limited_cgroup_available():
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "making a cgroup needs Linux and root"
    sys.path.insert(0, str(PROJECT_ROOT / "tools"))
    from limited_cgroup import CgroupUnavailable, LimitedGroup

    try:
        with LimitedGroup(cpus=1):
            return None
    except CgroupUnavailable as exc:
        return str(exc)


@pytest.mark.parametrize("cpus", ["1cpu", "0.5cpu"])
def test_in_a_real_cgroup_with_a_cpu_quota_helpers_uses_one_thread(cpus):
    why_not = _limited_cgroup_available()
    if why_not:
        pytest.skip(f"no real cgroup here: {why_not}")
    env = {"OMP_NUM_THREADS": None, "WORKBOOK_THREADS": None}
    threads, note = _threads_of_a_new_process(env, [sys.executable, str(PROJECT_ROOT / "tools" / "limited_cgroup.py"),
                                                    cpus, "--"])
    assert threads == 1, note
    assert f"a quota of {cpus[:-3]} CPU" in note
