"""Scale: FIXER's streaming scorer on ADE20K-like data, and cleanlab beside
it as far as memory allows.

Generates label maps of K classes (Zipf-distributed region classes, 5% of
the regions relabelled) and probabilities of a simulated model of moderate
confidence (logits: +6 on the true class over smooth Gaussian noise, so the
true class gets about 0.6 at 150 classes) batch by batch, the same seeded
stream in both passes. FIXER never holds more than one batch; cleanlab
gets the whole dataset as one array, as its API needs. Only the scoring
calls are timed (generation is excluded); each size runs in a fresh process
whose peak RSS (``VmHWM``) is reported. One JSON line per run.

    python bench/bench_scoring.py --sizes 1000 2000 10000 \\
        --cleanlab-sizes 50 100 200 400 500
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from peak_memory import peak_rss_mb

TRUE_CLASS_LOGIT = 6.0


def make_batch(rng, n, k, size, device, generator=None):
    """ADE-like labels (blocky regions) and probabilities from the truth;
    ``rng`` draws the labels, the torch ``generator`` the model's noise."""
    cells = 8
    weights = 1.0 / np.arange(1, k + 1)
    grid = rng.choice(k, size=(n, cells, cells), p=weights / weights.sum())
    truth = torch.as_tensor(grid).repeat_interleave(size // cells, 1)
    truth = truth.repeat_interleave(size // cells, 2)
    wrong = rng.random((n, cells, cells)) < 0.05
    relabelled = np.where(wrong, rng.integers(0, k, size=grid.shape), grid)
    labels = torch.as_tensor(relabelled).repeat_interleave(size // cells, 1)
    labels = labels.repeat_interleave(size // cells, 2)
    truth = truth.to(device)
    noise = torch.randn(
        n, k, size // 8, size // 8, device=device, generator=generator
    )
    logits = F.interpolate(noise, size=(size, size), mode="bilinear")
    boost = torch.full_like(logits[:, :1], TRUE_CLASS_LOGIT)
    logits.scatter_add_(1, truth[:, None], boost)
    return labels, logits.softmax(dim=1)


def _batches(num_images, k, size, batch_size, device, seed=0):
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    for start in range(0, num_images, batch_size):
        n = min(batch_size, num_images - start)
        yield make_batch(rng, n, k, size, device, generator)


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def run_fixer(num_images, k, size, batch_size, device):
    from fixer_core import LabelErrorFinder

    finder = LabelErrorFinder([f"class{i}" for i in range(k)], device=device)
    timings = {"pass1": 0.0, "pass2": 0.0}
    patches = 0
    for phase in timings:
        for labels, probs in _batches(num_images, k, size, batch_size, device):
            _sync(device)
            t = time.perf_counter()
            if phase == "pass1":
                finder.update(labels, probs)
            else:
                patches += sum(len(p) for p in finder.find(labels, probs))
            _sync(device)
            timings[phase] += time.perf_counter() - t
    total = timings["pass1"] + timings["pass2"]
    return {
        "method": "fixer",
        "seconds": round(total, 2),
        "images_per_s": round(num_images / total, 2),
        "pass1_s": round(timings["pass1"], 2),
        "pass2_s": round(timings["pass2"], 2),
        "patches": patches,
    }


def run_cleanlab(num_images, k, size, batch_size, device):
    from cleanlab.segmentation.filter import find_label_issues

    labels = np.empty((num_images, size, size), np.int64)
    probs = np.empty((num_images, k, size, size), np.float32)
    start = 0
    for batch_labels, batch_probs in _batches(
        num_images, k, size, batch_size, "cpu"
    ):
        n = len(batch_labels)
        labels[start : start + n] = batch_labels.numpy()
        probs[start : start + n] = batch_probs.numpy()
        start += n
    t = time.perf_counter()
    issues = find_label_issues(labels, probs, n_jobs=1, verbose=False)
    seconds = time.perf_counter() - t
    return {
        "method": "cleanlab",
        "seconds": round(seconds, 2),
        "images_per_s": round(num_images / seconds, 2),
        "flagged": int(issues.sum()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100])
    parser.add_argument("--cleanlab-sizes", type=int, nargs="*", default=[])
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--run", choices=("fixer", "cleanlab"))
    parser.add_argument("--images", type=int)
    args = parser.parse_args()
    shape = (args.classes, args.size, args.batch_size, args.device)
    if args.run:
        run = run_fixer if args.run == "fixer" else run_cleanlab
        result = run(args.images, *shape)
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return
    jobs = [("fixer", n) for n in args.sizes]
    jobs += [("cleanlab", n) for n in args.cleanlab_sizes]
    for method, n in jobs:
        out = subprocess.run(
            [sys.executable, __file__, "--run", method, "--images", str(n)]
            + [f"--classes={args.classes}", f"--size={args.size}"]
            + [f"--batch-size={args.batch_size}", f"--device={args.device}"],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            result = {"method": method, "failed": out.stderr.strip()[-300:]}
        else:
            result = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            json.dumps(
                {
                    "images": n,
                    **result,
                    "classes": args.classes,
                    "size": args.size,
                    "device": args.device,
                    "machine": f"{platform.machine()}, "
                    f"{torch.get_num_threads()} threads",
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
