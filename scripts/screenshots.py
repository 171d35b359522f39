"""Regenerate the README's screenshots of FIXER in the FiftyOne App.

    python scripts/screenshots.py            # writes docs/images/*.png

It builds the generated demo (indoor scenes with planted errors and
simulated probabilities) on a throwaway MongoDB and plugins dir (the test
suite's isolation: your FiftyOne database is never touched), starts the App
server and drives Debian's Chromium with the end-to-end tests' App driver
(``tests/e2e/app_driver.py``): the ``find_label_errors`` form, run from the
App; a sample of the ``general`` issue view with a patch hovered; the FIXER
panel. Needs ``playwright`` (dev extras) and ``apt-get install -y
chromium``; on failure it leaves a screenshot and the server log in
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "e2e")]

from app_driver import (  # noqa: E402
    VIEWPORT,
    App,
    AppServer,
    chromium,
    missing_browser,
)

ARTIFACTS = REPO / "test-artifacts" / "screenshots"
NUM_IMAGES = 16
RUN_KEY = "fixer"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs" / "images", help="folder"
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
        dataset = _demo_dataset(Path(tmp))
        with (
            AppServer(Path(tmp) / "server.log") as server,
            chromium() as browser,
        ):
            app = App(browser.new_page(viewport=VIEWPORT), server)
            try:
                _take_all(app, dataset, args.out)
            except Exception:
                paths = app.save_artifacts(ARTIFACTS)
                print("failed; see", *paths, sep="\n  ", file=sys.stderr)
                raise
    return 0


def _take_all(app, dataset, out: Path) -> None:
    path = out / "operator_form.png"
    _operator_form(app, dataset, path)
    _shrink(path)
    print(f"wrote {path}")
    # A new App session, as when the user next opens the dataset: it shows
    # the colour the run gave its patches
    app.server.stop()
    app.server.start()
    for name, take in (("issue_view", _issue_view), ("panel", _panel)):
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


def _demo_dataset(root: Path):
    import fiftyone as fo
    from fixer_testing import write_scenes_dataset

    from fixer_core.synthetic import make_scenes

    dataset = fo.Dataset("fixer-demo", overwrite=True)
    scenes = make_scenes(NUM_IMAGES, height=240, width=320, seed=0)
    write_scenes_dataset(dataset, scenes, root)
    dataset.compute_metadata()
    dataset.persistent = True  # the App server is another process
    return dataset


def _operator_form(app, dataset, path: Path) -> None:
    from playwright.sync_api import expect

    from fixer_core.synthetic import SIMULATED_MODEL

    app.page.set_viewport_size({"width": 1400, "height": 1300})
    app.open(dataset.name)
    form = app.open_operator("Find label errors")
    execute = form.get_by_role("button", name="Execute", exact=True)
    expect(execute).to_be_enabled()
    form.screenshot(path=str(path))
    # Then run it, as a user would (the demo's simulated probabilities
    # carry no class prior)
    app.fill("Prior strength", str(SIMULATED_MODEL["prior_strength"]))
    execute.click()
    app.finish_progress(f"FIXER run '{RUN_KEY}':")
    app.page.set_viewport_size(VIEWPORT)


def _issue_view(app, dataset, path: Path) -> None:
    dataset.reload()  # the run was written by the App server
    view_name = f"{RUN_KEY}-general"
    app.open(dataset.name)
    app.open_saved_view(view_name)
    sample = dataset.load_saved_view(view_name).first()
    best = max(
        sample[f"{RUN_KEY}_patches"].detections, key=lambda d: d.confidence
    )
    app.open_sample(0)
    app.hover_label(best.bounding_box, sample.metadata).wait_for()
    app.page.wait_for_timeout(500)
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
    app.page.wait_for_timeout(2000)  # thumbnails and plots settle
    app.page.screenshot(path=str(path))


if __name__ == "__main__":
    sys.exit(main())
