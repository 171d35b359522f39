"""The ``get_label_error_run_info`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._inputs import existing_run_key
from ._pipeline import load_run_summary


class GetLabelErrorRunInfo(foo.Operator):
    """Shows a FIXER run's parameters, counts and specific issues."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="get_label_error_run_info",
            label="Get label error run info",
            description="Show the counts and specific issues of a FIXER run",
            icon="/assets/icon.svg",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        existing_run_key(ctx, inputs)
        return types.Property(
            inputs, view=types.View(label="Get label error run info")
        )

    def execute(self, ctx):
        run_key = ctx.params["run_key"]
        info = ctx.dataset.get_run_info(run_key)
        summary = load_run_summary(ctx.dataset, run_key)
        return {
            "run_key": run_key,
            "timestamp": str(info.timestamp),
            "config": info.config.serialize(),
            "totals": summary["totals"],
            "issue_share": round(summary["issue_share"], 3),
            "weakly_predicted": summary.get("weakly_predicted", {}),
            "issues": [
                {
                    k: i[k]
                    for k in (
                        "name",
                        "num_patches",
                        "num_images",
                        "num_pixels",
                    )
                }
                for i in summary["issues"]
            ],
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("run_key", label="Run key")
        outputs.str("timestamp", label="Finished")
        outputs.obj(
            "totals",
            label="Patches and pixels by error type",
            view=types.JSONView(),
        )
        outputs.float(
            "issue_share", label="Share of flagged pixels in specific issues"
        )
        outputs.obj(
            "weakly_predicted",
            label="Classes the model barely predicts (their labels are "
            "checked weakly): mean probability on their pixels",
            view=types.JSONView(),
        )
        table = types.TableView()
        for key, label in (
            ("name", "Issue"),
            ("num_patches", "Patches"),
            ("num_images", "Images"),
            ("num_pixels", "Pixels"),
        ):
            table.add_column(key, label=label)
        outputs.list(
            "issues", types.Object(), label="Specific issues", view=table
        )
        outputs.obj("config", label="Parameters", view=types.JSONView())
        return types.Property(outputs)
