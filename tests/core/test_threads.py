"""Threads per rank: the cores this process may use, split between the
ranks of a run on the machine, unless the user says otherwise."""

from __future__ import annotations

import cv2
import pytest
import torch

from fixer_core import threads
from fixer_core.threads import (
    available_cores,
    limited_threads,
    passive_waits,
    threads_per_rank,
)


@pytest.mark.parametrize(
    ("cores", "ranks", "expected"),
    [(16, 1, 16), (16, 4, 4), (16, 3, 5), (2, 2, 1), (2, 4, 1), (1, 1, 1)],
    ids=["one-rank", "even", "uneven", "one-each", "more-ranks", "one-core"],
)
def test_cores_are_split_between_the_ranks(cores, ranks, expected):
    assert threads_per_rank(cores, ranks) == expected


def test_the_user_setting_wins():
    assert threads_per_rank(16, 4, requested=8) == 8
    assert threads_per_rank(16, 4, omp_num_threads="3") == 3
    assert threads_per_rank(16, 4, requested=2, omp_num_threads="3") == 2
    # an unusable OMP_NUM_THREADS is ignored
    assert threads_per_rank(16, 4, omp_num_threads="") == 4
    assert threads_per_rank(16, 4, omp_num_threads="0") == 4
    with pytest.raises(ValueError, match="num_threads must be positive"):
        threads_per_rank(16, 4, requested=0)


def test_cgroup_quota_caps_the_affinity(tmp_path, monkeypatch):
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")  # 1.5 CPUs
    monkeypatch.setattr(threads, "CGROUP_CPU_MAX", str(quota))
    assert threads.cgroup_cpu_limit() == 1.5
    assert available_cores() <= 2
    quota.write_text("max 100000\n")
    assert threads.cgroup_cpu_limit() is None


def test_limited_threads_sets_and_restores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads(), cv2.getNumThreads()
    with limited_threads(1) as n:
        assert n == 1
        assert torch.get_num_threads() == 1
    assert (torch.get_num_threads(), cv2.getNumThreads()) == before


def test_idle_threads_sleep_unless_the_user_chose():
    environ = {}
    passive_waits(environ)
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    passive_waits(environ)
    assert environ == {"OMP_WAIT_POLICY": "ACTIVE"}
