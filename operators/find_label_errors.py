"""The ``find_label_errors`` operator."""

from __future__ import annotations

import dataclasses
import logging
import time

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..fixer_core import FinderConfig
from ._inputs import (
    dropdown,
    field_dropdown,
    new_run_key,
    segmentation_fields,
    string_fields,
)
from ._pipeline import (
    DEVICES,
    FindParams,
    Progress,
    load_run_summary,
    output_fields,
    output_views,
    run_find_label_errors,
)

logger = logging.getLogger(__name__)

_PROGRESS_INTERVAL = 1.0  # seconds between progress reports
_CONFIG_FIELDS = dataclasses.fields(FinderConfig)
_CONFIG_HELP = {
    "min_confidence": "Cap on the per-class confidence thresholds",
    "min_area": "Smallest patch reported, in pixels",
    "speck_radius": "Radius of the opening that removes specks",
    "boundary_width": "Flags this close to the suggested class are "
    "boundary noise",
    "score_area_scale": "Patch area (pixels) at which the size factor of "
    "the score is 0.5",
    "min_score": "Patches scoring lower are not reported",
    "fn_max_frequency_ratio": "False negative: suggested class at most "
    "this fraction of the given class's pixels",
    "fn_min_inside_share": "False negative: share of the patch outline "
    "inside the given class",
    "ambiguous_min_rate": "Ambiguous: share of each class confidently "
    "predicted as the other",
    "ambiguous_min_given_prob": "Ambiguous: mean given-class probability "
    "on the patch",
    "min_issue_patches": "Specific issue: least patches",
    "min_issue_images": "Specific issue: least images",
}


class FindLabelErrors(foo.Operator):
    """Finds pixel-wise label errors in a segmentation field."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="find_label_errors",
            label="Find label errors",
            description="Flag patches of pixels whose segmentation label "
            "looks wrong, with suggested classes and error types",
            icon="/assets/icon.svg",
            dynamic=True,
            execute_as_generator=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            default_choice_to_delegated=False,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        _find_label_errors_inputs(ctx, inputs)
        return types.Property(
            inputs, view=types.View(label="Find label errors")
        )

    def execute(self, ctx):
        params = _find_params(ctx.params)
        reporter = _ProgressReporter(ctx)
        for update in run_find_label_errors(ctx.target_view(), params):
            yield from reporter.report(update)
        summary = load_run_summary(ctx.dataset, params.run_key)
        yield ctx.ops.notify(_summary_message(params.run_key, summary))
        if not ctx.delegated:
            yield ctx.trigger("reload_dataset")

    def __call__(
        self,
        sample_collection,
        gt_field: str,
        probs_field: str,
        *,
        run_key: str = "fixer",
        device: str = "auto",
        logits: bool = False,
        batch_size: int = 8,
        config: FinderConfig | None = None,
        delegate: bool = False,
    ):
        """Runs the operator from Python on a dataset or view.

        Args:
            sample_collection: the dataset or view to search.
            gt_field: the ``fo.Segmentation`` ground-truth field.
            probs_field: the string field with per-sample ``.npy``/``.npz``
                probability paths.
            run_key: names the run and prefixes its outputs.
            device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
            logits: whether the stored arrays are logits.
            batch_size: samples scored together.
            config: the finder's thresholds.
            delegate: queue the run as a delegated operation.
        """
        params = dict(
            gt_field=gt_field,
            probs_field=probs_field,
            run_key=run_key,
            device=device,
            logits=logits,
            batch_size=batch_size,
            **(config or FinderConfig()).to_dict(),
        )
        return foo.execute_operator(
            self.uri,
            dict(view=sample_collection.view(), params=params),
            request_delegation=delegate,
        )


def _find_label_errors_inputs(ctx, inputs: types.Object) -> bool:
    inputs.view_target(ctx)
    dataset = ctx.dataset
    if not field_dropdown(
        inputs,
        "gt_field",
        segmentation_fields(dataset),
        label="Ground-truth field",
        description="The segmentation labels to check (never modified)",
        missing="This dataset has no Segmentation field",
    ):
        return False
    if not field_dropdown(
        inputs,
        "probs_field",
        string_fields(dataset),
        label="Probabilities field",
        description="String field with each sample's .npy/.npz file of "
        "(K, H, W) class probabilities; channel k = mask value k",
        missing="This dataset has no string field of probability paths",
    ):
        return False
    if not new_run_key(ctx, inputs):
        return False

    run_key = ctx.params.get("run_key", "fixer")
    written = list(output_fields(run_key).values())
    saved = list(output_views(run_key).values())
    inputs.view(
        "outputs",
        types.Notice(
            label=f"Writes fields {', '.join(written)} and saved views "
            f"{', '.join(saved)}"
        ),
    )

    dropdown(
        inputs,
        "device",
        list(DEVICES),
        label="Device",
        description="auto uses CUDA when torch sees a GPU",
    )
    inputs.bool(
        "logits",
        default=False,
        label="Stored arrays are logits",
        description="Softmax them first (otherwise they must be "
        "probabilities summing to 1)",
    )
    inputs.int("batch_size", default=8, label="Batch size", min=1)

    inputs.view("thresholds", types.Header(label="Finder thresholds"))
    for f in _CONFIG_FIELDS:
        number = inputs.int if f.type in (int, "int") else inputs.float
        number(
            f.name,
            default=f.default,
            label=f.name.replace("_", " ").capitalize(),
            description=_CONFIG_HELP[f.name],
        )
    return True


def _find_params(params: dict) -> FindParams:
    """Reads a run's parameters; missing ones take their defaults (a call
    from Python does not apply the form's defaults)."""
    defaults = FindParams(gt_field="", probs_field="")
    config = FinderConfig.from_dict(
        {
            f.name: params[f.name]
            for f in _CONFIG_FIELDS
            if params.get(f.name) is not None
        }
    )
    return FindParams(
        gt_field=params["gt_field"],
        probs_field=params["probs_field"],
        run_key=params.get("run_key") or defaults.run_key,
        device=params.get("device") or defaults.device,
        logits=bool(params.get("logits", defaults.logits)),
        batch_size=int(params.get("batch_size") or defaults.batch_size),
        config=config,
    )


def _summary_message(run_key: str, summary: dict) -> str:
    totals = summary["totals"]
    counts = ", ".join(
        f"{totals[t].get('patches', 0)} {t.replace('_', ' ')}" for t in totals
    )
    return (
        f"FIXER run '{run_key}': {counts} patches in "
        f"{summary['num_images']} samples; {len(summary['issues'])} "
        "specific issues"
    )


class _ProgressReporter:
    """Reports progress to the App, throttled, in the form the run needs."""

    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self._last = 0.0

    def report(self, update: Progress):
        now = time.monotonic()
        final = update.done == update.total
        if now - self._last < _PROGRESS_INTERVAL and not final:
            return
        self._last = now
        logger.info("%s %s", _bar(update.fraction), update.label)
        if self._ctx.delegated:
            self._ctx.set_progress(
                progress=update.fraction, label=update.label
            )
        else:
            yield self._ctx.trigger(
                "set_progress",
                dict(progress=update.fraction, label=update.label),
            )


def _bar(fraction: float, width: int = 20) -> str:
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}"
