"""The operators behind the review panel (``js/review_panel.js``).

The panel is a plain-JS App component. It opens a queue of FIXER patches
from a view (the one open in the App, or a run's saved view), fetches
their rows and nearest examples a page at a time (prefetching the next),
draws each patch's crop itself and sends verdicts in the background, so
reviewing never waits on the server.
"""

from __future__ import annotations

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ._entry_points import may_call
from ._examples import review_examples
from ._review_queue import (
    CURRENT_VIEW,
    PAGE_SIZE,
    VERDICTS,
    default_source,
    reorder_queue,
    review_queue,
    review_rows,
    review_sources,
    set_verdict,
)
from ._samples import LabelErrorInputError


class GetReviewQueue(foo.Operator):
    """Opens the queue of a view's FIXER patches: their order and the
    first page."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="get_review_queue",
            label="Get review queue",
            description="The FIXER patches of a view, in its order, with "
            "the first page of their evidence, for the review panel",
            unlisted=True,
        )

    def resolve_input(self, ctx):
        inputs = types.Object()
        inputs.str(
            "source",
            label=f"A run's saved view, or '{CURRENT_VIEW}' (default: the "
            "open view if it holds patches, else the first review sample)",
        )
        inputs.int("page_size", default=PAGE_SIZE, min=1, label="Page size")
        return types.Property(inputs)

    def execute(self, ctx):
        sources = review_sources(ctx.dataset)
        source = ctx.params.get("source") or default_source(
            ctx.dataset, ctx.view
        )
        if source != CURRENT_VIEW and source not in sources:
            raise LabelErrorInputError(
                f"'{source}' is not a saved view of a FIXER run's patches"
            )
        view = (
            ctx.view
            if source == CURRENT_VIEW
            else ctx.dataset.load_saved_view(source)
        )
        page_size = int(ctx.params.get("page_size") or PAGE_SIZE)
        out = {"sources": [CURRENT_VIEW, *sources], "source": source}
        try:
            return {**out, **review_queue(view, page_size=page_size)}
        except LabelErrorInputError as e:
            return {**out, "run_key": None, "ids": [], "message": str(e)}

    def __call__(self, dataset, source: str | None = None, **params):
        """Returns the execution result (``.result`` holds the queue)."""
        return foo.execute_operator(
            self.uri,
            dict(dataset=dataset, params={"source": source, **params}),
        )


class GetReviewPage(foo.Operator):
    """Returns the rows of some patches of a run (a page of the queue)."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="get_review_page",
            label="Get review page",
            description="The evidence, outline and verdict of some FIXER "
            "patches, for the review panel",
            unlisted=True,
        )

    def resolve_input(self, ctx):
        return _run_and_ids_input()

    def execute(self, ctx):
        run_key, ids = _run_and_ids(ctx)
        return {"rows": review_rows(ctx.dataset, run_key, ids)}


class GetReviewExamples(foo.Operator):
    """Returns the nearest correctly labelled examples of some patches."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="get_review_examples",
            label="Get review examples",
            description="Nearest correctly labelled regions of each FIXER "
            "patch's suggested class, and the descriptor used",
            unlisted=True,
        )

    def resolve_input(self, ctx):
        return _run_and_ids_input()

    def execute(self, ctx):
        run_key, ids = _run_and_ids(ctx)
        return review_examples(
            ctx.dataset,
            run_key,
            ids,
            may_run_model=lambda spec: may_call(ctx, spec),
        )


def _run_and_ids_input() -> types.Property:
    inputs = types.Object()
    inputs.str("run_key", required=True, label="Run key")
    inputs.list("ids", types.String(), required=True, label="Patch ids")
    return types.Property(inputs)


def _run_and_ids(ctx) -> tuple[str, list[str]]:
    run_key, ids = ctx.params.get("run_key"), ctx.params.get("ids")
    if not run_key or ids is None:
        raise LabelErrorInputError("run_key and ids are needed")
    return run_key, [str(i) for i in ids]


class GetReviewOrder(foo.Operator):
    """Returns the order of a queue's tail learned from the verdicts so
    far (the panel reorders what it has not fetched yet)."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="get_review_order",
            label="Get review order",
            description="The order of some FIXER patches of a review queue "
            "learned from the run's verdicts, for the review panel",
            unlisted=True,
        )

    def resolve_input(self, ctx):
        inputs = _run_and_ids_input().type
        inputs.list(
            "places",
            types.Number(),
            required=True,
            label="The patches' places in the view",
        )
        return types.Property(inputs)

    def execute(self, ctx):
        run_key, ids = _run_and_ids(ctx)
        places = ctx.params.get("places")
        if places is None:
            raise LabelErrorInputError("places are needed")
        return reorder_queue(ctx.dataset, run_key, ids, places)


class SetReviewVerdict(foo.Operator):
    """Tags one patch confirmed or rejected (or clears it)."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="set_review_verdict",
            label="Set review verdict",
            description="Tag a FIXER patch fixer:confirmed or "
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
