"""The ``send_to_cvat`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._cvat import SECRETS, cvat_credentials, send_to_cvat
from ._inputs import gt_field_dropdown, refuse
from ._relabel import patches_run_input


class SendToCvat(foo.Operator):
    """Sends a view's ground truth, with the patches for reference, to a
    CVAT server for relabelling."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="send_to_cvat",
            label="Send to CVAT",
            description="Upload a view to CVAT: the ground truth to edit, "
            "the patches as 'fixer_patch' shapes with a review mark",
            icon="/assets/icon.svg",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        _send_to_cvat_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Send to CVAT"))

    def execute(self, ctx):
        results = send_to_cvat(
            ctx.target_view(),
            ctx.params["anno_key"],
            ctx.params["gt_field"],
            run_key=ctx.params.get("run_key") or None,
            credentials=cvat_credentials(operator_secrets(ctx)),
            launch_editor=bool(ctx.params.get("launch_editor")),
        )
        return {
            "anno_key": ctx.params["anno_key"],
            "task_ids": list(results.task_ids),
        }

    def __call__(
        self,
        sample_collection,
        gt_field: str,
        anno_key: str = "fixer_cvat",
        *,
        run_key: str | None = None,
        launch_editor: bool = False,
        delegate: bool = False,
    ):
        """Sends a dataset or view from Python (credentials come from the
        ``FIFTYONE_CVAT_*`` environment variables)."""
        return foo.execute_operator(
            self.uri,
            dict(
                view=sample_collection.view(),
                params=dict(
                    gt_field=gt_field,
                    anno_key=anno_key,
                    run_key=run_key,
                    launch_editor=launch_editor,
                ),
            ),
            request_delegation=delegate,
        )


def operator_secrets(ctx) -> dict:
    """The plugin's CVAT secrets that are set."""
    return {k: v for k in SECRETS if (v := ctx.secrets.get(k))}


def _send_to_cvat_inputs(ctx, inputs: types.Object) -> bool:
    inputs.view_target(ctx)
    if not gt_field_dropdown(ctx, inputs, "The segmentation annotators edit"):
        return False
    patches_run_input(ctx, inputs)
    inputs.str(
        "anno_key",
        default="fixer_cvat",
        required=True,
        label="Annotation key",
        description="Names the annotation run, to load it back",
    )
    anno_key = ctx.params.get("anno_key", "fixer_cvat")
    if anno_key and not anno_key.isidentifier():
        return refuse(
            inputs,
            "anno_key_error",
            types.Error(
                label=f"Annotation key '{anno_key}' must be a valid "
                "variable name"
            ),
        )
    if anno_key in ctx.dataset.list_annotation_runs():
        return refuse(
            inputs,
            "anno_key_error",
            types.Error(label=f"Annotation key '{anno_key}' already exists"),
        )
    inputs.bool("launch_editor", default=False, label="Open CVAT when done")
    url = cvat_credentials(operator_secrets(ctx)).get("url")
    inputs.view(
        "server",
        types.Notice(
            label=f"CVAT server: {url or 'not set (FIFTYONE_CVAT_URL)'}. "
            "Without a server, use 'Export CVAT archive' instead"
        ),
    )
    return True
