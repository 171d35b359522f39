"""FIXER runs written by hand, with known masks, patches and summaries."""

from __future__ import annotations

import numpy as np

METHOD = "fixer.find_label_errors"


def patch(
    given: str,
    suggested: str,
    *,
    area: int,
    error_type: str = "general",
    issue: str | None = None,
    score: float = 0.9,
):
    """A patch detection like the finder writes (a 1 x area mask)."""
    import fiftyone as fo

    return fo.Detection(
        label=suggested,
        bounding_box=[0.0, 0.0, 0.5, 0.5],
        mask=np.ones((1, area), dtype=bool),
        confidence=score,
        given_label=given,
        suggested_label=suggested,
        error_type=error_type,
        issue=issue,
        area=area,
        coverage=1.0,
    )


def add_hand_run(
    dataset,
    class_names: list[str],
    samples: list[tuple[np.ndarray, np.ndarray, list]],
    summary: dict,
    *,
    run_key: str = "fixer",
    gt_field: str = "ground_truth",
) -> list[str]:
    """Adds samples and registers a finished FIXER run over them.

    Args:
        samples: per sample, ``(ground truth mask, corrected mask,
            patch detections)``.
        summary: the run's ``FinderSummary.to_dict()``.

    Returns:
        The sample ids.
    """
    import fiftyone as fo

    fields = {
        "patches": f"{run_key}_patches",
        "score": f"{run_key}_error_score",
        "corrected": f"{run_key}_corrected",
    }
    dataset.default_mask_targets = {
        **dict(enumerate(class_names)),
        255: "void",
    }
    ids = dataset.add_samples(
        [
            fo.Sample(
                filepath=f"/tmp/hand-run-{i}.png",
                **{
                    gt_field: fo.Segmentation(mask=gt),
                    fields["corrected"]: fo.Segmentation(mask=corrected),
                    fields["patches"]: fo.Detections(detections=patches),
                    fields["score"]: 0.5,
                },
            )
            for i, (gt, corrected, patches) in enumerate(samples)
        ]
    )
    dataset.register_run(
        run_key,
        dataset.init_run(
            method=METHOD,
            gt_field=gt_field,
            ignore_values=[],
            class_names=list(class_names),
            fields=list(fields.values()),
            views=[],
            corrected_dir=None,
        ),
    )
    dataset.save_run_results(
        run_key,
        dataset.init_run_results(run_key, summary=summary, statistics={}),
    )
    return ids


def hand_summary(patches: list, issues: list[dict], num_pixels: int) -> dict:
    """A run summary whose totals add up the given patch detections."""
    totals = {t: {} for t in ("general", "ambiguous", "false_negative")}
    for p in patches:
        t = totals[p.error_type]
        t["patches"] = t.get("patches", 0) + 1
        t["pixels"] = t.get("pixels", 0) + p.area
    flagged = sum(p.area for p in patches)
    return {
        "issues": issues,
        "totals": totals,
        "num_images": 0,
        "num_pixels": num_pixels,
        "flagged_pixels": flagged,
        "issue_share": sum(i["num_pixels"] for i in issues) / flagged,
    }
