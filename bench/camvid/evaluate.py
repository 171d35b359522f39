"""Stage 3 of the CamVid known-error benchmark: FIXER vs cleanlab.

Both methods score EXACTLY the same noisy labels (stage 1) and cached
out-of-fold probabilities (stage 2; float16 on disk, float32 for both),
over all the run's images (train and val: class statistics come from the
whole dataset, as in real use):

* FIXER: ``LabelErrorFinder`` (what ``find_label_errors`` runs) with
  ``ignore_index=[11]`` and the default ``FinderConfig``, its two passes
  streamed over batches read from the cache;
* cleanlab: ``cleanlab.segmentation.filter.find_label_issues`` and
  ``cleanlab.segmentation.rank.get_label_quality_scores`` (``n_jobs=1``),
  all probabilities in memory as its API needs. cleanlab has no ignore
  label, so void pixels are given the model's argmax there (cleanlab never
  flags a pixel whose label is the argmax).

Metrics are computed on one split (``--split``, default val; thresholds
are tuned on train), always over labelled pixels only: void pixels of the
clean labels count for neither method.

* recall: share of planted errors found, by type and overall; an error is
  found when at least half its pixels are flagged (also reported: with
  the right class suggested on at least half its pixels);
* patch precision: share of patches that are right (at least half their
  pixels are planted errors), for all patches and those of 50+ pixels;
  cleanlab's patches are the 8-connected components of its mask;
* top-100 precision: share of right patches among the 100 scoring
  highest, the first page a reviewer sees (FIXER: the patch score;
  cleanlab: the sum of 1 - its pixel label quality score over the patch,
  which ranks large patches first; its mean ranks one-pixel specks first
  and puts 0-4 right patches in the top 100);
* pixel precision, recall and F1 of the flagged pixels;
* AUPRC: average precision of a pixel score against the planted-error
  pixels (FIXER: the score of the patch covering the pixel, 0 elsewhere;
  cleanlab: 1 - its pixel label quality score);
* suggestion accuracy: share of the flagged planted-error pixels whose
  suggested class is the true one (cleanlab suggests the argmax);
* label mIoU over the 11 classes vs the clean labels: of the noisy labels
  and of the corrected ones (FIXER: ``apply_patches`` of the patches
  scoring at least ``correct_min_score``, what the plugin's corrected
  field holds; cleanlab: flagged pixels set to the argmax);
* FIXER only: share of the found errors typed right (the patch covering
  most of the error has the planted type);
* by planted pair: the recall of general errors per (given, true) class
  pair and of false negatives per missed class, beside the control that
  keeps recall honest: the share of the objects of each class that hold
  no planted error (8-connected regions of ``GENERAL_MIN_AREA`` px or
  more) flagged on at least half their pixels. A method that flags every
  object of a class "finds" every error planted into that class.

Real CamVid labels hold errors of their own: flags on them count as false
positives here, so every precision is a lower bound. Writes
``report-<split>.md`` and ``report-<split>.json`` to the run folder.

    python bench/camvid/evaluate.py --epochs 30
    python bench/camvid/evaluate.py --epochs 30 --split train
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from inject import (
    GENERAL_MIN_AREA,
    NUM_CLASSES,
    VOID,
    Layout,
    load_meta,
    read_png,
    select_images,
)
from inject import add_arguments as add_common_arguments
from probabilities import add_arguments as add_probability_arguments
from probabilities import probs_path, resolve_device, run_tag

from fixer_core import (
    ERROR_TYPES,
    FinderConfig,
    LabelErrorFinder,
    Patch,
    apply_patches,
)

LARGE_PATCH = 50  # px: "patches of 50+ pixels"
TOP_PATCHES = 100  # the first page of a review
METHODS = ("fixer", "cleanlab")


# -- metrics -----------------------------------------------------------------


def precision_recall(
    scores: np.ndarray, positives: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of ``scores`` ranking ``positives`` first, at
    each distinct score threshold (tied scores form one threshold)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = np.asarray(positives, dtype=bool).ravel()
    order = np.argsort(-scores, kind="stable")
    scores, positives = scores[order], positives[order]
    last = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), scores.size - 1]
    tp = np.cumsum(positives)[last]
    return tp / (last + 1), tp / max(int(positives.sum()), 1)


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Average precision of ``scores`` ranking ``positives`` first:
    ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds
    (as in scikit-learn)."""
    if not np.any(positives):
        return float("nan")
    precision, recall = precision_recall(scores, positives)
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def _curve(scores: np.ndarray, positives: np.ndarray, points: int = 200):
    """The precision-recall curve thinned to about ``points`` points."""
    precision, recall = precision_recall(scores, positives)
    keep = np.unique(np.linspace(0, len(recall) - 1, points).astype(int))
    return {
        "precision": precision[keep].round(4).tolist(),
        "recall": recall[keep].round(4).tolist(),
    }


def mean_iou(confusion: np.ndarray) -> tuple[float, list[float | None]]:
    """Mean IoU of a ``(K, K)`` confusion (rows: reference) over the
    classes present in either labelling, and the per-class IoUs."""
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - inter
    ious = [
        float(i / u) if u else None for i, u in zip(inter, union, strict=True)
    ]
    present = [v for v in ious if v is not None]
    return float(np.mean(present)) if present else float("nan"), ious


def _confusion(reference: np.ndarray, labels: np.ndarray) -> np.ndarray:
    k = NUM_CLASSES
    index = reference.astype(np.int64) * k + labels.astype(np.int64)
    return np.bincount(index, minlength=k * k).reshape(k, k)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


class Scorer:
    """Accumulates one method's metrics over the evaluated images.

    Args:
        errors: the planted errors (records of ``errors.json``) of the
            evaluated images.
    """

    def __init__(self, errors: Sequence[dict]) -> None:
        self.errors = {e["id"]: e for e in errors}
        self.covered = dict.fromkeys(self.errors, 0)
        self.covered_right = dict.fromkeys(self.errors, 0)
        self.best: dict[int, tuple[int, str]] = {}
        self.patches = {"all": [0, 0], "large": [0, 0]}  # [right, total]
        self._patch_scores: list[np.ndarray] = []
        self._patch_right: list[np.ndarray] = []
        self.tp = self.fp = self.fn = self.right_class = 0
        self.flagged = self.scored = 0
        self.confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
        self.objects = np.zeros((2, NUM_CLASSES), np.int64)  # flagged, all
        self._scores: list[np.ndarray] = []
        self._positives: list[np.ndarray] = []

    def add(
        self,
        truth: dict,
        *,
        flagged: np.ndarray,
        suggestion: np.ndarray,
        score: np.ndarray,
        corrected: np.ndarray,
        patch_area: np.ndarray,
        patch_on_error: np.ndarray,
        patch_score: np.ndarray,
        best_patches: dict[int, tuple[int, str]] | None = None,
    ) -> None:
        """Adds one image.

        Args:
            truth: ``clean``, ``error_map`` (see :func:`load_truth`).
            flagged: ``(H, W)`` bool, the flagged pixels.
            suggestion: ``(H, W)`` suggested class (read where flagged).
            score: ``(H, W)`` float pixel score, higher = more suspect.
            corrected: ``(H, W)`` labels after applying the suggestions.
            patch_area: labelled pixels of each patch.
            patch_on_error: planted-error pixels of each patch.
            patch_score: score of each patch, higher = more suspect.
            best_patches: ``{error id: (overlap, type)}``, the patch
                covering most of each error (typed methods only).
        """
        clean, error_map = truth["clean"], truth["error_map"]
        scored = clean != VOID
        error_ids, true_class = error_map[2], error_map[1]
        on_error = error_ids >= 0
        flagged = flagged & scored
        right = flagged & on_error & (suggestion == true_class)
        ids = error_ids[flagged & on_error]
        right_ids = error_ids[right]
        for eid, count in zip(
            *np.unique(ids, return_counts=True), strict=True
        ):
            self.covered[int(eid)] += int(count)
        for eid, count in zip(
            *np.unique(right_ids, return_counts=True), strict=True
        ):
            self.covered_right[int(eid)] += int(count)
        for eid, (overlap, kind) in (best_patches or {}).items():
            if overlap > self.best.get(eid, (0, ""))[0]:
                self.best[eid] = (overlap, kind)
        patch_right = patch_on_error * 2 >= patch_area
        large = patch_area >= LARGE_PATCH
        self.patches["all"][0] += int(patch_right.sum())
        self.patches["all"][1] += int(patch_area.size)
        self.patches["large"][0] += int((patch_right & large).sum())
        self.patches["large"][1] += int(large.sum())
        self._patch_scores.append(np.asarray(patch_score, np.float64))
        self._patch_right.append(patch_right)
        self.tp += int((flagged & on_error).sum())
        self.fp += int((flagged & ~on_error).sum())
        self.fn += int((~flagged & on_error & scored).sum())
        self.right_class += int(right.sum())
        self.flagged += int(flagged.sum())
        self.scored += int(scored.sum())
        self.confusion += _confusion(clean[scored], corrected[scored])
        self.objects += _objects_flagged(clean, on_error, flagged)
        self._scores.append(score[scored].astype(np.float32))
        self._positives.append(on_error[scored])

    def result(self, typed: bool) -> dict:
        """All the method's numbers (see the module docstring)."""
        found, found_right, typed_right = {}, {}, {}
        for eid, e in self.errors.items():
            half = self.covered[eid] * 2 >= e["area"]
            found[eid] = half
            found_right[eid] = self.covered_right[eid] * 2 >= e["area"]
            typed_right[eid] = (
                half and self.best.get(eid, (0, ""))[1] == (e["type"])
            )
        recall, recall_right, type_accuracy = {}, {}, {}
        for kind in (*ERROR_TYPES, "all"):
            ids = [
                eid
                for eid, e in self.errors.items()
                if kind in ("all", e["type"])
            ]
            n_found = sum(found[i] for i in ids)
            recall[kind] = _count(n_found, len(ids))
            recall_right[kind] = _count(
                sum(found_right[i] for i in ids), len(ids)
            )
            if typed:
                type_accuracy[kind] = _count(
                    sum(typed_right[i] for i in ids), n_found
                )
        pairs: dict[tuple[str, int, int], list[int]] = {}
        for eid, e in self.errors.items():
            pair = pairs.setdefault(
                (e["type"], e["given"], e["true"]), [0] * 3
            )
            pair[0] += 1
            pair[1] += found[eid]
            pair[2] += found_right[eid]
        precision = _ratio(self.tp, self.tp + self.fp)
        pixel_recall = _ratio(self.tp, self.tp + self.fn)
        f1 = _ratio(2 * precision * pixel_recall, precision + pixel_recall)
        scores = np.concatenate(self._scores)
        positives = np.concatenate(self._positives)
        miou, ious = mean_iou(self.confusion)
        top = np.argsort(-np.concatenate(self._patch_scores), kind="stable")
        top_right = np.concatenate(self._patch_right)[top[:TOP_PATCHES]]
        return {
            "recall": recall,
            "recall_right_class": recall_right,
            "type_accuracy": type_accuracy if typed else None,
            "patch_precision": _count(*self.patches["all"]),
            "patch_precision_large": _count(*self.patches["large"]),
            "top_patch_precision": _count(top_right.sum(), top_right.size),
            "pixel_precision": precision,
            "pixel_recall": pixel_recall,
            "pixel_f1": f1,
            "auprc": average_precision(scores, positives),
            "pr_curve": _curve(scores, positives),
            "suggestion_accuracy": _ratio(self.right_class, self.tp),
            "flagged_share": _ratio(self.flagged, self.scored),
            "flagged_pixels": self.flagged,
            "corrected_miou": miou,
            "corrected_iou_per_class": ious,
            "recall_by_pair": [
                {"type": t, "given": g, "true": k, "errors": n}
                | {"found": f, "found_right_class": r}
                for (t, g, k), (n, f, r) in sorted(pairs.items())
            ],
            "clean_objects_flagged": [
                _count(f, n) for f, n in self.objects.T.tolist()
            ],
        }


def _objects_flagged(
    clean: np.ndarray, on_error: np.ndarray, flagged: np.ndarray
) -> np.ndarray:
    """``(2, K)`` counts of one image's objects without planted errors:
    those flagged on at least half their pixels, and all. An object is an
    8-connected region of one clean class off the errors, of
    ``GENERAL_MIN_AREA`` px or more (as large as the smallest planted
    general error)."""
    counts = np.zeros((2, NUM_CLASSES), np.int64)
    for k in range(NUM_CLASSES):
        mask = ((clean == k) & ~on_error).astype(np.uint8)
        n, ids, stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=8
        )
        area = stats[1:, cv2.CC_STAT_AREA]
        hits = np.bincount(ids[flagged], minlength=n)[1:]
        large = area >= GENERAL_MIN_AREA
        counts[:, k] = (large & (hits * 2 >= area)).sum(), large.sum()
    return counts


def _count(num: int, den: int) -> dict:
    return {"value": _ratio(num, den), "num": int(num), "den": int(den)}


# -- methods -----------------------------------------------------------------


def load_probs(paths: Sequence[Path]) -> np.ndarray:
    """``(N, K, H, W)`` float16 probabilities of some images."""
    return np.stack([np.load(p) for p in paths])


def run_fixer(
    noisy: np.ndarray,
    paths: Sequence[Path],
    class_names: Sequence[str],
    *,
    device: str,
    batch_size: int,
    config: FinderConfig | None = None,
    load: Callable[[Sequence[Path]], np.ndarray] = load_probs,
) -> tuple[list[list[Patch]], dict]:
    """FIXER on all images, both passes streamed over batches (``load``
    reads a batch's probabilities); returns the patches of each image and
    the summary as a dict."""
    finder = LabelErrorFinder(
        class_names, ignore_index=[VOID], device=device, config=config
    )
    batches = [
        range(i, min(i + batch_size, len(noisy)))
        for i in range(0, len(noisy), batch_size)
    ]
    for b in batches:
        finder.update(noisy[b.start : b.stop], load(paths[b.start : b.stop]))
    found: list[list[Patch]] = []
    for b in batches:
        found += finder.find(
            noisy[b.start : b.stop],
            load(paths[b.start : b.stop]),
            image_indices=list(b),
        )
    summary = finder.summary()
    patches = [
        [dataclasses.replace(p, issue=summary.issue_of(p)) for p in image]
        for image in found
    ]
    return patches, summary.to_dict()


def run_cleanlab(
    noisy: np.ndarray,
    paths: Sequence[Path],
    load: Callable[[Sequence[Path]], np.ndarray] = load_probs,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cleanlab on all images at once (``load`` reads probabilities);
    returns its ``(N, H, W)`` issue mask, pixel label quality scores and
    argmax suggestions."""
    from cleanlab.segmentation.filter import find_label_issues
    from cleanlab.segmentation.rank import get_label_quality_scores

    n, (h, w) = len(noisy), noisy.shape[1:]
    probs = np.empty((n, NUM_CLASSES, h, w), dtype=np.float32)
    for i, path in enumerate(paths):
        probs[i] = load([path])[0]
    argmax = probs.argmax(axis=1).astype(np.uint8)
    labels = np.where(noisy == VOID, argmax, noisy).astype(np.int64)
    issues = find_label_issues(labels, probs, n_jobs=1, verbose=False)
    _, quality = get_label_quality_scores(
        labels, probs, n_jobs=1, verbose=False
    )
    return issues, quality.astype(np.float32), argmax


def fixer_image(
    truth: dict,
    noisy: np.ndarray,
    patches: Sequence[Patch],
    correct_min_probability: float = FinderConfig().correct_min_probability,
) -> dict:
    """Scorer inputs of FIXER's patches on one image."""
    shape = noisy.shape
    flagged = np.zeros(shape, dtype=bool)
    score = np.zeros(shape, dtype=np.float32)
    scored = truth["clean"] != VOID
    error_ids = truth["error_map"][2]
    area, on_error, best = [], [], {}
    for p in patches:
        x, y, w, h = p.box
        window = (slice(y, y + h), slice(x, x + w))
        mask = p.mask & scored[window]
        flagged[window] |= mask
        score[window][mask] = np.maximum(score[window][mask], p.score)
        ids = error_ids[window][mask]
        ids = ids[ids >= 0]
        area.append(int(mask.sum()))
        on_error.append(int(ids.size))
        for eid, count in zip(
            *np.unique(ids, return_counts=True), strict=True
        ):
            eid, count = int(eid), int(count)
            if count > best.get(eid, (0, ""))[0]:
                best[eid] = (count, p.error_type)
    return {
        "flagged": flagged,
        "suggestion": apply_patches(noisy, patches),
        "score": score,
        "corrected": apply_patches(
            noisy, patches, min_probability=correct_min_probability
        ),
        "patch_area": np.asarray(area, dtype=np.int64),
        "patch_on_error": np.asarray(on_error, dtype=np.int64),
        "patch_score": np.asarray([p.score for p in patches]),
        "best_patches": best,
    }


def cleanlab_image(
    truth: dict,
    noisy: np.ndarray,
    issues: np.ndarray,
    quality: np.ndarray,
    argmax: np.ndarray,
) -> dict:
    """Scorer inputs of cleanlab's mask on one image: its patches are the
    8-connected components of the mask (void pixels left out), each
    scored by the sum of its pixel scores."""
    flagged = issues & (truth["clean"] != VOID)
    n, comp = cv2.connectedComponents(flagged.astype(np.uint8), connectivity=8)
    area = np.bincount(comp.ravel(), minlength=n)[1:]
    on_error = np.bincount(comp[truth["error_map"][2] >= 0], minlength=n)[1:]
    score = 1.0 - quality
    patch_score = np.bincount(comp.ravel(), weights=score.ravel(), minlength=n)
    return {
        "flagged": flagged,
        "suggestion": argmax,
        "score": score,
        "corrected": np.where(flagged, argmax, noisy),
        "patch_area": area,
        "patch_on_error": on_error,
        "patch_score": patch_score[1:],
    }


# -- stage -------------------------------------------------------------------


def load_truth(layout: Layout, image: dict) -> dict:
    """Clean labels and the ``(3, H, W)`` error map of one image."""
    split, name = image["split"], image["name"]
    return {
        "clean": read_png(layout.label("clean", split, name)),
        "error_map": np.load(layout.error_map(split, name)),
    }


@dataclasses.dataclass(frozen=True)
class Run:
    """A probability run of stage 2: its images, their cached probability
    files and noisy labels."""

    meta: dict
    layout: Layout
    images: list[dict]
    run_dir: Path
    paths: list[Path]
    noisy: np.ndarray

    def evaluated(self, split: str) -> tuple[list[int], list[dict]]:
        """Indices of the images of ``split`` (``"all"``: every image) and
        the planted errors (records of ``errors.json``) on them."""
        indices = [
            i
            for i, im in enumerate(self.images)
            if split in ("all", im["split"])
        ]
        if not indices:
            raise SystemExit(
                f"no {split} images among the {len(self.images)} used"
            )
        names = {
            (self.images[i]["split"], self.images[i]["name"]) for i in indices
        }
        records = json.loads(self.layout.errors.read_text())
        errors = [r for r in records if (r["split"], r["image"]) in names]
        return indices, errors


def load_run(args: argparse.Namespace) -> Run:
    """The run the options name; stops when its probabilities are missing."""
    meta = load_meta(args.out, factor=args.factor, seed=args.seed)
    layout = Layout(args.out)
    images = select_images(meta, args.limit)
    run_dir = layout.run_dir(run_tag(args, len(images)))
    paths = [probs_path(run_dir, im) for im in images]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(
            f"{len(missing)} probability files missing under {run_dir} "
            f"(first: {missing[0]}): run bench/camvid/probabilities.py "
            "with the same options first"
        )
    noisy = np.stack(
        [
            read_png(layout.label("noisy", im["split"], im["name"]))
            for im in images
        ]
    )
    return Run(meta, layout, images, run_dir, paths, noisy)


def require_cleanlab() -> None:
    """Stops with the install command when cleanlab is missing (checked
    before training, not after it)."""
    if importlib.util.find_spec("cleanlab") is None:
        raise SystemExit(
            'the comparison needs cleanlab: pip install -e ".[bench]" '
            "from the repository root"
        )


def evaluate(args: argparse.Namespace) -> dict:
    """Runs stage 3; returns the report as a dict."""
    require_cleanlab()
    run = load_run(args)
    meta, layout, images = run.meta, run.layout, run.images
    run_dir, paths, noisy = run.run_dir, run.paths, run.noisy
    split = args.split
    evaluated, errors = run.evaluated(split)
    device = resolve_device(args.device)

    began = time.perf_counter()
    patches, summary = run_fixer(
        noisy,
        paths,
        meta["class_names"],
        device=device,
        batch_size=args.eval_batch_size,
    )
    print(
        f"evaluate: FIXER scored {len(images)} images on {device} "
        f"({time.perf_counter() - began:.1f} s)",
        flush=True,
    )
    began = time.perf_counter()
    issues, quality, argmax = run_cleanlab(noisy, paths)
    print(
        f"evaluate: cleanlab scored {len(images)} images "
        f"({time.perf_counter() - began:.1f} s)",
        flush=True,
    )

    scorers = {m: Scorer(errors) for m in METHODS}
    noisy_confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for i in evaluated:
        truth = load_truth(layout, images[i])
        scored = truth["clean"] != VOID
        noisy_confusion += _confusion(truth["clean"][scored], noisy[i][scored])
        scorers["fixer"].add(truth, **fixer_image(truth, noisy[i], patches[i]))
        scorers["cleanlab"].add(
            truth,
            **cleanlab_image(
                truth, noisy[i], issues[i], quality[i], argmax[i]
            ),
        )
    noisy_miou, noisy_ious = mean_iou(noisy_confusion)
    counts = {t: sum(e["type"] == t for e in errors) for t in ERROR_TYPES}
    error_pixels = sum(e["area"] for e in errors)
    report = {
        "benchmark": "CamVid known errors, FIXER vs cleanlab",
        "split": split,
        "images_evaluated": len(evaluated),
        "images_scored": len(images),
        "size": meta["settings"]["size"],
        "class_names": meta["class_names"],
        "injection": meta["settings"],
        "run": run_dir.name,
        "options": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in vars(args).items()
        },
        "errors": counts,
        "error_pixels": error_pixels,
        "labelled_pixels": scorers["fixer"].scored,
        "noisy_miou": noisy_miou,
        "noisy_iou_per_class": noisy_ious,
        "fixer": scorers["fixer"].result(typed=True),
        "cleanlab": scorers["cleanlab"].result(typed=False),
        "fixer_summary": summary,
        "note": NOTE,
    }
    weak = weak_classes(summary, meta["class_names"])
    for method in METHODS:
        report[method]["recall_by_weak"] = recall_by_weak(report[method], weak)
    markdown = to_markdown(report)
    (run_dir / f"report-{split}.json").write_text(
        json.dumps(_finite(report), indent=1, allow_nan=False)
    )
    (run_dir / f"report-{split}.md").write_text(markdown)
    print(markdown)
    print(f"evaluate: wrote {run_dir / f'report-{split}.md'} and .json")
    return report


def weak_classes(summary: dict, class_names: Sequence[str]) -> set[int]:
    """Indices of the classes a FIXER summary names as weakly predicted."""
    return {class_names.index(n) for n in summary["weakly_predicted"]}


def recall_by_weak(result: dict, weak: set[int]) -> dict:
    """Recall of the errors that involve classes the model barely predicts
    (``weakly_predicted``) and of the others: general errors between two
    such classes (swaps the model cannot tell apart) or not,
    and missed objects of such a class or not."""
    totals = {
        key: [0, 0]
        for key in (
            "general_between_weak",
            "general_other",
            "false_negative_weak",
            "false_negative_other",
        )
    }
    for pair in result["recall_by_pair"]:
        if pair["type"] == "general":
            both = {pair["given"], pair["true"]} <= weak
            key = "general_between_weak" if both else "general_other"
        elif pair["type"] == "false_negative":
            hidden = pair["true"] in weak
            key = "false_negative_weak" if hidden else "false_negative_other"
        else:
            continue
        totals[key][0] += pair["found"]
        totals[key][1] += pair["errors"]
    return {k: _count(found, n) for k, (found, n) in totals.items()}


NOTE = (
    "Real CamVid labels hold errors of their own (coarse boundaries, missed "
    "poles and signs): flags on them count as false positives here, so "
    "every precision is a lower bound. Void pixels are excluded from all "
    "metrics for both methods (cleanlab, which has no ignore label, sees "
    "them labelled with the model's argmax)."
)


def _finite(value: object) -> object:
    """``value`` with NaN floats (undefined ratios) as ``None``, for strict
    JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


def _fmt_count(count: dict | None) -> str:
    if count is None:
        return "-"
    return f"{_fmt(count['value'])} ({count['num']}/{count['den']})"


WEAK_ROWS = {
    "general": {
        "between_weak": "between classes the model barely predicts ({weak})",
        "other": "on the other pairs",
    },
    "false_negative": {
        "weak": "of a class the model barely predicts",
        "other": "of the other classes",
    },
}


def to_markdown(report: dict) -> str:
    """The report as a Markdown table, FIXER and cleanlab side by side."""
    f, c = report["fixer"], report["cleanlab"]
    h, w = report["size"]
    labelled = report["labelled_pixels"]
    weak = ", ".join(report["fixer_summary"]["weakly_predicted"]) or "none"
    rows: list[tuple[str, str, str]] = []
    for kind in (*ERROR_TYPES, "all"):
        rows.append(
            (
                f"recall, {kind}",
                _fmt_count(f["recall"][kind]),
                _fmt_count(c["recall"][kind]),
            )
        )
        if kind in ("general", "false_negative"):
            rows += [
                (
                    f"- {WEAK_ROWS[kind][part].format(weak=weak)}",
                    _fmt_count(f["recall_by_weak"][f"{kind}_{part}"]),
                    _fmt_count(c["recall_by_weak"][f"{kind}_{part}"]),
                )
                for part in WEAK_ROWS[kind]
            ]
    rows.append(
        (
            "recall with the right class, all",
            _fmt_count(f["recall_right_class"]["all"]),
            _fmt_count(c["recall_right_class"]["all"]),
        )
    )
    rows.append(
        (
            "found errors typed right",
            _fmt_count(f["type_accuracy"]["all"]),
            "- (untyped)",
        )
    )
    rows += [
        (
            "patch precision, all patches",
            _fmt_count(f["patch_precision"]),
            _fmt_count(c["patch_precision"]),
        ),
        (
            f"patch precision, patches of {LARGE_PATCH}+ px",
            _fmt_count(f["patch_precision_large"]),
            _fmt_count(c["patch_precision_large"]),
        ),
        (
            f"patch precision, {TOP_PATCHES} highest-scoring patches",
            _fmt_count(f["top_patch_precision"]),
            _fmt_count(c["top_patch_precision"]),
        ),
        (
            "flagged pixels (share of labelled)",
            _fmt(f["flagged_share"], 4),
            _fmt(c["flagged_share"], 4),
        ),
        (
            "pixel precision",
            _fmt(f["pixel_precision"]),
            _fmt(c["pixel_precision"]),
        ),
        ("pixel recall", _fmt(f["pixel_recall"]), _fmt(c["pixel_recall"])),
        ("pixel F1", _fmt(f["pixel_f1"]), _fmt(c["pixel_f1"])),
        (
            "pixel AUPRC (chance = "
            f"{_fmt(report['error_pixels'] / max(labelled, 1), 4)})",
            _fmt(f["auprc"]),
            _fmt(c["auprc"]),
        ),
        (
            "suggestion accuracy",
            _fmt(f["suggestion_accuracy"]),
            _fmt(c["suggestion_accuracy"]),
        ),
        (
            f"label mIoU, corrected (noisy: {_fmt(report['noisy_miou'])})",
            _fmt(f["corrected_miou"]),
            _fmt(c["corrected_miou"]),
        ),
    ]
    counts = ", ".join(f"{t} {n}" for t, n in report["errors"].items())
    lines = [
        "# CamVid known-error benchmark: FIXER vs cleanlab",
        "",
        f"Split **{report['split']}**: {report['images_evaluated']} images "
        f"at {h}x{w} (of {report['images_scored']} scored), planted "
        f"errors: {counts} ({report['error_pixels']} px, "
        f"{100 * report['error_pixels'] / max(labelled, 1):.2f}% of "
        f"labelled pixels). Probabilities: out-of-fold, run "
        f"`{report['run']}`.",
        "",
        "| metric | FIXER | cleanlab |",
        "| --- | ---: | ---: |",
        *(f"| {m} | {a} | {b} |" for m, a, b in rows),
        "",
        report["note"],
        "",
        *_pair_tables(report),
    ]
    return "\n".join(lines)


def _pair_tables(report: dict) -> list[str]:
    """Markdown lines: recall by planted pair, and the clean-object
    control of the classes involved."""
    names = report["class_names"]
    f, c = report["fixer"], report["cleanlab"]
    pairs = f["recall_by_pair"]
    rows: dict[str, list[list[int]]] = {}
    for kind, key in (
        ("general", lambda p: f"{names[p['given']]} <- {names[p['true']]}"),
        ("false_negative", lambda p: f"missed {names[p['true']]}"),
    ):
        for fp, cp in zip(pairs, c["recall_by_pair"], strict=True):
            if fp["type"] == kind:
                counts = rows.setdefault(key(fp), [[0] * 3, [0] * 3])
                for total, p in zip(counts, (fp, cp), strict=True):
                    total[0] += p["errors"]
                    total[1] += p["found"]
                    total[2] += p["found_right_class"]
    classes = sorted(
        {p["given"] for p in pairs if p["type"] == "general"}
        | {p["true"] for p in pairs if p["type"] != "ambiguous"}
    )
    return [
        "Recall by planted pair: errors found (with the right class).",
        "",
        "| given <- true | errors | FIXER | cleanlab |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {name} | {fx[0]} | {fx[1]} ({fx[2]}) | {cl[1]} ({cl[2]}) |"
            for name, (fx, cl) in rows.items()
        ),
        "",
        "Control: objects of these classes with no planted error "
        f"({GENERAL_MIN_AREA}+ px), flagged on at least half their pixels.",
        "",
        "| class | objects | FIXER | cleanlab |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {names[k]} | {f['clean_objects_flagged'][k]['den']} | "
            f"{_fmt_count(f['clean_objects_flagged'][k])} | "
            f"{_fmt_count(c['clean_objects_flagged'][k])} |"
            for k in classes
        ),
        "",
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of stage 3."""
    parser.add_argument(
        "--split",
        choices=("val", "train", "all"),
        default="val",
        help="images the metrics are computed on (default val)",
    )
    parser.add_argument(
        "--eval-batch-size",
        type=int,
        default=8,
        help="images per FIXER batch",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    add_probability_arguments(parser)
    add_arguments(parser)
    evaluate(parser.parse_args())


if __name__ == "__main__":
    main()
