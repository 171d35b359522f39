"""FIXER in the real FiftyOne App, driven as a person would in Chromium.

The App server runs on the tests' private database with the plugin
loaded; the dataset is a CamVid subset with planted errors and stored
probabilities (see ``conftest.py``).
"""

from __future__ import annotations

import re

import pytest

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed"
).expect
pytestmark = pytest.mark.e2e

ERROR_VIEWS = ("general", "ambiguous", "false-negative", "patches")


def _no_traceback(app) -> None:
    shown = app.traceback_shown()
    assert shown is None, f"the App shows an error:\n{shown}"


def test_find_label_errors_from_the_operator_browser(app, camvid):
    import fiftyone as fo

    app.open(camvid.name)
    form = app.open_operator("Find label errors")

    # Defaults a first-time user can run as they are
    expect(app.form_select("Ground-truth field")).to_have_text("ground_truth")
    expect(form.get_by_role("radio", name="Stored")).to_be_checked()
    expect(app.form_select("Probabilities field")).to_have_text("probs_path")
    expect(app.form_input("Run key")).to_have_value("fixer")
    expect(form.get_by_text("Writes fields fixer_patches")).to_be_visible()

    # A bad run key is refused in the form, in words
    app.fill("Run key", "my run")
    expect(form.get_by_text("must be a valid variable name")).to_be_visible()

    app.fill("Run key", "app")
    expect(form.get_by_text("Writes fields app_patches")).to_be_visible()
    app.fill("Prior strength", "0")  # simulated probabilities: no prior
    app.execute()
    app.finish_progress("FIXER run 'app':")

    dataset = fo.load_dataset(camvid.name)
    dataset.reload()  # the run was written by the server process
    assert "app" in dataset.list_runs()
    results = dataset.load_run_results("app")
    assert results.summary["num_images"] == len(dataset)
    assert dataset.count("app_patches.detections") >= camvid.planted // 2
    colors = dataset.app_config.color_scheme.fields
    ours = next(f for f in colors if f["path"] == "app_patches")
    assert ours["fieldColor"] == "#ff00ff"

    # The outputs show up in the App without a reload
    expect(
        app.page.get_by_test_id("sidebar-field-app_patches")
    ).to_be_visible()
    assert set(app.saved_view_names()) >= {f"app-{v}" for v in ERROR_VIEWS}

    # The run is listed by the run-info operator, with its totals
    app.open_operator("Get label error run info")
    expect(app.form_select("Run key")).to_have_text("app")
    app.execute()
    expect(app.form.get_by_text("Specific issues", exact=True)).to_be_visible()
    for issue in results.summary["issues"]:
        expect(app.form.get_by_text(issue["name"], exact=True)).to_be_visible()
    _no_traceback(app)


def test_bad_input_is_reported_in_words(app, camvid_missing_probs):
    import fiftyone as fo

    app.open(camvid_missing_probs.name)
    app.open_operator("Find label errors")
    app.execute()
    expect(
        app.page.get_by_text(
            re.compile(r"^FIXER: Probability file of sample .* does not exist")
        )
    ).to_be_visible()
    _no_traceback(app)
    dataset = fo.load_dataset(camvid_missing_probs.name)
    dataset.reload()
    assert "fixer" not in dataset.list_runs()  # refused before registering


def test_issue_view_shows_only_its_samples(app, camvid_run):
    import fiftyone as fo

    dataset = fo.load_dataset(camvid_run.name)
    counts = {
        v: len(dataset.load_saved_view(f"fixer-{v}")) for v in ERROR_VIEWS[:3]
    }
    # The smallest non-empty view, so that "only its samples" means fewer
    count, view = min((n, v) for v, n in counts.items() if n)
    assert count < len(dataset), counts

    app.open(camvid_run.name)
    assert app.grid_count() == len(dataset)
    app.open_saved_view(f"fixer-{view}")
    expect(app.page.get_by_test_id("entry-counts")).to_have_text(
        f"{count} sample" + ("s" if count > 1 else "")
    )
    expect(app.page.get_by_test_id("looker")).to_have_count(count)

    # Its first sample's best patch, hovered, names given and suggested
    sample = dataset.load_saved_view(f"fixer-{view}").first()
    best = max(sample["fixer_patches"].detections, key=lambda d: d.confidence)
    app.open_sample(0)
    tooltip = app.hover_label(best.bounding_box, sample.metadata)
    expect(tooltip).to_contain_text(best["suggested_label"])
    expect(tooltip).to_contain_text(best["given_label"])
    app.close_modal()
    _no_traceback(app)


def test_fixer_panel_lists_the_issues(app, camvid_run):
    import fiftyone as fo

    dataset = fo.load_dataset(camvid_run.name)
    issues = dataset.load_run_results("fixer").summary["issues"]
    assert issues, "the run found no specific issues"

    app.open(camvid_run.name)
    app.open_panel("fixer_panel")
    panel = app.page.get_by_test_id("panel-content-fixer_panel")
    expect(panel.get_by_text("Issue", exact=True)).to_be_visible()
    for issue in issues:
        expect(panel.get_by_text(issue["name"], exact=True)).to_be_visible()
    _no_traceback(app)
