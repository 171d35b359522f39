"""Form pieces shared by FIXER's operators."""

from __future__ import annotations

import fiftyone as fo
import fiftyone.operators.types as types

from ._keys import key_problem
from ._pipeline import (
    fixer_output_fields,
    is_fixer_run,
    list_fixer_runs,
    output_conflicts,
)


def refuse(inputs: types.Object, name: str, view) -> bool:
    """Adds a message that marks the form invalid; returns False."""
    prop = inputs.view(name, view)
    prop.invalid = True
    prop.error_message = view.label
    return False


def segmentation_fields(dataset: fo.Dataset) -> list[str]:
    """Names of the dataset's ``fo.Segmentation`` fields, FIXER's own
    outputs last (so the default is a ground truth)."""
    names = dataset.get_field_schema(embedded_doc_type=fo.Segmentation)
    outputs = fixer_output_fields(dataset)
    return sorted(names, key=lambda name: (name in outputs, name))


def string_fields(dataset: fo.Dataset) -> list[str]:
    """Names of the dataset's string fields."""
    schema = dataset.get_field_schema(ftype=fo.StringField)
    return sorted(k for k in schema if k not in ("filepath",))


def dropdown(
    inputs: types.Object,
    name: str,
    choices: list[str],
    *,
    label: str,
    description: str = "",
    required: bool = False,
) -> None:
    """Adds a dropdown of ``choices``; the first one is the default."""
    view = types.Dropdown(label=label, description=description)
    for choice in choices:
        view.add_choice(choice, label=choice)
    inputs.enum(
        name,
        view.values(),
        required=required,
        default=choices[0],
        label=label,
        description=description,
        view=view,
    )


def field_dropdown(
    inputs: types.Object,
    name: str,
    choices: list[str],
    *,
    label: str,
    description: str,
    missing: str,
) -> bool:
    """Adds a required field picker; marks the form invalid if empty."""
    if not choices:
        return refuse(inputs, name + "_missing", types.Warning(label=missing))
    dropdown(
        inputs,
        name,
        choices,
        label=label,
        description=description,
        required=True,
    )
    return True


def gt_field_dropdown(ctx, inputs: types.Object, description: str) -> bool:
    """Adds the required ground-truth (segmentation) field picker."""
    return field_dropdown(
        inputs,
        "gt_field",
        segmentation_fields(ctx.dataset),
        label="Ground-truth field",
        description=description,
        missing="This dataset has no Segmentation field",
    )


def new_run_key(ctx, inputs: types.Object, *, default: str = "fixer") -> bool:
    """Adds the run key input; an existing FIXER key is replaced, others
    and invalid names are refused."""
    inputs.str(
        "run_key",
        default=default,
        label="Run key",
        description="Names the run and prefixes every field and view it "
        "writes",
    )
    run_key = ctx.params.get("run_key", default)
    if not run_key:
        return False
    problem = key_problem(run_key)
    if problem:
        return refuse(inputs, "run_key_error", types.Error(label=problem))
    dataset = ctx.dataset
    if run_key in dataset.list_runs() and not is_fixer_run(dataset, run_key):
        return refuse(
            inputs,
            "run_key_error",
            types.Error(label=f"Run key '{run_key}' already exists"),
        )
    taken = output_conflicts(dataset, run_key)
    if taken:
        return refuse(
            inputs,
            "run_key_error",
            types.Error(
                label=f"Run key '{run_key}' would replace "
                f"{', '.join(taken)}; choose another"
            ),
        )
    if is_fixer_run(dataset, run_key):
        inputs.view(
            "run_key_notice",
            types.Notice(
                label=f"FIXER run '{run_key}' exists; its fields and views "
                "will be replaced"
            ),
        )
    return True


def existing_run_key(ctx, inputs: types.Object) -> str | None:
    """Adds a picker of the dataset's FIXER runs; returns the chosen key."""
    run_keys = list_fixer_runs(ctx.dataset)
    if not run_keys:
        refuse(
            inputs,
            "no_runs",
            types.Warning(
                label="This dataset has no FIXER runs",
                description="Run 'Find label errors' first",
            ),
        )
        return None
    dropdown(inputs, "run_key", run_keys, label="Run key", required=True)
    return ctx.params.get("run_key", run_keys[0])
