"""FIXER's Python API, in the manner of ``fiftyone.brain``: find label
errors on a dataset or view; list, load and delete the runs; report on
a run's labels, review its flags, apply and undo its corrections.

The package root re-exports it (``import fixer_fiftyone as fxf``), and
the operators call it: a run started here and one started in the App
are the same kind of run, with the same outputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Sequence
from datetime import datetime
from typing import TypeVar

import fiftyone as fo
import fiftyone.core.collections as foc
import fiftyone.core.utils as fou

from ..fixer_core import FinderConfig
from ..fixer_core.models import Preprocess
from ..fixer_core.training import TrainConfig
from . import _apply, _review
from ._apply import ApplyParams, new_apply_key, run_apply_corrections
from ._distributed import run_ranks
from ._locks import exclusive, run_resource
from ._params import call_params, find_params, find_workers
from ._pipeline import (
    Progress,
    color_patches,
    delete_run,
    is_fixer_run,
    list_fixer_runs,
    output_fields,
    output_views,
    run_find_label_errors,
    stored_results,
)
from ._quality import run_label_quality_report
from ._samples import LabelErrorInputError

ProgressArg = bool | Callable[[fou.ProgressBar], None] | None

# The stages the pipeline reports, as its progress labels spell them
_COUNTED = re.compile(
    r"^(?P<stage>\D+?):? (?P<done>\d+) of (?P<total>\d+) samples"
)
_TRAINING = re.compile(
    r"^Training fold (?P<fold>\d+)/(?P<folds>\d+), "
    r"epoch (?P<epoch>\d+)/(?P<epochs>\d+)"
)
_TITLES = {
    "Reading the images' views": "Reading the images (their order)",
    "Estimating class statistics": "Pass 1 of 2: estimating class statistics",
    "Finding errors": "Pass 2 of 2: finding label errors and writing them",
    "Applied": "Applying corrections",
}
T = TypeVar("T")


class LabelErrorResults:
    """A finished FIXER run: what it found and where it wrote it.

    Attributes:
        dataset: the dataset the run belongs to.
        run_key: the run's key.
        timestamp: when the run finished.
        config: the run's parameters, fields and views, as stored.
        summary: totals by error type, specific issues, expected errors,
            shifted labels and weakly predicted classes.
        statistics: the per-class statistics of pass 1.
        fields: the sample fields written, by kind (``patches``,
            ``score``, ``corrected``).
        views: the saved views written, by error type (and ``all``).
        quality: the label-quality report, once one was written.
        review: the review sample, once one was drawn.
    """

    def __init__(self, dataset: fo.Dataset, run_key: str) -> None:
        stored = stored_results(dataset, run_key)
        info = dataset.get_run_info(run_key)
        self.dataset = dataset
        self.run_key = run_key
        self.timestamp: datetime = info.timestamp
        self.config: dict = info.config.serialize()
        self.summary: dict = stored["summary"]
        self.statistics: dict = stored["statistics"]
        self.fields: dict[str, str] = output_fields(run_key)
        self.views: dict[str, str] = output_views(run_key)
        self.quality: dict | None = stored.get("quality")
        self.review: dict | None = stored.get("review")

    @property
    def gt_field(self) -> str:
        """The ground-truth field the run checked."""
        return self.config["gt_field"]

    @property
    def patches_field(self) -> str:
        """The ``fo.Detections`` field of the patches."""
        return self.fields["patches"]

    @property
    def score_field(self) -> str:
        """The per-sample error score field."""
        return self.fields["score"]

    @property
    def corrected_field(self) -> str:
        """The ``fo.Segmentation`` field of the corrected labels."""
        return self.fields["corrected"]

    @property
    def issues(self) -> list[dict]:
        """The specific issues, largest first."""
        return self.summary["issues"]

    def load_view(self, error_type: str = "all") -> fo.DatasetView:
        """Loads the saved view of one error type (``general``,
        ``ambiguous``, ``false_negative``) or of every patch (``all``)."""
        if error_type not in self.views:
            raise LabelErrorInputError(
                f"error_type must be one of {tuple(self.views)}, got "
                f"{error_type!r}"
            )
        return self.dataset.load_saved_view(self.views[error_type])

    def __repr__(self) -> str:
        totals = ", ".join(
            f"{t.get('patches', 0)} {kind}"
            for kind, t in self.summary["totals"].items()
        )
        return (
            f"<LabelErrorResults '{self.run_key}' of '{self.dataset.name}': "
            f"{totals} patches in {self.summary['num_images']} samples, "
            f"{len(self.issues)} specific issues>"
        )


def find_label_errors(
    samples: foc.SampleCollection,
    gt_field: str,
    probs_field: str | None = None,
    *,
    run_key: str = "fixer",
    probs_source: str = "stored",
    model: str | None = None,
    model_weights: str | None = None,
    preprocess: Preprocess | None = None,
    output_classes: Sequence[int] | None = None,
    outputs_logits: bool = True,
    training: TrainConfig | None = None,
    checkpoint_dir: str | None = None,
    architecture: str | None = None,
    ignore_values: Sequence[int] | None = None,
    save_probs_dir: str | None = None,
    save_probs_field: str | None = None,
    device: str = "auto",
    logits: bool = False,
    batch_size: int = 8,
    config: FinderConfig | None = None,
    workers: int = 1,
    num_threads: int | None = None,
    progress: ProgressArg = None,
) -> LabelErrorResults:
    """Finds pixel-wise label errors in a segmentation field and registers
    them as run ``run_key`` of the dataset.

    Writes ``<run_key>_patches`` (one ``fo.Detection`` per patch, with its
    suggested class, error type and score), ``<run_key>_error_score`` and
    ``<run_key>_corrected`` on the samples, and saved views
    ``<run_key>-general``, ``-ambiguous``, ``-false-negative`` and
    ``-patches``. A rerun with the same key replaces its own outputs;
    outputs of anything else are never overwritten. Bad input raises
    :class:`LabelErrorInputError`, naming the sample's file and the field,
    before anything is written.

    Args:
        samples: the dataset or view of images to search.
        gt_field: the ``fo.Segmentation`` ground truth (never modified);
            its mask targets (or the dataset's default ones) name the
            classes.
        probs_field: with ``probs_source="stored"``, the string field of
            per-sample ``.npy``/``.npz`` ``(K, H, W)`` probability files.
        run_key: names the run and prefixes its outputs.
        probs_source: ``"stored"``, ``"model"`` or ``"cross_validation"``.
        model: a TorchScript file or ``package.module:factory``.
        model_weights: a ``state_dict`` file for the model.
        preprocess: how images are fed to the model.
        output_classes: the mask value of each model output channel.
        outputs_logits: whether the model outputs logits.
        training: cross-validation settings (folds, epochs, ...).
        checkpoint_dir: where fold models are kept (default: under
            FiftyOne's dataset dir).
        architecture: ``package.module:factory(num_classes)`` for the
            fold models (default: a compact U-Net).
        ignore_values: mask values never scored.
        save_probs_dir: keep computed probabilities in this folder ...
        save_probs_field: ... with their paths in this string field.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        logits: whether stored arrays are logits.
        batch_size: samples scored together.
        config: the finder's thresholds (a ``fixer_core.FinderConfig``).
        workers: processes that share the run (torch.distributed; one GPU
            each where there are GPUs; see ``docs/distributed.md``).
        num_threads: CPU threads per process (default: the cores this
            process may use, shared by the workers).
        progress: whether to draw a progress bar per pass (``None``:
            ``fo.config.show_progress_bars``), or a FiftyOne progress
            callback that receives each pass's ``ProgressBar``.

    Returns:
        the run's :class:`LabelErrorResults`.
    """
    options = dict(locals())
    for name in ("samples", "progress"):
        del options[name]
    params = call_params(**options)
    return _with_bars(iter_find_label_errors(samples, params), progress)


def iter_find_label_errors(
    samples: foc.SampleCollection, params: dict
) -> Generator[Progress, None, LabelErrorResults | None]:
    """The generator form of :func:`find_label_errors`, for callers that
    report progress themselves (the operator does, in the App): takes the
    operator's flat params, yields :class:`Progress` updates and returns
    the run's results. A run over several workers starts them here (see
    ``docs/distributed.md``); the ranks of a ``torchrun`` run other than
    its lead return ``None``."""
    find = find_params(params)
    with run_ranks(samples, params, find_workers(params)) as ranks:
        yield from run_find_label_errors(samples, find, ranks)
    if not ranks.is_lead:
        return None
    dataset = samples._dataset
    color_patches(dataset, find.run_key)
    return LabelErrorResults(dataset, find.run_key)


def list_label_error_runs(dataset: fo.Dataset) -> list[str]:
    """Keys of the dataset's FIXER runs."""
    return list_fixer_runs(dataset)


def has_label_error_run(dataset: fo.Dataset, run_key: str) -> bool:
    """Whether ``run_key`` names a FIXER run of the dataset."""
    return is_fixer_run(dataset, run_key)


def load_label_error_run(
    dataset: fo.Dataset, run_key: str = "fixer"
) -> LabelErrorResults:
    """Loads a finished FIXER run; raises :class:`LabelErrorInputError`
    when there is none with this key (or it did not finish)."""
    return LabelErrorResults(dataset, run_key)


def delete_label_error_run(
    dataset: fo.Dataset, run_key: str = "fixer"
) -> bool:
    """Deletes a FIXER run and every field, saved view, evaluation and
    file it wrote; the ground truth is kept.

    Returns:
        whether there was such a run. A run of another kind under this
        key raises :class:`LabelErrorInputError`.
    """
    with exclusive(
        dataset, run_resource(run_key), f"delete_label_error_run '{run_key}'"
    ):
        return delete_run(dataset, run_key)


def apply_corrections(
    samples: foc.SampleCollection,
    gt_field: str,
    run_key: str | None = "fixer",
    *,
    source: str = "suggestions",
    selection: str = "confirmed",
    min_score: float = 0.5,
    annotations_field: str | None = None,
    apply_key: str | None = None,
    progress: ProgressArg = None,
) -> dict:
    """Merges corrections into the ground truth of ``samples``, after
    backing it up to ``<gt_field>_backup_<apply_key>``; each changed
    sample gets a provenance record in ``fixer_applied``.

    Args:
        samples: the dataset or view to correct.
        gt_field: the ``fo.Segmentation`` ground truth to correct.
        run_key: the FIXER run whose suggestions are applied, or (with
            ``source="annotations"``, optional) whose patches the edits
            are credited to.
        source: ``"suggestions"`` (the run's suggested classes) or
            ``"annotations"`` (the masks of ``annotations_field``, such as
            labels edited in CVAT).
        selection: which suggestions: ``"confirmed"`` (patches tagged
            ``fixer:confirmed`` in review) or ``"score"`` (patches scoring
            at least ``min_score``).
        min_score: the least score applied with ``selection="score"``.
        annotations_field: with ``source="annotations"``, the field of
            edited labels.
        apply_key: names this correction, for :func:`undo_corrections`
            (default: the first free ``fixer_apply``, ``fixer_apply2``,
            ...).
        progress: as for :func:`find_label_errors`.

    Returns:
        the apply key and the counts of samples and pixels changed.
    """
    params = ApplyParams(
        gt_field=gt_field,
        source=source,
        apply_key=apply_key or new_apply_key(samples._dataset),
        run_key=run_key,
        annotations_field=annotations_field,
        selection=selection,
        min_score=min_score,
    )
    return _with_bars(iter_apply_corrections(samples, params), progress)


def iter_apply_corrections(
    samples: foc.SampleCollection, params: ApplyParams
) -> Generator[Progress, None, dict]:
    """The generator form of :func:`apply_corrections` (for the
    operator): yields :class:`Progress` updates and returns the counts."""
    yield from run_apply_corrections(samples, params)
    stored = samples._dataset.load_run_results(params.apply_key, cache=False)
    counts = {a: getattr(stored, a) for a in stored.attributes() if a != "cls"}
    return {"apply_key": params.apply_key, **counts}


def undo_corrections(
    dataset: fo.Dataset, apply_key: str = "fixer_apply"
) -> dict:
    """Restores the ground truth a correction changed from its backup,
    exactly, and removes its provenance records, backup, mask files and
    run. Later corrections of the same field must be undone first.

    Returns:
        the undo's counts.
    """
    return _apply.undo_corrections(dataset, apply_key)


def label_quality_report(
    dataset: fo.Dataset,
    run_key: str = "fixer",
    *,
    output_dir: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Scores a run's original labels against its corrected ones: mIoU,
    per-class IoU and pixel change, shares of the flags. Stores the report
    in the run (evaluation ``<run_key>_quality``) and writes
    ``report.json``, ``report.md`` and plots to ``output_dir`` (default:
    under FiftyOne's dataset dir); files FIXER did not write are kept
    unless ``overwrite``.

    Returns:
        the report.
    """
    return run_label_quality_report(
        dataset, run_key, output_dir=output_dir, overwrite=overwrite
    )


def draw_review_sample(
    dataset: fo.Dataset,
    run_key: str = "fixer",
    *,
    per_class: int = 25,
    stratify_by: str = "given",
    seed: int = 0,
) -> dict:
    """Tags a seeded, stratified random sample of a run's patches
    (``per_class`` per given or suggested class) for review, in the saved
    view ``<run_key>-review``; a reviewer tags them ``fixer:confirmed``
    or ``fixer:rejected``.

    Returns:
        what was drawn, per class.
    """
    return _review.draw_review_sample(
        dataset,
        run_key,
        per_class=per_class,
        stratify_by=stratify_by,
        seed=seed,
    )


def estimate_flag_precision(
    dataset: fo.Dataset, run_key: str = "fixer"
) -> dict:
    """Estimates the precision of a run's flags (with 95% intervals) and
    the number of true label errors among them, from the review tags of
    its review sample.

    Returns:
        the estimate, overall and per class.
    """
    return _review.estimate_flag_precision(dataset, run_key)


def _with_bars(updates: Generator[Progress, None, T], progress) -> T:
    """Runs ``updates`` to the end, drawing a bar per stage; returns what
    they return."""
    bars = _StageBars(progress)
    try:
        while True:
            try:
                bars.show(next(updates))
            except StopIteration as done:
                return done.value
    finally:
        bars.close()


class _StageBars:
    """A FiftyOne progress bar per stage of a run (training, pass 1, pass
    2), from the run's progress updates."""

    def __init__(self, progress: ProgressArg) -> None:
        self.progress = progress
        self.stage: str | None = None
        self.bar: fou.ProgressBar | None = None

    def show(self, update: Progress) -> None:
        parsed = _parse(update.label)
        if parsed is None:
            return
        stage, done, total, unit = parsed
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = fou.ProgressBar(
                total=total,
                progress=self.progress,
                iters_str=unit,
                start_msg=f"{_TITLES.get(stage, stage)}...",
            )
            self.bar.start()
        self.bar.set_iteration(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _parse(label: str) -> tuple[str, int, int, str] | None:
    """``(stage, done, total, unit)`` of a progress label, if it counts."""
    match = _COUNTED.match(label)
    if match:
        return (
            match["stage"],
            int(match["done"]),
            int(match["total"]),
            "samples",
        )
    match = _TRAINING.match(label)
    if match:
        epochs = int(match["epochs"])
        done = (int(match["fold"]) - 1) * epochs + int(match["epoch"])
        return "Training", done, int(match["folds"]) * epochs, "epochs"
    return None
