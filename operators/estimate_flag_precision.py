"""The ``estimate_flag_precision`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._inputs import existing_run_key
from .api import estimate_flag_precision


class EstimateFlagPrecision(foo.Operator):
    """Estimates the precision of a run's flags from its reviewed sample."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="estimate_flag_precision",
            label="Estimate flag precision",
            description="Per-class and overall precision of a FIXER run's "
            "flags, with 95% intervals, from the reviewed sample",
            icon="/assets/icon.svg",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        existing_run_key(ctx, inputs)
        return types.Property(
            inputs, view=types.View(label="Estimate flag precision")
        )

    def execute(self, ctx):
        estimate = estimate_flag_precision(ctx.dataset, ctx.params["run_key"])
        overall = estimate["overall"]
        return {
            "reviewed": overall["reviewed"],
            "missing": overall["missing"],
            "conflicting": overall["conflicting"],
            "unreviewed": overall["unreviewed"],
            "overall": [
                _overall_row("patches", overall),
                _overall_row("pixels", overall),
            ],
            "classes": estimate["classes"],
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.int("reviewed", label="Sampled patches reviewed")
        outputs.int("missing", label="Sampled patches still to review")
        outputs.int(
            "conflicting", label="Patches tagged both confirmed and rejected"
        )
        outputs.list(
            "unreviewed", types.String(), label="Classes without reviews"
        )
        overall = types.TableView()
        for key, label in (
            ("unit", "Weighted by"),
            ("precision", "Precision"),
            ("low", "95% low"),
            ("high", "95% high"),
            ("flagged", "Flagged"),
            ("expected_true", "Expected true errors"),
            ("expected_low", "95% low"),
            ("expected_high", "95% high"),
        ):
            overall.add_column(key, label=label)
        outputs.list("overall", types.Object(), label="Overall", view=overall)
        table = types.TableView()
        for key, label in (
            ("class", "Class"),
            ("flagged_patches", "Flagged"),
            ("sampled", "Sampled"),
            ("confirmed", "Confirmed"),
            ("rejected", "Rejected"),
            ("missing", "Missing"),
            ("precision", "Precision"),
            ("low", "95% low"),
            ("high", "95% high"),
        ):
            table.add_column(key, label=label)
        outputs.list("classes", types.Object(), label="Per class", view=table)
        return types.Property(outputs)

    def __call__(self, dataset, run_key: str = "fixer"):
        """Estimates from Python; returns the execution result."""
        return foo.execute_operator(
            self.uri, dict(dataset=dataset, params={"run_key": run_key})
        )


def _overall_row(unit: str, overall: dict) -> dict:
    est = overall[f"precision_{unit}"] or [None] * 3
    expected = overall[f"expected_true_{unit}"] or [None] * 3
    return {
        "unit": unit,
        "precision": est[0],
        "low": est[1],
        "high": est[2],
        "flagged": overall[f"flagged_{unit}"],
        "expected_true": expected[0],
        "expected_low": expected[1],
        "expected_high": expected[2],
    }
