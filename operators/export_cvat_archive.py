"""The ``export_cvat_archive`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._archive import export_cvat_archive
from ._inputs import gt_field_dropdown
from ._relabel import patches_run_input


class ExportCvatArchive(foo.Operator):
    """Writes a CVAT-for-images zip of a view for offline relabelling."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="export_cvat_archive",
            label="Export CVAT archive",
            description="Write a CVAT-for-images zip (images, ground truth "
            "as polygons, patches as reference shapes) for offline "
            "relabelling",
            icon="/assets/icon.svg",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        _export_cvat_archive_inputs(ctx, inputs)
        return types.Property(
            inputs, view=types.View(label="Export CVAT archive")
        )

    def execute(self, ctx):
        counts = export_cvat_archive(
            ctx.target_view(),
            ctx.params["gt_field"],
            ctx.params["archive_path"],
            run_key=ctx.params.get("run_key") or None,
            overwrite=bool(ctx.params.get("overwrite", False)),
        )
        return {"archive_path": ctx.params["archive_path"], **counts}

    def __call__(
        self,
        sample_collection,
        gt_field: str,
        archive_path: str,
        *,
        run_key: str | None = None,
        overwrite: bool = False,
        delegate: bool = False,
    ):
        """Exports a dataset or view from Python."""
        return foo.execute_operator(
            self.uri,
            dict(
                view=sample_collection.view(),
                params=dict(
                    gt_field=gt_field,
                    archive_path=archive_path,
                    run_key=run_key,
                    overwrite=overwrite,
                ),
            ),
            request_delegation=delegate,
        )


def _export_cvat_archive_inputs(ctx, inputs: types.Object) -> bool:
    inputs.view_target(ctx)
    if not gt_field_dropdown(
        ctx, inputs, "Exported as one polygon per region"
    ):
        return False
    patches_run_input(ctx, inputs)
    inputs.str(
        "archive_path",
        required=True,
        label="Archive path",
        description="The .zip to write (CVAT for images 1.1 with images)",
    )
    inputs.bool("overwrite", default=False, label="Replace an existing file")
    return True
