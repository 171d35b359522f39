"""The Python API (``fixer_fiftyone.find_label_errors`` and friends): runs
it registers are the operators' runs, reruns replace their own outputs,
deletes remove everything, bad input writes nothing, and the package
imports on its own, without FiftyOne's plugins dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fixer_testing import (
    PLUGIN,
    painted_over_frames,
    panning_images,
    write_frames_dataset,
    write_scenes_dataset,
)

from fixer_core import FinderConfig, apply_patches, find_label_errors
from fixer_core.neighbours import NEIGHBOURS_CAUSE, file_signature
from fixer_core.repeats import run_of_length
from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")

REPO = Path(__file__).resolve().parents[2]
GT = "ground_truth"
NUM_SAMPLES = 6
CONFIG = FinderConfig(**SIMULATED_MODEL)
OUTPUTS = (
    "fixer_patches",
    "fixer_error_score",
    "fixer_corrected",
    "fixer_error_map",
)


@pytest.fixture
def api(fixer_plugin):
    """The package root as FiftyOne loaded it: the API the operators
    call."""
    return fixer_plugin.module


@pytest.fixture
def dataset(dataset_factory, tmp_path):
    ds = dataset_factory("api")
    scenes = make_scenes(NUM_SAMPLES, height=48, width=64, seed=2)
    write_scenes_dataset(ds, scenes, tmp_path / "scenes")
    return ds


def _find(api, dataset, **kwargs):
    kwargs.setdefault("config", CONFIG)
    kwargs.setdefault("progress", False)
    return api.find_label_errors(dataset, GT, "probs_path", **kwargs)


def _operator(name: str, dataset, **params):
    result = foo.execute_operator(
        f"{PLUGIN}/{name}", dict(dataset=dataset, params=params)
    )
    assert result.error is None, result.error
    return result.result


def test_api_run_is_the_operators_run(api, dataset):
    results = _find(api, dataset)

    assert api.list_label_error_runs(dataset) == ["fixer"]
    assert api.has_label_error_run(dataset, "fixer")
    loaded = api.load_label_error_run(dataset, "fixer")
    assert loaded.summary == results.summary
    assert loaded.config["gt_field"] == GT
    assert loaded.config["finder"]["prior_strength"] == 0.0
    assert results.patches_field == "fixer_patches"
    patches = dataset.count(f"{results.patches_field}.detections")
    totals = results.summary["totals"]
    assert patches == sum(t.get("patches", 0) for t in totals.values()) > 0
    assert len(results.load_view("all")) == patches
    assert set(results.views.values()) <= set(dataset.list_saved_views())
    colored = {f["path"] for f in dataset.app_config.color_scheme.fields}
    assert results.patches_field in colored  # as the operator colours it

    info = _operator("get_label_error_run_info", dataset, run_key="fixer")
    assert info["totals"] == totals
    assert info["config"]["fields"] == list(OUTPUTS)


def test_operator_run_is_loaded_by_the_api(api, dataset):
    _operator(
        "find_label_errors",
        dataset,
        gt_field=GT,
        probs_field="probs_path",
        run_key="app",
        **SIMULATED_MODEL,
    )
    results = api.load_label_error_run(dataset, "app")
    assert results.fields == {
        "patches": "app_patches",
        "score": "app_error_score",
        "corrected": "app_corrected",
        "error_map": "app_error_map",
    }
    assert dataset.count("app_patches.detections") > 0
    assert api.list_label_error_runs(dataset) == ["app"]


def test_rerun_with_the_same_key_replaces_its_outputs(api, dataset):
    first = _find(api, dataset)
    other = _find(api, dataset, run_key="other")
    fields = set(dataset.get_field_schema())
    views = set(dataset.list_saved_views())

    stricter = FinderConfig(**SIMULATED_MODEL, min_score=0.6)
    second = _find(api, dataset, config=stricter)

    dataset.reload()
    assert set(dataset.get_field_schema()) == fields
    assert set(dataset.list_saved_views()) == views
    assert sorted(api.list_label_error_runs(dataset)) == ["fixer", "other"]
    assert second.config["finder"]["min_score"] == 0.6
    assert second.timestamp > first.timestamp
    scores = dataset.values("fixer_patches.detections.confidence", unwind=True)
    assert scores and min(scores) >= 0.6
    assert api.load_label_error_run(dataset, "other").summary == (
        other.summary
    )


def test_delete_removes_fields_views_and_run(api, dataset):
    results = _find(api, dataset)
    kept = _find(api, dataset, run_key="kept")

    assert api.delete_label_error_run(dataset, "fixer") is True

    dataset.reload()
    schema = dataset.get_field_schema()
    assert not set(OUTPUTS) & set(schema)
    assert GT in schema and kept.patches_field in schema
    saved = set(dataset.list_saved_views())
    assert not set(results.views.values()) & saved
    assert set(kept.views.values()) <= saved
    assert api.list_label_error_runs(dataset) == ["kept"]
    with pytest.raises(api.LabelErrorInputError, match="no FIXER run"):
        api.load_label_error_run(dataset, "fixer")
    assert api.delete_label_error_run(dataset, "fixer") is False


def test_bad_input_raises_before_anything_is_written(api, dataset):
    bad = dataset.skip(3).first()
    np.save(bad.probs_path, np.full((2, 48, 64), 0.5, np.float32))
    fields = set(dataset.get_field_schema())

    with pytest.raises(api.LabelErrorInputError) as error:
        _find(api, dataset)

    message = str(error.value)
    assert f"'{os.path.basename(bad.filepath)}'" in message
    assert "'probs_path'" in message
    dataset.reload()
    assert set(dataset.get_field_schema()) == fields
    assert dataset.list_runs() == [] and dataset.list_saved_views() == []
    with pytest.raises(api.LabelErrorInputError, match="no field 'nope'"):
        api.find_label_errors(dataset, GT, "nope", progress=False)


def test_progress_draws_a_bar_per_pass(api, dataset):
    seen: list[tuple] = []  # (bar, its steps), bars kept alive

    def record(bar):
        if not seen or seen[-1][0] is not bar:
            seen.append((bar, []))
        seen[-1][1].append((bar.iteration, bar.total))

    _find(api, dataset, batch_size=4, progress=record)

    # the images' views (their order), then the two passes
    assert [steps[-1] for _, steps in seen] == [
        (NUM_SAMPLES, NUM_SAMPLES),
        (NUM_SAMPLES, NUM_SAMPLES),
        (NUM_SAMPLES, NUM_SAMPLES),
    ]


def test_report_review_and_corrections(api, dataset, tmp_path):
    _find(api, dataset)
    report = api.label_quality_report(dataset, output_dir=str(tmp_path))
    review = api.draw_review_sample(dataset, per_class=2)
    results = api.load_label_error_run(dataset)
    assert results.quality["miou"] == report["miou"]
    assert results.review["num_sampled"] == review["num_sampled"] > 0
    before = [s[GT].get_mask().copy() for s in dataset]

    done = api.apply_corrections(
        dataset, GT, selection="score", min_score=0.0, progress=False
    )

    assert done["apply_key"] == "fixer_apply" and done["changed_pixels"] > 0
    after = [s[GT].get_mask() for s in dataset]
    changed = sum(
        int((a != b).sum()) for a, b in zip(after, before, strict=True)
    )
    assert changed == done["changed_pixels"]
    api.undo_corrections(dataset, done["apply_key"])
    assert all(
        np.array_equal(s[GT].get_mask(), b)
        for s, b in zip(dataset, before, strict=True)
    )
    assert "fixer_apply" not in dataset.list_runs()


@pytest.fixture(scope="module")
def wheel_site(tmp_path_factory) -> Path:
    """The package built as a wheel from this checkout and unpacked into
    a folder, as ``pip install`` would (nothing is installed)."""
    pytest.importorskip("setuptools.build_meta")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".*", "tests", "bench", "docs", "build", "dist", "*.egg-info",
            "__pycache__", "test-artifacts",
        ),
    )  # fmt: skip
    build = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from setuptools import build_meta; "
            "print(build_meta.build_wheel(sys.argv[1]))",
            str(tmp / "dist"),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    wheel = tmp / "dist" / build.stdout.strip().splitlines()[-1]
    site = tmp / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


_SCRIPT = """
import json, sys

import fixer_core
assert "fiftyone" not in sys.modules, "fixer_core imported fiftyone"
assert "fixer_fiftyone" not in sys.modules, "fixer_core imported the API"

import fiftyone as fo
import fixer_fiftyone as fxf

dataset = fo.load_dataset(sys.argv[1])
config = fixer_core.FinderConfig(**{simulated!r})
results = fxf.find_label_errors(
    dataset, "ground_truth", "probs_path", config=config, progress=False
)
print(json.dumps({{
    "package": fxf.__file__,
    "core": fixer_core.__file__,
    "runs": fxf.list_label_error_runs(dataset),
    "patches": results.patches_field,
    "plugin_loaded": any(m.startswith("fiftyone.plugins.orgs")
                         for m in sys.modules),
}}))
"""


def test_package_imports_without_the_plugins_dir(api, dataset, wheel_site):
    dataset.persistent = True  # seen by the other process
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.pop("FIFTYONE_PLUGINS_DIR")
    env["PYTHONPATH"] = str(wheel_site)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _SCRIPT.format(simulated=SIMULATED_MODEL),
            dataset.name,
        ],
        cwd=wheel_site.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["package"] == str(wheel_site / "fixer_fiftyone/__init__.py")
    assert out["core"] == str(wheel_site / "fixer_core/__init__.py")
    assert out["runs"] == ["fixer"] and not out["plugin_loaded"]
    dataset.reload()
    assert api.list_label_error_runs(dataset) == ["fixer"]
    info = _operator("get_label_error_run_info", dataset, run_key="fixer")
    assert info["config"]["fields"][0] == out["patches"]


def test_core_import_loads_no_fiftyone():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, fixer_core, fixer_core.synthetic; "
            "print(sorted(m for m in sys.modules "
            "if m.startswith(('fiftyone', 'fixer_fiftyone'))))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _frames_dataset(
    dataset_factory,
    root,
    labels,
    truth,
    probs,
    inline_masks=False,
    images=None,
):
    ds = dataset_factory(root.name)
    write_frames_dataset(
        ds,
        root,
        labels,
        truth,
        probs,
        inline_masks=inline_masks,
        images=images,
    )
    return ds


@pytest.mark.parametrize("inline_masks", [False, True], ids=["png", "inline"])
def test_a_run_of_frames_is_scored_as_the_core_scores_it(
    api, dataset_factory, tmp_path, inline_masks
):
    # four frames of one object the model calls "c", then a one-off; the
    # ground ("d") rises 6 px a frame, so the frames' labels differ too
    # much to vouch for each other's (see fixer_core.neighbours)
    size, corners = (64, 80), [(5, 5), (5, 5), (5, 5), (5, 5), None, (5, 50)]
    labels = np.zeros((len(corners), *size), np.uint8)
    for i in range(len(corners)):
        labels[i, 60 - 6 * i :] = 3
    truth = labels.copy()
    for i, corner in enumerate(corners):
        if corner is not None:
            y, x = corner
            labels[i, y : y + 12, x : x + 12] = 1
            truth[i, y : y + 12, x : x + 12] = 2
    probs = np.where(
        truth[:, None] == np.arange(4)[None, :, None, None], 0.94, 0.02
    ).astype(np.float32)
    root = tmp_path / "frames"
    ds = _frames_dataset(
        dataset_factory, root, labels, truth, probs, inline_masks
    )
    expected, _ = find_label_errors(labels, probs)

    results = _find(api, ds, config=FinderConfig())

    prefix = f"{results.patches_field}.detections"
    written = [
        (c, n, r)
        for c, n, r in zip(
            *(
                ds.values(f"{prefix}.{a}", unwind=True)
                for a in ("confidence", "run_length", "reason")
            ),
            strict=True,
        )
    ]
    assert [n for _, n, _ in written] == [p.run_length for p in expected]
    assert [n for _, n, _ in written] == [4, 4, 4, 4, 1]
    np.testing.assert_allclose(
        [c for c, _, _ in written], [p.score for p in expected], rtol=1e-6
    )
    assert "the next 3 images show the same disagreement" in written[0][2]
    # the run shares its probability; the corrected masks, written as each
    # image was scored, take back the run's first patch once it ends
    np.testing.assert_allclose(
        ds.values(f"{prefix}.error_probability", unwind=True),
        [p.error_probability for p in expected],
        rtol=1e-6,
    )
    least = FinderConfig().correct_min_probability
    assert expected[0].error_probability < least
    assert run_of_length(expected[0], 1).error_probability >= least
    for i, sample in enumerate(ds.select_fields(results.corrected_field)):
        np.testing.assert_array_equal(
            sample[results.corrected_field].get_mask(),
            apply_patches(
                labels[i],
                [p for p in expected if p.image_index == i],
                min_probability=least,
                skip_repeats=True,
            ),
        )
    # the one-off comes first in the view of every patch
    best = results.load_view("all").first()[results.patches_field]
    assert best.run_length == 1


def test_frames_whose_images_are_near_duplicates_are_neighbours(
    api, dataset_factory, tmp_path
):
    # the object painted over in frame 1 (the last image of the first
    # batch); its neighbours' labels each have a sixth of the ground
    # relabelled, so only the images show them to be views of one scene
    labels, truth, probs = painted_over_frames(5, painted=1)
    labels[0, 45:, :40] = 0
    labels[2, 45:, 40:] = 0
    images = panning_images(5)
    ds = _frames_dataset(
        dataset_factory, tmp_path / "pan", labels, truth, probs, images=images
    )
    signatures = np.stack([file_signature(s.filepath) for s in ds])
    expected, _ = find_label_errors(
        labels, probs, batch_size=2, signatures=signatures
    )
    assert (1, NEIGHBOURS_CAUSE) in [
        (p.image_index, p.cause) for p in expected
    ]
    without, _ = find_label_errors(labels, probs, batch_size=2)
    assert NEIGHBOURS_CAUSE not in [p.cause for p in without]

    results = _find(api, ds, config=FinderConfig(), batch_size=2)

    field = results.patches_field
    found = [s[field].detections for s in ds.select_fields(field)]
    assert [len(d) for d in found] == [
        sum(p.image_index == i for p in expected) for i in range(5)
    ]
    assert NEIGHBOURS_CAUSE in [d.cause for d in found[1]]
    assert not results.config["views_ordered"]  # in time order already


def test_frames_stored_out_of_time_order_are_scored_in_their_views_order(
    api, dataset_factory, tmp_path
):
    # the painted-over frames of a panning camera, stored shuffled: the
    # painted frame 2 is stored between frames 0 and 4
    labels, truth, probs = painted_over_frames(5, painted=2)
    stored = [3, 0, 2, 4, 1]
    ds = _frames_dataset(
        dataset_factory,
        tmp_path / "shuffled",
        labels[stored],
        truth[stored],
        probs[stored],
        images=panning_images(5)[stored],
    )

    results = _find(api, ds, config=FinderConfig(), batch_size=2)

    assert results.config["views_ordered"]
    field = results.patches_field
    found = [s[field].detections for s in ds.select_fields(field)]
    # frames 1 and 3 name the slip, as in time order
    assert [[d.cause for d in f] for f in found] == [
        [],
        [],
        [NEIGHBOURS_CAUSE],
        [],
        [],
    ]
    # the samples keep their order
    assert ds.values(GT + ".mask_path") == sorted(ds.values(GT + ".mask_path"))


def test_a_label_its_neighbouring_frames_contradict_is_flagged(
    api, dataset_factory, tmp_path
):
    # an object moving 2 px per frame, painted over in frame 1: the last
    # image of the first batch, whose next frame is in the second batch
    labels, truth, probs = painted_over_frames(5, painted=1)
    ds = _frames_dataset(
        dataset_factory, tmp_path / "painted", labels, truth, probs
    )
    expected, _ = find_label_errors(labels, probs, batch_size=2)
    assert [p.cause for p in expected] == [NEIGHBOURS_CAUSE]

    results = _find(api, ds, config=FinderConfig(), batch_size=2)

    field = results.patches_field
    found = [s[field].detections for s in ds.select_fields(field)]
    assert [len(d) for d in found] == [0, 1, 0, 0, 0]
    patch = found[1][0]
    assert (patch.cause, patch.given_label, patch.label) == (
        NEIGHBOURS_CAUSE,
        "a",
        "b",
    )
    assert patch.reason.startswith(f"Labelled a; {NEIGHBOURS_CAUSE}")
    assert patch.confidence == pytest.approx(expected[0].score, rel=1e-6)
