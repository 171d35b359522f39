"""FIXER's FiftyOne operators."""

from .delete_label_error_run import DeleteLabelErrorRun
from .find_label_errors import FindLabelErrors
from .get_label_error_run_info import GetLabelErrorRunInfo
from .load_label_error_view import LoadLabelErrorView

__all__ = [
    "DeleteLabelErrorRun",
    "FindLabelErrors",
    "GetLabelErrorRunInfo",
    "LoadLabelErrorView",
]
