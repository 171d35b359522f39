"""Applying corrections to the ground truth, with a backup and an undo."""

from __future__ import annotations

import datetime
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import fiftyone as fo
import fiftyone.core.fields as fof
import numpy as np

from ._database import check_database, naming_database
from ._keys import check_key
from ._locks import exclusive, labels_resource, run_resource, schema_change
from ._pipeline import Progress, output_fields, owns_path, stored_results
from ._relabel import (
    check_segmentation_field,
    mask_dir,
    mask_targets,
    name_value,
    placed_mask,
    sample_view,
    write_mask_file,
)
from ._review_tags import CONFIRMED_TAG
from ._samples import LabelErrorInputError, describe, load_mask

logger = logging.getLogger(__name__)

METHOD = "fixer.apply_corrections"
PROVENANCE_FIELD = "fixer_applied"
# Every apply and undo rewrites samples' provenance lists: one at a time
PROVENANCE_RESOURCE = "provenance"
SOURCES = ("suggestions", "annotations")
SELECTIONS = ("confirmed", "score")


@dataclass(frozen=True)
class ApplyParams:
    """What one ``apply_corrections`` merges into the ground truth.

    ``source="suggestions"`` paints the suggested class of the patches of
    FIXER run ``run_key`` that were confirmed in review
    (``selection="confirmed"``) or score at least ``min_score``
    (``selection="score"``). ``source="annotations"`` takes the masks of
    ``annotations_field`` (edited labels loaded from CVAT) as they are;
    the patches of ``run_key``, if given, that overlap the changed pixels
    are recorded with them.
    """

    gt_field: str
    source: str
    apply_key: str = "fixer_apply"
    run_key: str | None = None
    annotations_field: str | None = None
    selection: str = "confirmed"
    min_score: float = 0.5


def backup_field(gt_field: str, apply_key: str) -> str:
    """Name of the backup of the ground truth an apply writes first."""
    return f"{gt_field}_backup_{apply_key}"


def list_applies(dataset: fo.Dataset) -> list[str]:
    """Keys of the dataset's corrections, oldest first."""
    keys = [
        k
        for k in dataset.list_runs()
        if dataset.get_run_info(k).config.method == METHOD
    ]
    return sorted(keys, key=lambda k: dataset.get_run_info(k).timestamp)


def new_apply_key(dataset: fo.Dataset) -> str:
    """A free apply key: ``fixer_apply``, ``fixer_apply2``, ..."""
    runs, n = set(dataset.list_runs()), 1
    while (key := "fixer_apply" + (str(n) if n > 1 else "")) in runs:
        n += 1
    return key


def run_apply_corrections(
    view: fo.core.collections.SampleCollection, params: ApplyParams
) -> Iterator[Progress]:
    """Merges corrections into ``view``'s ground truth; yields progress.

    Results (counts) are stored as the run results of ``apply_key``.
    Holds the ground truth's lock (no other apply, undo or finder run on
    it meanwhile), the apply key's and the provenance records'.
    """
    dataset = view._root_dataset
    operation = f"apply_corrections '{params.apply_key}'"
    with (
        naming_database(),
        exclusive(dataset, labels_resource(params.gt_field), operation),
        exclusive(dataset, run_resource(params.apply_key), operation),
        exclusive(dataset, PROVENANCE_RESOURCE, operation),
    ):
        yield from _apply_corrections(view, params)


def _apply_corrections(
    view: fo.core.collections.SampleCollection, params: ApplyParams
) -> Iterator[Progress]:
    # Algorithm
    # ---------
    # 1. Validate; nothing is written if this fails.
    # 2. Register the apply as a run, so an interrupted apply can be undone.
    # 3. Copy the ground truth of every target sample to the backup field
    #    and check the copy, before any label changes. The samples with a
    #    backup are the ones an undo restores.
    # 4. Per sample: build the new mask, write it (mask files go to a new
    #    file, atomically; originals are never touched), then set the
    #    ground truth and append the provenance record in one document
    #    update, so each sample holds either its old or its new labels.
    # 5. Store the counts as the run results: the apply is complete.
    dataset = view._root_dataset
    view = sample_view(view)
    _validate(view, params)
    samples = view.exists(params.gt_field)
    num_samples = len(samples)
    backup = backup_field(params.gt_field, params.apply_key)
    out_dir = None
    if samples.first()[params.gt_field].mask_path is not None:
        out_dir = mask_dir(dataset, "applied", params.apply_key)
    with schema_change(dataset):
        dataset.register_run(
            params.apply_key,
            dataset.init_run(
                method=METHOD,
                gt_field=params.gt_field,
                source=params.source,
                run_key=params.run_key,
                annotations_field=params.annotations_field,
                selection=params.selection,
                min_score=params.min_score,
                backup_field=backup,
                mask_dir=out_dir,
            ),
        )
        logger.info("Backing up '%s' to '%s'", params.gt_field, backup)
        samples.clone_sample_field(params.gt_field, backup)  # in the DB
        if not dataset.has_sample_field(PROVENANCE_FIELD):
            dataset.add_sample_field(
                PROVENANCE_FIELD, fof.ListField, subfield=fof.DictField
            )
    if samples.count(backup) != num_samples:
        raise RuntimeError(f"Backup '{backup}' is incomplete; nothing changed")
    yield Progress("Backed up the ground truth", 0.1)

    merge = _Merge(dataset, params)
    fields = [params.gt_field, PROVENANCE_FIELD] + merge.fields
    changed_samples = changed_pixels = 0
    for i, sample in enumerate(
        samples.select_fields(fields).iter_samples(autosave=True)
    ):
        old = load_mask(sample, params.gt_field)
        new, record = merge(sample, old)
        if record["changed_pixels"]:
            if out_dir is None:
                sample[params.gt_field] = fo.Segmentation(mask=new)
            else:
                path = os.path.join(out_dir, f"{sample.id}.png")
                write_mask_file(path, new)
                sample[params.gt_field] = fo.Segmentation(mask_path=path)
            sample[PROVENANCE_FIELD] = [
                *(sample[PROVENANCE_FIELD] or []),
                record,
            ]
            changed_samples += 1
            changed_pixels += record["changed_pixels"]
        if (i + 1) % 50 == 0:
            check_database()
            yield Progress(
                f"Applied {i + 1} of {num_samples} samples",
                0.1 + 0.9 * (i + 1) / num_samples,
            )
    with schema_change(dataset):
        dataset.save_run_results(
            params.apply_key,
            dataset.init_run_results(
                params.apply_key,
                num_samples=num_samples,
                changed_samples=changed_samples,
                changed_pixels=changed_pixels,
            ),
        )
    logger.info(
        "Applied corrections to %d samples (%d pixels)",
        changed_samples,
        changed_pixels,
    )
    yield Progress("Done", 1.0)


def undo_corrections(dataset: fo.Dataset, apply_key: str) -> dict:
    """Restores the ground truth an apply changed from its backup, exactly,
    and removes its provenance records, backup, mask files and run.

    Works on interrupted applies too. Later applies on the same field must
    be undone first. Holds the ground truth's and the apply key's locks.
    """
    if apply_key in dataset.list_runs():
        gt_field = dataset.get_run_info(apply_key).config.gt_field
        operation = f"undo_corrections '{apply_key}'"
        with (
            exclusive(dataset, labels_resource(gt_field), operation),
            exclusive(dataset, run_resource(apply_key), operation),
            exclusive(dataset, PROVENANCE_RESOURCE, operation),
        ):
            return _undo_corrections(dataset, apply_key)
    return _undo_corrections(dataset, apply_key)


def _undo_corrections(dataset: fo.Dataset, apply_key: str) -> dict:
    applies = list_applies(dataset)
    if apply_key not in applies:
        raise LabelErrorInputError(
            f"Dataset '{dataset.name}' has no FIXER correction '{apply_key}'"
        )
    config = dataset.get_run_info(apply_key).config
    later = [
        k
        for k in applies[applies.index(apply_key) + 1 :]
        if dataset.get_run_info(k).config.gt_field == config.gt_field
    ]
    if later:
        raise LabelErrorInputError(
            f"Undo the later correction(s) {later} of '{config.gt_field}' "
            f"before '{apply_key}'"
        )
    restored = 0
    if dataset.has_sample_field(config.backup_field):
        samples = dataset.exists(config.backup_field)
        tracked = dataset.has_sample_field(PROVENANCE_FIELD)
        fields = [config.gt_field, config.backup_field]
        for sample in samples.select_fields(
            fields + [PROVENANCE_FIELD] * tracked
        ).iter_samples(autosave=True):
            sample[config.gt_field] = sample[config.backup_field]
            if not tracked:
                continue
            records = sample[PROVENANCE_FIELD] or []
            kept = [r for r in records if r.get("apply_key") != apply_key]
            sample[PROVENANCE_FIELD] = kept or None
            restored += len(kept) != len(records)
    with schema_change(dataset):
        if dataset.has_sample_field(config.backup_field):
            dataset.delete_sample_field(config.backup_field)
        if (
            dataset.has_sample_field(PROVENANCE_FIELD)
            and dataset.count(PROVENANCE_FIELD) == 0
        ):
            dataset.delete_sample_field(PROVENANCE_FIELD)
        if config.mask_dir and owns_path(dataset, config.mask_dir):
            shutil.rmtree(config.mask_dir, ignore_errors=True)
        dataset.delete_run(apply_key)
    return {"apply_key": apply_key, "restored_samples": restored}


class _Merge:
    """Builds one sample's new mask and its provenance record."""

    def __init__(self, dataset: fo.Dataset, params: ApplyParams) -> None:
        self.params = params
        self.targets = mask_targets(dataset, params.gt_field)
        self.patches = (
            output_fields(params.run_key)["patches"]
            if params.run_key
            else None
        )
        self.fields = [
            f for f in (self.patches, params.annotations_field) if f
        ]

    def __call__(self, sample, old: np.ndarray) -> tuple[np.ndarray, dict]:
        p = self.params
        detections = (
            sample[self.patches].detections
            if self.patches and sample[self.patches]
            else []
        )
        placed = [(d, placed_mask(d, old.shape)) for d in detections]
        if p.source == "suggestions":
            chosen = sorted(
                (dp for dp in placed if self._accepts(dp[0])),
                key=lambda dp: dp[0].confidence,
            )
            new = old.copy()
            for det, pixels in chosen:
                new[pixels] = name_value(self.targets, det.suggested_label)
        else:
            new = load_mask(sample, p.annotations_field)
            if new.shape != old.shape:
                raise LabelErrorInputError(
                    f"Mask of sample {describe(sample)} in "
                    f"'{p.annotations_field}' "
                    f"is {new.shape[1]}x{new.shape[0]}, its ground truth "
                    f"{old.shape[1]}x{old.shape[0]}"
                )
            new = new.astype(old.dtype)
            chosen = placed
        changed = new != old
        credited = [
            (d.id, int((changed & pixels).sum())) for d, pixels in chosen
        ]
        credited = [(i, n) for i, n in credited if n]
        rows, cols = np.nonzero(changed)
        box = (
            [int(cols.min()), int(rows.min()), int(np.ptp(cols)) + 1]
            + [int(np.ptp(rows)) + 1]
            if len(rows)
            else None
        )
        record = {
            "apply_key": p.apply_key,
            "run_key": p.run_key,
            "source": p.source,
            "annotations_field": p.annotations_field,
            "patch_ids": [i for i, _ in credited],
            "patch_pixels": [n for _, n in credited],
            "changed_pixels": int(changed.sum()),
            "changed_box": box,
            "backup_field": backup_field(p.gt_field, p.apply_key),
            "applied_at": datetime.datetime.now(datetime.timezone.utc),
        }
        return new, record

    def _accepts(self, detection) -> bool:
        if self.params.selection == "confirmed":
            return CONFIRMED_TAG in (detection.tags or [])
        return detection.confidence >= self.params.min_score


def _validate(view, params: ApplyParams) -> None:
    dataset = view._root_dataset
    key = params.apply_key
    check_key(key, "Apply key")
    if key in dataset.list_runs():
        raise LabelErrorInputError(
            f"Apply key '{key}' already exists; undo it or choose another"
        )
    check_segmentation_field(dataset, params.gt_field)
    mask_targets(dataset, params.gt_field)
    backup = backup_field(params.gt_field, key)
    if dataset.has_sample_field(backup):
        raise LabelErrorInputError(f"Field '{backup}' already exists")
    if params.source not in SOURCES:
        raise LabelErrorInputError(
            f"source must be one of {SOURCES}, got {params.source!r}"
        )
    if params.run_key is not None:
        stored_results(dataset, params.run_key)  # known and finished
    if params.source == "suggestions":
        if params.run_key is None:
            raise LabelErrorInputError(
                "Applying suggestions needs the run_key of a FIXER run"
            )
        if params.selection not in SELECTIONS:
            raise LabelErrorInputError(
                f"selection must be one of {SELECTIONS}, got "
                f"{params.selection!r}"
            )
    else:
        if not params.annotations_field:
            raise LabelErrorInputError(
                "Applying annotations needs annotations_field (the field "
                "edited labels were loaded into)"
            )
        if params.annotations_field == params.gt_field:
            raise LabelErrorInputError(
                "annotations_field must differ from the ground truth"
            )
        check_segmentation_field(dataset, params.annotations_field)
    if len(view.exists(params.gt_field)) == 0:
        raise LabelErrorInputError(
            f"No sample of the target view has a '{params.gt_field}'"
        )
