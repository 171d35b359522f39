"""FIXER core: find pixel-wise label errors in semantic segmentation.

Pure numpy/torch (and OpenCV for connected components); never imports
FiftyOne.
"""

from ._checks import PredProbsError
from .config import ERROR_TYPES, FinderConfig
from .corrections import apply_patches
from .evidence import (
    PatchEvidence,
    explain_patches,
    reason_text,
    same_confusion,
)
from .finder import (
    FinderSummary,
    LabelErrorFinder,
    error_map,
    find_label_errors,
    image_error_score,
)
from .issues import SpecificIssue
from .ordering import view_order
from .patches import Patch
from .quality import (
    LabelQuality,
    PixelConfusion,
    StratumReview,
    estimate_precision,
    flag_shares,
    label_quality,
    stratified_sample,
    wilson_interval,
)
from .repeats import discount_runs
from .review_order import learned_order, pair_weights, verdict_order
from .statistics import ClassStatistics

__version__ = "0.1.0"

__all__ = [
    "ERROR_TYPES",
    "ClassStatistics",
    "FinderConfig",
    "FinderSummary",
    "LabelErrorFinder",
    "LabelQuality",
    "Patch",
    "PatchEvidence",
    "PixelConfusion",
    "PredProbsError",
    "SpecificIssue",
    "StratumReview",
    "__version__",
    "apply_patches",
    "discount_runs",
    "error_map",
    "estimate_precision",
    "explain_patches",
    "find_label_errors",
    "flag_shares",
    "image_error_score",
    "label_quality",
    "learned_order",
    "pair_weights",
    "reason_text",
    "same_confusion",
    "stratified_sample",
    "verdict_order",
    "view_order",
    "wilson_interval",
]
