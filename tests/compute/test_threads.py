"""Thread counts derived from fake cgroup trees (v2 ``cpu.max``, v1 ``cpu.cfs_*``) and fake
affinity masks; the real derivation on this machine bounded by what the kernel reports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from m2fp.compute.options import ComputeChoiceError
from m2fp.compute.threads import (
    MAX_THREADS,
    CpuLimits,
    apply_torch_threads,
    cgroup_quota,
    check_threads,
    cpu_limits,
    derive_threads,
    plan_threads,
)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _v2(tmp_path: Path, cpu_max: dict[str, str], member: str = "/kubepods/pod1/c1") -> tuple:
    root = tmp_path / "cgroup"
    root.mkdir()
    for relative, text in cpu_max.items():
        _write(root / relative.strip("/") / "cpu.max", text)
    proc = tmp_path / "proc_cgroup"
    proc.write_text(f"0::{member}\n")
    return root, proc


def _v1(tmp_path: Path, quota: str, period: str, member: str = "/docker/abc", mount="cpu,cpuacct"):
    root = tmp_path / "cgroup"
    _write(root / mount / member.strip("/") / "cpu.cfs_quota_us", quota)
    _write(root / mount / member.strip("/") / "cpu.cfs_period_us", period)
    proc = tmp_path / "proc_cgroup"
    proc.write_text(f"12:pids:/\n4:cpu,cpuacct:{member}\n3:memory:{member}\n0::/\n")
    return root, proc


def test_v2_quota_is_read_from_cpu_max(tmp_path):
    root, proc = _v2(tmp_path, {"/kubepods/pod1/c1": "250000 100000\n"})
    assert cgroup_quota(root, proc) == pytest.approx(2.5)


def test_v2_unlimited_is_none(tmp_path):
    root, proc = _v2(tmp_path, {"/kubepods/pod1/c1": "max 100000\n"})
    assert cgroup_quota(root, proc) is None


def test_v2_an_ancestor_limit_applies(tmp_path):
    # the pod's limit (1.5 CPUs) bounds the container, whose own cpu.max says max
    root, proc = _v2(
        tmp_path, {"/kubepods/pod1": "150000 100000", "/kubepods/pod1/c1": "max 100000"}
    )
    assert cgroup_quota(root, proc) == pytest.approx(1.5)


def test_v2_namespaced_path_falls_back_to_the_mounted_root(tmp_path):
    # inside a cgroup namespace /proc/self/cgroup names a path the mount does not show
    root, proc = _v2(tmp_path, {"/": "200000 100000"}, member="/../../host/path")
    assert cgroup_quota(root, proc) == pytest.approx(2.0)


def test_v1_quota_and_period(tmp_path):
    root, proc = _v1(tmp_path, "300000\n", "100000\n")
    assert cgroup_quota(root, proc) == pytest.approx(3.0)


def test_v1_separate_cpu_mount(tmp_path):
    root, proc = _v1(tmp_path, "50000", "100000", mount="cpu")
    (tmp_path / "proc_cgroup").write_text("2:cpuacct:/docker/abc\n1:cpu:/docker/abc\n")
    assert cgroup_quota(root, proc) == pytest.approx(0.5)


def test_v1_unlimited_quota_is_none(tmp_path):
    root, proc = _v1(tmp_path, "-1", "100000")
    assert cgroup_quota(root, proc) is None


@pytest.mark.parametrize("text", ["", "garbage", "100000", "0 100000", "100 0", "-5 100000"])
def test_unreadable_or_malformed_cpu_max_means_no_limit(tmp_path, text):
    root, proc = _v2(tmp_path, {"/kubepods/pod1/c1": text})
    assert cgroup_quota(root, proc) is None


def test_no_cgroup_files_means_no_limit(tmp_path):
    assert cgroup_quota(tmp_path / "absent", tmp_path / "absent_proc") is None


@pytest.mark.parametrize(
    ("affinity", "quota", "threads"),
    [(64, 2.0, 2), (64, 2.5, 2), (64, 0.5, 1), (4, 16.0, 4), (8, None, 8), (1, None, 1)],
)
def test_derived_threads_fit_quota_and_affinity(affinity, quota, threads):
    assert derive_threads(CpuLimits(affinity=affinity, host=64, quota=quota)) == threads


def test_plan_names_the_limit_that_decided():
    assert plan_threads(limits=CpuLimits(affinity=64, host=64, quota=2.0)).source == "cgroup quota"
    assert plan_threads(limits=CpuLimits(affinity=4, host=64, quota=8.0)).source == "affinity"
    requested = plan_threads(3, CpuLimits(affinity=64, host=64, quota=2.0))
    assert (requested.threads, requested.source) == (3, "requested")


@pytest.mark.parametrize(
    ("limits", "requested", "pinning"),
    [
        (CpuLimits(affinity=4, host=64, quota=None), None, True),  # a dedicated cpuset
        (CpuLimits(affinity=64, host=64, quota=None), None, False),  # every core: shared node
        (CpuLimits(affinity=4, host=64, quota=4.0), None, False),  # quota-limited
        (CpuLimits(affinity=4, host=64, quota=None), 2, False),  # fewer threads than CPUs
    ],
)
def test_pinning_only_on_a_dedicated_cpuset(limits, requested, pinning):
    assert plan_threads(requested, limits).pinning is pinning


@pytest.mark.parametrize("bad", [0, -1, MAX_THREADS + 1, True, 2.0, "4"])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ComputeChoiceError, match="threads must be"):
        check_threads(bad)


def test_this_machine_within_what_the_kernel_reports():
    limits = cpu_limits()
    assert limits.affinity == len(os.sched_getaffinity(0))
    plan = plan_threads()
    assert 1 <= plan.threads <= limits.affinity
    assert plan.describe()["threads"] == plan.threads


def test_apply_sets_torch_threads():
    import torch

    before = torch.get_num_threads()
    try:
        apply_torch_threads(plan_threads(1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
