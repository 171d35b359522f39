"""FIXER core: find pixel-wise label errors in semantic segmentation.

Pure numpy/torch (and OpenCV for connected components); never imports
FiftyOne.
"""

from ._checks import PredProbsError
from .config import ERROR_TYPES, FinderConfig
from .corrections import apply_patches
from .finder import (
    FinderSummary,
    LabelErrorFinder,
    find_label_errors,
    image_error_score,
)
from .issues import SpecificIssue
from .patches import Patch
from .statistics import ClassStatistics

__version__ = "0.1.0"

__all__ = [
    "ERROR_TYPES",
    "ClassStatistics",
    "FinderConfig",
    "FinderSummary",
    "LabelErrorFinder",
    "Patch",
    "PredProbsError",
    "SpecificIssue",
    "__version__",
    "apply_patches",
    "find_label_errors",
    "image_error_score",
]
