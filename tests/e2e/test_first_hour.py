"""A new user's first run from the App (issue 26): on the patches view the
App shows after a run, the form's defaults rerun the whole dataset, and
the form says so."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e
expect = pytest.importorskip("playwright.sync_api").expect


def test_rerun_from_the_patches_view_with_the_defaults(app, camvid_run):
    import fiftyone as fo

    app.open(camvid_run.name)
    app.open_saved_view("fixer-patches")
    form = app.open_operator("Find label errors")
    expect(form.get_by_text("will be replaced")).to_be_visible()
    expect(form.get_by_text("The App shows patches")).to_be_visible()
    app.fill("Prior strength", "0")  # simulated probabilities: no prior
    app.execute()
    app.finish_progress("FIXER run 'fixer':")

    dataset = fo.load_dataset(camvid_run.name)
    dataset.reload()  # the run was written by the server process
    summary = dataset.load_run_results("fixer", cache=False).summary
    assert summary["num_images"] == len(dataset)
    assert app.traceback_shown() is None
