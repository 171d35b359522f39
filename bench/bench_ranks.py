"""The finder over torch.distributed ranks on ADE20K-like data (150
classes, 256x256 by default; the generator of ``bench_many_classes.py``).

Each rank generates and scores a contiguous shard of the batches (batch
``b`` is generated from seed ``b``, so any number of ranks sees the same
data); pass 1's statistics are summed with ``all_reduce``, pass 2's
tallies gathered on rank 0. Only the finder's work is timed, not the
generation. Rank 0 prints one JSON line: images/s, per-stage seconds,
each rank's peak memory. ``--check`` also runs one process over all the
data on rank 0 and compares (the GPU check's multi-GPU case).

    python bench/bench_ranks.py --images 64                 # 1 process
    torchrun --standalone --nproc-per-node 2 bench/bench_ranks.py \\
        --images 64                                         # 2 ranks
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_many_classes import make_data  # noqa: E402

from fixer_core import LabelErrorFinder  # noqa: E402
from fixer_core.threads import limited_threads  # noqa: E402

BOOST = 4.0  # the simulated model's true-class logit boost


def main() -> None:
    args = _parse_args()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        backend = "nccl" if args.device == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group(backend)
    rank = dist.get_rank() if world > 1 else 0
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    num_batches = -(-args.images // args.batch_size)
    first = num_batches * rank // world
    last = num_batches * (rank + 1) // world
    with limited_threads(args.num_threads, local_ranks=local) as threads:
        out = run(args, range(first, last), world)
    out.update(ranks=world, threads=threads, device=args.device)
    memory = _gather(world, out.pop("peak_mb"))
    if rank == 0:
        out["peak_mb_per_rank"] = memory
        if args.check:
            out["check"] = check(args, out.pop("patches"))
        else:
            out.pop("patches")
        print(json.dumps(out), flush=True)
    if world > 1:
        dist.destroy_process_group()


def run(args, batch_ids: range, world: int) -> dict:
    """Both passes over this rank's batches, timed."""
    finder = LabelErrorFinder(
        [str(k) for k in range(args.classes)], device=args.device
    )
    times = {"pass1": 0.0, "reduce": 0.0, "pass2": 0.0, "gather": 0.0}
    _sync(args.device, world)
    for b in batch_ids:
        labels, probs = _batch(args, b)
        start = time.perf_counter()
        finder.update(labels, probs)
        times["pass1"] += _elapsed(start, args.device)
    start = time.perf_counter()
    if world > 1:
        finder.reduce_statistics(dist.all_reduce)
    finder.statistics  # noqa: B018 - ends pass 1
    times["reduce"] = _elapsed(start, args.device)
    patches = []
    for b in batch_ids:
        labels, probs = _batch(args, b)
        start = time.perf_counter()
        first = b * args.batch_size
        found = finder.find(
            labels, probs, image_indices=range(first, first + len(labels))
        )
        times["pass2"] += _elapsed(start, args.device)
        patches += [
            (p.image_index, p.area, p.score) for ps in found for p in ps
        ]
    start = time.perf_counter()
    if world > 1:
        findings = [None] * world
        dist.all_gather_object(findings, finder.findings())
        if dist.get_rank() == 0:
            finder.merge_findings(findings[1:])
        everything = [None] * world
        dist.all_gather_object(everything, patches)
        patches = [p for part in everything for p in part]
    summary = finder.summary()
    times["gather"] = _elapsed(start, args.device)
    # the slowest rank sets the pace
    times = {k: max(_gather(world, v)) for k, v in times.items()}
    total = sum(times.values())
    return {
        "images": args.images,
        "classes": args.classes,
        "size": args.size,
        "seconds": {k: round(v, 3) for k, v in times.items()},
        "images_per_s": round(args.images / total, 2),
        "patches": patches,
        "num_patches": len(patches),
        "num_issues": len(summary.issues),
        "peak_mb": _peak_mb(args.device),
    }


def check(args, patches: list) -> dict:
    """One process over all the data; the patches must agree."""
    finder = LabelErrorFinder(
        [str(k) for k in range(args.classes)], device=args.device
    )
    num_batches = -(-args.images // args.batch_size)
    for b in range(num_batches):
        finder.update(*_batch(args, b))
    single = []
    for b in range(num_batches):
        labels, probs = _batch(args, b)
        first = b * args.batch_size
        found = finder.find(
            labels, probs, image_indices=range(first, first + len(labels))
        )
        single += [
            (p.image_index, p.area, p.score) for ps in found for p in ps
        ]
    same = len(single) == len(patches) and all(
        a[:2] == b[:2] and abs(a[2] - b[2]) <= 1e-6
        for a, b in zip(single, patches, strict=True)
    )
    return {"single_process_patches": len(single), "same": same}


def _batch(args, b: int):
    n = min(args.batch_size, args.images - b * args.batch_size)
    labels, probs, _, _ = make_data(b, n, args.classes, args.size, BOOST)
    return (
        torch.as_tensor(labels).to(args.device),
        torch.as_tensor(probs).to(args.device),
    )


def _elapsed(start: float, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _sync(device: str, world: int) -> None:
    if world > 1:
        dist.barrier()


def _gather(world: int, value):
    if world == 1:
        return [value]
    values = [None] * world
    dist.all_gather_object(values, value)
    return values


def _peak_mb(device: str) -> float:
    if device == "cuda":
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-threads", type=int)
    parser.add_argument("--check", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    main()
