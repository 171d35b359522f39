"""The ``import_cvat_archive`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._archive import default_import_field, import_cvat_archive
from ._inputs import gt_field_dropdown, segmentation_fields
from ._relabel import patches_run_input


class ImportCvatArchive(foo.Operator):
    """Reads an edited CVAT-for-images archive into a new field."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="import_cvat_archive",
            label="Import CVAT archive",
            description="Read an edited CVAT-for-images zip into a new "
            "segmentation field (never the ground truth) and its review "
            "marks into the patches' review tags",
            icon="/assets/icon.svg",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        _import_cvat_archive_inputs(ctx, inputs)
        return types.Property(
            inputs, view=types.View(label="Import CVAT archive")
        )

    def execute(self, ctx):
        gt_field = ctx.params["gt_field"]
        dest_field = ctx.params.get("dest_field") or default_import_field(
            gt_field
        )
        counts = import_cvat_archive(
            ctx.target_view(),
            ctx.params["archive_path"],
            gt_field,
            dest_field=dest_field,
            run_key=ctx.params.get("run_key") or None,
            fill_value=ctx.params.get("fill_value"),
        )
        if not ctx.delegated:
            ctx.ops.reload_dataset()
        return {"dest_field": dest_field, **counts}

    def __call__(
        self,
        sample_collection,
        archive_path: str,
        gt_field: str,
        *,
        dest_field: str | None = None,
        run_key: str | None = None,
        fill_value: int | None = None,
        delegate: bool = False,
    ):
        """Imports an archive into a dataset or view from Python."""
        return foo.execute_operator(
            self.uri,
            dict(
                view=sample_collection.view(),
                params=dict(
                    archive_path=archive_path,
                    gt_field=gt_field,
                    dest_field=dest_field,
                    run_key=run_key,
                    fill_value=fill_value,
                ),
            ),
            request_delegation=delegate,
        )


def _import_cvat_archive_inputs(ctx, inputs: types.Object) -> bool:
    inputs.view_target(ctx)
    inputs.str(
        "archive_path",
        required=True,
        label="Archive path",
        description="A CVAT-for-images .zip (or .xml) whose images are "
        "named <sample id>.<ext>, as 'Export CVAT archive' writes them",
    )
    if not gt_field_dropdown(
        ctx, inputs, "Gives the class names and mask format (not modified)"
    ):
        return False
    gt_field = (
        ctx.params.get("gt_field") or segmentation_fields(ctx.dataset)[0]
    )
    inputs.str(
        "dest_field",
        default=default_import_field(gt_field),
        label="Destination field",
        description="New segmentation field for the edited labels",
    )
    inputs.int(
        "fill_value",
        label="Fill value",
        description="Mask value of pixels no polygon covers (empty: "
        "they keep the ground truth's label)",
    )
    patches_run_input(ctx, inputs)
    return True
