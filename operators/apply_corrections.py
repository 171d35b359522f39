"""The ``apply_corrections`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._apply import (
    SELECTIONS,
    SOURCES,
    ApplyParams,
    backup_field,
    new_apply_key,
)
from ._inputs import (
    dropdown,
    field_dropdown,
    gt_field_dropdown,
    refuse,
    segmentation_fields,
)
from ._pipeline import list_fixer_runs
from ._progress import report_progress
from .api import iter_apply_corrections


class ApplyCorrections(foo.Operator):
    """Merges accepted suggestions or reviewed annotations into the ground
    truth, after backing it up."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="apply_corrections",
            label="Apply corrections",
            description="Merge confirmed or high-scoring suggestions, or "
            "labels edited in CVAT, into the ground truth (backed up first; "
            "'Undo corrections' restores it)",
            icon="/assets/icon.svg",
            dynamic=True,
            execute_as_generator=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        _apply_corrections_inputs(ctx, inputs)
        return types.Property(
            inputs, view=types.View(label="Apply corrections")
        )

    def execute(self, ctx):
        params = _apply_params(ctx.params)
        counts = yield from report_progress(
            ctx,
            iter_apply_corrections(ctx.target_view(), params),
            "Apply corrections",
        )
        yield ctx.ops.notify(
            f"Correction '{params.apply_key}': {counts['changed_pixels']} "
            f"pixels changed in {counts['changed_samples']} samples"
        )
        if not ctx.delegated:
            yield ctx.trigger("reload_dataset")

    def __call__(
        self,
        sample_collection,
        gt_field: str,
        source: str,
        *,
        apply_key: str = "fixer_apply",
        run_key: str | None = None,
        annotations_field: str | None = None,
        selection: str = "confirmed",
        min_score: float = 0.5,
        delegate: bool = False,
    ):
        """Applies corrections to a dataset or view from Python."""
        params = dict(
            gt_field=gt_field,
            source=source,
            apply_key=apply_key,
            run_key=run_key,
            annotations_field=annotations_field,
            selection=selection,
            min_score=min_score,
        )
        return foo.execute_operator(
            self.uri,
            dict(view=sample_collection.view(), params=params),
            request_delegation=delegate,
        )


def _apply_params(params: dict) -> ApplyParams:
    defaults = ApplyParams(gt_field="", source="")
    return ApplyParams(
        gt_field=params["gt_field"],
        source=params["source"],
        apply_key=params.get("apply_key") or defaults.apply_key,
        run_key=params.get("run_key") or None,
        annotations_field=params.get("annotations_field") or None,
        selection=params.get("selection") or defaults.selection,
        min_score=float(
            defaults.min_score
            if params.get("min_score") is None
            else params["min_score"]
        ),
    )


def _apply_corrections_inputs(ctx, inputs: types.Object) -> bool:
    inputs.view_target(ctx)
    dataset = ctx.dataset
    fields = segmentation_fields(dataset)
    if not gt_field_dropdown(
        ctx, inputs, "The labels to correct (backed up first)"
    ):
        return False
    gt_field = ctx.params.get("gt_field") or fields[0]
    dropdown(inputs, "source", list(SOURCES), label="Apply")
    source = ctx.params.get("source") or SOURCES[0]
    run_keys = list_fixer_runs(dataset)
    if source == "suggestions":
        if not run_keys:
            return refuse(
                inputs,
                "no_runs",
                types.Warning(label="This dataset has no FIXER runs"),
            )
        dropdown(inputs, "run_key", run_keys[::-1], label="Patches of run")
        dropdown(
            inputs,
            "selection",
            list(SELECTIONS),
            label="Which patches",
            description="'confirmed': patches tagged confirmed in review; "
            "'score': every patch scoring at least the minimum",
        )
        if (ctx.params.get("selection") or SELECTIONS[0]) == "score":
            inputs.float("min_score", default=0.5, label="Minimum score")
    else:
        others = [f for f in fields if f != gt_field]
        if not field_dropdown(
            inputs,
            "annotations_field",
            others,
            label="Edited labels",
            description="The field CVAT edits were loaded into",
            missing="No other Segmentation field holds edited labels",
        ):
            return False
        if run_keys:
            dropdown(
                inputs,
                "run_key",
                run_keys[::-1],
                label="Credit patches of run",
                description="Records which of its patches the edits cover",
            )
    free_key = new_apply_key(dataset)
    apply_key = ctx.params.get("apply_key") or free_key
    inputs.str(
        "apply_key",
        default=free_key,
        label="Apply key",
        description="Names this correction, for the undo",
    )
    if not apply_key.isidentifier():
        return refuse(
            inputs,
            "apply_key_error",
            types.Error(
                label=f"Apply key '{apply_key}' must be a valid variable name"
            ),
        )
    if apply_key in dataset.list_runs():
        return refuse(
            inputs,
            "apply_key_error",
            types.Error(label=f"Apply key '{apply_key}' already exists"),
        )
    inputs.view(
        "outputs",
        types.Notice(
            label=f"Backs up '{gt_field}' to "
            f"'{backup_field(gt_field, apply_key)}', then writes the "
            "corrections and a provenance record per sample (fixer_applied)"
        ),
    )
    return True
