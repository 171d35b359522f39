"""Regenerate the README's screenshots of FIXER in the FiftyOne App.

    python scripts/screenshots.py            # writes docs/images/*.png

It builds the real-image demo (CamVid val images from
``../shared/data/camvid`` with planted errors, probabilities from the
ESPNet model beside it, as ``fixer_run.py`` does) on a throwaway MongoDB
and plugins dir (the test suite's isolation: your FiftyOne database is
never touched), runs the finder, starts the App server and drives Debian's
Chromium with the end-to-end tests' App driver (``tests/e2e/app_driver.py``):
the ``find_label_errors`` form; the best sample of the ``general`` issue
view; the FIXER panel; the review panel on a drawn review sample
(``--only review_panel`` takes that one alone). Needs ``playwright`` (dev
extras) and ``apt-get install -y chromium``; on failure it leaves a
screenshot and the server log in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [
    str(REPO),
    str(REPO / "scripts"),
    str(REPO / "tests"),
    str(REPO / "tests" / "e2e"),
]

from app_driver import (  # noqa: E402
    VIEWPORT,
    App,
    AppServer,
    chromium,
    missing_browser,
)

ARTIFACTS = REPO / "test-artifacts" / "screenshots"
NUM_IMAGES = 16
CAMVID = REPO.parent / "shared" / "data" / "camvid"
RUN_KEY = "fixer"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs" / "images", help="folder"
    )
    parser.add_argument(
        "--camvid", type=Path, default=CAMVID, help="CamVid folder"
    )
    parser.add_argument(
        "--only", choices=sorted(SHOTS), help="take this screenshot alone"
    )
    args = parser.parse_args(argv)

    reason = missing_browser()
    if reason:
        print(f"Cannot take screenshots: {reason}", file=sys.stderr)
        return 1
    # The test suite's FiftyOne isolation: a private mongod and plugins dir,
    # set up before fiftyone is first imported
    import conftest

    conftest._setup_fiftyone_env()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fixer-screenshots-") as tmp:
        dataset = _demo_dataset(Path(tmp), args.camvid)
        with (
            AppServer(Path(tmp) / "server.log") as server,
            chromium() as browser,
        ):
            app = App(browser.new_page(viewport=VIEWPORT), server)
            try:
                _take_all(app, dataset, args.out, args.only)
            except Exception:
                paths = app.save_artifacts(ARTIFACTS)
                print("failed; see", *paths, sep="\n  ", file=sys.stderr)
                raise
    return 0


def _take_all(app, dataset, out: Path, only: str | None) -> None:
    for name, take in SHOTS.items():
        if only not in (None, name):
            continue
        path = out / f"{name}.png"
        take(app, dataset, path)
        _shrink(path)
        print(f"wrote {path}")


def _shrink(path: Path) -> None:
    """Re-saves a screenshot with a 256-colour palette (a third the size;
    the App's flat colours survive it)."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(
            256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    small.save(path, optimize=True)


def _demo_dataset(root: Path, camvid: Path):
    """The CamVid demo as ``fixer_run.py`` builds it, found with the
    ESPNet model; its probabilities are kept, so the form can rerun it."""
    import os
    from argparse import Namespace

    import fiftyone as fo
    import fiftyone.operators as foo
    import fixer_run

    os.environ["FIXER_HOME"] = str(root)
    fixer_run.HOME = root
    args = Namespace(
        dataset="CamVid-demo",
        overwrite=True,
        num_images=NUM_IMAGES,
        seed=0,
        source=None,
        model=None,
        input_size=None,
        ignore_values=None,
    )
    dataset, _ = fixer_run._load_camvid(fo, args, camvid)
    find = foo.get_operator("@fixer/fixer/find_label_errors")
    find(
        dataset,
        "ground_truth",
        **fixer_run._source_params(args, dataset, camvid),
        save_probs_dir=str(root / "probs"),
        save_probs_field="probs_path",
        run_key=RUN_KEY,
    )
    dataset.app_config.active_fields = fo.ActiveFields(
        paths=[f"{RUN_KEY}_patches", "ground_truth"]
    )
    dataset.save()
    return dataset


def _operator_form(app, dataset, path: Path) -> None:
    from playwright.sync_api import expect

    app.page.set_viewport_size({"width": 1400, "height": 1300})
    app.open(dataset.name)
    form = app.open_operator("Find label errors")
    execute = form.get_by_role("button", name="Execute", exact=True)
    expect(execute).to_be_enabled()
    form.screenshot(path=str(path))
    app.page.keyboard.press("Escape")
    app.page.set_viewport_size(VIEWPORT)


def _issue_view(app, dataset, path: Path) -> None:
    """The best sample of the ``general`` view: the ground truth in its
    class colours, the patches in magenta labelled with their suggested
    class (no tooltip: hovering shows the ground truth's, on top)."""
    dataset.reload()  # the run was written by the App server
    app.open(dataset.name)
    app.open_saved_view(f"{RUN_KEY}-general")
    app.open_sample(0)
    frame = app.page.get_by_test_id("modal-looker-container")
    frame.locator("canvas[canvas-loaded=true]").wait_for()
    app.page.mouse.move(0, 0)
    app.page.wait_for_timeout(1500)
    app.page.screenshot(path=str(path))
    app.close_modal()


def _panel(app, dataset, path: Path) -> None:
    app.page.set_viewport_size({"width": 1920, "height": 1000})
    app.open(dataset.name)
    app.page.get_by_test_id("btn-clear-view-bar").click()
    app.open_panel("fixer_panel")
    panel = app.page.get_by_test_id("panel-content-fixer_panel")
    panel.get_by_text("Issue", exact=True).wait_for()
    app.page.mouse.move(0, 0)  # no hovered thumbnail
    thumbnails = app.page.get_by_test_id("looker")
    for i in range(min(4, len(dataset))):
        thumbnails.nth(i).locator("canvas[canvas-loaded=true]").wait_for(
            timeout=120_000
        )
    app.page.wait_for_timeout(3000)  # thumbnails and plots settle
    app.page.screenshot(path=str(path))


def _review_panel(app, dataset, path: Path) -> None:
    """The review panel on a review sample (3 per class), after one
    patch was confirmed by key."""
    import fiftyone.operators as foo

    draw = foo.get_operator("@fixer/fixer/draw_review_sample")
    draw(dataset, RUN_KEY, per_class=3, stratify_by="given", seed=0)
    app.page.set_viewport_size({"width": 2200, "height": 1000})
    app.open(dataset.name)
    app.open_panel("fixer_review")
    panel = app.page.get_by_test_id("fixer-review-panel")
    crop = panel.get_by_test_id("fixer-review-crop")
    crop.and_(app.page.locator("[data-drawn]")).wait_for()
    app.page.keyboard.press("c")
    app.page.locator("[data-pending='0']").wait_for()
    crop.and_(app.page.locator("[data-drawn]")).wait_for()
    panel.get_by_test_id("fixer-review-example").first.wait_for()
    app.page.mouse.move(0, 0)
    app.page.wait_for_timeout(1500)  # the examples' images
    panel.screenshot(path=str(path))
    app.page.set_viewport_size(VIEWPORT)


SHOTS = {
    "issue_view": _issue_view,
    "panel": _panel,
    "operator_form": _operator_form,
    "review_panel": _review_panel,
}


if __name__ == "__main__":
    sys.exit(main())
