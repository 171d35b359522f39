"""The ``draw_review_sample`` operator."""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._inputs import existing_run_key
from ._pipeline import review_view
from ._review import STRATIFY_BY
from ._review_tags import CONFIRMED_TAG, REJECTED_TAG, SAMPLED_TAG
from .api import draw_review_sample


class DrawReviewSample(foo.Operator):
    """Tags a stratified random sample of a run's patches for review."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="draw_review_sample",
            label="Draw review sample",
            description="Tag a seeded sample of flagged patches, up to N "
            "per class, for reviewers to confirm or reject",
            icon="/assets/icon.svg",
            dynamic=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        run_key = existing_run_key(ctx, inputs)
        if run_key is not None:
            inputs.int(
                "per_class",
                default=25,
                min=1,
                label="Patches per class",
                description="Classes with fewer patches are taken whole",
            )
            choices = types.RadioGroup()
            for value in STRATIFY_BY:
                choices.add_choice(value, label=f"{value.capitalize()} class")
            inputs.enum(
                "stratify_by",
                choices.values(),
                default="given",
                label="Stratify by",
                view=choices,
            )
            inputs.int("seed", default=0, label="Seed")
            inputs.view(
                "notice",
                types.Notice(
                    label=f"Sampled patches get the label tag "
                    f"'{SAMPLED_TAG}' (a previous sample's tags are "
                    f"cleared) and the saved view '{review_view(run_key)}'. "
                    f"Reviewers tag them '{CONFIRMED_TAG}' or "
                    f"'{REJECTED_TAG}'."
                ),
            )
        return types.Property(
            inputs, view=types.View(label="Draw review sample")
        )

    def execute(self, ctx):
        review = draw_review_sample(
            ctx.dataset,
            ctx.params["run_key"],
            per_class=_int(ctx.params.get("per_class"), 25),
            stratify_by=ctx.params.get("stratify_by") or "given",
            seed=_int(ctx.params.get("seed"), 0),
        )
        ctx.ops.reload_dataset()
        ctx.ops.set_view(name=review["view"])
        return {
            "view": review["view"],
            "num_sampled": review["num_sampled"],
            "classes": review["classes"],
        }

    def resolve_output(self, ctx):
        outputs = types.Object()
        outputs.str("view", label="Saved view")
        outputs.int("num_sampled", label="Patches sampled")
        table = types.TableView()
        for key, label in (
            ("class", "Class"),
            ("flagged_patches", "Flagged patches"),
            ("flagged_pixels", "Flagged pixels"),
            ("sampled", "Sampled"),
        ):
            table.add_column(key, label=label)
        outputs.list("classes", types.Object(), label="Per class", view=table)
        return types.Property(outputs)

    def __call__(
        self,
        dataset,
        run_key: str = "fixer",
        *,
        per_class: int = 25,
        stratify_by: str = "given",
        seed: int = 0,
    ):
        """Draws the sample from Python; returns the execution result."""
        return foo.execute_operator(
            self.uri,
            dict(
                dataset=dataset,
                params={
                    "run_key": run_key,
                    "per_class": per_class,
                    "stratify_by": stratify_by,
                    "seed": seed,
                },
            ),
        )


def _int(value, default: int) -> int:
    """A form's integer, or the default when left empty."""
    return default if value is None else int(value)
