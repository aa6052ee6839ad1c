"""How many intra-op threads the network may use: what the container allows, not the host.

PyTorch and OpenVINO size their thread pools from the host's cores. In a container limited to
2 CPUs on a 64-core node that means 64 threads sharing 2 CPUs' worth of quota: the kernel
throttles the whole process every scheduling period and a forward takes several times longer.
The threads are therefore derived here from the two limits the kernel applies:

- the affinity mask (``sched_getaffinity``: a cpuset, ``taskset``, Kubernetes' static CPU
  manager): the CPUs this process may run on at all;
- the cgroup CPU quota: cgroup v2 ``cpu.max`` (``"200000 100000"`` = 2 CPUs, ``"max ..."`` =
  none) or cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota ``-1`` = none), the
  smallest along the process's cgroup and its ancestors; a fraction of a CPU rounds down (a
  thread more than the quota is exactly what gets throttled), and never below one thread.

``M2FP_THREADS`` / ``--threads`` (``ParserOptions.threads``) override the derivation.

OpenVINO's thread pinning (``ENABLE_CPU_PINNING``) binds its threads to cores: good when the
process owns those cores, harmful when they are shared (a pinned thread waits for its core
while another core is idle) or quota-limited. It is on only for a dedicated cpuset: the
affinity mask narrower than the host, no quota, and one thread per CPU of the mask.

Standard library only: the settings and ``--help`` validate a thread count without importing
torch. The public API (also used to size the threads of each Ray actor in ``m2fp batch``):
``check_threads``, ``cpu_limits``, ``derive_threads``, ``plan_threads``, ``ThreadPlan``,
``apply_torch_threads``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from m2fp.compute.options import ComputeChoiceError

MAX_THREADS = 1024
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
THREADS_HELP = (
    "intra-op threads of the network (default: the CPUs the container may use: its cgroup "
    "CPU quota and affinity mask)"
)


def check_threads(threads: int | None) -> int | None:
    """``threads`` if it is None (derived) or a whole number from 1 to ``MAX_THREADS``.

    Raises:
        ComputeChoiceError: anything else.
    """
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS
    ):
        raise ComputeChoiceError(
            f"threads must be a whole number from 1 to {MAX_THREADS}", "threads"
        )
    return threads


@dataclass(frozen=True)
class CpuLimits:
    """What the kernel lets this process use.

    Attributes:
        affinity: CPUs in the affinity mask.
        host: CPUs of the machine (``os.cpu_count``).
        quota: CPUs' worth of time per period the cgroup allows; None when unlimited.
    """

    affinity: int
    host: int
    quota: float | None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace")[:256]
    except OSError:
        return None


def _quota_v2(directory: Path) -> float | None:
    """CPUs allowed by ``cpu.max`` in ``directory`` ("max 100000" or "200000 100000")."""
    text = _read(directory / "cpu.max")
    fields = text.split() if text else []
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _quota_v1(directory: Path) -> float | None:
    """CPUs allowed by ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: none)."""
    quota_text, period_text = (
        _read(directory / "cpu.cfs_quota_us"),
        _read(directory / "cpu.cfs_period_us"),
    )
    try:
        quota, period = int(quota_text or ""), int(period_text or "")
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _ancestors(root: Path, relative: str) -> list[Path]:
    """``root/relative`` and each parent up to ``root``, the existing ones; in a container
    the process's cgroup path is often not below the mounted root (cgroup namespaces), then
    only ``root`` itself counts."""
    parts = [p for p in relative.strip().split("/") if p and p not in (".", "..")]
    candidates = [root.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [path for path in candidates if path.is_dir()]


def cgroup_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """CPUs' worth of quota of this process's cgroup (v2 or v1), the smallest along its
    ancestors; None when no limit applies or nothing can be read.

    Args:
        root: where the cgroup filesystem is mounted (v2: the unified tree; v1: the parent of
            the ``cpu`` / ``cpu,cpuacct`` controller mounts).
        proc_cgroup: the process's membership (``/proc/self/cgroup``).
    """
    quotas: list[float] = []
    for line in (_read(proc_cgroup) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, relative = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            directories, reader = _ancestors(root, relative), _quota_v2
        elif "cpu" in controllers.split(","):
            mounts = [root / name for name in (controllers, "cpu", "cpu,cpuacct", "cpuacct,cpu")]
            mount = next((m for m in mounts if m.is_dir()), None)
            directories, reader = (_ancestors(mount, relative) if mount else []), _quota_v1
        else:
            continue
        quotas += [q for q in map(reader, directories) if q is not None]
    return min(quotas) if quotas else None


def cpu_limits(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> CpuLimits:
    """This process's affinity mask, the host's CPUs and the cgroup quota."""
    host = os.cpu_count() or 1
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else host
    return CpuLimits(affinity=affinity, host=host, quota=cgroup_quota(root, proc_cgroup))


def derive_threads(limits: CpuLimits) -> int:
    """Threads that fit ``limits``: the affinity mask's CPUs, fewer when the quota allows
    fewer (rounded down), at least one."""
    threads = limits.affinity
    if limits.quota is not None:
        threads = min(threads, math.floor(limits.quota))
    return max(1, threads)


@dataclass(frozen=True)
class ThreadPlan:
    """The threads a parser computes with, and why.

    Attributes:
        threads: intra-op threads for torch and OpenVINO.
        source: ``requested`` (``M2FP_THREADS``/``--threads``), ``cgroup quota`` or
            ``affinity``.
        pinning: whether OpenVINO may pin its threads to cores (see the module docstring).
        limits: what the derivation read.
    """

    threads: int
    source: str
    pinning: bool
    limits: CpuLimits

    def describe(self) -> dict[str, object]:
        """For logs, ``/readyz`` and ``m2fp model info``."""
        return {
            "threads": self.threads,
            "threads_source": self.source,
            "cpu_quota": self.limits.quota,
            "cpu_affinity": self.limits.affinity,
        }


def plan_threads(requested: int | None = None, limits: CpuLimits | None = None) -> ThreadPlan:
    """The ``ThreadPlan`` for ``requested`` threads (None: derived from ``limits``, by default
    this process's ``cpu_limits()``).

    Raises:
        ComputeChoiceError: ``requested`` is not a valid thread count.
    """
    check_threads(requested)
    limits = limits or cpu_limits()
    derived = derive_threads(limits)
    if requested is not None:
        threads, source = requested, "requested"
    else:
        threads = derived
        quota_bound = limits.quota is not None and math.floor(limits.quota) < limits.affinity
        source = "cgroup quota" if quota_bound else "affinity"
    dedicated = limits.quota is None and limits.affinity < limits.host
    return ThreadPlan(
        threads=threads,
        source=source,
        pinning=dedicated and threads == limits.affinity,
        limits=limits,
    )


def apply_torch_threads(plan: ThreadPlan) -> None:
    """Size PyTorch's intra-op pool (process-wide: the last parser built decides)."""
    import torch

    if torch.get_num_threads() != plan.threads:
        torch.set_num_threads(plan.threads)
