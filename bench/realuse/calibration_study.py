"""Where the expected count of error patches goes wrong (issue 23), from
``calibration_dump.py``'s tables, and what other estimates of a patch's
``error_probability`` would give, offline::

    python bench/realuse/calibration_study.py DIR

For each cell of ``DIR``: the expected count split over the patches on
injected errors ("hits") and the others; by patch area; the pairs with
the largest excess; for a noisy cell whose model has a clean-label cell in
``DIR``, the excess its pairs' raised rates give the patches off the
injected errors (their probability with the clean cell's rates and
doubts); how well each part of the probability tells hits from the others
(ROC AUC); and, for each variant below, expected / observed, the hits the
report floor (``min_error_probability``) would drop, recall after 500,
1000 and 2000 reviewed patches, precision of the first 100 and the
patches at or above ``correct_min_probability`` (hits among them).
Variants change the pair rate ``r`` or the label's doubt ``q`` in
``size x r x q`` (neighbours' patches keep theirs):

* ``E on B bins``: the pair's error count bounded on B confidence bins,
  not 10 (the tightest bound moves to the top of the profile);
* ``min(r, q)`` and ``r only``: ``r`` and ``q`` both estimate whether
  the label is wrong from the same pixels; the product counts it twice;
* ``disagreement units``: rates from ``blob_hist`` (each disagreement
  counts once, whatever its area);
* ``image excess``: ``min(r, 1 - h n_g / d)``, with ``d`` the pair's
  interior disagreement in the patch's image, ``n_g`` its interior pixels
  labelled ``g`` and ``h`` the median over images of ``d / n_g``: what an
  image shows beyond the model's typical confusion;
* ``image excess within E``: the same, with ``h`` lowered until the
  images' excesses hold the pair's error count ``E`` of
  ``label_error_rates`` (errors spread over most images, a labelling
  policy, are not taken for the model's habit);
* ``min(r, q, image excess)`` and ``min(r, q, image excess within
  E)``: both changes at once.

``calibration_dump.py --variant NAME [--keep]`` runs a variant for
real, for the corrected labels.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fixer_core.statistics import (
    ERROR_RATE_BINS,
    _isotonic,
    label_doubts,
    label_error_rates,
)

# CamVid's classes, in the order of ``bench/camvid/inject.py``
NAMES = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
AREAS = (30, 60, 100, 200, 400, 800, 1600)
REVIEWED = (500, 1000, 2000)


def load(path: Path) -> dict:
    """One cell's tables, with its hits and its count of errors."""
    d = dict(np.load(path))
    d["hit"] = d["on_error"] >= 0.5
    d["name"] = path.stem
    report = json.loads(path.with_suffix(".json").read_text())
    d["errors"] = report["fixer"]["errors"]
    return d


def rate_of(d: dict, rates: np.ndarray) -> np.ndarray:
    """Each patch's pair rate in ``rates`` at its confidence."""
    b = (d["suggested_prob"] * ERROR_RATE_BINS).astype(int)
    b = np.minimum(b, ERROR_RATE_BINS - 1)
    return rates[d["given"], d["suggested"], b]


def doubt_of(d: dict, doubts: np.ndarray) -> np.ndarray:
    """Each patch's label's doubt in ``doubts``."""
    b = np.minimum((d["given_prob"] * 100 + 0.5).astype(int), 99)
    return doubts[d["given"], d["suggested"], b]


def with_parts(d: dict, rate: np.ndarray, doubt: np.ndarray) -> np.ndarray:
    """The patches' probabilities with ``rate`` and ``doubt`` in place of
    their own (the size factor, vouched share and run kept)."""
    old = d["rate"] * d["doubt"]
    factor = np.divide(rate * doubt, old, out=np.ones_like(old), where=old > 0)
    return d["probability"] * np.where(d["neighbours"], 1.0, factor)


def pair_errors(hist: np.ndarray, bins: int = ERROR_RATE_BINS) -> np.ndarray:
    """``(K, K)`` the pairs' error counts ``E`` (interior pixels) of
    ``label_error_rates``, bounded on ``bins`` confidence bins."""
    k = hist.shape[0]
    coarse = hist.reshape(k, k, bins, -1).sum(axis=-1)
    own = coarse[np.arange(k), np.arange(k)]
    profile = own / np.maximum(own.sum(axis=1, keepdims=True), 1)
    tail = profile[:, ::-1].cumsum(axis=1)[:, ::-1]
    errors = np.zeros((k, k))
    for g, s in zip(*np.nonzero(coarse.sum(axis=-1)), strict=True):
        if g == s or not own[s].any():
            continue
        d_tail = coarse[g, s][::-1].cumsum()[::-1]
        upper = tail[s] >= 0.5
        errors[g, s] = np.min(d_tail[upper] / tail[s][upper])
    return errors


def bounded_rates(hist: np.ndarray, bins: int) -> np.ndarray:
    """``label_error_rates`` with the error count bounded on ``bins``
    confidence bins."""
    k = hist.shape[0]
    errors = pair_errors(hist, bins)
    coarse = hist.reshape(k, k, ERROR_RATE_BINS, -1).sum(axis=-1)
    own = coarse[np.arange(k), np.arange(k)]
    profile = own / np.maximum(own.sum(axis=1, keepdims=True), 1)
    tail = profile[:, ::-1].cumsum(axis=1)[:, ::-1]
    rates = label_error_rates(hist)
    for g, s in zip(*np.nonzero(coarse.sum(axis=-1)), strict=True):
        if g == s or not own[s].any():
            continue
        d = coarse[g, s]
        d_tail = d[::-1].cumsum()[::-1]
        share = np.divide(
            errors[g, s] * tail[s],
            d_tail,
            out=np.zeros_like(d),
            where=d_tail > 0,
        )
        rates[g, s] = np.minimum(_isotonic(share, d), 1.0)
    return rates


def units(d: dict, regions: bool) -> tuple[np.ndarray, ...]:
    """The units the excess is taken over: each image's pixels of one
    label (``regions`` False) or each region of the labels. Returns each
    unit's class, interior pixels ``n`` and ``(U, K)`` interior pixels by
    argmax ``d``, and each patch's unit."""
    if regions:
        return (
            d["region_label"],
            d["region_pixels"],
            d["region_disagreement"],
            d["region"],
        )
    n, k = d["image_labels"].shape
    return (
        np.tile(np.arange(k), n),
        d["image_labels"].ravel(),
        d["image_disagreement"].reshape(-1, k),
        d["image"] * k + d["given"],
    )


def typical_confusion(cls, pixels, pairs) -> np.ndarray:
    """``(K, K)`` ``h``: the median over the units of a class of
    ``d / n``."""
    k = pairs.shape[1]
    typical = np.zeros((k, k))
    for g in range(k):
        seen = (cls == g) & (pixels > 0)
        if seen.any():
            share = pairs[seen] / pixels[seen, None]
            typical[g] = np.median(share, axis=0)
    typical[np.arange(k), np.arange(k)] = 0
    return typical


def within_errors(d: dict, cls, pixels, pairs, typical) -> np.ndarray:
    """``typical`` lowered, pair by pair, until the units' excesses
    ``sum max(0, d - h n)`` hold the pair's error count ``E``: errors
    spread over most units (a labelling policy) are not a habit."""
    errors = pair_errors(d["argmax_hist"])
    out = typical.copy()
    for g, s in zip(*np.nonzero(typical), strict=True):
        mine = cls == g

        def held(h, mine=mine, s=s):
            return np.maximum(pairs[mine, s] - h * pixels[mine], 0).sum()

        if held(out[g, s]) >= errors[g, s]:
            continue
        low, high = 0.0, out[g, s]
        for _ in range(40):
            mid = (low + high) / 2
            low, high = (
                (mid, high) if held(mid) >= errors[g, s] else (low, mid)
            )
        out[g, s] = low
    return out


def excess(d: dict, within: bool = False, regions: bool = False):
    """``1 - h n / d`` of each patch's unit (see the module docstring)."""
    cls, pixels, pairs, unit = units(d, regions)
    typical = typical_confusion(cls, pixels, pairs)
    if within:
        typical = within_errors(d, cls, pixels, pairs, typical)
    g, s = d["given"], d["suggested"]
    known = unit >= 0
    unit = np.where(known, unit, 0)
    seen = pairs[unit, s]
    share = 1 - typical[g, s] * pixels[unit] / np.maximum(seen, 1)
    return np.where(known & (seen > 0), np.clip(share, 0, 1), 1.0)


VARIANTS: dict[str, Callable[[dict], np.ndarray]] = {
    "landed": lambda d: d["probability"],
    "E on 20 bins": lambda d: with_parts(
        d, rate_of(d, bounded_rates(d["argmax_hist"], 20)), d["doubt"]
    ),
    "E on 100 bins": lambda d: with_parts(
        d, rate_of(d, bounded_rates(d["argmax_hist"], 100)), d["doubt"]
    ),
    "min(r, q)": lambda d: with_parts(
        d, np.minimum(d["rate"], d["doubt"]), np.ones_like(d["rate"])
    ),
    "r only": lambda d: with_parts(d, d["rate"], np.ones_like(d["rate"])),
    "disagreement units": lambda d: with_parts(
        d, rate_of(d, label_error_rates(d["blob_hist"])), d["doubt"]
    ),
    "image excess": lambda d: with_parts(
        d, np.minimum(d["rate"], excess(d)), d["doubt"]
    ),
    "image excess within E": lambda d: with_parts(
        d, np.minimum(d["rate"], excess(d, within=True)), d["doubt"]
    ),
    "region excess": lambda d: with_parts(
        d, np.minimum(d["rate"], excess(d, regions=True)), d["doubt"]
    ),
    "region excess within E": lambda d: with_parts(
        d,
        np.minimum(d["rate"], excess(d, within=True, regions=True)),
        d["doubt"],
    ),
    "min(r, q, image excess)": lambda d: with_parts(
        d,
        np.minimum(np.minimum(d["rate"], d["doubt"]), excess(d)),
        np.ones_like(d["rate"]),
    ),
    "min(r, q, image excess within E)": lambda d: with_parts(
        d,
        np.minimum(np.minimum(d["rate"], d["doubt"]), excess(d, within=True)),
        np.ones_like(d["rate"]),
    ),
}


def recall(d: dict, keep: np.ndarray) -> list[float]:
    """Recall after N reviewed patches and precision of the first 100, in
    ``evaluate.py``'s order, over the patches kept."""
    order = np.argsort(-(d["score"] - d["repeat"])[keep], kind="stable")
    hit, error = d["hit"][keep][order], d["error_id"][keep][order]
    found: dict[int, int] = {}
    for rank, (h, e) in enumerate(zip(hit, error, strict=True)):
        if h and e >= 0 and e not in found:
            found[int(e)] = rank
    ranks = np.sort(np.fromiter(found.values(), dtype=np.int64))
    total = max(d["errors"], 1)
    out = [np.searchsorted(ranks, n) / total for n in REVIEWED]
    return [*out, float(hit[:100].mean())]


def auc(score: np.ndarray, hit: np.ndarray) -> float:
    """ROC AUC of ``score`` for the hits (ties in input order)."""
    ranks = np.empty(len(score))
    ranks[np.argsort(score, kind="stable")] = np.arange(len(score))
    n1, n0 = hit.sum(), (~hit).sum()
    return float((ranks[hit].sum() - n1 * (n1 - 1) / 2) / (n1 * n0))


def pair_name(u: int) -> str:
    k = len(NAMES)
    return f"{NAMES[u // k]}->{NAMES[u % k]}"


def diagnose(d: dict, clean: dict | None) -> None:
    """Prints where a cell's expected count sits (``clean``: the same
    model's clean-label cell, for the raised pairs)."""
    p, hit = d["probability"], d["hit"]
    print(f"\n## {d['name']}: {p.sum():.0f} expected / {hit.sum()} observed")
    if hit.any():
        print(
            f"- hits: {hit.sum()} patches, mass {p[hit].sum():.0f} "
            f"(mean {p[hit].mean():.2f}); others: {(~hit).sum()} patches, "
            f"mass {p[~hit].sum():.0f} (mean {p[~hit].mean():.2f})"
        )
    rep = d["repeat"]
    print(f"- repeats: mass {p[rep].sum():.0f}, hits {hit[rep].sum()}")
    area = np.digitize(d["area"], AREAS)
    bounds = ["<30", *(f"<{a}" for a in AREAS[1:]), f">={AREAS[-1]}"]
    print(
        "- by area: "
        + "; ".join(
            f"{bounds[b]} px {np.sum(area == b)} / {p[area == b].sum():.0f} / "
            f"{hit[area == b].sum()}"
            for b in range(len(bounds))
        )
        + " (patches / expected / observed)"
    )
    pair = d["given"] * len(NAMES) + d["suggested"]
    rows = sorted(
        (p[pair == u].sum() - hit[pair == u].sum(), u) for u in np.unique(pair)
    )[::-1][:6]
    print(
        "- largest excess: "
        + "; ".join(
            f"{pair_name(u)} {np.sum(pair == u)} / {p[pair == u].sum():.1f} / "
            f"{hit[pair == u].sum()}"
            for _, u in rows
        )
    )
    if clean is not None and hit.any():
        q = with_parts(
            d,
            rate_of(d, label_error_rates(clean["argmax_hist"])),
            doubt_of(d, label_doubts(clean["prob_hist"])),
        )
        print(
            f"- off the injected errors, with the clean labels' rates and "
            f"doubts: {q[~hit].sum():.0f} (raised pairs: "
            f"{p[~hit].sum() - q[~hit].sum():.0f})"
        )
    if hit.any() and (~hit).any():
        parts = ["probability", "score", "size", "rate", "doubt"]
        print(
            "- AUC: " + ", ".join(f"{k} {auc(d[k], hit):.3f}" for k in parts)
        )


def compare(d: dict) -> None:
    """Prints the variants' table of a cell."""
    floor = float(d["min_error_probability"])
    correct = float(d["correct_min_probability"])
    print(
        "\n| variant | expected / observed | hits under the floor | "
        "recall@500/1000/2000 | P@100 | >= correct (hits) |\n"
        "|---|---|---|---|---|---|"
    )
    for name, variant in VARIANTS.items():
        p = variant(d)
        keep = (p >= floor) | (d["probability"] < floor)
        hit = d["hit"]
        ratio = (
            f"{p[keep].sum():.0f} / {hit[keep].sum()} = "
            f"{p[keep].sum() / max(hit[keep].sum(), 1):.2f}"
            if hit.any()
            else f"{p[keep].sum():.0f} / 0"
        )
        r = recall(d, keep) if hit.any() else [np.nan] * 4
        top = p >= correct
        print(
            f"| {name} | {ratio} | {np.sum(hit & ~keep)} | "
            f"{r[0]:.3f} / {r[1]:.3f} / {r[2]:.3f} | {r[3]:.2f} | "
            f"{top.sum()} ({np.sum(top & hit)}) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    args = parser.parse_args()
    cells = {path.stem: load(path) for path in sorted(args.dir.glob("*.npz"))}
    for name, d in cells.items():
        model, _, _, kind, split = name.rsplit("-", 4)
        clean = cells.get(f"{model}-rw-a-clean-{split}")
        diagnose(d, None if kind == "clean" else clean)
        compare(d)


if __name__ == "__main__":
    main()
