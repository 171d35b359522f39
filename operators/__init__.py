"""FIXER's FiftyOne operators."""

from .apply_corrections import ApplyCorrections
from .delete_label_error_run import DeleteLabelErrorRun
from .delete_orphaned_files import DeleteOrphanedFiles
from .draw_review_sample import DrawReviewSample
from .estimate_flag_precision import EstimateFlagPrecision
from .export_cvat_archive import ExportCvatArchive
from .find_label_errors import FindLabelErrors
from .fixer_panel import FixerPanel
from .get_label_error_run_info import GetLabelErrorRunInfo
from .import_cvat_archive import ImportCvatArchive
from .label_quality_report import LabelQualityReport
from .load_from_cvat import LoadFromCvat
from .load_label_error_view import LoadLabelErrorView
from .review_panel import (
    GetReviewExamples,
    GetReviewOrder,
    GetReviewPage,
    GetReviewQueue,
    SetReviewVerdict,
)
from .send_to_cvat import SendToCvat
from .undo_corrections import UndoCorrections

__all__ = [
    "ApplyCorrections",
    "DeleteLabelErrorRun",
    "DeleteOrphanedFiles",
    "DrawReviewSample",
    "EstimateFlagPrecision",
    "ExportCvatArchive",
    "FindLabelErrors",
    "FixerPanel",
    "GetLabelErrorRunInfo",
    "GetReviewExamples",
    "GetReviewOrder",
    "GetReviewPage",
    "GetReviewQueue",
    "ImportCvatArchive",
    "LabelQualityReport",
    "LoadFromCvat",
    "LoadLabelErrorView",
    "SendToCvat",
    "SetReviewVerdict",
    "UndoCorrections",
]
