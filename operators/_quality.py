"""The label-quality report of a FIXER run: evaluate, summarize, write."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timezone

import fiftyone as fo
from matplotlib.figure import Figure

from ..fixer_core.config import ERROR_TYPES
from ..fixer_core.quality import (
    flag_shares,
    label_quality,
    weakly_predicted_note,
)
from ._pipeline import (
    output_fields,
    owns_quality_eval,
    quality_eval_key,
    remove_report_files,
    run_dir,
    stored_results,
    update_run_results,
)
from ._samples import LabelErrorInputError

logger = logging.getLogger(__name__)

REPORT_FILES = {
    "json": "report.json",
    "markdown": "report.md",
    "iou_plot": "iou.png",
    "pixels_plot": "pixels.png",
    "types_plot": "types.png",
}


def default_report_dir(dataset: fo.Dataset, run_key: str) -> str:
    """Where a run's report files go unless the user picks a folder."""
    return run_dir(dataset, run_key, "report")


def run_label_quality_report(
    dataset: fo.Dataset,
    run_key: str,
    *,
    output_dir: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Computes, stores and writes the label-quality report of a run.

    Returns:
        The report (also stored as ``quality`` in the run's results).
    """
    # Algorithm
    # ---------
    # 1. Read the run's summary (a clear error if the run is unknown or
    #    unfinished) and its ground-truth field and classes.
    # 2. Score the original labels as predictions of the corrected labels
    #    with FiftyOne's segmentation evaluation (eval key <k>_quality, so
    #    it lives in the dataset like any evaluation); it streams the masks
    #    sample by sample into a pixel confusion matrix. Void and ignored
    #    values are left out through the mask targets.
    # 3. Per-class IoU, mIoU and pixel counts before/after come from that
    #    matrix; shares of flags from the stored summary.
    # 4. Write JSON, Markdown and PNG plots; store the report in the run.
    logger.info("Computing the label-quality report...")
    stored = stored_results(dataset, run_key)
    folder = output_dir or default_report_dir(dataset, run_key)
    if not overwrite:
        _check_no_user_files(folder, stored.get("quality"))
    config = dataset.get_run_info(run_key).config
    corrected = output_fields(run_key)["corrected"]
    eval_key = quality_eval_key(run_key)
    if eval_key in dataset.list_evaluations():
        if not owns_quality_eval(dataset, run_key):
            raise LabelErrorInputError(
                f"Dataset '{dataset.name}' has an evaluation '{eval_key}' "
                f"that FIXER run '{run_key}' did not write; delete it first"
            )
        dataset.delete_evaluation(eval_key)
    samples = dataset.exists(corrected)
    if len(samples) == 0:
        raise LabelErrorInputError(
            f"FIXER run '{run_key}' of dataset '{dataset.name}' has no "
            f"corrected masks in '{corrected}'; run it again"
        )
    ignore = set(config.ignore_values)
    values = [k for k in range(len(config.class_names)) if k not in ignore]
    names = [config.class_names[k] for k in values]
    results = samples.evaluate_segmentations(
        config.gt_field,  # the original labels, scored as predictions ...
        gt_field=corrected,  # ... of the corrected labels
        eval_key=eval_key,
        mask_targets=dict(zip(values, names, strict=True)),
        progress=False,
    )
    quality = label_quality(results.pixel_confusion_matrix, names)
    report = {
        "run_key": run_key,
        "dataset": dataset.name,
        "dataset_id": str(dataset._doc.id),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "eval_key": eval_key,
        "gt_field": config.gt_field,
        "corrected_field": corrected,
        "num_samples": len(samples),
        **quality.to_dict(),
        "flags": flag_shares(stored["summary"]),
    }
    remove_report_files(
        dataset, stored.get("quality")
    )  # the previous report's
    report["files"] = write_report_files(report, folder)
    update_run_results(dataset, run_key, quality=report)
    logger.info(
        "Label-quality report written to %s",
        os.path.dirname(report["files"]["json"]),
    )
    return report


def _check_no_user_files(folder: str, previous: dict | None) -> None:
    """Refuses to write over report files that FIXER did not write (those
    of this run's previous report are its own)."""
    ours = set((previous or {}).get("files", {}).values())
    theirs = [
        path
        for name in REPORT_FILES.values()
        if os.path.exists(path := os.path.join(folder, name))
        and path not in ours
    ]
    if theirs:
        raise LabelErrorInputError(
            f"{', '.join(theirs)} exist(s) and FIXER did not write them; "
            "choose another folder or pass overwrite=True"
        )


def write_report_files(report: dict, output_dir: str) -> dict[str, str]:
    """Writes the report as JSON and Markdown with PNG plots.

    Returns:
        The path of each file written, by kind.
    """
    os.makedirs(output_dir, exist_ok=True)
    files = {k: os.path.join(output_dir, v) for k, v in REPORT_FILES.items()}
    _plot_iou(report, files["iou_plot"])
    _plot_pixels(report, files["pixels_plot"])
    _plot_types(report, files["types_plot"])
    with open(files["markdown"], "w") as f:
        f.write(report_markdown(report))
    with open(files["json"], "w") as f:
        json.dump({**report, "files": files}, f, indent=2)
    return files


def report_markdown(report: dict) -> str:
    """The report as readable Markdown (plots referenced by file name)."""
    flags, rare = report["flags"], report["rare_growth"]
    lines = [
        f"# Label quality: {report['dataset']}, FIXER run "
        f"`{report['run_key']}`",
        "",
        f"{report['num_samples']} samples; the original labels "
        f"(`{report['gt_field']}`) scored as predictions of the corrected "
        f"labels (`{report['corrected_field']}`), evaluation "
        f"`{report['eval_key']}`.",
        "",
        f"- mIoU: **{_num(report['miou'])}** over "
        f"{len(report['class_names']) - len(report['absent'])} classes"
        + (
            f" ({', '.join(report['absent'])} absent from both, ignored)"
            if report["absent"]
            else ""
        ),
        f"- Pixels changed by the correction: {report['changed_pixels']:,} "
        f"({_pct(report['changed_share'])} of {report['total_pixels']:,})",
        f"- Flagged: {flags['num_patches']:,} patches, "
        f"{flags['flagged_pixels']:,} pixels "
        f"({_pct(flags['flagged_share'])} of the scored pixels)",
        f"- In specific issues: {_pct(flags['issue_patch_share'])} of the "
        f"patches, {_pct(flags['issue_pixel_share'])} of the flagged "
        f"pixels; outside them: {_pct(flags['other_patch_share'])} and "
        f"{_pct(flags['other_pixel_share'])}",
    ]
    note = weakly_predicted_note(flags["weakly_predicted"])
    if note:
        lines.append(f"- {note}")
    if rare["classes"]:
        lines.append(
            f"- Classes under {_pct(rare['max_share'])} of the pixels each "
            f"({', '.join(rare['classes'])}): {_pct(rare['share_before'])} "
            f"of the pixels before correction, {_pct(rare['share_after'])} "
            f"after (x{_num(rare['ratio'])})"
        )
    lines += [
        "",
        "## Classes",
        "",
        "| class | IoU | pixels before | pixels after | after / before |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in report["classes"]:
        lines.append(
            f"| {row['class']} | {_num(row['iou'])} | "
            f"{row['pixels_before']:,} | {row['pixels_after']:,} | "
            f"{_num(row['ratio'])} |"
        )
    lines += [
        "",
        "## Error types",
        "",
        "| type | patches | pixels | share of patches | share of pixels |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in flags["by_type"].items():
        lines.append(
            f"| {name} | {row['patches']:,} | {row['pixels']:,} | "
            f"{_pct(row['patch_share'])} | {_pct(row['pixel_share'])} |"
        )
    lines += [
        "",
        "## Specific issues, largest first",
        "",
        "| issue | type | patches | images | pixels | share of flagged "
        "pixels |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for issue in flags["issues"]:
        lines.append(
            f"| {issue['name']} | {issue['error_type']} | "
            f"{issue['num_patches']:,} | {issue['num_images']:,} | "
            f"{issue['num_pixels']:,} | {_pct(issue['pixel_share'])} |"
        )
    if not flags["issues"]:
        lines.append("| (none) | | | | | |")
    lines += [
        "",
        "## Plots",
        "",
        f"![Per-class IoU]({REPORT_FILES['iou_plot']})",
        "",
        f"![Pixels per class]({REPORT_FILES['pixels_plot']})",
        "",
        f"![Flags by error type]({REPORT_FILES['types_plot']})",
        "",
    ]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _figure(num_bars: int) -> tuple[Figure, object]:
    fig = Figure(figsize=(max(6.0, 0.45 * num_bars + 2), 4), dpi=100)
    return fig, fig.add_subplot()


def _plot_iou(report: dict, path: str) -> None:
    rows = report["classes"]
    fig, ax = _figure(len(rows))
    ax.bar(
        [r["class"] for r in rows],
        [r["iou"] if r["iou"] is not None else 0 for r in rows],
        color="tab:blue",
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU, original vs corrected")
    ax.set_title(f"Per-class IoU (mIoU {_num(report['miou'])})")
    ax.tick_params(axis="x", labelrotation=60)
    fig.tight_layout()
    fig.savefig(path)


def _plot_pixels(report: dict, path: str) -> None:
    rows = report["classes"]
    fig, ax = _figure(2 * len(rows))
    x = range(len(rows))
    ax.bar(
        [i - 0.2 for i in x],
        [r["pixels_before"] for r in rows],
        width=0.4,
        label="before",
    )
    ax.bar(
        [i + 0.2 for i in x],
        [r["pixels_after"] for r in rows],
        width=0.4,
        label="after",
    )
    ax.set_xticks(list(x), [r["class"] for r in rows], rotation=60)
    if any(r["pixels_before"] or r["pixels_after"] for r in rows):
        ax.set_yscale("log")
    ax.set_ylabel("pixels")
    ax.set_title("Pixels per class before and after correction")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def _plot_types(report: dict, path: str) -> None:
    by_type = report["flags"]["by_type"]
    fig = Figure(figsize=(8, 3.5), dpi=100)
    for i, unit in enumerate(("patches", "pixels")):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.bar(
            list(ERROR_TYPES),
            [by_type[t][unit] for t in ERROR_TYPES],
            color=["tab:red", "tab:orange", "tab:purple"],
        )
        ax.set_title(f"Flagged {unit} by error type")
    fig.tight_layout()
    fig.savefig(path)
