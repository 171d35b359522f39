"""The ``load_from_cvat`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._cvat import cvat_credentials, load_from_cvat
from ._inputs import dropdown, refuse
from .send_to_cvat import operator_secrets


class LoadFromCvat(foo.Operator):
    """Loads a finished CVAT run's edits into a new field."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="load_from_cvat",
            label="Load from CVAT",
            description="Load the edited ground truth of a CVAT run sent by "
            "'Send to CVAT' into a new field (never the ground truth) and "
            "its review marks into the patches' review tags",
            icon="/assets/icon.svg",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        keys = ctx.dataset.list_annotation_runs()
        if not keys:
            refuse(
                inputs,
                "no_runs",
                types.Warning(label="This dataset has no annotation runs"),
            )
        else:
            dropdown(
                inputs, "anno_key", keys, label="Annotation key", required=True
            )
            inputs.str(
                "dest_field",
                label="Destination field",
                description="New segmentation field (default <gt>_cvat)",
            )
            inputs.int(
                "fill_value",
                label="Fill value",
                description="Mask value of pixels no CVAT mask covers (empty: "
                "they keep the ground truth's label)",
            )
            inputs.bool(
                "cleanup",
                default=False,
                label="Delete the CVAT tasks after loading",
            )
        return types.Property(inputs, view=types.View(label="Load from CVAT"))

    def execute(self, ctx):
        counts = load_from_cvat(
            ctx.dataset,
            ctx.params["anno_key"],
            dest_field=ctx.params.get("dest_field") or None,
            credentials=cvat_credentials(operator_secrets(ctx)),
            fill_value=ctx.params.get("fill_value"),
            cleanup=bool(ctx.params.get("cleanup")),
        )
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        return counts

    def __call__(
        self,
        dataset,
        anno_key: str = "fixer_cvat",
        *,
        dest_field: str | None = None,
        fill_value: int | None = None,
        cleanup: bool = False,
    ):
        """Loads a CVAT run from Python."""
        return foo.execute_operator(
            self.uri,
            dict(
                dataset=dataset,
                params=dict(
                    anno_key=anno_key,
                    dest_field=dest_field,
                    fill_value=fill_value,
                    cleanup=cleanup,
                ),
            ),
        )
