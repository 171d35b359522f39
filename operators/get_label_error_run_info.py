"""The ``get_label_error_run_info`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._inputs import existing_run_key
from .api import load_label_error_run


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
        results = load_label_error_run(ctx.dataset, ctx.params["run_key"])
        summary, config = results.summary, results.config
        return {
            **_readable(summary, config),
            "run_key": results.run_key,
            "timestamp": str(results.timestamp),
            "config": config,
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
        _table(
            outputs,
            "by_type",
            "Patches by error type",
            (
                ("error_type", "Error type"),
                ("patches", "Patches"),
                ("pixels", "Pixels"),
            ),
        )
        outputs.str(
            "share_in_issues",
            label="Share of flagged pixels in specific issues",
        )
        _table(
            outputs,
            "issues",
            "Specific issues",
            (
                ("name", "Issue"),
                ("num_patches", "Patches"),
                ("num_images", "Images"),
                ("num_pixels", "Pixels"),
            ),
        )
        _table(
            outputs,
            "weak_classes",
            "Classes the model barely predicts (their labels are checked "
            "weakly)",
            (
                ("class", "Class"),
                ("mean_probability", "Mean probability on its pixels"),
            ),
        )
        _table(
            outputs,
            "parameters",
            "Parameters",
            (("name", "Parameter"), ("value", "Value")),
        )
        return types.Property(outputs)


def _table(outputs, name: str, label: str, columns) -> None:
    table = types.TableView()
    for key, title in columns:
        table.add_column(key, label=title)
    outputs.list(name, types.Object(), label=label, view=table)


def _readable(summary: dict, config: dict) -> dict:
    """The run's numbers as the App shows them: tables of text, shares as
    percentages."""
    weak = summary.get("weakly_predicted", {})
    return {
        "by_type": [
            {
                "error_type": t.replace("_", " "),
                "patches": v.get("patches", 0),
                "pixels": v.get("pixels", 0),
            }
            for t, v in summary["totals"].items()
        ],
        "share_in_issues": f"{summary['issue_share']:.0%}",
        "weak_classes": [
            {"class": name, "mean_probability": f"{p:.1%}"}
            for name, p in weak.items()
        ],
        "parameters": [
            {"name": k, "value": _text(v)}
            for k, v in _flat(config)
            if k not in ("cls", "type", "method")
        ],
    }


def _flat(values: dict, prefix: str = ""):
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)
