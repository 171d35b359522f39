"""Operator parameters <-> the pipeline's ``FindParams``.

Parameters arrive flat (from the App's form or from Python, where the
form's defaults are not applied), so every one has a default here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..fixer_core import FinderConfig
from ..fixer_core.models import Preprocess
from ..fixer_core.training import TrainConfig
from ._pipeline import FindParams
from ._samples import LabelErrorInputError
from ._sources import ModelSpec, TrainingSpec

CONFIG_FIELDS = dataclasses.fields(FinderConfig)
# Training options, by parameter name -> TrainConfig field
TRAIN_FIELDS = {
    "folds": "folds",
    "epochs": "epochs",
    "train_batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "weight_decay": "weight_decay",
    "train_size": "train_size",
    "augment": "augment",
    "seed": "seed",
    "width": "width",
}


def find_params(params: dict) -> FindParams:
    """Builds a run's parameters from the operator's flat params."""
    source = params.get("probs_source") or "stored"
    defaults = FindParams(gt_field="")
    return FindParams(
        gt_field=params["gt_field"],
        probs_field=params.get("probs_field"),
        probs_source=source,
        model=_model_spec(params) if source == "model" else None,
        training=_training_spec(params)
        if source == "cross_validation"
        else None,
        ignore_values=tuple(ints(params.get("ignore_values")) or ()),
        save_probs_dir=params.get("save_probs_dir") or None,
        save_probs_field=params.get("save_probs_field") or None,
        run_key=params.get("run_key") or defaults.run_key,
        device=params.get("device") or defaults.device,
        logits=bool(params.get("logits", defaults.logits)),
        batch_size=int(params.get("batch_size") or defaults.batch_size),
        num_threads=int(params["num_threads"])
        if params.get("num_threads")
        else None,
        config=FinderConfig.from_dict(_present(params, CONFIG_FIELDS)),
    )


def call_params(
    gt_field: str,
    probs_field: str | None = None,
    *,
    preprocess: Preprocess | None = None,
    training: TrainConfig | None = None,
    config: FinderConfig | None = None,
    output_classes: Sequence[int] | None = None,
    ignore_values: Sequence[int] | None = None,
    **options,
) -> dict:
    """The flat params of a run asked for from Python (by the API's
    ``find_label_errors`` or the operator's ``__call__``): typed options
    flattened as the form spells them, the others as given."""
    return dict(
        gt_field=gt_field,
        probs_field=probs_field,
        output_classes=joined(output_classes),
        ignore_values=joined(ignore_values),
        **options,
        **flat_params(preprocess=preprocess, training=training, config=config),
    )


def find_workers(params: dict) -> int:
    """The processes a run of the operator's flat params is split over
    (``workers``, default 1)."""
    workers = int(params.get("workers") or 1)
    if workers < 1:
        raise LabelErrorInputError(f"workers must be positive, got {workers}")
    return workers


def flat_params(
    *,
    preprocess: Preprocess | None = None,
    training: TrainConfig | None = None,
    config: FinderConfig | None = None,
) -> dict:
    """The flat params of typed options (for the Python entry point)."""
    out = dict((config or FinderConfig()).to_dict())
    if preprocess is not None:
        p = preprocess.to_dict()
        out.update(
            input_size=joined(p["size"]),
            scale=p["scale"],
            mean=joined(p["mean"]),
            std=joined(p["std"]),
            channel_order=p["channel_order"],
        )
    if training is not None:
        t = training.to_dict()
        out.update({name: t[key] for name, key in TRAIN_FIELDS.items()})
        out["train_size"] = joined(out["train_size"])
    return out


def joined(values) -> str | None:
    """``[1, 2]`` -> ``"1, 2"``: list options travel as text, as the
    App's form has them."""
    if values is None:
        return None
    return ", ".join(str(v) for v in values)


def ints(value) -> list[int] | None:
    """``[1, 2]`` or ``"1, 2"`` -> ``[1, 2]``; empty -> ``None``."""
    return _numbers(value, int)


def floats(value) -> list[float] | None:
    """``[0.5, 0.5]`` or ``"0.5, 0.5"`` -> ``[0.5, 0.5]``."""
    return _numbers(value, float)


def _numbers(value, cast):
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [cast(v) for v in value]


def _model_spec(params: dict) -> ModelSpec | None:
    if not params.get("model"):
        return None
    defaults = Preprocess()
    size = ints(params.get("input_size"))
    preprocess = Preprocess(
        size=tuple(size) if size else None,
        scale=float(params.get("scale") or defaults.scale),
        mean=tuple(floats(params.get("mean")) or defaults.mean),
        std=tuple(floats(params.get("std")) or defaults.std),
        channel_order=params.get("channel_order") or defaults.channel_order,
    )
    output_classes = ints(params.get("output_classes"))
    return ModelSpec(
        model=params["model"],
        weights=params.get("model_weights") or None,
        preprocess=preprocess,
        output_classes=tuple(output_classes) if output_classes else None,
        outputs_logits=bool(params.get("outputs_logits", True)),
    )


def _training_spec(params: dict) -> TrainingSpec:
    values = {
        key: params[name]
        for name, key in TRAIN_FIELDS.items()
        if params.get(name) is not None
    }
    if "train_size" in values:
        size = ints(values["train_size"])
        values["train_size"] = tuple(size) if size else None
    return TrainingSpec(
        config=TrainConfig.from_dict(values),
        checkpoint_dir=params.get("checkpoint_dir") or None,
        architecture=params.get("architecture") or None,
    )


def _present(params: dict, fields) -> dict:
    return {
        f.name: params[f.name]
        for f in fields
        if params.get(f.name) is not None
    }
