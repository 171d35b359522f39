"""CPU threads per process: the cores this process may use, shared by the
ranks of a run on the machine, so that no core is oversubscribed."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, MutableMapping

import cv2
import torch

CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"  # cgroup v2
CGROUP_V1_QUOTA = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"
CGROUP_V1_PERIOD = "/sys/fs/cgroup/cpu/cpu.cfs_period_us"


def cgroup_cpu_limit() -> float | None:
    """CPUs allowed by the cgroup's CPU quota (``quota / period``), or
    ``None`` without a quota."""
    with contextlib.suppress(OSError, ValueError):
        with open(CGROUP_CPU_MAX) as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        with open(CGROUP_V1_QUOTA) as f:
            quota = int(f.read())
        with open(CGROUP_V1_PERIOD) as f:
            period = int(f.read())
        return None if quota <= 0 else quota / period
    return None


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by the cgroup
    quota (rounded up), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(cores, 1)


def threads_per_rank(
    cores: int,
    local_ranks: int = 1,
    *,
    requested: int | None = None,
    omp_num_threads: str | None = None,
) -> int:
    """Threads for one of ``local_ranks`` processes sharing ``cores``.

    ``requested`` (a ``num_threads`` parameter) wins, then a positive
    ``OMP_NUM_THREADS``; otherwise the cores are split evenly between the
    ranks (at least one thread each).

    Example:
        >>> threads_per_rank(16, 4)
        4
        >>> threads_per_rank(2, 4)
        1
        >>> threads_per_rank(16, 4, omp_num_threads="2")
        2
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"num_threads must be positive, got {requested}")
        return requested
    with contextlib.suppress(TypeError, ValueError):
        if int(omp_num_threads) > 0:
            return int(omp_num_threads)
    return max(cores // max(local_ranks, 1), 1)


def passive_waits(environ: MutableMapping[str, str]) -> None:
    """Makes a process's idle OpenMP threads sleep rather than spin
    (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose a policy. OpenMP
    reads it when torch loads, so it goes in the environment of a process
    about to start. On a loaded 2-core machine, spinning made two torch
    threads burn three times the CPU of one and run four times slower;
    passive, they cost no more than one."""
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def rank_threads(num_threads: int | None = None, local_ranks: int = 1) -> int:
    """Threads for one of ``local_ranks`` ranks of this machine:
    ``threads_per_rank`` of this process's cores and environment. Under
    ``torchrun``, an ``OMP_NUM_THREADS`` of 1 is torchrun's default and
    is ignored (ask for one with ``num_threads=1``)."""
    omp = os.environ.get("OMP_NUM_THREADS")
    if omp == "1" and "TORCHELASTIC_RUN_ID" in os.environ:
        omp = None  # torchrun's own default, not the user's setting
    return threads_per_rank(
        available_cores(),
        local_ranks,
        requested=num_threads,
        omp_num_threads=omp,
    )


@contextlib.contextmanager
def limited_threads(
    num_threads: int | None = None, *, local_ranks: int = 1
) -> Iterator[int]:
    """Sets torch's and OpenCV's threads to :func:`rank_threads` for the
    block, then restores them. Yields the number of threads."""
    n = rank_threads(num_threads, local_ranks)
    torch_before, cv2_before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(torch_before)
        cv2.setNumThreads(cv2_before)
