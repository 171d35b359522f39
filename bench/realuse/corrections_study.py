"""Why the corrected labels gain or lose, on cached patches
(``cache_patches.py``): where the injected errors' pixels go, and the
label mIoU (vs the clean labels) that other correction rules, an oracle
and a ceiling would give. Prints one block per cell::

    python bench/realuse/corrections_study.py DIR/*.pkl

* ``fixed`` / ``wrong`` / ``damage``: pixels of a patch that are injected
  errors its suggestion fixes, injected errors it sets to another wrong
  class, and clean pixels it changes;
* ``oracle patches``: each run's first patch applied exactly when it
  fixes more pixels than it harms (the best any choice of patches gives);
* ``ceiling``: every error pixel inside any patch set to its true class
  and nothing else touched (the best any choice of classes gives).
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "camvid"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import mean_iou as miou  # noqa: E402
from inject import VOID, Layout, read_png  # noqa: E402

from fixer_core.corrections import apply_patches  # noqa: E402
from fixer_core.neighbours import (  # noqa: E402
    NEIGHBOURS_CAUSE,
    began_with_relabel,
    neighbour_labels,
    odd_one_out,
)
from fixer_core.shift import SHIFTED_CAUSE  # noqa: E402

BINS = ((0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 2))


def load(labels_dir: Path, clean: bool, split: str):
    """The split's labels as scored and its clean labels."""
    layout = Layout(labels_dir)
    meta = json.loads(layout.meta.read_text())
    images = [im for im in meta["images"] if im["split"] == split]
    kind = "clean" if clean else "noisy"
    lab = np.stack(
        [read_png(layout.label(kind, split, im["name"])) for im in images]
    )
    ref = np.stack(
        [read_png(layout.label("clean", split, im["name"])) for im in images]
    )
    return lab, ref


def odd_maps(lab: np.ndarray) -> list[np.ndarray | None]:
    """Each image's odd-one-out map (``neighbours.odd_one_out``)."""
    prepared = np.where(lab == VOID, -1, lab).astype(np.int32)
    out = []
    for i in range(len(lab)):
        odd = None
        if 0 < i < len(lab) - 1:
            common = neighbour_labels(
                prepared[i - 1], prepared[i], prepared[i + 1], (-1,)
            )
            if common is not None:
                odd = odd_one_out(common, prepared[i])
        out.append(odd)
    return out


def correct(lab, shifts, by_image, keep: Callable) -> np.ndarray:
    """The labels with the shift moves and the patches ``keep`` accepts
    applied (never the shifted ones: the move explains them)."""
    out = lab.copy()
    for i in range(len(lab)):
        shift = shifts.get(i)
        chosen = [
            p
            for p in by_image.get(i, [])
            if keep(p) and not (shift is not None and p.cause == SHIFTED_CAUSE)
        ]
        out[i] = apply_patches(lab[i], [], shift=shift)
        for p in chosen:
            x, y, w, h = p.box
            out[i, y : y + h, x : x + w][p.mask] = p.suggested_label
    return out


def outcome(p, err, ref) -> tuple[int, int, int]:
    """(fixed, wrong, damage) pixels of one patch."""
    x, y, w, h = p.box
    box = (p.image_index, slice(y, y + h), slice(x, x + w))
    m = p.mask & (ref[box] != VOID)
    e, r = err[box][m], ref[box][m]
    right = r == p.suggested_label
    return int((e & right).sum()), int((e & ~right).sum()), int((~e).sum())


def rules(t: float, gain: dict[int, int]) -> dict[str, Callable]:
    """The correction rules compared, each on a run's first patches."""

    def neighbours(p) -> bool:
        return p.cause == NEIGHBOURS_CAUSE

    def whole_run(p) -> bool:
        relabelled = p.evidence.relabelled if p.evidence else None
        return p.run_length == 1 or began_with_relabel(relabelled)

    out = {
        f"p>={s}": (lambda p, s=s: p.error_probability >= s)
        for s in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
    }
    out.update(
        {
            "as landed (apply_patches)": lambda p: p.error_probability >= t,
            "p>=t or neighbours' class": lambda p: (
                p.error_probability >= t or neighbours(p)
            ),
            "p>=t, whole runs skipped": lambda p: (
                p.error_probability >= t and whole_run(p)
            ),
            "oracle patches": lambda p: gain.get(id(p), 0) > 0,
        }
    )
    return {
        name: (lambda p, rule=rule: p.repeat_of is None and rule(p))
        for name, rule in out.items()
    }


def study(path: Path) -> None:
    with path.open("rb") as f:
        d = pickle.load(f)
    lab, ref = load(Path(d["labels_dir"]), d["clean"], d["split"])
    patches, shifts = d["patches"], d["shifts"]
    t = d["config"]["correct_min_probability"]
    by_image: dict[int, list] = {}
    for p in patches:
        by_image.setdefault(p.image_index, []).append(p)
    valid = ref != VOID
    err = (lab != ref) & valid
    print(
        f"== {path.stem}: {len(patches)} patches, error px {err.sum()} "
        f"({err.sum() / valid.sum():.3f}), mIoU labels {miou(ref, lab):.3f}"
    )
    first = [
        p for p in patches if p.repeat_of is None and p.cause != SHIFTED_CAUSE
    ]
    rows = {id(p): outcome(p, err, ref) for p in first}
    print(" runs' first patches by error_probability: n fixed wrong damage")
    for lo, hi in BINS:
        inside = [p for p in first if lo <= p.error_probability < hi]
        sums = np.sum([rows[id(p)] for p in inside], axis=0, dtype=int)
        print(f"  {lo:.1f}-{min(hi, 1):.1f} {len(inside):5d} {sums}")
    for name, pick in (
        ("neighbours' class", lambda p: p.cause == NEIGHBOURS_CAUSE),
        (f"corrected now (p>={t})", lambda p: p.error_probability >= t),
    ):
        chosen = [p for p in first if pick(p)]
        sums = np.sum([rows[id(p)] for p in chosen], axis=0, dtype=int)
        print(f"  {name}: {len(chosen)} patches, fixed wrong damage {sums}")
    odd = odd_maps(lab)
    on = right = clean = 0
    for i, o in enumerate(odd):
        if o is not None:
            m = (o >= 0) & valid[i]
            on += int((m & err[i]).sum())
            right += int((m & err[i] & (o == ref[i])).sum())
            clean += int((m & ~err[i]).sum())
    print(
        f"  odd-one-out px: on errors {on} (neighbours' class right "
        f"{right}), on clean labels {clean}; images with neighbours "
        f"{sum(o is not None for o in odd)}/{len(lab)}"
    )
    gain = {k: f - w - dmg for k, (f, w, dmg) in rows.items()}
    results = {
        name: miou(ref, correct(lab, shifts, by_image, keep))
        for name, keep in rules(t, gain).items()
    }
    ceiling = lab.copy()
    for p in patches:
        x, y, w, h = p.box
        view = ceiling[p.image_index, y : y + h, x : x + w]
        r = ref[p.image_index, y : y + h, x : x + w]
        m = p.mask & (r != VOID)
        view[m] = r[m]
    results["ceiling"] = miou(ref, ceiling)
    print("  mIoU: " + ", ".join(f"{k} {v:.3f}" for k, v in results.items()))
    sys.stdout.flush()


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        study(Path(arg))
