"""Pass 1's batches kept in memory for pass 2, when they fit, so that
each mask and probability file is read (or each image predicted) once.

The rule: a process keeps pass 1's masks and probabilities, in the form
the pipeline hands to the finder (as stored: float16 stays float16),
while they take at most :data:`KEEP_SHARE` of the memory available when
the run starts (``MemAvailable``, within the cgroup's limit where there
is one), at most :data:`KEEP_MAX_BYTES`, split evenly between the ranks
on the machine. Once a batch would pass the budget everything kept is
dropped and pass 2 reads the files again, as it always did. Either way
the batches hold the same values, so the output is the same.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np
import torch

from ._samples import Batch, stack_labels

logger = logging.getLogger(__name__)

KEEP_SHARE = 0.25
KEEP_MAX_BYTES = 4 << 30
CGROUP = "/sys/fs/cgroup"


def keep_budget(local_ranks: int = 1) -> int:
    """Bytes of pass 1's batches one process may keep (see the module's
    rule)."""
    share = min(KEEP_SHARE * available_memory(), KEEP_MAX_BYTES)
    return int(share / max(local_ranks, 1))


def available_memory() -> int:
    """Bytes of memory available to this process now: the kernel's
    ``MemAvailable``, and no more than the cgroup (v2) has left under its
    limit; 0 where neither can be read."""
    available = _meminfo_available()
    limit = _cgroup_left()
    return available if limit is None else min(available, limit)


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cgroup_left() -> int | None:
    """Bytes left under the cgroup's ``memory.max``; None without one."""
    try:
        with open(os.path.join(CGROUP, "memory.max")) as f:
            limit = f.read().strip()
        with open(os.path.join(CGROUP, "memory.current")) as f:
            used = int(f.read())
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return max(int(limit) - used, 0)


class KeptBatches:
    """Pass 1's batches, kept while they fit ``budget`` bytes.

    ``add`` every batch of pass 1 in order; afterwards :attr:`complete`
    tells whether all of them were kept, and :meth:`replay` yields them
    once more for pass 2 (labels stacked anew from the kept masks).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.nbytes = 0
        self._batches: list[tuple] | None = []

    @property
    def complete(self) -> bool:
        """Whether every batch added so far is kept."""
        return self._batches is not None

    def add(self, batch: Batch) -> None:
        """Keeps a batch (without its stacked labels), or drops all once
        the budget would be passed or the probabilities are not in the
        CPU's memory."""
        if self._batches is None:
            return
        size = _batch_bytes(batch)
        if size is None or self.nbytes + size > self.budget:
            logger.info(
                "Pass 2 reads the files again: pass 1's batches pass the "
                "%.0f MB kept in memory",
                self.budget / 1e6,
            )
            self._batches, self.nbytes = None, 0
            return
        self.nbytes += size
        self._batches.append(
            (batch.samples, batch.indices, batch.masks, batch.pred_probs)
        )

    def replay(self) -> Iterator[Batch]:
        """Yields the kept batches once, as pass 1 saw them, releasing
        each as the next is asked for."""
        if self._batches is None:
            raise RuntimeError("not every batch of pass 1 was kept")
        logger.info(
            "Pass 2 reuses pass 1's batches (%.0f MB)", self.nbytes / 1e6
        )
        kept, self._batches = self._batches[::-1], None
        while kept:
            samples, indices, masks, pred_probs = kept.pop()
            yield Batch(
                samples, indices, masks, stack_labels(masks), pred_probs
            )


def _batch_bytes(batch: Batch) -> int | None:
    """Bytes of a batch's masks and probabilities; None when they are
    not in the CPU's memory."""
    probs = batch.pred_probs
    if isinstance(probs, torch.Tensor):
        if probs.device.type != "cpu":
            return None
        size = probs.element_size() * probs.nelement()
    elif isinstance(probs, np.ndarray):
        size = probs.nbytes
    else:
        return None
    return size + sum(m.nbytes for m in batch.masks)
