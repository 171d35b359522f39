"""Each patch's evidence on its ``fo.Detection`` and the per-sample map of
the probability that the label is wrong (``fo.Heatmap``)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2
import fiftyone as fo

from ..fixer_core import Patch, error_map, reason_text, same_confusion
from ..fixer_core.neighbours import began_with_relabel

# Detection attributes written from ``Patch.evidence`` in pass 2, and
# from the whole run afterwards
EVIDENCE_ATTRIBUTES = (
    "top_classes",
    "top_probs",
    "given_prob",
    "given_threshold",
    "rule",
    "vouched",
    "contradicted",
    "relabelled",
)
RUN_ATTRIBUTES = ("same_confusion", "reason")
# Error maps stored as files hold the probability times this
MAP_SCALE = 255


def evidence_attributes(patch: Patch, class_names: list[str]) -> dict:
    """A patch's evidence as ``fo.Detection`` attributes (empty without
    evidence)."""
    e = patch.evidence
    if e is None:
        return {}
    return {
        "top_classes": [class_names[k] for k in e.top_labels],
        "top_probs": list(e.top_probs),
        "given_prob": round(patch.given_prob, 4),
        "given_threshold": e.given_threshold,
        "rule": e.rule,
        "vouched": e.vouched,
        "contradicted": e.contradicted,
        "relabelled": e.relabelled,
    }


def error_maps_dir(corrected_dir: str) -> str:
    """The folder of a run's error maps, beside its corrected masks'
    (``.../corrected-<id>`` -> ``.../error-maps-<id>``): owned, replaced
    and deleted with them."""
    parent, name = os.path.split(corrected_dir)
    return os.path.join(parent, name.replace("corrected", "error-maps", 1))


def error_heatmap(
    sample_id: str,
    image_shape: tuple[int, int],
    patches: list[Patch],
    corrected_dir: str | None,
) -> fo.Heatmap:
    """The sample's map of the probability that each pixel's label is
    wrong (each patch's ``error_probability`` over its pixels).

    Stored like the corrected masks: inline (float, range [0, 1]) when
    the run keeps them inline (``corrected_dir`` is None), else as an
    8-bit PNG (probability x 255, range [0, 255]) in
    :func:`error_maps_dir`.
    """
    heat = error_map(image_shape, patches)
    if corrected_dir is None:
        return fo.Heatmap(map=heat, range=[0.0, 1.0])
    folder = error_maps_dir(corrected_dir)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{sample_id}.png")
    scaled = (heat * MAP_SCALE).round().astype("uint8")
    if not cv2.imwrite(path, scaled):
        raise OSError(f"Could not write error map {path}")
    return fo.Heatmap(map_path=path, range=[0, MAP_SCALE])


# Detection attributes a patch's issue and reason are made of
EXPLAINED_ATTRIBUTES = (
    "given_label",
    "suggested_label",
    "error_type",
    *EVIDENCE_ATTRIBUTES,
    "cause",
    "repeat",
    "run",
    "confidence",
    "error_probability",
)


@dataclass(frozen=True)
class WrittenPatches:
    """Patches a run wrote, as read back: the samples' ids and, per
    sample, each patch's :data:`EXPLAINED_ATTRIBUTES` (a dict)."""

    ids: list[str]
    rows: list[list[dict]]

    def pair_counts(self) -> Counter:
        """The patches per (given, suggested) class pair."""
        return Counter(
            (r["given_label"], r["suggested_label"])
            for sample in self.rows
            for r in sample
        )

    def changed_runs(self, continued: Mapping[str, str]) -> set[str]:
        """The stored runs whose first patch is here and began with a
        change of the label (``continued``: the stored runs that continue
        an earlier shard's, whose first patches are not)."""
        return {
            r["run"]
            for sample in self.rows
            for r in sample
            if not r["repeat"]
            and r["run"] not in continued
            and began_with_relabel(r["relabelled"])
        }

    def continue_runs(
        self, continued: Mapping[str, str], changed: set[str]
    ) -> None:
        """Gives each patch its run as over all shards (``continued``:
        stored run -> the earlier shard's run it continues; ``changed``:
        the runs that began with a change of the label): whether it
        repeats, and ``changed_run``."""
        for sample in self.rows:
            for r in sample:
                run = continued.get(r["run"], r["run"])
                if r["run"] in continued:
                    r["repeat"] = run not in changed
                r["changed_run"] = not r["repeat"] and run in changed


def read_patches(view, patches_field: str) -> WrittenPatches:
    """Reads the patches of ``view`` in one pass over its samples.

    The values come as stored (``_raw``): the attributes are written as
    the plain values their fields hold (see ``_documents``), so FiftyOne's
    conversion of each value would return it unchanged, at a cost of
    microseconds per value.
    """
    prefix = f"{patches_field}.detections"
    ids, *columns = view.values(
        ["_id", *(f"{prefix}.{n}" for n in EXPLAINED_ATTRIBUTES)], _raw=True
    )
    ids = [str(i) for i in ids]
    rows = [
        [
            dict(zip(EXPLAINED_ATTRIBUTES, values, strict=True))
            for values in zip(*(c or [] for c in sample), strict=True)
        ]
        for sample in zip(*columns, strict=True)
    ]
    return WrittenPatches(ids, rows)


def explain_patches(
    patches: WrittenPatches,
    issue_of: Callable[[dict], str | None],
    run_lengths: Mapping[str, int],
    pair_counts: Counter | None = None,
) -> list[list[tuple[str | None, int, str, int]]]:
    """Per sample, each patch's ``(issue, same_confusion, reason,
    run_length)``: its specific issue (``issue_of`` its attributes), the
    other patches of the run with its (given, suggested) pair, one
    sentence (see ``fixer_core.reason_text``) and the images its run of
    repeats spans (``run_lengths``: stored run -> images, for the runs
    of more than one; see ``LabelErrorFinder.run_lengths``).
    ``pair_counts`` (see :class:`WrittenPatches`) is the whole run's when
    ``patches`` are only a share of its patches."""
    flat = [r for sample in patches.rows for r in sample]
    pairs = [(r["given_label"], r["suggested_label"]) for r in flat]
    if pair_counts is None:
        others = same_confusion(pairs)
    else:
        others = [pair_counts[p] - 1 for p in pairs]
    lengths = [run_lengths.get(r["run"], 1) for r in flat]
    issues = [issue_of(r) for r in flat]
    explained = [
        (issue, n, _reason({**r, "issue": issue}, n, length), length)
        for r, issue, n, length in zip(
            flat, issues, others, lengths, strict=True
        )
    ]
    return _nest(explained, [len(sample) for sample in patches.rows])


def _nest(flat: list, sizes: list[int]) -> list[list]:
    """Splits a flat list into per-sample lists of the given sizes."""
    out, start = [], 0
    for n in sizes:
        out.append(flat[start : start + n])
        start += n
    return out


def _reason(row: dict, others: int, run_length: int) -> str:
    top = zip(row["top_classes"] or [], row["top_probs"] or [], strict=True)
    return reason_text(
        row["given_label"],
        row["suggested_label"],
        top=list(top),
        rule=row["rule"],
        given_prob=row["given_prob"],
        given_threshold=row["given_threshold"],
        cause=row["cause"],
        others=others,
        issue=row["issue"],
        repeat=bool(row["repeat"]),
        run_length=run_length,
        vouched=row["vouched"],
        contradicted=row["contradicted"],
        relabelled=row["relabelled"],
        changed_run=row["changed_run"],
    )
