"""FIXER: find and fix pixel-wise label errors in segmentation datasets."""

from .operators import (
    DeleteLabelErrorRun,
    FindLabelErrors,
    GetLabelErrorRunInfo,
    LoadLabelErrorView,
)


def register(p):
    p.register(FindLabelErrors)
    p.register(LoadLabelErrorView)
    p.register(GetLabelErrorRunInfo)
    p.register(DeleteLabelErrorRun)
