"""Fixtures for the end-to-end tests: a CamVid subset with planted errors,
the real App server with the plugin loaded, and a headless Chromium.

The tests skip, with the reason, only when playwright or Chromium is
missing (``.ci/run`` installs both). A failing test leaves a screenshot,
the page's HTML and the server log in ``test-artifacts/e2e/<test name>/``
and prints their paths.
"""

from __future__ import annotations

import functools
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from app_driver import VIEWPORT, App, AppServer, chromium, missing_browser

REPO_ROOT = Path(__file__).resolve().parents[2]
CAMVID = REPO_ROOT.parent / "shared" / "data" / "camvid"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"

NUM_IMAGES = 8
SCALE = 2  # images and labels are halved
BUILDING, POLE, SIGN, CAR, PEDESTRIAN, VOID = 1, 2, 6, 8, 9, 11
NUM_CLASSES = 11
LOGIT = 4.0  # simulated model: softmax(LOGIT * one-hot of the clean label)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "e2e: drives the FiftyOne App in a headless browser"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    app = getattr(item, "funcargs", {}).get("app")
    if report.when != "call" or not report.failed or app is None:
        return report
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", item.name)
    paths = app.save_artifacts(folder)
    text = "\n".join(str(p) for p in paths)
    report.sections.append(("e2e artifacts", text))
    reporter = item.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\ne2e artifacts of {item.name}:\n{text}")
    return report


# -- data --------------------------------------------------------------------


@dataclass(frozen=True)
class CamVidDataset:
    """The e2e dataset and what was planted in it."""

    name: str
    planted: int  # number of planted errors


def _components(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    parts = [comp == i for i in range(1, n)]
    return sorted(
        (p for p in parts if p.sum() >= min_area), key=lambda p: -p.sum()
    )


def _surrounding(label: np.ndarray, part: np.ndarray) -> int | None:
    ring = cv2.dilate(part.astype(np.uint8), np.ones((11, 11), np.uint8))
    values = label[ring.astype(bool) & ~part]
    values = values[values != VOID]
    return int(np.bincount(values).argmax()) if values.size else None


def plant_errors(clean: np.ndarray) -> tuple[np.ndarray, int]:
    """Per image, the largest car becomes building (a general error) and
    the largest pole, sign or pedestrian takes its surroundings' class
    (a missed object)."""
    noisy = clean.copy()
    planted = 0
    for i, label in enumerate(clean):
        cars = _components(label == CAR, 150)
        if cars:
            noisy[i][cars[0]] = BUILDING
            planted += 1
        small = np.isin(label, (POLE, SIGN, PEDESTRIAN))
        for part in _components(small, 40)[:1]:
            around = _surrounding(label, part)
            if around is not None:
                noisy[i][part] = around
                planted += 1
    return noisy, planted


def simulated_probs(clean: np.ndarray) -> np.ndarray:
    """A good model that saw the clean labels: a blurred, softened one-hot;
    void pixels get uniform probabilities. (K, H, W) float16."""
    onehot = np.eye(VOID + 1, NUM_CLASSES, dtype=np.float32)[clean]
    logits = LOGIT * onehot.transpose(2, 0, 1)
    probs = np.exp(logits - logits.max(axis=0))
    probs = np.stack([cv2.GaussianBlur(p, (0, 0), 1.0) for p in probs])
    return (probs / probs.sum(axis=0)).astype(np.float16)


def build_camvid(dataset, root: Path) -> int:
    """Fills ``dataset`` with CamVid val images, noisy masks and stored
    probabilities written under ``root``; returns the planted count."""
    import fiftyone as fo

    classes = json.loads((CAMVID / "classes.json").read_text())
    names = sorted(p.stem for p in (CAMVID / "images" / "val").glob("*.jpg"))
    names = names[:: len(names) // NUM_IMAGES][:NUM_IMAGES]
    for sub in ("images", "masks", "probs"):
        (root / sub).mkdir(parents=True)
    samples, planted = [], 0
    for name in names:
        image = cv2.imread(str(CAMVID / "images" / "val" / f"{name}.jpg"))
        label = cv2.imread(
            str(CAMVID / "labels" / "val" / f"{name}.png"),
            cv2.IMREAD_UNCHANGED,
        )
        size = (label.shape[1] // SCALE, label.shape[0] // SCALE)
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        clean = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        noisy, n = plant_errors(clean[None])
        planted += n
        paths = {s: root / s / f"{name}.{e}" for s, e in _EXTENSIONS}
        cv2.imwrite(str(paths["images"]), image)
        cv2.imwrite(str(paths["masks"]), noisy[0])
        np.save(paths["probs"], simulated_probs(clean))
        samples.append(
            fo.Sample(
                filepath=str(paths["images"]),
                ground_truth=fo.Segmentation(mask_path=str(paths["masks"])),
                probs_path=str(paths["probs"]),
            )
        )
    targets = dict(enumerate(classes["classes"]))
    targets[VOID] = "void"
    dataset.default_mask_targets = targets
    dataset.add_samples(samples)
    dataset.compute_metadata()
    dataset.persistent = True  # the App server is another process
    return planted


_EXTENSIONS = (("images", "jpg"), ("masks", "png"), ("probs", "npy"))


# -- fixtures ----------------------------------------------------------------


# Module scope: Playwright's sync API leaves an asyncio loop running in this
# thread, which turns foo.execute_operator() into a fire-and-forget task for
# every test that runs while it is alive
@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright; skips if either is missing."""
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def app_server(browser, fixer_plugin, tmp_path_factory):
    """FiftyOne's App server, on the tests' private database and plugins
    dir (inherited environment)."""
    log = tmp_path_factory.mktemp("app") / "server.log"
    with AppServer(log) as server:
        yield server


@pytest.fixture
def app(browser, app_server):
    """A fresh browser context on the App (no state from other tests)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        yield App(context.new_page(), app_server)
    finally:
        context.close()


def _camvid(name: str, tmp_path_factory) -> tuple:
    import fiftyone as fo

    if not (CAMVID / "classes.json").is_file():
        pytest.skip(f"CamVid not found at {CAMVID} (../shared/data/camvid)")
    dataset = fo.Dataset(name, overwrite=True)
    planted = build_camvid(dataset, tmp_path_factory.mktemp(name))
    return dataset, CamVidDataset(dataset.name, planted)


@pytest.fixture(scope="module")
def camvid(fo_env, tmp_path_factory):
    """A CamVid subset with planted errors and stored probabilities, no
    FIXER run yet."""
    dataset, info = _camvid("e2e-camvid", tmp_path_factory)
    yield info
    dataset.delete()


@pytest.fixture
def camvid_missing_probs(fo_env, tmp_path_factory):
    """A CamVid subset whose first sample's probability file is missing."""
    dataset, info = _camvid("e2e-camvid-missing", tmp_path_factory)
    sample = dataset.first()
    sample["probs_path"] = "/nonexistent/probs.npy"
    sample.save()
    yield info
    dataset.delete()


def execute(fixer_plugin, name: str, dataset, **params) -> dict:
    """An operator's result, run from Python in a thread of its own: no
    asyncio loop runs there (see ``browser``)."""
    import fiftyone.operators as foo

    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(
            foo.execute_operator,
            fixer_plugin.uri(name),
            dataset=dataset,
            params=params,
        ).result()
    result.raise_exceptions()
    return result.result


@pytest.fixture(scope="session")
def run_operator(fixer_plugin):
    """:func:`execute` with the plugin bound: ``run_operator(name,
    dataset, **params)``."""
    return functools.partial(execute, fixer_plugin)


@pytest.fixture(scope="module")
def camvid_run(fixer_plugin, tmp_path_factory):
    """Another CamVid subset, with a FIXER run (key ``fixer``) made from
    Python."""

    dataset, info = _camvid("e2e-camvid-run", tmp_path_factory)
    params = dict(
        gt_field="ground_truth",
        probs_field="probs_path",
        device="cpu",
        prior_strength=0.0,  # simulated probabilities carry no prior
    )
    execute(fixer_plugin, "find_label_errors", dataset, **params)
    dataset.reload()
    assert "fixer" in dataset.list_runs()
    yield info
    dataset.delete()
