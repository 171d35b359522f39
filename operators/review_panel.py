"""The operators behind the review panel (``js/review_panel.js``).

The panel is a plain-JS App component: it loads the queue once, draws each
patch's crop itself (prefetching the next images) and sends verdicts in
the background, so reviewing never waits on the server.
"""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._review_queue import VERDICTS, review_queue, review_runs, set_verdict
from ._samples import LabelErrorInputError


class GetReviewQueue(foo.Operator):
    """Returns a run's review sample with each patch's evidence."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="get_review_queue",
            label="Get review queue",
            description="The sampled patches of a FIXER run, with their "
            "evidence, for the review panel",
            unlisted=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.str("run_key", label="Run key (default: the first reviewed)")
        return types.Property(inputs)

    def execute(self, ctx):
        runs = review_runs(ctx.dataset)
        run_key = ctx.params.get("run_key")
        if run_key not in runs:
            run_key = runs[0] if runs else None
        if run_key is None:
            return {"runs": [], "run_key": None, "patches": []}
        return {"runs": runs, **review_queue(ctx.dataset, run_key)}

    def __call__(self, dataset, run_key: str | None = None):
        """Returns the execution result (``.result`` holds the queue)."""
        return foo.execute_operator(
            self.uri, dict(dataset=dataset, params={"run_key": run_key})
        )


class SetReviewVerdict(foo.Operator):
    """Tags one sampled patch confirmed or rejected (or clears it)."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="set_review_verdict",
            label="Set review verdict",
            description="Tag a sampled FIXER patch fixer:confirmed or "
            "fixer:rejected and update the precision estimate",
            unlisted=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.str("run_key", required=True, label="Run key")
        inputs.str("label_id", required=True, label="Patch id")
        inputs.enum(
            "verdict",
            list(VERDICTS),
            label="Verdict (empty: clear it)",
        )
        return types.Property(inputs)

    def execute(self, ctx):
        run_key = ctx.params.get("run_key")
        label_id = ctx.params.get("label_id")
        if not run_key or not label_id:
            raise LabelErrorInputError("run_key and label_id are needed")
        estimate = set_verdict(
            ctx.dataset, run_key, label_id, ctx.params.get("verdict")
        )
        return {"label_id": label_id, "estimate": estimate}

    def __call__(
        self,
        dataset,
        run_key: str,
        label_id: str,
        verdict: str | None,
    ):
        """Returns the execution result (``.result["estimate"]``)."""
        return foo.execute_operator(
            self.uri,
            dict(
                dataset=dataset,
                params={
                    "run_key": run_key,
                    "label_id": label_id,
                    "verdict": verdict,
                },
            ),
        )
