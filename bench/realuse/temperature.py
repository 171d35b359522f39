"""A cached model at another temperature: the same argmax, another
confidence, as models trained with label smoothing (soft) or for long
(sharp) give.

Writes a copy of a probability cache (``model_probs.py``'s layout,
``<split>/<name>.npy``) with every pixel's probabilities raised to
``1 / T`` and normalised, i.e. the logits divided by ``T``::

    python bench/realuse/temperature.py \\
        --probs bench/results/realuse/probs/espnet --temperature 2 \\
        --out bench/results/realuse/probs/espnet-t2

With ``--fit LABELS`` (a label folder of an injector, e.g.
``bench/results/rw-a/noisy``), ``T`` is instead the one that maximises
the likelihood of those labels (temperature scaling, fitted on every
fourth row and column of the split; void pixels left out), and is
printed. Evaluate the copy like any model (``evaluate.py --probs OUT``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "camvid"))
from inject import NUM_CLASSES, read_png  # noqa: E402

# Temperatures searched by --fit: log-spaced from 1/8 to 8
GRID = np.exp(np.linspace(np.log(1 / 8), np.log(8), 97))
STRIDE = 4
FLOOR = 1e-7  # log of a zero probability


def log_probs_at(
    logp: np.ndarray, temperature: float, axis: int
) -> np.ndarray:
    """Log-probabilities ``logp`` (classes along ``axis``) with their
    logits divided by ``temperature``: ``log_softmax(logp / T)``."""
    z = logp / temperature
    top = z.max(axis=axis, keepdims=True)
    return z - top - np.log(np.exp(z - top).sum(axis=axis, keepdims=True))


def floored_log(probs: np.ndarray) -> np.ndarray:
    """Logs of probabilities, a zero counted as ``FLOOR``."""
    return np.log(np.maximum(probs.astype(np.float32), FLOOR))


def scaled(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``(K, H, W)`` probabilities with their logits divided by
    ``temperature``."""
    return np.exp(log_probs_at(floored_log(probs), temperature, axis=0))


def fit_temperature(files: list[Path], labels: Path) -> float:
    """The temperature of ``GRID`` with the least negative log-likelihood
    of the labels (``labels/<name>.png``) under the cached probabilities."""
    nll = np.zeros(len(GRID))
    for f in files:
        y = read_png(labels / f"{f.stem}.png")[::STRIDE, ::STRIDE]
        p = np.load(f)[:, ::STRIDE, ::STRIDE]
        valid = y < NUM_CLASSES
        logp = floored_log(p[:, valid]).T
        rows = np.arange(len(logp)), y[valid]
        for i, t in enumerate(GRID):
            nll[i] -= log_probs_at(logp, t, axis=1)[rows].sum()
    return float(GRID[nll.argmin()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probs", type=Path, required=True)
    parser.add_argument("--split", default="val")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--temperature", type=float)
    how.add_argument("--fit", type=Path, help="label folder to fit T on")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    files = sorted((args.probs / args.split).glob("*.npy"))
    if not files:
        raise SystemExit(f"no probabilities in {args.probs / args.split}")
    temperature = args.temperature
    if args.fit is not None:
        temperature = fit_temperature(files, args.fit / args.split)
        print(f"fitted temperature {temperature:.3f}")
    folder = args.out / args.split
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        probs = scaled(np.load(f), temperature)
        np.save(folder / f.name, probs.astype(np.float16))
    print(f"{len(files)} images at temperature {temperature:.3f} in {folder}")


if __name__ == "__main__":
    main()
