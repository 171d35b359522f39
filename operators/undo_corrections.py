"""The ``undo_corrections`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._apply import list_applies
from ._inputs import dropdown, refuse
from .api import undo_corrections


class UndoCorrections(foo.Operator):
    """Restores the ground truth that an ``apply_corrections`` changed."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="undo_corrections",
            label="Undo corrections",
            description="Restore the ground truth from the backup an "
            "'Apply corrections' made, and remove its records",
            icon="/assets/icon.svg",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        keys = list_applies(ctx.dataset)
        if not keys:
            refuse(
                inputs,
                "no_applies",
                types.Warning(label="This dataset has no FIXER corrections"),
            )
        else:
            dropdown(
                inputs,
                "apply_key",
                keys[::-1],
                label="Correction",
                description="The latest first; undo later ones first",
                required=True,
            )
        return types.Property(
            inputs, view=types.View(label="Undo corrections")
        )

    def execute(self, ctx):
        result = undo_corrections(ctx.dataset, ctx.params["apply_key"])
        ctx.ops.reload_dataset()
        return result

    def __call__(self, dataset, apply_key: str = "fixer_apply"):
        """Undoes a correction from Python."""
        return foo.execute_operator(
            self.uri, dict(dataset=dataset, params={"apply_key": apply_key})
        )
