"""Throughput and peak memory of FIXER's streaming scorer on ADE20K-like data.

Generates label maps of K classes (Zipf-distributed region classes, some
relabelled) and noisy probabilities batch by batch, so nothing but one batch
is ever in memory, and times the finder's two passes alone (generation is
excluded). Prints one JSON line per dataset size.

    python bench/bench_scoring.py --sizes 100 400 --classes 150 --size 256
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

from fixer_core import LabelErrorFinder


def make_batch(rng, n, k, size, device):
    """ADE-like labels (blocky regions) and probabilities from the truth."""
    cells = 8
    weights = 1.0 / np.arange(1, k + 1)
    grid = rng.choice(k, size=(n, cells, cells), p=weights / weights.sum())
    truth = torch.as_tensor(grid).repeat_interleave(size // cells, 1)
    truth = truth.repeat_interleave(size // cells, 2)
    # 5% of the regions relabelled, each to one random class.
    wrong = rng.random((n, cells, cells)) < 0.05
    relabelled = np.where(wrong, rng.integers(0, k, size=grid.shape), grid)
    labels = torch.as_tensor(relabelled).repeat_interleave(size // cells, 1)
    labels = labels.repeat_interleave(size // cells, 2)
    truth = truth.to(device)
    noise = torch.randn(n, k, size // 8, size // 8, device=device)
    logits = F.interpolate(noise, size=(size, size), mode="bilinear")
    logits.scatter_add_(1, truth[:, None], torch.full_like(logits[:, :1], 4.0))
    return labels, logits.softmax(dim=1)


def run(num_images, k, size, batch_size, device, seed=0):
    names = [f"class{i}" for i in range(k)]
    finder = LabelErrorFinder(names, device=device)
    timings = {"pass1": 0.0, "pass2": 0.0}
    patches = 0
    for phase in ("pass1", "pass2"):
        rng = np.random.default_rng(seed)
        for start in range(0, num_images, batch_size):
            n = min(batch_size, num_images - start)
            labels, probs = make_batch(rng, n, k, size, device)
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            if phase == "pass1":
                finder.update(labels, probs)
            else:
                patches += sum(len(p) for p in finder.find(labels, probs))
            if device == "cuda":
                torch.cuda.synchronize()
            timings[phase] += time.perf_counter() - t
    total = timings["pass1"] + timings["pass2"]
    return {
        "images": num_images,
        "classes": k,
        "size": size,
        "batch_size": batch_size,
        "device": device,
        "seconds": round(total, 2),
        "images_per_s": round(num_images / total, 2),
        "pass1_s": round(timings["pass1"], 2),
        "pass2_s": round(timings["pass2"], 2),
        "patches": patches,
        "peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100])
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    args = parser.parse_args()
    for n in args.sizes:
        result = run(n, args.classes, args.size, args.batch_size, args.device)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
