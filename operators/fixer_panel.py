"""The FIXER panel: a run's issues, flags, label quality and review."""

from __future__ import annotations

from collections import Counter

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types
from fiftyone import ViewField as F

from ..fixer_core.config import ERROR_TYPES
from ..fixer_core.quality import flag_shares, weakly_predicted_note
from ._pipeline import (
    list_fixer_runs,
    output_fields,
    output_views,
    stored_results,
)
from ._quality import run_label_quality_report
from ._review import estimate_flag_precision
from ._samples import LabelErrorInputError

_BAR = {"type": "bar"}
# One colour per error type in every chart
_TYPE_COLORS = {
    "general": "#1f77b4",
    "ambiguous": "#ff7f0e",
    "false_negative": "#2ca02c",
}
_ISSUE_COLUMNS = (
    ("name", "Issue"),
    ("error_type", "Type"),
    ("num_patches", "Patches"),
    ("num_images", "Images"),
    ("num_pixels", "Pixels"),
)
_PRECISION_COLUMNS = (
    ("class", "Class"),
    ("flagged_patches", "Flagged"),
    ("reviewed", "Reviewed"),
    ("missing", "Missing"),
    ("precision", "Precision"),
    ("low", "95% low"),
    ("high", "95% high"),
)
_LAYOUT = {
    "height": 280,
    "autosize": True,
    "margin": {"t": 40, "b": 80, "l": 50, "r": 10},
}
_CONFIG = {"responsive": True, "displayModeBar": False}


class FixerPanel(foo.Panel):
    """Shows what a FIXER run stored; never reruns the finder."""

    @property
    def config(self) -> foo.PanelConfig:
        return foo.PanelConfig(
            name="fixer_panel",
            label="FIXER",
            icon="/assets/icon.svg",
            help_markdown="Issues, error types, per-class label change and "
            "review estimates of a FIXER run. Click an issue, a type or a "
            "class to show its patches.",
        )

    def on_load(self, ctx):
        runs = list_fixer_runs(ctx.dataset)
        run_key = ctx.panel.state.run_key
        if run_key not in runs:
            run_key = runs[0] if runs else None
        state = {"runs": runs, "run_key": run_key, "error": None}
        data = {}
        if run_key is not None:
            try:
                content = panel_content(ctx.dataset, run_key)
            except LabelErrorInputError as e:
                state["error"] = str(e)
            else:
                state.update(content[0])
                data = content[1]
        ctx.panel.state.set(state)
        if data:
            ctx.panel.data.set(data)

    def on_change_dataset(self, ctx):
        ctx.panel.state.run_key = None
        self.on_load(ctx)

    def on_change_run(self, ctx):
        ctx.panel.state.run_key = ctx.params.get("value")
        self.on_load(ctx)

    def on_compute_report(self, ctx):
        run_label_quality_report(ctx.dataset, ctx.panel.state.run_key)
        self.on_load(ctx)

    def on_estimate(self, ctx):
        estimate_flag_precision(ctx.dataset, ctx.panel.state.run_key)
        self.on_load(ctx)

    def on_click_issue(self, ctx):
        run_key = ctx.panel.state.run_key
        issues = flag_shares(stored_results(ctx.dataset, run_key)["summary"])
        row = ctx.params.get("row")
        if row is None or not 0 <= row < len(issues["issues"]):
            return
        name = issues["issues"][row]["name"]
        patches = output_fields(run_key)["patches"]
        ctx.ops.set_view(
            view=ctx.dataset.filter_labels(patches, F("issue") == name)
        )

    def on_click_type(self, ctx):
        error_type = ctx.params.get("x")
        if error_type in ERROR_TYPES:
            name = output_views(ctx.panel.state.run_key)[error_type]
            ctx.ops.set_view(name=name)

    def on_click_class(self, ctx):
        patches = output_fields(ctx.panel.state.run_key)["patches"]
        ctx.ops.set_view(
            view=ctx.dataset.filter_labels(
                patches, F("given_label") == ctx.params.get("x")
            )
        )

    def render(self, ctx):
        panel = types.Object()
        runs = ctx.panel.state.runs or []
        run_key = ctx.panel.state.run_key
        if run_key is None:
            panel.md(
                "This dataset has no FIXER runs: run **Find label errors** "
                "first.",
                name="no_runs",
            )
            return types.Property(panel)
        if len(runs) > 1:
            choices = types.DropdownView()
            for key in runs:
                choices.add_choice(key, label=key)
            panel.enum(
                "run_key",
                choices.values(),
                default=run_key,
                label="Run",
                view=choices,
                on_change=self.on_change_run,
            )
        if ctx.panel.state.error:
            panel.view("error", types.Error(label=ctx.panel.state.error))
            return types.Property(panel)
        panel.md(ctx.panel.state.headline or "", name="headline")
        table = types.TableView(on_click_row=self.on_click_issue)
        for key, label in _ISSUE_COLUMNS:
            table.add_column(key, label=label)
        panel.list("issues", types.Object(), view=table)
        panel.plot(
            "by_type",
            layout={**_LAYOUT, "title": {"text": "Patches by error type"}},
            config=_CONFIG,
            on_click=self.on_click_type,
        )
        panel.plot(
            "by_class",
            layout={
                **_LAYOUT,
                "title": {"text": "Patches by given class"},
                "barmode": "stack",
                "showlegend": True,
            },
            config=_CONFIG,
            on_click=self.on_click_class,
        )
        if ctx.panel.state.has_report:
            panel.md(ctx.panel.state.quality or "", name="quality")
            panel.plot(
                "pixel_change",
                layout={
                    **_LAYOUT,
                    "title": {
                        "text": "Pixels per class: after / before correction"
                    },
                },
                config=_CONFIG,
                on_click=self.on_click_class,
            )
        else:
            panel.md("No label-quality report yet.", name="quality_missing")
            panel.btn(
                "compute_report",
                label="Compute label-quality report",
                on_click=self.on_compute_report,
            )
        panel.md(ctx.panel.state.review or "", name="review")
        if ctx.panel.state.has_estimate:
            table = types.TableView()
            for key, label in _PRECISION_COLUMNS:
                table.add_column(key, label=label)
            panel.list("precision", types.Object(), view=table)
        if ctx.panel.state.has_sample:
            panel.btn(
                "estimate",
                label="Estimate precision from the review tags",
                on_click=self.on_estimate,
            )
        return types.Property(
            panel, view=types.GridView(orientation="vertical")
        )


def _note_paragraph(weakly_predicted: dict) -> str:
    note = weakly_predicted_note(weakly_predicted)
    return f"\n\n{note}" if note else ""


def panel_content(dataset: fo.Dataset, run_key: str) -> tuple[dict, dict]:
    """The panel's state (texts, flags) and data (table rows, plotly
    traces) for a run, read from what the run stored."""
    stored = stored_results(dataset, run_key)
    flags = flag_shares(stored["summary"])
    quality = stored.get("quality")
    review, estimate = stored.get("review"), stored.get("precision")
    state = {
        "headline": (
            f"**{flags['num_patches']:,} patches**, "
            f"{flags['flagged_pixels']:,} pixels "
            f"({100 * flags['flagged_share']:.2f}% of the scored pixels); "
            f"{100 * flags['issue_pixel_share']:.0f}% of the flagged "
            "pixels lie in specific issues"
            + _note_paragraph(flags["weakly_predicted"])
        ),
        "has_report": bool(quality),
        "quality": _quality_text(quality),
        "has_sample": bool(review),
        "has_estimate": bool(estimate),
        "review": _review_text(review, estimate),
    }
    data = {
        "issues": [
            {k: issue[k] for k, _ in _ISSUE_COLUMNS}
            for issue in flags["issues"]
        ],
        "by_type": [
            {
                **_BAR,
                "x": list(ERROR_TYPES),
                "y": [flags["by_type"][t]["patches"] for t in ERROR_TYPES],
                "name": "patches",
                "marker": {"color": [_TYPE_COLORS[t] for t in ERROR_TYPES]},
            }
        ],
        "by_class": _class_bars(dataset, run_key),
    }
    if quality:
        rows = [r for r in quality["classes"] if r["ratio"] is not None]
        data["pixel_change"] = [
            {
                **_BAR,
                "x": [r["class"] for r in rows],
                "y": [r["ratio"] for r in rows],
                "name": "after / before",
            }
        ]
    if estimate:
        data["precision"] = [
            {k: _rounded(row[k]) for k, _ in _PRECISION_COLUMNS}
            for row in estimate["classes"]
        ]
    return state, data


def _quality_text(quality: dict | None) -> str:
    if not quality:
        return ""
    rare = quality["rare_growth"]
    text = (
        f"Original vs corrected labels: **mIoU {_num(quality['miou'])}**, "
        f"{100 * quality['changed_share']:.2f}% of the pixels corrected"
    )
    if rare["classes"] and rare["ratio"] is not None:
        text += (
            f"; classes under 1% of the pixels ({', '.join(rare['classes'])})"
            f" changed x{_num(rare['ratio'])} together"
        )
    return text


def _class_bars(dataset: fo.Dataset, run_key: str) -> list[dict]:
    """Plotly bars of patches per given class, stacked by error type."""
    prefix = f"{output_fields(run_key)['patches']}.detections"
    given, types_ = dataset.values(
        [f"{prefix}.given_label", f"{prefix}.error_type"]
    )
    counts = Counter(
        pair
        for g, t in zip(given, types_, strict=True)
        for pair in zip(g or [], t or [], strict=True)
    )
    classes = sorted({c for c, _ in counts})
    return [
        {
            **_BAR,
            "name": t,
            "x": classes,
            "y": [counts[(c, t)] for c in classes],
            "marker": {"color": _TYPE_COLORS[t]},
        }
        for t in ERROR_TYPES
    ]


def _review_text(review: dict | None, estimate: dict | None) -> str:
    if not review:
        return (
            "No review sample yet: run **Draw review sample**, then tag the "
            "sampled patches `fixer:confirmed` or `fixer:rejected`."
        )
    text = (
        f"Review sample: {review['num_sampled']} patches (up to "
        f"{review['per_class']} per {review['stratify_by']} class, seed "
        f"{review['seed']}), saved view `{review['view']}`."
    )
    if not estimate:
        return text + " Not estimated yet."
    overall = estimate["overall"]
    text += f" Reviewed {overall['reviewed']}, missing {overall['missing']}."
    est = overall["precision_patches"]
    if est is None:
        return text + " No estimate until a sampled patch is reviewed."
    true = overall["expected_true_patches"]
    pixels = overall["expected_true_pixels"]
    return text + (
        f" **Precision {_num(est[0])}** (95%: {_num(est[1])} - "
        f"{_num(est[2])}); expected true errors: {true[0]:,.0f} patches "
        f"({true[1]:,.0f} - {true[2]:,.0f}), {pixels[0]:,.0f} pixels."
    )


def _rounded(value):
    return round(value, 3) if isinstance(value, float) else value


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
