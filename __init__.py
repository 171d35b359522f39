"""FIXER: find and fix pixel-wise label errors in segmentation datasets.

Loaded by FiftyOne as the ``@fixer/fixer`` plugin, and importable as the
``fixer_fiftyone`` package: its Python API is re-exported here.
"""

from .operators import (
    ApplyCorrections,
    DeleteLabelErrorRun,
    DeleteOrphanedFiles,
    DrawReviewSample,
    EstimateFlagPrecision,
    ExportCvatArchive,
    FindLabelErrors,
    FixerPanel,
    GetLabelErrorRunInfo,
    GetReviewExamples,
    GetReviewOrder,
    GetReviewPage,
    GetReviewQueue,
    ImportCvatArchive,
    LabelQualityReport,
    LoadFromCvat,
    LoadLabelErrorView,
    SendToCvat,
    SetReviewVerdict,
    UndoCorrections,
)
from .operators.api import (
    LabelErrorInputError,
    LabelErrorResults,
    apply_corrections,
    delete_label_error_run,
    draw_review_sample,
    estimate_flag_precision,
    find_label_errors,
    has_label_error_run,
    label_quality_report,
    list_label_error_runs,
    load_label_error_run,
    undo_corrections,
)

__all__ = [
    "LabelErrorInputError",
    "LabelErrorResults",
    "apply_corrections",
    "delete_label_error_run",
    "draw_review_sample",
    "estimate_flag_precision",
    "find_label_errors",
    "has_label_error_run",
    "label_quality_report",
    "list_label_error_runs",
    "load_label_error_run",
    "undo_corrections",
]


def register(p):
    p.register(FindLabelErrors)
    p.register(LoadLabelErrorView)
    p.register(GetLabelErrorRunInfo)
    p.register(DeleteLabelErrorRun)
    p.register(DeleteOrphanedFiles)
    p.register(LabelQualityReport)
    p.register(DrawReviewSample)
    p.register(EstimateFlagPrecision)
    p.register(FixerPanel)
    p.register(ExportCvatArchive)
    p.register(ImportCvatArchive)
    p.register(ApplyCorrections)
    p.register(UndoCorrections)
    p.register(SendToCvat)
    p.register(LoadFromCvat)
    p.register(GetReviewQueue)
    p.register(GetReviewPage)
    p.register(GetReviewOrder)
    p.register(GetReviewExamples)
    p.register(SetReviewVerdict)
