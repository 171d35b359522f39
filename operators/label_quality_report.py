"""The ``label_quality_report`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._inputs import existing_run_key
from ._quality import default_report_dir
from .api import label_quality_report


class LabelQualityReport(foo.Operator):
    """Scores a run's original labels against its corrected labels."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="label_quality_report",
            label="Label quality report",
            description="mIoU of the original vs the corrected labels, "
            "per-class pixel change and shares of the flags of a FIXER run",
            icon="/assets/icon.svg",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        run_key = existing_run_key(ctx, inputs)
        if run_key is not None:
            inputs.str(
                "output_dir",
                label="Report folder",
                description="Where report.json, report.md and the plots go "
                "(default: "
                f"{default_report_dir(ctx.dataset, run_key)})",
            )
            inputs.bool(
                "overwrite",
                default=False,
                label="Overwrite files FIXER did not write",
            )
        return types.Property(
            inputs, view=types.View(label="Label quality report")
        )

    def execute(self, ctx):
        report = label_quality_report(
            ctx.dataset,
            ctx.params["run_key"],
            output_dir=ctx.params.get("output_dir") or None,
            overwrite=bool(ctx.params.get("overwrite", False)),
        )
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        flags = report["flags"]
        return {
            "run_key": report["run_key"],
            "eval_key": report["eval_key"],
            "miou": report["miou"],
            "absent": report["absent"],
            "changed_share": report["changed_share"],
            "flagged_share": flags["flagged_share"],
            "issue_patch_share": flags["issue_patch_share"],
            "issue_pixel_share": flags["issue_pixel_share"],
            "rare_growth": report["rare_growth"],
            "classes": report["classes"],
            "by_type": [
                {"type": t, **row} for t, row in flags["by_type"].items()
            ],
            "issues": flags["issues"],
            "files": report["files"],
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("run_key", label="Run key")
        outputs.str("eval_key", label="Evaluation key")
        outputs.float("miou", label="mIoU, original vs corrected labels")
        outputs.list("absent", types.String(), label="Absent classes")
        outputs.float("changed_share", label="Share of pixels corrected")
        outputs.float("flagged_share", label="Share of pixels flagged")
        outputs.float(
            "issue_patch_share", label="Share of patches in specific issues"
        )
        outputs.float(
            "issue_pixel_share",
            label="Share of flagged pixels in specific issues",
        )
        outputs.obj(
            "rare_growth",
            label="Growth of the rare classes (under 1% of pixels)",
            view=types.JSONView(),
        )
        _table(
            outputs,
            "classes",
            "Classes",
            (
                ("class", "Class"),
                ("iou", "IoU"),
                ("pixels_before", "Pixels before"),
                ("pixels_after", "Pixels after"),
                ("ratio", "After / before"),
            ),
        )
        _table(
            outputs,
            "by_type",
            "Error types",
            (
                ("type", "Type"),
                ("patches", "Patches"),
                ("pixels", "Pixels"),
                ("patch_share", "Share of patches"),
                ("pixel_share", "Share of pixels"),
            ),
        )
        _table(
            outputs,
            "issues",
            "Specific issues, largest first",
            (
                ("name", "Issue"),
                ("error_type", "Type"),
                ("num_patches", "Patches"),
                ("num_images", "Images"),
                ("num_pixels", "Pixels"),
                ("pixel_share", "Share of flagged pixels"),
            ),
        )
        outputs.obj("files", label="Files written", view=types.JSONView())
        return types.Property(outputs)

    def __call__(
        self,
        dataset,
        run_key: str = "fixer",
        *,
        output_dir: str | None = None,
        overwrite: bool = False,
        delegate: bool = False,
    ):
        """Computes the report from Python; returns the execution result
        (its ``result`` holds the report's main numbers)."""
        return foo.execute_operator(
            self.uri,
            dict(
                dataset=dataset,
                params={
                    "run_key": run_key,
                    "output_dir": output_dir,
                    "overwrite": overwrite,
                },
            ),
            request_delegation=delegate,
        )


def _table(outputs: types.Object, name: str, label: str, columns) -> None:
    table = types.TableView()
    for key, title in columns:
        table.add_column(key, label=title)
    outputs.list(name, types.Object(), label=label, view=table)
