"""A new user's first run from the App (issue 26): on the patches view the
App shows after a run, the form's defaults rerun the whole dataset, and
the form says so."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e
_playwright = pytest.importorskip("playwright.sync_api")
expect = _playwright.expect
PlaywrightTimeoutError = _playwright.TimeoutError


def test_rerun_from_the_patches_view_with_the_defaults(app, camvid_run):
    import fiftyone as fo

    app.open(camvid_run.name)
    app.open_saved_view("fixer-patches")
    # The form reads the App's view when it opens; on a loaded machine the
    # App may still be switching to the saved view: open it again then
    for _ in range(3):
        form = app.open_operator("Find label errors")
        expect(form.get_by_text("will be replaced")).to_be_visible()
        notice = form.get_by_text("The App shows patches")
        try:
            notice.wait_for(timeout=5_000)
            break
        except PlaywrightTimeoutError:
            app.page.keyboard.press("Escape")
    expect(notice).to_be_visible()
    app.fill("Prior strength", "0")  # simulated probabilities: no prior
    app.execute()
    app.finish_progress("FIXER run 'fixer':")

    dataset = fo.load_dataset(camvid_run.name)
    dataset.reload()  # the run was written by the server process
    summary = dataset.load_run_results("fixer", cache=False).summary
    assert summary["num_images"] == len(dataset)
    assert app.traceback_shown() is None
