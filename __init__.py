"""FIXER: find and fix pixel-wise label errors in segmentation datasets."""

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
    GetReviewQueue,
    ImportCvatArchive,
    LabelQualityReport,
    LoadFromCvat,
    LoadLabelErrorView,
    SendToCvat,
    SetReviewVerdict,
    UndoCorrections,
)


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
    p.register(SetReviewVerdict)
