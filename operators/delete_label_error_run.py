"""The ``delete_label_error_run`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._inputs import existing_run_key
from .api import delete_label_error_run


class DeleteLabelErrorRun(foo.Operator):
    """Deletes a FIXER run and every field, view and file it wrote."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="delete_label_error_run",
            label="Delete label error run",
            description="Delete a FIXER run's patches, scores, corrected "
            "masks and saved views (the ground truth is kept)",
            icon="/assets/icon.svg",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        run_key = existing_run_key(ctx, inputs)
        if run_key is not None:
            info = ctx.dataset.get_run_info(run_key)
            inputs.view(
                "deletes",
                types.Warning(
                    label="Deletes fields "
                    + ", ".join(info.config.fields)
                    + " and saved views "
                    + ", ".join(info.config.views)
                ),
            )
        return types.Property(
            inputs, view=types.View(label="Delete label error run")
        )

    def execute(self, ctx):
        run_key = ctx.params["run_key"]
        deleted = delete_label_error_run(ctx.dataset, run_key)
        ctx.ops.reload_dataset()
        return {"run_key": run_key, "deleted": deleted}

    def __call__(self, dataset, run_key: str = "fixer"):
        """Deletes a run from Python."""
        return foo.execute_operator(
            self.uri, dict(dataset=dataset, params={"run_key": run_key})
        )
