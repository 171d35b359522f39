"""FiftyOne <-> fixer_core glue: read samples, stream batches, write back."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import fiftyone as fo
import fiftyone.core.fields as fof
import fiftyone.core.utils as fou
import numpy as np
from fiftyone import ViewField as F

from ..fixer_core import (
    ERROR_TYPES,
    FinderConfig,
    LabelErrorFinder,
    Patch,
    apply_patches,
    image_error_score,
)
from ..fixer_core.neighbours import file_signature
from ..fixer_core.ordering import MAX_IMAGES as MAX_ORDERED_IMAGES
from ..fixer_core.ordering import view_order
from ..fixer_core.quality import weakly_predicted_note
from ..fixer_core.repeats import (
    JoinedRuns,
    continue_runs,
    join_shards,
    run_score,
)
from ..fixer_core.shift import LabelShift
from ..fixer_core.threads import limited_threads
from ._database import check_database, naming_database
from ._distributed import Ranks
from ._documents import (
    detection_attribute_schema,
    detections_document,
    label_document,
    run_key,
    write_sample_fields,
)
from ._evidence import (
    WrittenPatches,
    error_heatmap,
    error_maps_dir,
    explain_patches,
    read_patches,
)
from ._kept import KeptBatches, keep_budget
from ._keys import check_key
from ._locks import (
    exclusive,
    labels_resource,
    run_resource,
    schema_change,
    shared,
)
from ._samples import (
    Batch,
    LabelErrorInputError,
    batches,
    describe,
    load_mask,
    load_probs,
    naming_sample,
    stack_labels,
)
from ._sources import (
    SOURCES,
    ModelSpec,
    StoredProbabilities,
    TrainingSpec,
    build_model_source,
    fold_trainer,
    save_probabilities,
    tie_to_labels,
    train_fold_models,
)
from ._taken_back import (
    HeldCorrections,
    write_continued_corrections,
    write_taken_back,
)

logger = logging.getLogger(__name__)

METHOD = "fixer.find_label_errors"
# Patches' colour in the App: bright, and outside its default colour pool
PATCH_COLOR = "#ff00ff"
DEVICES = ("auto", "cpu", "cuda")
# Images read per progress update while their views are read
_SIGNATURE_BATCH = 64


@dataclass(frozen=True)
class Progress:
    """One progress update of a run.

    Attributes:
        label: a short message for the App or a progress bar.
        fraction: overall progress of the run in [0, 1].
    """

    label: str
    fraction: float


@dataclass(frozen=True)
class FindParams:
    """Parameters of one ``find_label_errors`` run.

    ``probs_source`` picks where probabilities come from: ``"stored"``
    files named by ``probs_field``, the user's ``model``, or fold models
    trained on the target samples (``training``). With a model or fold
    models, ``save_probs_dir`` and ``save_probs_field`` keep the computed
    probabilities as files for later runs. ``keep_bytes`` bounds the
    memory that keeps pass 1's batches for pass 2 (None: the rule of
    ``_kept.keep_budget``; 0 reads every file in both passes).
    """

    gt_field: str
    probs_field: str | None = None
    probs_source: str = "stored"
    model: ModelSpec | None = None
    training: TrainingSpec | None = None
    ignore_values: tuple[int, ...] = ()
    save_probs_dir: str | None = None
    save_probs_field: str | None = None
    run_key: str = "fixer"
    device: str = "auto"
    logits: bool = False
    batch_size: int = 8
    num_threads: int | None = None
    keep_bytes: int | None = None
    config: FinderConfig = field(default_factory=FinderConfig)


def output_fields(run_key: str) -> dict[str, str]:
    """Names of the sample fields a run writes."""
    return {
        "patches": f"{run_key}_patches",
        "score": f"{run_key}_error_score",
        "corrected": f"{run_key}_corrected",
        "error_map": f"{run_key}_error_map",
    }


def output_views(run_key: str) -> dict[str, str]:
    """Names of the saved views a run writes, by error type (+ ``all``)."""
    views = {t: f"{run_key}-{t.replace('_', '-')}" for t in ERROR_TYPES}
    views["all"] = f"{run_key}-patches"
    return views


def quality_eval_key(run_key: str) -> str:
    """Key of the evaluation that scores a run's original labels against
    its corrected ones (written by the label-quality report)."""
    return f"{run_key}_quality"


def review_view(run_key: str) -> str:
    """Name of the saved view of a run's review sample."""
    return f"{run_key}-review"


def fixer_dir(dataset: fo.Dataset, *parts: str) -> str:
    """``<FiftyOne dataset dir>/fixer/<dataset id>/<parts>``: where FIXER
    writes the dataset's files."""
    return os.path.join(
        fo.config.default_dataset_dir, "fixer", str(dataset._doc.id), *parts
    )


def orphaned_folders() -> list[str]:
    """FIXER folders (``fixer/<dataset id>``) of datasets that no longer
    exist and that no run of a live dataset (a clone) refers to, sorted."""
    root = os.path.join(fo.config.default_dataset_dir, "fixer")
    if not os.path.isdir(root):
        return []
    conn = fo.core.odm.get_db_conn()
    live = {str(i) for i in conn.datasets.distinct("_id")}
    used = {
        path
        for key in ("config.corrected_dir", "config.mask_dir")
        for path in conn.runs.distinct(key)
        if isinstance(path, str)
    }
    return sorted(
        folder
        for name in os.listdir(root)
        if name not in live
        and os.path.isdir(folder := os.path.join(root, name))
        and not any(p.startswith(folder + os.sep) for p in used)
    )


def delete_orphaned_files() -> list[str]:
    """Deletes the folders of :func:`orphaned_folders`; returns them."""
    folders = orphaned_folders()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    logger.info("Deleted %d FIXER folders of deleted datasets", len(folders))
    return folders


def owns_path(dataset: fo.Dataset, path: str) -> bool:
    """Whether FIXER may delete ``path`` for this dataset: it lies in the
    dataset's own FIXER folder and no other dataset's run refers to it.
    A clone copies its source's run records and samples, paths included:
    neither may delete files the other still uses."""
    root = os.path.realpath(fixer_dir(dataset))
    if not os.path.realpath(path).startswith(root + os.sep):
        return False
    others = fo.core.odm.get_db_conn().runs.count_documents(
        {
            "_dataset_id": {"$ne": dataset._doc.id},
            "$or": [
                {"config.corrected_dir": path},
                {"config.mask_dir": path},
            ],
        },
        limit=1,
    )
    return others == 0


def checkpoints_dir(dataset: fo.Dataset, run_key: str) -> str:
    """Where a run's fold models are kept unless the user picks a
    folder."""
    return run_dir(dataset, run_key, "checkpoints")


def run_dir(dataset: fo.Dataset, run_key: str, name: str) -> str:
    """``<FiftyOne dataset dir>/fixer/<dataset id>/<run key>/<name>``."""
    return fixer_dir(dataset, run_key, name)


def resolve_device(device: str) -> str:
    """Turns ``auto``/``cpu``/``cuda`` into a torch device string."""
    import torch

    if device not in DEVICES:
        raise LabelErrorInputError(
            f"device must be one of {DEVICES}, got {device!r}"
        )
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise LabelErrorInputError(
            "device 'cuda' was requested but torch sees no CUDA device"
        )
    return device


def is_fixer_run(dataset: fo.Dataset, run_key: str) -> bool:
    """Whether ``run_key`` names a FIXER run on the dataset."""
    if run_key not in dataset.list_runs():
        return False
    return dataset.get_run_info(run_key).config.method == METHOD


def output_conflicts(dataset: fo.Dataset, run_key: str) -> list[str]:
    """Fields and saved views that a run with this key would overwrite but
    that it does not own (saved views are compared by slug, as FiftyOne
    does)."""
    own_fields, own_views = set(), set()
    if is_fixer_run(dataset, run_key):
        config = dataset.get_run_info(run_key).config
        own_fields, own_views = set(config.fields), set(config.views)
    fields = [
        f"field '{name}'"
        for name in output_fields(run_key).values()
        if dataset.has_sample_field(name) and name not in own_fields
    ]
    slugs = {fou.to_slug(v) for v in output_views(run_key).values()}
    views = [
        f"saved view '{name}'"
        for name in dataset.list_saved_views()
        if name not in own_views and fou.to_slug(name) in slugs
    ]
    return fields + views


def fixer_output_fields(dataset: fo.Dataset) -> set[str]:
    """Fields written by the dataset's FIXER runs."""
    return {
        name
        for key in list_fixer_runs(dataset)
        for name in dataset.get_run_info(key).config.fields
    }


def list_fixer_runs(dataset: fo.Dataset) -> list[str]:
    """Keys of the FIXER runs on the dataset."""
    return [k for k in dataset.list_runs() if is_fixer_run(dataset, k)]


def run_find_label_errors(
    view: fo.core.collections.SampleCollection,
    params: FindParams,
    ranks: Ranks | None = None,
) -> Iterator[Progress]:
    """Finds label errors in ``view`` and writes them to its dataset.

    Yields progress updates; the summary is stored in the run results.
    Holds the run key's lock, and the ground truth's shared lock so that
    no apply or undo changes the labels between the two passes. With
    ``ranks`` (see ``_distributed``) this process is one rank of a
    data-parallel run, every rank calling this with the same arguments;
    rank 0 holds the locks.
    """
    ranks = ranks or Ranks()
    check_key(params.run_key)
    dataset = view._dataset
    operation = f"find_label_errors run '{params.run_key}'"
    with naming_database(), contextlib.ExitStack() as locks:
        with ranks.stage():
            if ranks.is_lead:
                locks.enter_context(
                    exclusive(dataset, run_resource(params.run_key), operation)
                )
                locks.enter_context(
                    shared(
                        dataset, labels_resource(params.gt_field), operation
                    )
                )
        with limited_threads(
            params.num_threads, local_ranks=ranks.local_ranks
        ):
            yield from _find_label_errors(view, params, ranks)


def _find_label_errors(
    view: fo.core.collections.SampleCollection,
    params: FindParams,
    ranks: Ranks,
) -> Iterator[Progress]:
    # Algorithm
    # ---------
    # 1. Validate fields, mask targets and the run key; nothing is written
    #    if this fails.
    # 2. Pass 1 streams (mask, probabilities) batches into the finder's
    #    class statistics. Every file is read and checked here, so a bad
    #    sample stops the run before anything is written.
    # 3. The new run is registered under a pending key (``<key>_pending``)
    #    with every field it will write, so it can be deleted even if
    #    interrupted; the previous run with this key is kept meanwhile.
    # 4. Pass 2 streams the batches again (kept in memory from pass 1
    #    when they fit ``_kept``'s budget, else read again); each sample
    #    gets its patches, error score and corrected mask as soon as its
    #    batch is scored (one bulk write per batch). Once the runs of
    #    repeats are known, the corrected masks take back the runs' first
    #    patches that the runs' shared probabilities no longer correct
    #    (``HeldCorrections``).
    # 5. Patches are tagged with their specific issue; the previous run is
    #    deleted and the pending fields and run renamed to the key; the
    #    issue views are saved and the summary stored as the run results.
    #
    # Over several ranks, each rank reads a contiguous shard of the
    # samples in both passes. Pass 1's statistics are summed over the
    # ranks before pass 2; rank 0 registers the pending run (3), each rank
    # writes its own samples (4). Runs of repeats that cross a shard's
    # edge are joined (``join_shards``): each rank writes again its first
    # images whose patches continue the previous shard's runs and takes
    # back its own corrections with the joined runs. Rank 0
    # sums the ranks' tallies into the summary, each rank tags a share of
    # the patches with their issues
    # and reasons (the confusion counts summed over the ranks), and rank 0
    # finishes (5). Each stage ends with the ranks agreeing that none
    # failed (``Ranks.stage``).
    logger.info("Finding label errors...")
    dataset = view._dataset
    with ranks.stage():
        class_names = _validate(view, params)
        device = resolve_device(params.device)
    ignore = tuple(params.ignore_values)
    num_samples = len(view)
    start, stop = ranks.shard(num_samples)
    stages = _Stages(
        stop - start, trains=params.probs_source == "cross_validation"
    )
    # rank 0 orders all the samples, before every rank takes its shard
    with ranks.stage():
        order = None
        if ranks.is_lead:
            order = yield from _view_order_ids(view, stages)
        order = ranks.from_lead(order)
    views_ordered = order is not None
    if views_ordered:
        logger.info("Scoring the samples in the order of their views")
        view = view.select(order, ordered=True)
    shard = view
    if ranks.world_size > 1:
        shard = view.skip(start).limit(stop - start)
    with ranks.stage():
        source = yield from _build_source(
            view, params, class_names, device, stages, ranks
        )
    finder = LabelErrorFinder(
        class_names,
        ignore_index=ignore,
        logits=params.logits and params.probs_source == "stored",
        config=params.config,
        device=device,
    )
    samples = shard.select_fields(
        [f for f in (params.gt_field, params.probs_field) if f]
    )

    values = _MaskValues(dataset, params.gt_field, len(class_names), ignore)
    kept = KeptBatches(
        keep_budget(ranks.local_ranks)
        if params.keep_bytes is None
        else params.keep_bytes
    )
    with ranks.stage():
        for batch in batches(
            samples, params.gt_field, source, params.batch_size, start
        ):
            check_database()
            values.check(batch)
            with naming_sample(batch, source.where):
                finder.update(batch.labels, batch.pred_probs)
            kept.add(batch)
            yield stages.advance(
                "Estimating class statistics", len(batch.samples)
            )
    values.scored = sum(ranks.gather(values.scored))
    values.check_scored(len(view))
    if ranks.world_size > 1:
        finder.reduce_statistics(ranks.all_reduce)
    statistics = finder.statistics
    weak_note = weakly_predicted_note(finder.weakly_predicted)
    if weak_note:
        logger.warning(weak_note)

    pending = pending_key(params.run_key)
    fields = output_fields(pending)
    corrected_dir = None
    with ranks.stage():
        if ranks.is_lead:
            with schema_change(dataset):
                _delete_pending(dataset, params.run_key)  # a killed rerun's
                corrected_dir = _corrected_dir(view, params)
                dataset.register_run(
                    pending,
                    dataset.init_run(
                        method=METHOD,
                        **_describe(params),
                        device=device,
                        finder=params.config.to_dict(),
                        class_names=list(class_names),
                        fields=list(fields.values()),
                        views=[],
                        corrected_dir=corrected_dir,
                        views_ordered=views_ordered,
                        pending_for=params.run_key,
                    ),
                )
                _declare_fields(dataset, fields, params.save_probs_field)
    if ranks.world_size > 1:
        corrected_dir = ranks.from_lead(corrected_dir)
        if not ranks.is_lead:
            dataset.reload()  # the fields rank 0 declared

    if kept.complete:
        second = kept.replay()
    else:
        second = batches(
            samples, params.gt_field, source, params.batch_size, start
        )
    values_of = functools.partial(
        _sample_values,
        class_names=class_names,
        fields=fields,
        corrected_dir=corrected_dir,
        correct_min_probability=params.config.correct_min_probability,
    )
    # the shard's first images: their runs may continue the previous
    # shard's
    first_images: list[_ScoredImage] = []
    held = HeldCorrections(
        params.config.correct_min_probability,
        params.config.repeat_window,
        start + params.config.repeat_window if start > 0 else None,
    )
    with ranks.stage():
        preceding, after = _around_shard(
            view, params.gt_field, start, stop, num_samples
        )
        for (batch, signatures), following in _with_following(
            _signed(second), after
        ):
            check_database()
            with naming_sample(batch, source.where):
                found = finder.find(
                    batch.labels,
                    batch.pred_probs,
                    image_indices=batch.indices,
                    following=following.label,
                    preceding=preceding.label,
                    signatures=signatures,
                    following_signature=following.signature,
                    preceding_signature=preceding.signature,
                )
            preceding = _Frame(None, None)
            images = [
                _ScoredImage(sample.id, index, mask, patches)
                for sample, index, mask, patches in zip(
                    batch.samples,
                    batch.indices,
                    batch.masks,
                    found,
                    strict=True,
                )
            ]
            first_images += [
                image
                for image in images
                if image.index < start + params.config.repeat_window
            ]
            for image in images:
                held.hold(image.sample_id, image.index, image.patches, finder)
            values = [
                values_of(
                    image.sample_id,
                    image.mask,
                    image.patches,
                    shift=finder.shift_of(image.index),
                )
                for image in images
            ]
            saved = _save_probs(batch, params)
            if saved:
                for sample_values, path in zip(values, saved, strict=True):
                    sample_values[params.save_probs_field] = path
            write_sample_fields(dataset, [s.id for s in batch.samples], values)
            yield stages.advance("Finding errors", len(batch.samples))

    findings = ranks.gather(finder.findings())
    joined = join_shards([f["runs"] for f in findings])
    if joined.changed and ranks.is_lead:
        logger.warning(
            "%d run(s) that began with a change of the label cross the "
            "ranks' shards' edges: past an edge, their frames were scored "
            "as those of a model's habit, which the neighbouring frames "
            "may vouch for; one process would report and correct them "
            "(docs/distributed.md)",
            len(joined.changed),
        )
    with ranks.stage():
        _write_continued_runs(dataset, first_images, joined, values_of, finder)
        write_taken_back(
            dataset,
            held.taken_back(joined),
            params.gt_field,
            fields["corrected"],
            finder,
        )
        write_continued_corrections(
            dataset, held.continued(joined, finder), fields["corrected"]
        )
    summary = None
    if ranks.is_lead:
        finder.merge_findings(findings[1:])
        summary = finder.summary()
    summary = ranks.from_lead(summary)
    # Each rank tags and explains its share of the written patches
    with ranks.stage():
        targets = _written_share(dataset, fields["patches"], ranks)
        written = read_patches(targets, fields["patches"])
    runs = {run_key(run): n for run, n in joined.run_lengths.items()}
    continued = {run_key(a): run_key(b) for a, b in joined.runs.items()}
    changed = written.changed_runs(continued)
    changed |= {run_key(run) for run in joined.changed}
    pairs = None
    if ranks.world_size > 1:
        pairs = sum(ranks.gather(written.pair_counts()), Counter())
        changed = set().union(*ranks.gather(changed))
    written.continue_runs(continued, changed)
    with ranks.stage():
        _explain(
            dataset,
            fields["patches"],
            written,
            summary,
            class_names,
            pairs,
            runs,
            continued,
        )
    with ranks.stage():
        if ranks.is_lead:
            _finish(dataset, params, summary, statistics)
    yield Progress("Done", 1.0)


def _view_order_ids(view, stages: _Stages):
    """The samples' ids with near-duplicate views next to each other
    (``fixer_core.ordering.view_order``), where more images then lie
    between near-duplicate neighbours than in the view's own order (a
    video's frames stored out of time order); ``None`` to keep the view's
    order. Reads each image at a quarter of its size; yields progress."""
    if len(view) > MAX_ORDERED_IMAGES:
        return None
    ids, paths = view.values(["id", "filepath"])
    signatures = []
    for start in range(0, len(paths), _SIGNATURE_BATCH):
        chunk = paths[start : start + _SIGNATURE_BATCH]
        signatures += [file_signature(path) for path in chunk]
        yield stages.advance(
            "Reading the images' views", len(chunk), len(paths)
        )
    order = view_order(signatures)
    return None if order is None else [ids[i] for i in order]


class _Frame(NamedTuple):
    """The image next to a batch: its label and its signature
    (``neighbours.file_signature``), ``None`` where unknown."""

    label: np.ndarray | None
    signature: np.ndarray | None


_SignedBatch = tuple[Batch, list[np.ndarray | None]]


def _signed(stream: Iterable[Batch]) -> Iterator[_SignedBatch]:
    """Each batch with its images' signatures, each file read once."""
    for batch in stream:
        yield batch, [file_signature(s.filepath) for s in batch.samples]


def _with_following(
    stream: Iterable[_SignedBatch], after: _Frame
) -> Iterator[tuple[_SignedBatch, _Frame]]:
    """Each batch with the image after it (``after`` after the last): its
    last image's next frame, for ``LabelErrorFinder.find``. One batch is
    read ahead."""
    held = None
    for batch, signatures in stream:
        if held is not None:
            yield held, _Frame(batch.labels[0], signatures[0])
        held = batch, signatures
    if held is not None:
        yield held, after


class _ScoredImage(NamedTuple):
    """An image as pass 2 scored it."""

    sample_id: str
    index: int
    mask: np.ndarray
    patches: list[Patch]


def _write_continued_runs(
    dataset: fo.Dataset,
    first_images: list[_ScoredImage],
    joined: JoinedRuns,
    values_of: Callable[..., dict],
    finder: LabelErrorFinder,
) -> None:
    """Writes again the shard's first images whose patches begin runs
    that continue the previous shard's (see
    ``fixer_core.repeats.join_shards``): those patches continue the
    earlier run, which their corrected masks leave to the reviewer unless
    it began with a change of the label (``HeldCorrections.continued``
    has the later images). ``values_of`` gives an image's fields (see
    ``_sample_values``)."""
    continued = [
        image
        for image in first_images
        if any(p.run in joined.runs for p in image.patches)
    ]
    values = [
        values_of(
            image.sample_id,
            image.mask,
            continue_runs(image.patches, joined),
            shift=finder.shift_of(image.index),
        )
        for image in continued
    ]
    write_sample_fields(dataset, [i.sample_id for i in continued], values)


def _around_shard(
    view, gt_field: str, start: int, stop: int, size: int
) -> tuple[_Frame, _Frame]:
    """The images just before and after a rank's shard ``[start, stop)``
    of ``view`` (of ``size`` samples; unknown at its ends): its first and
    last images' neighbouring frames, as a single process sees them."""

    def frame(index: int) -> _Frame:
        if not 0 <= index < size:
            return _Frame(None, None)
        sample = view.skip(index).limit(1).select_fields(gt_field).first()
        label = stack_labels([load_mask(sample, gt_field)])[0]
        return _Frame(label, file_signature(sample.filepath))

    return frame(start - 1), frame(stop)


def _written_share(dataset: fo.Dataset, patches_field: str, ranks: Ranks):
    """This rank's share (by position, as ``Ranks.shard`` splits) of the
    samples the run wrote its pending patches to: the target's samples,
    with every field (a target view may leave out the outputs; selecting
    their ids would not scale to millions of samples)."""
    written = dataset.exists(patches_field)
    if ranks.world_size == 1:
        return written
    start, stop = ranks.shard(len(written))
    # in id order, so that the ranks' shares neither overlap nor miss one
    return written.sort_by("id").skip(start).limit(stop - start)


def _finish(
    dataset: fo.Dataset, params: FindParams, summary, statistics
) -> None:
    """Step 5, once the patches are tagged: swaps the run in, saves views
    and results."""
    with schema_change(dataset):
        fields = _swap_in(dataset, params.run_key)
        _save_views(dataset, fields, output_views(params.run_key))
        results = dataset.init_run_results(
            params.run_key,
            summary=summary.to_dict(),
            statistics=statistics.to_dict(),
        )
        dataset.save_run_results(params.run_key, results)
    logger.info("Label errors written to '%s'", fields["patches"])


def pending_key(run_key: str) -> str:
    """Key under which a run writes until it is complete; the previous
    run with ``run_key`` is kept until then."""
    return f"{run_key}_pending"


def _delete_pending(dataset: fo.Dataset, run_key: str) -> None:
    """Deletes what a killed run with this key left under its pending
    key."""
    if _is_pending(dataset, run_key):
        delete_run(dataset, pending_key(run_key), keep_checkpoints=True)


def _is_pending(dataset: fo.Dataset, run_key: str) -> bool:
    """Whether the pending key of ``run_key`` holds a run of that key."""
    pending = pending_key(run_key)
    return (
        is_fixer_run(dataset, pending)
        and getattr(dataset.get_run_info(pending).config, "pending_for", None)
        == run_key
    )


def _swap_in(dataset: fo.Dataset, run_key: str) -> dict[str, str]:
    """Replaces the previous run with the complete pending one: deletes
    the previous run, renames the pending fields and run. Returns the
    final field names."""
    delete_run(dataset, run_key, keep_checkpoints=True)
    pending = pending_key(run_key)
    fields = output_fields(run_key)
    # one rename for all: each rename reloads the dataset
    dataset.rename_sample_fields(
        {name: fields[kind] for kind, name in output_fields(pending).items()}
    )
    dataset.rename_run(pending, run_key)
    config = dataset.get_run_info(run_key).config
    config.fields = list(fields.values())
    config.views = list(output_views(run_key).values())
    config.pending_for = None
    dataset.update_run_config(run_key, config)
    return fields


class _Stages:
    """Turns per-stage counts into one overall progress fraction."""

    def __init__(self, num_samples: int, *, trains: bool) -> None:
        self.num_samples = num_samples
        weights = {"Training": 0.7} if trains else {}
        rest = 1.0 - sum(weights.values())
        weights["Reading the images' views"] = rest / 10
        weights["Estimating class statistics"] = rest * 0.45
        weights["Finding errors"] = rest * 0.45
        self._start, start = {}, 0.0
        for name, weight in weights.items():
            self._start[name] = (start, weight)
            start += weight
        self._done: dict[str, int] = {}
        self._clock: dict[str, float] = {}
        self._last = time.monotonic()

    def advance(
        self, stage: str, count: int, total: int | None = None
    ) -> Progress:
        """Records ``count`` more samples of a pass over ``total`` samples
        (default: this rank's)."""
        total = self.num_samples if total is None else total
        now = time.monotonic()
        self._clock.setdefault(stage, self._last)  # a stage starts when
        self._last = now  # the previous update ended
        done = self._done[stage] = self._done.get(stage, 0) + count
        start, weight = self._start[stage]
        rate = done / max(now - self._clock[stage], 1e-9)
        return Progress(
            f"{stage}: {done} of {total} samples, {rate:.1f} samples/s",
            start + weight * done / max(total, 1),
        )

    def training(self, update) -> Progress:
        """Converts a trainer progress update."""
        self._last = time.monotonic()
        start, weight = self._start["Training"]
        folds_done = update.fold + update.epoch / update.epochs
        return Progress(
            f"Training {update.label}",
            start + weight * folds_done / update.folds,
        )


def _build_source(
    view, params: FindParams, class_names, device, stages, ranks: Ranks
):
    """Returns the run's probability source (a generator: training yields
    progress). Over several ranks, fold ``k`` is trained by rank ``k mod
    ranks``; every rank then predicts its shard with all the fold models
    (the checkpoint folder must be shared by the ranks' machines)."""
    if params.probs_source == "stored":
        return StoredProbabilities(params.probs_field)
    if params.probs_source == "model":
        return build_model_source(params.model, len(class_names), device)
    spec = params.training or TrainingSpec()
    checkpoint_dir = spec.checkpoint_dir or checkpoints_dir(
        view._dataset, params.run_key
    )

    def new_trainer():
        return fold_trainer(
            view,
            params.gt_field,
            spec,
            len(class_names),
            tuple(params.ignore_values),
            checkpoint_dir,
            device,
        )

    trainer = None
    with ranks.stage():  # rank 0 readies the folder, then the others
        if ranks.is_lead:
            tie_to_labels(
                checkpoint_dir,
                view,
                params.gt_field,
                owned=spec.checkpoint_dir is None,
            )
            trainer = new_trainer()
    with ranks.stage():
        if not ranks.is_lead:
            trainer = new_trainer()
    folds = range(ranks.rank, spec.config.folds, ranks.world_size)
    with ranks.stage():  # every fold is trained before any is used
        training = train_fold_models(trainer, folds)
        source = None
        while source is None:
            try:
                update = next(training)
            except StopIteration as stop:
                source = stop.value
            else:
                yield stages.training(update)
    return source


def _describe(params: FindParams) -> dict:
    """The run's parameters as the run record stores them."""
    out = {
        "gt_field": params.gt_field,
        "probs_source": params.probs_source,
        "probs_field": params.probs_field,
        "ignore_values": list(params.ignore_values),
        "logits": params.logits,
        "batch_size": params.batch_size,
    }
    if params.model is not None:
        out["model"] = params.model.to_dict()
    if params.probs_source == "cross_validation":
        out["training"] = (params.training or TrainingSpec()).to_dict()
    if params.save_probs_field:
        out["save_probs_field"] = params.save_probs_field
        out["save_probs_dir"] = params.save_probs_dir
    return out


def _save_probs(batch, params: FindParams) -> list[str] | None:
    if not params.save_probs_field or params.probs_source == "stored":
        return None
    return save_probabilities(
        batch.samples, batch.pred_probs, params.save_probs_dir
    )


def load_run_summary(dataset: fo.Dataset, run_key: str) -> dict:
    """Returns the stored summary of a finished FIXER run."""
    return stored_results(dataset, run_key)["summary"]


def stored_results(dataset: fo.Dataset, run_key: str) -> dict:
    """Returns everything stored in a finished FIXER run's results."""
    if not is_fixer_run(dataset, run_key):
        raise LabelErrorInputError(
            f"Dataset '{dataset.name}' has no FIXER run '{run_key}'"
        )
    results = dataset.load_run_results(run_key, cache=False)
    if results is None:
        raise LabelErrorInputError(
            f"FIXER run '{run_key}' of dataset '{dataset.name}' did not "
            "finish; run it again"
        )
    return {a: getattr(results, a) for a in results.attributes() if a != "cls"}


def update_run_results(dataset: fo.Dataset, run_key: str, **values) -> None:
    """Adds or replaces entries of a finished FIXER run's results."""
    stored = stored_results(dataset, run_key)
    stored.update(values)
    dataset.save_run_results(
        run_key, dataset.init_run_results(run_key, **stored), cache=False
    )


def delete_run(
    dataset: fo.Dataset, run_key: str, *, keep_checkpoints: bool = False
) -> bool:
    """Deletes a FIXER run and every field, view and file it wrote (fold
    models in the default folder too, unless ``keep_checkpoints``: a
    rerun keeps those it can reuse).

    Returns whether there was such a run. The ground truth is untouched.
    Values of a field whose declaration was lost are removed too, so that
    the samples load again.
    """
    with schema_change(dataset):
        deleted = _delete_run(dataset, run_key)
    checkpoints = checkpoints_dir(dataset, run_key)
    if deleted and not keep_checkpoints and owns_path(dataset, checkpoints):
        shutil.rmtree(checkpoints, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(fixer_dir(dataset, run_key))
    return deleted


def _delete_run(dataset: fo.Dataset, run_key: str) -> bool:
    if run_key not in dataset.list_runs():
        return False
    config = dataset.get_run_info(run_key).config
    if config.method != METHOD:
        raise LabelErrorInputError(
            f"Run '{run_key}' of dataset '{dataset.name}' was not written by "
            "FIXER; choose another run key"
        )
    _delete_report_and_review(dataset, run_key)
    _uncolor_patches(dataset, run_key)
    for name in config.views:
        if dataset.has_saved_view(name):
            dataset.delete_saved_view(name)
    for name in config.fields:
        if dataset.has_sample_field(name):
            dataset.delete_sample_field(name)
        else:  # undeclared values make every sample load fail
            dataset._sample_collection.update_many(
                {name: {"$exists": True}}, {"$unset": {name: ""}}
            )
    if config.corrected_dir and owns_path(dataset, config.corrected_dir):
        shutil.rmtree(config.corrected_dir, ignore_errors=True)
        shutil.rmtree(error_maps_dir(config.corrected_dir), ignore_errors=True)
        with contextlib.suppress(OSError):  # kept if checkpoints live there
            os.rmdir(os.path.dirname(config.corrected_dir))
    dataset.delete_run(run_key)
    return True


def color_patches(dataset: fo.Dataset, run_key: str) -> None:
    """Gives the run's patches a colour of their own in the App (unless the
    dataset's colour scheme already sets one), so that they never share the
    ground truth's colour, and draws the corrected masks in the ground
    truth's class colours, if it has some. The App shows them from the next
    time the dataset is loaded."""
    fields = output_fields(run_key)
    gt = dataset.get_run_info(run_key).config.gt_field
    with schema_change(dataset):
        scheme = dataset.app_config.color_scheme or fo.ColorScheme()
        entries = {f.get("path"): f for f in scheme.fields or []}
        added = []
        if fields["patches"] not in entries:
            added.append(_patch_colors(fields["patches"]))
        colors = (entries.get(gt) or {}).get("maskTargetsColors")
        if colors and fields["corrected"] not in entries:
            added.append(
                {"path": fields["corrected"], "maskTargetsColors": colors}
            )
        if added:
            scheme.fields = list(scheme.fields or []) + added
            dataset.app_config.color_scheme = scheme
            dataset.save()


def _patch_colors(path: str) -> dict:
    """The patches' colour entry: one colour whether the App colours by
    field or by value (as it must to draw masks in class colours)."""
    return {
        "path": path,
        "fieldColor": PATCH_COLOR,
        "colorByAttribute": "error_type",
        "valueColors": [
            {"value": t, "color": PATCH_COLOR} for t in ERROR_TYPES
        ],
    }


def _uncolor_patches(dataset: fo.Dataset, run_key: str) -> None:
    """Removes the colours :func:`color_patches` set (a user's are kept)."""
    scheme = dataset.app_config.color_scheme
    if scheme is None or not scheme.fields:
        return
    fields = output_fields(run_key)
    ours = _patch_colors(fields["patches"])
    kept = [
        f
        for f in scheme.fields
        if dict(f) != ours
        and not (
            f.get("path") == fields["corrected"]
            and set(f) == {"path", "maskTargetsColors"}
        )
    ]
    if len(kept) != len(scheme.fields):
        scheme.fields = kept
        dataset.save()


def owns_quality_eval(dataset: fo.Dataset, run_key: str) -> bool:
    """Whether the run's quality evaluation key holds the run's report
    evaluation (scored against its corrected field)."""
    key = quality_eval_key(run_key)
    if key not in dataset.list_evaluations():
        return False
    config = dataset.get_evaluation_info(key).config
    return config.gt_field == output_fields(run_key)["corrected"]


def _delete_report_and_review(dataset: fo.Dataset, run_key: str) -> None:
    """Deletes the quality evaluation, report files and review view."""
    if owns_quality_eval(dataset, run_key):
        dataset.delete_evaluation(quality_eval_key(run_key))
    results = dataset.load_run_results(run_key, cache=False)
    if getattr(results, "review", None) and dataset.has_saved_view(
        review_view(run_key)
    ):
        dataset.delete_saved_view(review_view(run_key))
    remove_report_files(dataset, getattr(results, "quality", None))
    with contextlib.suppress(OSError):
        os.rmdir(fixer_dir(dataset, run_key))


def remove_report_files(dataset: fo.Dataset, quality: dict | None) -> None:
    """Removes the files of a stored label-quality report of this dataset
    (not of the dataset it was cloned from), and their folder when
    nothing else is left in it."""
    quality = quality or {}
    if quality.get("dataset_id", str(dataset._doc.id)) != str(dataset._doc.id):
        return
    folders = set()
    for path in (quality or {}).get("files", {}).values():
        with contextlib.suppress(OSError):
            os.remove(path)
        folders.add(os.path.dirname(path))
    for folder in folders:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


# -- writing -----------------------------------------------------------------


def _corrected_dir(view, params: FindParams) -> str | None:
    """Folder for corrected masks when the ground truth lives on disk."""
    # only the ground truth is loaded: the sample may hold earlier runs'
    # patches
    first = view.select_fields(params.gt_field).first()
    if first[params.gt_field].mask_path is None:
        return None
    # A folder of its own: the previous run's masks stay until the swap
    name = f"corrected-{uuid.uuid4().hex[:8]}"
    path = run_dir(view._dataset, params.run_key, name)
    os.makedirs(path, exist_ok=True)
    return path


def _declare_fields(
    dataset: fo.Dataset, fields: dict[str, str], save_probs_field: str | None
) -> None:
    """Declares every field pass 2 writes up front, under the schema lock
    (a field declared while samples are saved would change the schema
    outside it), with the patches' custom attributes, so that the App can
    filter on them. One schema merge per nesting level: each
    ``add_sample_field`` call would reload the dataset. Declaring what is
    declared changes nothing (another type raises)."""
    embedded = fof.EmbeddedDocumentField
    schema = {}
    if save_probs_field and not dataset.has_sample_field(save_probs_field):
        schema[save_probs_field] = fof.StringField()
    schema[fields["patches"]] = embedded(fo.Detections)
    schema[fields["score"]] = fof.FloatField()
    schema[fields["corrected"]] = embedded(fo.Segmentation)
    schema[fields["error_map"]] = embedded(fo.Heatmap)
    schema.update(detection_attribute_schema(fields["patches"]))
    dataset.add_dynamic_sample_fields(schema)


def _sample_values(
    sample_id: str,
    mask: np.ndarray,
    patches: list[Patch],
    class_names: list[str],
    fields: dict[str, str],
    corrected_dir: str | None,
    correct_min_probability: float,
    shift: LabelShift | None,
) -> dict:
    """A sample's pass-2 fields as stored documents: its patches, error
    score, error map and corrected mask (written to ``corrected_dir``
    when the run keeps masks on disk)."""
    heatmap = error_heatmap(sample_id, mask.shape, patches, corrected_dir)
    corrected = apply_patches(
        mask,
        patches,
        min_probability=correct_min_probability,
        skip_repeats=True,
        shift=shift,
    )
    if corrected_dir is None:
        segmentation = fo.Segmentation(mask=corrected)
    else:
        path = os.path.join(corrected_dir, f"{sample_id}.png")
        if not cv2.imwrite(path, corrected):
            raise OSError(f"Could not write corrected mask {path}")
        segmentation = fo.Segmentation(mask_path=path)
    return {
        fields["patches"]: detections_document(patches, class_names),
        fields["score"]: image_error_score(patches),
        fields["error_map"]: label_document(heatmap),
        fields["corrected"]: label_document(segmentation),
    }


def _explain(
    dataset: fo.Dataset,
    patches_field: str,
    written: WrittenPatches,
    summary,
    class_names: list[str],
    pair_counts: Counter | None,
    run_lengths: dict[str, int],
    continued: dict[str, str],
) -> None:
    """Sets each written patch's ``issue`` (from the run's issues),
    ``same_confusion`` and ``reason`` (see ``explain_patches``), and the
    final ``confidence``, ``error_probability``, ``run_length``, ``run``
    and ``repeat`` of the patches of runs of repeats
    (``fixer_core.discount_runs``; ``run_lengths``: the images each run
    spans, over all ranks; ``continued``: the runs begun in a rank's shard
    that continue an earlier shard's, as stored; ``written`` knows which
    began with a change of the label, see
    ``WrittenPatches.continue_runs``), by position in two bulk writes:
    ``issue`` and ``same_confusion`` (with the runs' fields, which exist
    already), then ``reason`` (MongoDB adds one update's new fields in
    name order; this keeps them in the order they always had)."""
    index = {name: k for k, name in enumerate(class_names)}

    def issue_of(row: dict) -> str | None:
        return summary.issue_named(
            index[row["given_label"]],
            index[row["suggested_label"]],
            row["error_type"],
            row["cause"],
        )

    lengths = {
        **run_lengths,
        **{run: run_lengths[joined] for run, joined in continued.items()},
    }
    explained = explain_patches(written, issue_of, lengths, pair_counts)
    kept = [k for k, e in enumerate(explained) if e]
    ids = [written.ids[k] for k in kept]
    prefix = f"{patches_field}.detections"
    first, second = [], []
    for k in kept:
        values, reasons = {}, {}
        for j, (issue, others, reason, run_length) in enumerate(explained[k]):
            values[f"{prefix}.{j}.issue"] = issue
            values[f"{prefix}.{j}.same_confusion"] = others
            reasons[f"{prefix}.{j}.reason"] = reason
            row = written.rows[k][j]
            if run_length > 1:
                if not row["changed_run"]:
                    for name in ("confidence", "error_probability"):
                        values[f"{prefix}.{j}.{name}"] = run_score(
                            row[name], run_length
                        )
                values[f"{prefix}.{j}.run_length"] = run_length
            if row["run"] in continued:
                values[f"{prefix}.{j}.run"] = continued[row["run"]]
                values[f"{prefix}.{j}.repeat"] = row["repeat"]
        first.append(values)
        second.append(reasons)
    write_sample_fields(dataset, ids, first)
    write_sample_fields(dataset, ids, second)


def _save_views(
    dataset: fo.Dataset, fields: dict[str, str], views: dict[str, str]
) -> None:
    patches = fields["patches"]
    for error_type in ERROR_TYPES:
        view = dataset.filter_labels(
            patches, F("error_type") == error_type
        ).sort_by(
            F(f"{patches}.detections")
            .filter(F("repeat") != True)  # noqa: E712
            .map(F("confidence"))
            .max(),
            reverse=True,
        )
        dataset.save_view(
            views[error_type],
            view,
            description=f"FIXER: {error_type.replace('_', ' ')} patches, "
            "samples sorted by their best patch score (repeats of the "
            "previous image's patches aside)",
            overwrite=True,
        )
    dataset.save_view(
        views["all"],
        dataset.to_patches(patches).sort_by(
            [(f"{patches}.repeat", 1), (f"{patches}.confidence", -1)]
        ),
        description="FIXER: every patch, highest score first; patches that "
        "repeat one of the previous image come last",
        overwrite=True,
    )


# -- validation --------------------------------------------------------------


def _validate(view, params: FindParams) -> list[str]:
    dataset = view._dataset
    check_key(params.run_key)
    _check_target(view, params)
    if params.run_key in dataset.list_runs() and not is_fixer_run(
        dataset, params.run_key
    ):
        raise LabelErrorInputError(
            f"Run key '{params.run_key}' is already used by another kind of "
            "run; choose another"
        )
    taken = output_conflicts(dataset, params.run_key)
    pending = pending_key(params.run_key)
    if pending in dataset.list_runs() and not _is_pending(
        dataset, params.run_key
    ):
        taken.append(f"run '{pending}'")
    elif pending not in dataset.list_runs():
        taken += [
            f"field '{name}'"
            for name in output_fields(pending).values()
            if dataset.has_sample_field(name)
        ]
    if taken:
        raise LabelErrorInputError(
            f"Run key '{params.run_key}' would replace {', '.join(taken)} "
            "of the dataset; choose another"
        )
    if params.batch_size < 1:
        raise LabelErrorInputError(
            f"batch_size must be positive, got {params.batch_size}"
        )
    if len(view) == 0:
        raise LabelErrorInputError("The target view holds no samples")
    if params.probs_source not in SOURCES:
        raise LabelErrorInputError(
            f"probs_source must be one of {SOURCES}, got "
            f"{params.probs_source!r}"
        )
    schema = dataset.get_field_schema()
    _check_field(dataset, schema, params.gt_field, fo.Segmentation)
    if params.probs_source == "stored":
        if not params.probs_field:
            raise LabelErrorInputError(
                "probs_field is needed when probabilities are stored"
            )
        _check_field(dataset, schema, params.probs_field, None)
    elif params.probs_source == "model" and params.model is None:
        raise LabelErrorInputError(
            "A model (TorchScript file or package.module:factory) is "
            "needed when probabilities come from a model"
        )
    _check_save_field(dataset, schema, params)
    for name in output_fields(params.run_key).values():
        if name in (params.gt_field, params.probs_field):
            raise LabelErrorInputError(
                f"Run key '{params.run_key}' would overwrite input field "
                f"'{name}'; choose another"
            )
    targets = integer_mask_targets(dataset, params.gt_field)
    if params.probs_source != "stored":
        # Classes are the mask values 0, 1, ... that the targets name; a
        # value past the first gap (such as 255) is not a class.
        num_classes = 0
        while (
            num_classes in targets and num_classes not in params.ignore_values
        ):
            num_classes += 1
        if num_classes < 2:
            raise LabelErrorInputError(
                f"The mask targets of '{params.gt_field}' must name classes "
                "0, 1, ... (at least two) to train or run a model"
            )
        return [str(targets[k]) for k in range(num_classes)]
    first = view.select_fields(params.probs_field).first()
    num_classes = load_probs(first, params.probs_field).shape[0]
    missing = [k for k in range(num_classes) if k not in targets]
    if missing:
        raise LabelErrorInputError(
            f"Probabilities of sample {describe(first)} (field "
            f"'{params.probs_field}') have {num_classes} channels but the "
            f"mask targets of '{params.gt_field}' name no class for "
            f"value(s) {missing[:10]}"
        )
    return [str(targets[k]) for k in range(num_classes)]


class _MaskValues:
    """Checks pass 1's masks: every value is named by the mask targets
    (or ignored), and some pixel is scored at all."""

    def __init__(self, dataset, gt_field: str, num_classes: int, ignore):
        self.gt_field = gt_field
        self.num_classes = num_classes
        self.ignore = np.array(sorted(ignore), dtype=np.int64)
        targets = integer_mask_targets(dataset, gt_field)
        self.allowed = np.array(sorted(set(targets) | set(ignore)))
        self.scored = 0

    def check(self, batch) -> None:
        """Raises, naming the sample, on a value nobody named."""
        values, counts = _value_counts(batch.labels)
        if not np.isin(values, self.allowed).all():
            unnamed = ~np.isin(batch.labels, self.allowed)
            i = int(unnamed.any(axis=(1, 2)).argmax())
            found = np.unique(batch.labels[i][unnamed[i]])
            raise LabelErrorInputError(
                f"Mask of sample {describe(batch.samples[i])} (field "
                f"'{self.gt_field}') holds value(s) {found[:10].tolist()} "
                f"that the mask targets of '{self.gt_field}' do not name; "
                "name them in the mask targets or list them in "
                "ignore_values"
            )
        scored = (
            (values < self.num_classes)
            & (values >= 0)
            & ~np.isin(values, self.ignore)
        )
        self.scored += int(counts[scored].sum())

    def check_scored(self, num_samples: int) -> None:
        """Raises when every pixel was void or ignored."""
        if self.scored == 0:
            raise LabelErrorInputError(
                f"Nothing to score: every pixel of the {num_samples} target "
                f"samples' '{self.gt_field}' masks is void or ignored (no "
                f"value below {self.num_classes} outside ignore_values)"
            )


def _value_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of an integer array and their counts: one
    bincount for the usual mask values (many times faster than
    ``np.isin`` over every pixel)."""
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= 1 << 16:
        return np.unique(labels, return_counts=True)
    counts = np.bincount(labels.ravel(), minlength=high + 1)
    values = np.flatnonzero(counts)
    return values, counts[values]


def _check_target(view, params: FindParams) -> None:
    """Refuses, before anything is written, a target the run cannot work
    on: grouped or generated (patches, frames) collections, a view that
    leaves out an input field, or one built on the run's own outputs
    (the run deletes them first)."""
    if view.media_type == "group" or view._dataset.media_type == "group":
        raise LabelErrorInputError(
            f"Dataset '{view._root_dataset.name}' is grouped; FIXER works on "
            "image datasets (clone the image slice into a dataset of its "
            "own: dataset.select_group_slices('left').clone())"
        )
    if view._dataset is not view._root_dataset:
        raise LabelErrorInputError(
            "The target view is a patches, frames or clips view; target "
            "the images themselves"
        )
    schema = view.get_field_schema()
    for name in (params.gt_field, params.probs_field):
        if name and name not in schema and view._dataset.has_field(name):
            raise LabelErrorInputError(
                f"The target view leaves out field '{name}' that the run "
                "reads; include it in the view"
            )
    own = [*output_fields(params.run_key).values()]
    own += [
        *output_views(params.run_key).values(),
        review_view(params.run_key),
    ]
    stages = (
        json.dumps(view._serialize())
        if isinstance(view, fo.DatasetView)
        else ""
    )
    used = [
        name
        for name in own
        if name == view.name
        or re.search(rf"(?<!\w){re.escape(name)}(?!\w)", stages)
    ]
    if used:
        raise LabelErrorInputError(
            f"The target view is built on {', '.join(used)}, which run "
            f"'{params.run_key}' replaces; target the dataset or another "
            "view, or choose another run key"
        )


def integer_mask_targets(dataset: fo.Dataset, gt_field: str) -> dict:
    """The ``{mask value: class name}`` of a segmentation field, which
    must have integer mask targets."""
    targets = dataset.mask_targets.get(gt_field, dataset.default_mask_targets)
    if not targets:
        raise LabelErrorInputError(
            f"Field '{gt_field}' has no mask targets: set "
            f"dataset.mask_targets['{gt_field}'] (or "
            "dataset.default_mask_targets) to {value: class name}"
        )
    if not all(isinstance(k, int) for k in targets):
        raise LabelErrorInputError(
            f"Field '{gt_field}' has RGB mask targets; FIXER needs integer "
            "class masks"
        )
    return targets


def _check_save_field(dataset, schema, params: FindParams) -> None:
    name = params.save_probs_field
    if not name:
        return
    if params.probs_source == "stored":
        raise LabelErrorInputError(
            "save_probs_field only applies to probabilities computed by a "
            "model or by cross-validation"
        )
    if not params.save_probs_dir:
        raise LabelErrorInputError("save_probs_field needs save_probs_dir")
    if name in schema and not isinstance(schema[name], fof.StringField):
        raise LabelErrorInputError(
            f"Field '{name}' exists and is not a string field; choose "
            "another save_probs_field"
        )


def _check_field(dataset, schema, name: str, label_type) -> None:
    if name not in schema:
        raise LabelErrorInputError(
            f"Dataset '{dataset.name}' has no field '{name}'"
        )
    f = schema[name]
    if label_type is None:
        if not isinstance(f, fof.StringField):
            raise LabelErrorInputError(
                f"Field '{name}' must be a string field holding paths of "
                f".npy/.npz probability files, found {type(f).__name__}"
            )
        return
    if not (
        isinstance(f, fof.EmbeddedDocumentField)
        and issubclass(f.document_type, label_type)
    ):
        found = getattr(f, "document_type", type(f)).__name__
        raise LabelErrorInputError(
            f"Field '{name}' must be a {label_type.__name__} field, found "
            f"{found}"
        )
