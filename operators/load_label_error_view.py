"""The ``load_label_error_view`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._inputs import existing_run_key
from ._pipeline import output_views

_VIEW_LABELS = {
    "all": "All patches, highest score first",
    "general": "General errors",
    "ambiguous": "Ambiguous labels",
    "false_negative": "False negatives",
}


class LoadLabelErrorView(foo.Operator):
    """Opens one of a FIXER run's saved issue views in the App."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="load_label_error_view",
            label="Load label error view",
            description="Open the patches of one error type of a FIXER run",
            icon="/assets/icon.svg",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        if existing_run_key(ctx, inputs) is not None:
            choices = types.RadioGroup()
            for key, label in _VIEW_LABELS.items():
                choices.add_choice(key, label=label)
            inputs.enum(
                "error_type",
                choices.values(),
                default="all",
                label="View",
                view=choices,
            )
        return types.Property(
            inputs, view=types.View(label="Load label error view")
        )

    def execute(self, ctx):
        run_key = ctx.params["run_key"]
        error_type = ctx.params.get("error_type") or "all"
        name = output_views(run_key)[error_type]
        if not ctx.dataset.has_saved_view(name):
            raise ValueError(
                f"Saved view '{name}' does not exist; run 'Find label "
                f"errors' with run key '{run_key}' again"
            )
        ctx.ops.set_view(name=name)
        return {"view": name}
