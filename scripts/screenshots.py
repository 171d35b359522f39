"""Regenerate the README's screenshots of FIXER in the FiftyOne App.

    python scripts/screenshots.py            # writes docs/images/*.png

It builds the real-image demo (CamVid val images from
``../shared/data/camvid`` with planted errors, probabilities from the
ESPNet model beside it, as ``fixer_run.py`` does) on a throwaway MongoDB
and plugins dir (the test suite's isolation: your FiftyOne database is
never touched), runs the finder, starts the App server and drives Debian's
Chromium with the end-to-end tests' App driver (``tests/e2e/app_driver.py``):
the ``find_label_errors`` form; a sample of the ``general`` issue view
with a patch hovered; the FIXER panel. Needs ``playwright`` (dev extras)
and ``apt-get install -y chromium``; on failure it leaves a screenshot and
the server log in ``test-artifacts/screenshots/``.
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
                _take_all(app, dataset, args.out)
            except Exception:
                paths = app.save_artifacts(ARTIFACTS)
                print("failed; see", *paths, sep="\n  ", file=sys.stderr)
                raise
    return 0


def _take_all(app, dataset, out: Path) -> None:
    for name, take in (
        ("issue_view", _issue_view),
        ("panel", _panel),
        ("operator_form", _operator_form),
    ):
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
    dataset.reload()  # the run was written by the App server
    view_name = f"{RUN_KEY}-general"
    app.open(dataset.name)
    app.open_saved_view(view_name)
    sample = dataset.load_saved_view(view_name).first()
    best = max(
        sample[f"{RUN_KEY}_patches"].detections, key=lambda d: d.confidence
    )
    app.open_sample(0)
    app.hover_label(_inside(best), sample.metadata).wait_for()
    app.page.wait_for_timeout(500)
    app.page.screenshot(path=str(path))
    app.close_modal()


def _inside(detection) -> list[float]:
    """A zero-size box on the patch pixel nearest its mask's centre (the
    centre of its box may fall outside an irregular patch)."""
    import numpy as np

    ys, xs = np.nonzero(detection.mask)
    i = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)
    x, y, w, h = detection.bounding_box
    mh, mw = detection.mask.shape
    return [x + (xs[i] + 0.5) / mw * w, y + (ys[i] + 0.5) / mh * h, 0, 0]


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
