"""The ``find_label_errors`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..fixer_core import FinderConfig
from ..fixer_core.models import Preprocess
from ..fixer_core.neighbours import ALONE_NOTE
from ..fixer_core.quality import weakly_predicted_note
from ..fixer_core.training import TrainConfig
from ._entry_points import (
    allowed_entry_points,
    check_entry_point,
    may_call,
    trust_from_python,
)
from ._inputs import (
    dropdown,
    field_dropdown,
    gt_field_dropdown,
    new_run_key,
    refuse,
    string_fields,
)
from ._params import CONFIG_FIELDS, call_params, find_params
from ._pipeline import DEVICES, output_fields, output_views
from ._progress import report_progress
from .api import LabelErrorResults, iter_find_label_errors

_DATASET = "DATASET"
_SOURCES = (
    ("stored", "Stored", "Per-sample .npy/.npz files named by a field"),
    ("model", "My model", "A TorchScript file or package.module:factory"),
    (
        "cross_validation",
        "Train cross-validated models",
        "K-fold models trained on these samples' own labels",
    ),
)
_CONFIG_HELP = {
    "min_confidence": "Cap on the per-class confidence thresholds",
    "min_area": "Smallest patch reported, in pixels",
    "speck_radius": "Radius of the opening that removes specks",
    "boundary_width": "Flags this close to the suggested class are "
    "boundary noise",
    "score_area_scale": "Patch area (pixels) at which the size factor of "
    "the score is 0.5",
    "prior_strength": "Correction of the model's lean towards frequent "
    "classes (1 = full, 0 = none)",
    "prior_edge_share": "Prior-only suggestions are dropped when this "
    "share of their outline is the suggested class",
    "prior_max_background": "The correction lifts a class's background "
    "probability (its model noise) at most to this level",
    "margin_classes": "A whole region's margin is taken among its this "
    "many most likely classes",
    "min_score": "Patches scoring lower are not reported",
    "min_error_probability": "Patches less likely than this to be label "
    "errors (rather than the model's mistakes) are not reported",
    "correct_min_probability": "The corrected field applies the "
    "suggestions of patches at least this likely to be label errors",
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
    "blur_reference": "Model blur (pixels) the minimum area, boundary "
    "width and score area scale are for; they grow with a blurrier "
    "model (0 = fixed)",
    "repeat_window": "A patch repeats one of this many previous images "
    "(same classes, same place: video frames) and is shown after the "
    "others (0 = off)",
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
        params = find_params(ctx.params)
        if params.model is not None:
            check_entry_point(ctx, params.model.model, "Model")
        if params.training is not None:
            check_entry_point(
                ctx, params.training.architecture, "Architecture"
            )
        results = yield from report_progress(
            ctx, iter_find_label_errors(_target_view(ctx), ctx.params), "FIXER"
        )
        if results is None:  # a rank of a torchrun run, not its lead
            return
        yield ctx.ops.notify(_summary_message(results))
        if not ctx.delegated:
            yield ctx.trigger("reload_dataset")

    def __call__(
        self,
        sample_collection,
        gt_field: str,
        probs_field: str | None = None,
        *,
        probs_source: str = "stored",
        model: str | None = None,
        model_weights: str | None = None,
        preprocess: Preprocess | None = None,
        output_classes: list[int] | None = None,
        outputs_logits: bool = True,
        training: TrainConfig | None = None,
        checkpoint_dir: str | None = None,
        architecture: str | None = None,
        ignore_values: list[int] | None = None,
        save_probs_dir: str | None = None,
        save_probs_field: str | None = None,
        run_key: str = "fixer",
        device: str = "auto",
        logits: bool = False,
        batch_size: int = 8,
        config: FinderConfig | None = None,
        workers: int = 1,
        num_threads: int | None = None,
        delegate: bool = False,
    ):
        """Runs the operator from Python on a dataset or view.

        Args:
            sample_collection: the dataset or view to search.
            gt_field: the ``fo.Segmentation`` ground-truth field.
            probs_field: with ``probs_source="stored"``, the string field
                of per-sample ``.npy``/``.npz`` probability paths.
            probs_source: ``"stored"``, ``"model"`` or
                ``"cross_validation"``.
            model: a TorchScript file or ``package.module:factory``.
            model_weights: a ``state_dict`` file for the model.
            preprocess: how images are fed to the model.
            output_classes: the mask value of each model output channel.
            outputs_logits: whether the model outputs logits.
            training: cross-validation settings (folds, epochs, ...).
            checkpoint_dir: where fold models are kept.
            architecture: ``package.module:factory(num_classes)`` for the
                fold models (default: a compact U-Net).
            ignore_values: mask values never scored.
            save_probs_dir: keep computed probabilities in this folder ...
            save_probs_field: ... with their paths in this field.
            run_key: names the run and prefixes its outputs.
            device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
            logits: whether stored arrays are logits.
            batch_size: samples scored together.
            config: the finder's thresholds.
            workers: processes that share the run (torch.distributed;
                one GPU each where there are GPUs).
            num_threads: CPU threads per process (default: the cores
                this process may use, shared by the workers).
            delegate: queue the run as a delegated operation.
        """
        trust_from_python(model, architecture)
        options = dict(locals())
        for name in ("self", "sample_collection", "delegate"):
            del options[name]
        params = call_params(**options)
        return foo.execute_operator(
            self.uri,
            dict(view=sample_collection.view(), params=params),
            request_delegation=delegate,
        )


def _find_label_errors_inputs(ctx, inputs: types.Object) -> bool:
    _target_inputs(ctx, inputs)
    if not gt_field_dropdown(
        ctx, inputs, "The segmentation labels to check (never modified)"
    ):
        return False
    if not _probability_inputs(ctx, inputs):
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
    inputs.int("batch_size", default=8, label="Batch size", min=1)
    inputs.int(
        "workers",
        default=1,
        label="Worker processes",
        description="Processes that share a delegated run, each on a "
        "shard of the samples (one GPU each where there are GPUs)",
        min=1,
    )
    inputs.int(
        "num_threads",
        label="CPU threads per process",
        description="Default: the cores this process may use, shared by "
        "the workers (OMP_NUM_THREADS, when set)",
        min=1,
    )

    inputs.view(
        "thresholds",
        types.Header(
            label="Finder thresholds",
            description="Optional: the defaults suit most datasets",
            divider=True,
        ),
    )
    for f in CONFIG_FIELDS:
        number = inputs.int if f.type in (int, "int") else inputs.float
        name = f.name.replace("fn_", "false_negative_", 1)
        number(
            f.name,
            default=f.default,
            label=name.replace("_", " ").capitalize(),
            description=_CONFIG_HELP[f.name],
        )
    return True


def _target_inputs(ctx, inputs: types.Object) -> None:
    """The samples to search, and a notice when they are not the whole
    dataset (a run replaces the previous run of its key)."""
    generated = ctx.view._is_generated
    inputs.view_target(ctx, default_target=None if generated else _DATASET)
    view = _target_view(ctx)
    count, total = len(view), len(ctx.dataset)
    if generated:
        label = (
            f"The App shows patches: the run searches all {total} samples "
            "of the dataset"
        )
    elif count < total:
        label = (
            f"Searches {count} of the dataset's {total} samples; choose "
            "Dataset to search them all"
        )
    else:
        return
    inputs.view("target_notice", types.Notice(label=label))


def _target_view(ctx):
    """The chosen target; a patches or frames view stands for the whole
    dataset, since FIXER searches images."""
    view = ctx.target_view()
    return ctx.dataset if view._is_generated else view


def _probability_inputs(ctx, inputs: types.Object) -> bool:
    sources = types.RadioGroup()
    for value, label, description in _SOURCES:
        sources.add_choice(value, label=label, description=description)
    inputs.enum(
        "probs_source",
        sources.values(),
        default="stored",
        label="Probabilities",
        view=sources,
    )
    source = ctx.params.get("probs_source") or "stored"
    if source == "stored":
        if not field_dropdown(
            inputs,
            "probs_field",
            string_fields(ctx.dataset),
            label="Probabilities field",
            description="String field with each sample's .npy/.npz file "
            "of (K, H, W) class probabilities; channel k = mask value k",
            missing="This dataset has no string field of probability paths",
        ):
            return False
        inputs.bool(
            "logits",
            default=False,
            label="Stored arrays are logits",
            description="Softmax them first (otherwise they must be "
            "probabilities summing to 1)",
        )
    elif source == "model":
        if not _model_inputs(ctx, inputs):
            return False
    elif not _training_inputs(ctx, inputs):
        return False
    inputs.str(
        "ignore_values",
        label="Ignored mask values",
        description="Comma-separated mask values never scored (values "
        "without a probability channel, such as 255, always are)",
    )
    if source != "stored":
        inputs.str(
            "save_probs_field",
            label="Save probabilities to field",
            description="Optional: keep the computed probabilities as "
            ".npy files, their paths in this string field",
        )
        inputs.str("save_probs_dir", label="... in this folder")
    return True


def _entry_point_input(
    ctx, inputs: types.Object, name: str, *, label: str, description: str
) -> bool:
    """Adds a text input for a TorchScript file or an entry point that
    suggests the allowed entry points; refuses any other entry point."""
    allowed = allowed_entry_points(ctx)
    inputs.str(
        name,
        required=name == "model",
        label=label,
        description=f"{description}. Allowed entry points: "
        f"{', '.join(allowed) or 'none (an administrator allows them)'}",
        view=types.AutocompleteView(
            choices=[types.Choice(a) for a in allowed]
        ),
    )
    spec = (ctx.params.get(name) or "").strip()
    if not may_call(ctx, spec):
        return refuse(
            inputs,
            f"{name}_error",
            types.Error(
                label=f"Entry point '{spec}' is not allowed by the "
                "administrator"
            ),
        )
    return True


def _model_inputs(ctx, inputs: types.Object) -> bool:
    if not _entry_point_input(
        ctx,
        inputs,
        "model",
        label="Model",
        description="A TorchScript file, or an allowed package.module:"
        "factory returning a torch.nn.Module",
    ):
        return False
    inputs.str("model_weights", label="Weights file (state_dict)")
    inputs.str(
        "input_size",
        label="Input size",
        description="H, W the model expects (empty: each image's own size)",
    )
    inputs.float("scale", default=1 / 255, label="Pixel scale")
    inputs.str("mean", default="0.485, 0.456, 0.406", label="Mean")
    inputs.str("std", default="0.229, 0.224, 0.225", label="Std")
    dropdown(inputs, "channel_order", ["RGB", "BGR"], label="Channel order")
    inputs.str(
        "output_classes",
        label="Output channel classes",
        description="Mask value of each output channel, comma-separated "
        "(empty: channel k is class k)",
    )
    inputs.bool("outputs_logits", default=True, label="Model outputs logits")
    return True


def _training_inputs(ctx, inputs: types.Object) -> bool:
    defaults = TrainConfig()
    inputs.int("folds", default=defaults.folds, label="Folds", min=2)
    inputs.int("epochs", default=defaults.epochs, label="Epochs", min=1)
    inputs.str(
        "train_size",
        label="Training size",
        description="H, W images are resized to for training (empty: "
        "native size)",
    )
    inputs.int(
        "train_batch_size", default=defaults.batch_size, label="Batch size"
    )
    inputs.float(
        "learning_rate", default=defaults.learning_rate, label="Learning rate"
    )
    inputs.int("seed", default=defaults.seed, label="Seed")
    if not _entry_point_input(
        ctx,
        inputs,
        "architecture",
        label="Architecture",
        description="Optional allowed package.module:factory(num_classes) "
        "returning an nn.Module (default: a compact U-Net)",
    ):
        return False
    inputs.str(
        "checkpoint_dir",
        label="Checkpoint folder",
        description="Where fold models are kept; an interrupted run "
        "resumes from it (default: under FiftyOne's dataset dir)",
    )
    return True


def _summary_message(results: LabelErrorResults) -> str:
    summary = results.summary
    totals = summary["totals"]
    counts = ", ".join(
        f"{totals[t].get('patches', 0)} {t.replace('_', ' ')}" for t in totals
    )
    message = (
        f"FIXER run '{results.run_key}': {counts} patches in "
        f"{summary['num_images']} samples; {len(summary['issues'])} "
        "specific issues; about "
        f"{summary['expected_errors']:.0f} label errors expected"
    )
    shifted = len(summary["shifted_labels"])
    if shifted:
        message += f"; {shifted} labels shifted against their images"
    repeats = summary.get("repeats", 0)
    if repeats:
        message += (
            f"; {repeats} patches repeat one of the previous image "
            "(listed last)"
        )
    vouched = summary.get("vouched", 0)
    if vouched:
        message += (
            f"; {vouched} disagreements not reported: the neighbouring "
            "frames label them the same way"
        )
    if not summary.get("framed", 0):
        message += f"; {ALONE_NOTE}"
    note = weakly_predicted_note(summary["weakly_predicted"])
    return f"{message}. {note}" if note else message
