"""The live CVAT path: against the real CVAT v2.23.1 server of
``../shared/cvat`` (started once per session, see ``tests/cvat_server.py``;
those tests skip, saying why, only where it cannot start), and up to the
HTTP boundary (a closed port, FiftyOne's own CVAT mask encoding).

The live tests use eight real CamVid val images (read in place from
``../shared/data/camvid``) whose Car regions of 200-3000 px are labelled
Building in every other one (a slip of each frame: consecutive frames
repeating an error would vouch for it, see ``fixer_core.neighbours``), a
simulated model that saw the clean labels, and
a FIXER run on them. Annotators' edits are made through CVAT's REST API
the way its editor saves them.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import socket
import types as pytypes
import uuid
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from cvat_server import mask_points, points_mask
from cvat_server import start as start_cvat
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
import fiftyone.utils.annotations as foua  # noqa: E402
import fiftyone.utils.cvat as fouc  # noqa: E402
from fiftyone.operators.executor import ExecutionError  # noqa: E402

GT = "ground_truth"
CVAT_ENV = ("URL", "USERNAME", "PASSWORD", "EMAIL")
CAMVID = Path(__file__).resolve().parents[3] / "shared" / "data" / "camvid"
NUM_IMAGES = 8
PLANTED = (0, 2, 4, 6)  # their small cars become Building
# The run's false-negative issue view holds them (cars missed in the
# buildings they stand against), and may hold a real error of CamVid's
# labels too.
ISSUE_VIEW = "fixer-false-negative"
SKY, BUILDING, ROAD, PAVEMENT, CAR, PEDESTRIAN = 0, 1, 3, 4, 8, 9


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cvat(fixer_plugin):
    """The plugin's ``_cvat`` module, as FiftyOne loaded it."""
    return importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._cvat"
    )


@pytest.fixture(scope="module")
def found(fixer_plugin, tmp_path_factory):
    dataset = fo.Dataset(f"live-{uuid.uuid4().hex[:10]}")
    try:
        write_scenes_dataset(
            dataset, make_scenes(4, seed=0), tmp_path_factory.mktemp("live")
        )
        foo.execute_operator(
            f"{PLUGIN}/find_label_errors",
            dict(
                dataset=dataset,
                params=dict(
                    gt_field=GT, probs_field="probs_path", **SIMULATED_MODEL
                ),
            ),
        )
        yield dataset
    finally:
        dataset.delete()


@pytest.fixture
def closed_server(monkeypatch):
    """CVAT settings pointing at a local port nothing listens on."""
    url = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("FIFTYONE_CVAT_URL", url)
    monkeypatch.setenv("FIFTYONE_CVAT_USERNAME", "annotator")
    monkeypatch.setenv("FIFTYONE_CVAT_PASSWORD", "secret")
    return url


def _send(dataset, **params):
    return foo.execute_operator(
        f"{PLUGIN}/send_to_cvat",
        dict(view=dataset.view(), params=dict(gt_field=GT, **params)),
    )


def _last_line(error: ExecutionError) -> str:
    """The exception line of an operator's traceback (what a user reads),
    its class named without its module."""
    name, message = str(error).strip().splitlines()[-1].split(": ", 1)
    return f"{name.rsplit('.', 1)[-1]}: {message}"


def test_label_schema_passes_fiftyones_own_checks(cvat, found):
    names = cvat.write_edit_field(found.view(), GT, "k")
    cvat.write_patch_references(found.view(), "fixer_patches", "k")
    schema = cvat.cvat_label_schema(
        found, GT, "k", patches=True, extra_classes=names
    )
    classes = sorted(found.default_mask_targets.values())
    assert schema["fixer_cvat_k"] == {"type": "instances", "classes": classes}
    assert found.get_field("fixer_cvat_k").info == {"fixer_gt_field": GT}
    patches = schema["fixer_cvat_k_patches"]
    assert patches["type"] == "instances"
    # One CVAT label for the patches: no class is listed twice
    assert patches["classes"] == ["fixer_patch"]
    assert patches["attributes"]["review"] == {
        "type": "select",
        "values": ["unreviewed", "confirmed", "rejected"],
        "default": "unreviewed",
    }
    config = foua._parse_config(
        "cvat", None, url="http://127.0.0.1:1", username="u", password="p"
    )
    built, _ = foua._build_label_schema(
        found.view(),
        config.build(),
        schema,
        None,
        None,
        None,
        True,
        None,
        True,
        True,
        True,
        True,
        True,
    )
    edits = built["fixer_cvat_k"]
    assert edits["type"] == "instances" and edits["existing_field"]
    assert edits["classes"] == classes
    assert edits["allow_spatial_edits"] and edits["allow_additions"]
    refs = built["fixer_cvat_k_patches"]
    assert refs["existing_field"] and refs["type"] == "instances"
    for flag in ("additions", "deletions", "label_edits", "spatial_edits"):
        assert refs[f"allow_{flag}"] is False
    for name in ("suggested_label", "given_label", "error_type", "issue"):
        assert refs["attributes"][name] == {
            "type": "text",
            "values": [],
            "read_only": True,
        }
    # Only the review mark is loaded back
    assert foua._get_writeable_attributes(refs["attributes"]) == ["review"]
    # The references are the patches, ids included
    patches = found.values("fixer_patches.detections", unwind=True)
    refs = found.values("fixer_cvat_k_patches.detections", unwind=True)
    assert [r.id for r in refs] == [p.id for p in patches]
    assert {r.label for r in refs} == {"fixer_patch"}
    assert [r["suggested_label"] for r in refs] == [p.label for p in patches]
    assert {r["review"] for r in refs} == {"unreviewed"}
    found.delete_sample_field("fixer_cvat_k")
    found.delete_sample_field("fixer_cvat_k_patches")


def test_credentials_prefer_secrets_then_environment(cvat, closed_server):
    creds = cvat.cvat_credentials({"FIFTYONE_CVAT_USERNAME": "from-secret"})
    assert creds == {
        "url": closed_server,
        "username": "from-secret",
        "password": "secret",
    }


def test_send_to_closed_port_fails_clearly_and_keeps_no_run(
    found, closed_server
):
    with pytest.raises(ExecutionError) as info:
        _send(found, run_key="fixer", anno_key="fix_cvat")
    message = _last_line(info.value)
    assert message == (
        "CvatUnreachableError: Logging in to CVAT as 'annotator' failed: "
        f"the CVAT server at {closed_server} did not answer "
        "(ConnectionError). Nothing was changed. Without a server, use "
        "'Export CVAT archive' to write a CVAT task archive and 'Import "
        "CVAT archive' to read the edited one back."
    )
    assert found.list_annotation_runs() == []
    # Nor the field it sent
    assert not found.has_sample_field("fixer_cvat_fix_cvat")


def test_send_of_an_issue_view_fails_cleanly_too(found, closed_server):
    view = found.load_saved_view("fixer-general")
    with pytest.raises(ExecutionError, match="Nothing was changed"):
        foo.execute_operator(
            f"{PLUGIN}/send_to_cvat",
            dict(
                view=view,
                params=dict(gt_field=GT, run_key="fixer", anno_key="issues"),
            ),
        )
    assert found.list_annotation_runs() == []


def test_send_without_credentials_says_which_are_needed(found, monkeypatch):
    for name in CVAT_ENV:
        monkeypatch.delenv(f"FIFTYONE_CVAT_{name}", raising=False)
    monkeypatch.setitem(fo.annotation_config.backends, "cvat", {})
    with pytest.raises(ExecutionError, match="FIFTYONE_CVAT_USERNAME"):
        _send(found, anno_key="no_creds")
    assert found.list_annotation_runs() == []


def test_load_refuses_unknown_runs(found):
    with pytest.raises(ExecutionError, match="Path: anno_key|no annotation"):
        foo.execute_operator(
            f"{PLUGIN}/load_from_cvat",
            dict(dataset=found, params=dict(anno_key="missing")),
        )


def _cvat_mask_shape(crop, x0, y0, frame_size, label="chair"):
    """A CVAT ``mask`` shape as FiftyOne uploads it (server >= 2.3) and
    reads it back: RLE of the box crop, then the inclusive box corners."""
    height, width = crop.shape
    rle = fouc.HasCVATBinaryMask._mask_to_cvat_rle(crop.astype(bool))
    return pytypes.SimpleNamespace(
        points=rle + [x0, y0, x0 + width - 1, y0 + height - 1],
        frame_size=frame_size,
        label=label,
        index=None,
        _set_attributes=lambda label: None,
    )


def _region_shape(mask, frame_size):
    rows, cols = np.nonzero(mask)
    x0, y0, x1, y1 = cols.min(), rows.min(), cols.max() + 1, rows.max() + 1
    return _cvat_mask_shape(mask[y0:y1, x0:x1], x0, y0, frame_size)


def test_right_most_column_is_kept_when_loading_masks(cvat):
    width, height = 40, 30
    mask = np.zeros((height, width), dtype=bool)
    mask[5:20, 8:25] = True
    mask[10:15, 12:31] = True
    loaded = fouc.CVATShape.to_instance(_region_shape(mask, (width, height)))
    assert loaded.mask.shape == (15, 23)
    painted = cvat.paint_detections(
        [loaded], mask.shape, {0: "none", 1: "chair"}
    )
    np.testing.assert_array_equal(painted == 1, mask)
    # The finding, on FiftyOne 1.22: its box is one pixel narrower than the
    # mask, and its own rendering squeezes the mask in, losing a column
    if round(loaded.bounding_box[2] * width) < loaded.mask.shape[1]:
        rendered = loaded.to_segmentation(frame_size=(width, height), target=1)
        assert not (rendered.mask[:, 30] & mask[:, 30]).any()


def test_ground_truth_comes_back_bit_for_bit_through_cvat_masks(cvat, found):
    """Send -> CVAT -> load, with the server replaced by FiftyOne's own
    encoding and decoding of CVAT masks: pixel-identical."""
    cvat.write_edit_field(found.view(), GT, "exact")
    targets = found.default_mask_targets
    lost = 0
    try:
        for sample in found.iter_samples():
            gt = sample[GT].get_mask()
            height, width = gt.shape
            loaded = []
            for det in sample.fixer_cvat_exact.detections:
                x, y = det.bounding_box[:2]
                shape = _cvat_mask_shape(
                    det.mask,
                    round(x * width),
                    round(y * height),
                    (width, height),
                    det.label,
                )
                loaded.append(fouc.CVATShape.to_instance(shape))
            painted = cvat.paint_detections(
                loaded, gt.shape, targets, fill_value=254
            )
            np.testing.assert_array_equal(painted, gt)
            # FiftyOne's own rendering of the same masks loses pixels
            rendered = fo.Detections(detections=loaded).to_segmentation(
                frame_size=(width, height), mask_targets=targets
            )
            lost += int((rendered.mask != gt).sum())
    finally:
        found.delete_sample_field("fixer_cvat_exact")
    assert lost > 0


def test_send_form_checks_the_key_and_names_the_server(
    fixer_plugin, found, closed_server
):
    def form(**params):
        ctx = foo.ExecutionContext(
            request_params={
                "dataset_name": found.name,
                "dataset_id": str(found._doc.id),
                "params": params,
            }
        )
        op = fixer_plugin.get_operator("send_to_cvat")
        return op.resolve_input(ctx).type.properties

    props = form()
    assert props["gt_field"].default == GT
    assert props["run_key"].type.values == ["fixer"]
    assert props["anno_key"].default == "fixer_cvat"
    assert closed_server in props["server"].view.label
    assert "Export CVAT archive" in props["server"].view.label
    bad = form(anno_key="not a key")["anno_key_error"]
    assert bad.invalid and "valid variable name" in bad.view.label


# -- against the real CVAT server ---------------------------------------------


@pytest.fixture(scope="session")
def cvat_server():
    """The CVAT server of ``../shared/cvat``; stopped at the end only if
    this session started it."""
    server, reason = start_cvat()
    if server is None:
        pytest.skip(reason)
    yield server
    if server.started_here:
        server.stop()


@pytest.fixture
def live(cvat_server, monkeypatch):
    """The server, its credentials set where FIXER reads them; the tasks
    a test leaves there are deleted after it."""
    for name, value in cvat_server.env().items():
        monkeypatch.setenv(name, value)
    before = set(cvat_server.task_ids())
    yield cvat_server
    for task_id in set(cvat_server.task_ids()) - before:
        cvat_server.api("DELETE", f"/api/tasks/{task_id}")


@pytest.fixture(scope="module")
def camvid(fixer_plugin, tmp_path_factory):
    """CamVid images with planted errors and a FIXER run (see the module
    docstring)."""
    if not (CAMVID / "classes.json").is_file():
        pytest.skip(f"CamVid not found at {CAMVID}")
    root = tmp_path_factory.mktemp("camvid")
    names = json.loads((CAMVID / "classes.json").read_text())["classes"]
    images = sorted((CAMVID / "images" / "val").glob("*.jpg"))[:NUM_IMAGES]
    rng = np.random.default_rng(0)
    samples = []
    for i, image in enumerate(images):
        label = CAMVID / "labels" / "val" / f"{image.stem}.png"
        clean = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
        noisy = clean.copy()
        if i in PLANTED:
            n, parts, stats, _ = cv2.connectedComponentsWithStats(
                (clean == CAR).astype(np.uint8), connectivity=8
            )
            for j in range(1, n):
                if 200 <= stats[j, cv2.CC_STAT_AREA] <= 3000:
                    noisy[parts == j] = BUILDING
        mask, probs = root / f"{image.stem}.png", root / f"{image.stem}.npy"
        cv2.imwrite(str(mask), noisy)
        np.save(probs, _model_probs(clean, len(names), rng))
        samples.append(
            fo.Sample(
                filepath=str(image),
                ground_truth=fo.Segmentation(mask_path=str(mask)),
                probs_path=str(probs),
            )
        )
    dataset = fo.Dataset(f"camvid-cvat-{uuid.uuid4().hex[:10]}")
    try:
        dataset.add_samples(samples)
        dataset.default_mask_targets = {**dict(enumerate(names)), 11: "Void"}
        dataset.save()
        foo.execute_operator(
            f"{PLUGIN}/find_label_errors",
            dict(
                dataset=dataset,
                params=dict(
                    gt_field=GT, probs_field="probs_path", **SIMULATED_MODEL
                ),
            ),
        )
        yield dataset
    finally:
        dataset.delete()


def _model_probs(clean, num_classes, rng):
    """A good model that saw the clean labels: softmax of confident logits
    plus smooth noise; void pixels get nearly uniform probabilities."""
    onehot = np.eye(num_classes + 1, num_classes, dtype=np.float32)[clean]
    noise = rng.standard_normal((num_classes, *clean.shape), np.float32)
    noise = np.stack([cv2.GaussianBlur(c, (0, 0), 2.0) for c in noise])
    logits = 3.5 * onehot.transpose(2, 0, 1) + 0.8 * noise / noise.std()
    probs = np.exp(logits - logits.max(axis=0))
    return (probs / probs.sum(axis=0)).astype(np.float16)


@pytest.fixture
def dataset(camvid):
    """A copy of the CamVid dataset (same label ids), for one test."""
    copy = camvid.clone(f"{camvid.name}-{uuid.uuid4().hex[:6]}")
    yield copy
    copy.delete()


def _digests(dataset) -> list[str]:
    return [
        hashlib.sha256(Path(p).read_bytes()).hexdigest()
        for p in dataset.values(f"{GT}.mask_path")
    ]


def _inside(gt, value, height, width):
    """The top-left ``(y, x)`` of the first ``height x width`` window whose
    pixels all have ``value`` (so no other class's shape covers it)."""
    hits = cv2.erode(
        (gt == value).astype(np.uint8),
        np.ones((height, width), np.uint8),
        anchor=(0, 0),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    y, x = np.argwhere(hits)[0]
    return y, x


def _mark(shape, spec_ids, **values):
    """``shape`` with attribute values set by name, as the editor saves."""
    attributes = {a["spec_id"]: a["value"] for a in shape["attributes"]}
    attributes.update({spec_ids[k]: v for k, v in values.items()})
    return dict(
        shape,
        attributes=[{"spec_id": k, "value": v} for k, v in attributes.items()],
    )


def _relabel(shape, old, new):
    """``shape`` moved from label ``old`` to ``new`` as the editor does:
    its attribute values go to the new label's attributes of their name."""
    names = {a["id"]: a["name"] for a in old["attributes"]}
    specs = {a["name"]: a["id"] for a in new["attributes"]}
    return dict(
        shape,
        label_id=new["id"],
        attributes=[
            {"spec_id": specs[names[a["spec_id"]]], "value": a["value"]}
            for a in shape["attributes"]
        ],
    )


def _new_shape(frame, label_id, kind, points):
    return {
        "type": kind,
        "frame": frame,
        "label_id": label_id,
        "points": points,
        "attributes": [],
        "occluded": False,
        "z_order": 0,
        "rotation": 0.0,
        "group": 0,
        "source": "manual",
    }


def _send_issue_view(live, dataset, anno_key):
    """Sends the view ``ISSUE_VIEW`` with the run's patches; returns
    the task's labels by name, the samples by frame, and the job and its
    shapes."""
    view = dataset.load_saved_view(ISSUE_VIEW)
    sent = foo.execute_operator(
        f"{PLUGIN}/send_to_cvat",
        dict(
            view=view,
            params=dict(gt_field=GT, run_key="fixer", anno_key=anno_key),
        ),
    ).result
    (task_id,) = sent["task_ids"]
    frame_ids = dataset.load_annotation_results(anno_key).frame_id_map
    samples = [
        dataset[frame_ids[task_id][f]["sample_id"]]
        for f in range(len(live.frame_names(task_id)))
    ]
    job = live.job_id(task_id)
    return live.labels(task_id), samples, job, live.shapes(job)


def _references(shapes, labels):
    """``{patch id: (frame, shape)}`` of the ``fixer_patch`` shapes."""
    specs = {a["name"]: a["id"] for a in labels["fixer_patch"]["attributes"]}
    refs = {}
    for shape in shapes:
        if shape["label_id"] == labels["fixer_patch"]["id"]:
            values = {a["spec_id"]: a["value"] for a in shape["attributes"]}
            refs[values[specs["label_id"]]] = (shape["frame"], shape)
    return refs


def test_send_an_issue_view_puts_every_class_once_and_every_pixel_in_cvat(
    live, dataset
):
    labels, samples, _, shapes = _send_issue_view(live, dataset, "sent")
    assert len(samples) == len(dataset.load_saved_view(ISSUE_VIEW))
    assert len(samples) >= len(PLANTED)
    assert not dataset.has_sample_field("fixer_cvat_sent_patches")
    # Every class once (no "Car_fixer_cvat_sent"), and the patches' label
    assert set(labels) == {
        *dataset.default_mask_targets.values(),
        "fixer_patch",
    }
    by_id = {label["id"]: name for name, label in labels.items()}
    targets = {v: k for k, v in dataset.default_mask_targets.items()}
    # The ground truth class by class, pixel for pixel
    for frame, sample in enumerate(samples):
        gt = sample[GT].get_mask()
        masks = [
            s
            for s in shapes
            if s["frame"] == frame and by_id[s["label_id"]] != "fixer_patch"
        ]
        assert {by_id[s["label_id"]] for s in masks} == {
            dataset.default_mask_targets[v] for v in np.unique(gt)
        }
        for shape in masks:
            assert shape["type"] == "mask"
            np.testing.assert_array_equal(
                points_mask(shape["points"], gt.shape),
                gt == targets[by_id[shape["label_id"]]],
            )
    # One reference shape per patch, tied to it by FiftyOne's label_id
    patches = dataset.load_saved_view(ISSUE_VIEW).values(
        "fixer_patches.detections.id", unwind=True
    )
    assert set(_references(shapes, labels)) == set(patches)


def test_edits_and_review_marks_made_in_cvat_load_back_exactly(
    live, dataset, cvat
):
    before = _digests(dataset)
    labels, samples, job, shapes = _send_issue_view(live, dataset, "live")
    by_id = {label["id"]: name for name, label in labels.items()}
    specs = {a["name"]: a["id"] for a in labels["fixer_patch"]["attributes"]}

    # An annotator relabels the Pavement of frame 0 as Road, grows the Car
    # of frame 1 over a piece of road, paints a pedestrian with a hole into
    # the sky of frame 2, confirms the patch of frame 0 and rejects that of
    # frame 1
    def shape_of(frame, name):
        return next(
            s
            for s in shapes
            if s["frame"] == frame and by_id[s["label_id"]] == name
        )

    expected = {s.id: s[GT].get_mask() for s in samples}
    gt0, gt1, gt2 = (expected[s.id] for s in samples[:3])
    updates = [
        _relabel(shape_of(0, "Pavement"), labels["Pavement"], labels["Road"])
    ]
    gt0[gt0 == PAVEMENT] = ROAD

    car = shape_of(1, "Car")
    y, x = _inside(gt1, ROAD, 12, 30)
    grown = points_mask(car["points"], gt1.shape)
    grown[y : y + 12, x : x + 30] = True
    updates.append(dict(car, points=mask_points(grown)))
    gt1[grown] = CAR

    y, x = _inside(gt2, SKY, 20, 8)
    person = np.zeros(gt2.shape, dtype=bool)
    person[y : y + 20, x : x + 8] = True
    person[y + 5 : y + 8, x + 2 : x + 5] = False
    gt2[person] = PEDESTRIAN

    verdicts = {}
    refs = _references(shapes, labels)
    for frame, mark in ((0, "confirmed"), (1, "rejected")):
        patch_id = next(k for k, (f, _) in refs.items() if f == frame)
        updates.append(_mark(refs[patch_id][1], specs, review=mark))
        verdicts[patch_id] = mark
    live.edit_shapes(job, "update", updates)
    pedestrian = labels["Pedestrian"]["id"]
    live.edit_shapes(
        job, "create", [_new_shape(2, pedestrian, "mask", mask_points(person))]
    )

    counts = foo.execute_operator(
        f"{PLUGIN}/load_from_cvat",
        dict(dataset=dataset, params=dict(anno_key="live", cleanup=True)),
    ).result
    assert counts == {
        "samples": len(dataset.load_saved_view(ISSUE_VIEW)),
        "confirmed": 1,
        "rejected": 1,
        "unmatched": 0,
    }
    for sample in samples:
        sample.reload()
        np.testing.assert_array_equal(
            sample[f"{GT}_cvat"].get_mask(), expected[sample.id]
        )
    assert _digests(dataset) == before
    tags = {"confirmed": ["fixer:confirmed"], "rejected": ["fixer:rejected"]}
    for det in dataset.values("fixer_patches.detections", unwind=True):
        assert det.tags == tags.get(verdicts.get(det.id), [])
    # cleanup: the task, the run and the fields that were sent are gone
    assert live.task_ids(cvat.task_name(dataset, "live")) == []
    assert dataset.list_annotation_runs() == []
    schema = dataset.get_field_schema()
    assert not {"fixer_cvat_live", "fixer_cvat_live_patches"} & set(schema)


def test_wrong_password_fails_clearly_and_keeps_nothing(
    live, dataset, monkeypatch
):
    monkeypatch.setenv("FIFTYONE_CVAT_PASSWORD", "not-the-password")
    with pytest.raises(ExecutionError) as info:
        _send(dataset, run_key="fixer", anno_key="wrong")
    assert _last_line(info.value).startswith(
        f"CvatUnreachableError: Logging in to CVAT as '{live.username}' "
        f"failed: the CVAT server at {live.url} answered HTTP 4"
    )
    assert "check the username and password" in _last_line(info.value)
    assert dataset.list_annotation_runs() == []
    assert not dataset.has_sample_field("fixer_cvat_wrong")


def test_load_with_the_server_stopped_fails_clearly_then_works(live, dataset):
    _send(dataset, anno_key="down")
    live.stop_api_server()
    try:
        with pytest.raises(ExecutionError) as info:
            foo.execute_operator(
                f"{PLUGIN}/load_from_cvat",
                dict(dataset=dataset, params=dict(anno_key="down")),
            )
    finally:
        live.restart()
    assert _last_line(info.value) == (
        f"CvatUnreachableError: Logging in to CVAT as '{live.username}' "
        f"failed: the CVAT server at {live.url} did not answer "
        "(ConnectionError). Nothing was changed. Without a server, use "
        "'Export CVAT archive' to write a CVAT task archive and 'Import "
        "CVAT archive' to read the edited one back."
    )
    assert not dataset.has_sample_field(f"{GT}_cvat")
    counts = foo.execute_operator(
        f"{PLUGIN}/load_from_cvat",
        dict(dataset=dataset, params=dict(anno_key="down", cleanup=True)),
    ).result
    assert counts["samples"] == NUM_IMAGES
    for sample in dataset.iter_samples():
        np.testing.assert_array_equal(
            sample[f"{GT}_cvat"].get_mask(), sample[GT].get_mask()
        )


def test_server_lost_mid_upload_names_the_task_left_behind(
    live, dataset, cvat, monkeypatch
):
    """The server stops (by its PID) once the images are uploaded, before
    the annotations: CVAT keeps a task that FiftyOne never recorded."""
    upload_data = fouc.CVATAnnotationAPI.upload_data

    def upload_then_stop(self, *args, **kwargs):
        job_ids = upload_data(self, *args, **kwargs)
        live.stop_api_server()
        return job_ids

    monkeypatch.setattr(
        fouc.CVATAnnotationAPI, "upload_data", upload_then_stop
    )
    try:
        with pytest.raises(ExecutionError) as info:
            _send(dataset, run_key="fixer", anno_key="lost")
    finally:
        live.restart()
    task = cvat.task_name(dataset, "lost")
    assert _last_line(info.value) == (
        "CvatUnreachableError: Uploading to CVAT after the login failed: "
        f"the CVAT server at {live.url} did not answer (ConnectionError). "
        "No annotation run was kept. The CVAT task made so far, "
        f"'{task}', may remain on the server: delete it there."
    )
    assert dataset.list_annotation_runs() == []
    schema = dataset.get_field_schema()
    assert not {"fixer_cvat_lost", "fixer_cvat_lost_patches"} & set(schema)
    (task_id,) = live.task_ids(task)
    assert len(live.frame_names(task_id)) == NUM_IMAGES


def test_archive_round_trip_through_a_real_cvat_task(live, dataset, tmp_path):
    """Export an archive, make a CVAT task of it (upload as "CVAT 1.1"),
    draw a polygon and a brush mask with a hole, review the polygons of a
    patch made of several regions, export as "CVAT for images 1.1" and
    import: pixel-exact, and every review mark kept."""
    view = dataset.load_saved_view(ISSUE_VIEW)
    archive = tmp_path / "task.zip"
    foo.execute_operator(
        f"{PLUGIN}/export_cvat_archive",
        dict(
            view=view,
            params=dict(
                gt_field=GT, archive_path=str(archive), run_key="fixer"
            ),
        ),
    )
    folder = tmp_path / "task"
    with zipfile.ZipFile(archive) as z:
        z.extractall(folder)
    task_id = live.create_task(
        f"FIXER archive ({dataset.name})",
        json.loads((folder / "cvat_labels.json").read_text()),
        sorted((folder / "images").iterdir()),
    )
    live.import_annotations(task_id, folder / "annotations.xml", "CVAT 1.1")
    edited, expected, verdicts = _edit_and_export(live, task_id, dataset)
    path = tmp_path / "edited.zip"
    path.write_bytes(edited)
    counts = foo.execute_operator(
        f"{PLUGIN}/import_cvat_archive",
        dict(
            dataset=dataset,
            params=dict(gt_field=GT, archive_path=str(path), run_key="fixer"),
        ),
    ).result
    assert counts == {
        "dest_field": f"{GT}_cvat",
        "samples": len(dataset.load_saved_view(ISSUE_VIEW)),
        "skipped_shapes": 0,
        "unmatched_images": 0,
        "confirmed": 1,
        "rejected": 1,
        "unmatched": 0,
    }
    for sample in dataset.select(list(expected)).iter_samples():
        np.testing.assert_array_equal(
            sample[f"{GT}_cvat"].get_mask(), expected[sample.id]
        )
    tags = {"confirmed": ["fixer:confirmed"], "rejected": ["fixer:rejected"]}
    for det in dataset.values("fixer_patches.detections", unwind=True):
        assert det.tags == tags.get(verdicts.get(det.id), [])


def _edit_and_export(live, task_id, dataset):
    """An annotator's edits of an archive's task; returns the exported
    archive, the masks expected from it and the verdicts set."""
    labels = live.labels(task_id)
    by_id = {label["id"]: name for name, label in labels.items()}
    specs = {a["name"]: a["id"] for a in labels["fixer_patch"]["attributes"]}
    ids = [Path(name).stem for name in live.frame_names(task_id)]
    expected = {i: dataset[i][GT].get_mask() for i in ids}
    job = live.job_id(task_id)
    shapes = live.shapes(job)
    polygons = {}  # patch id -> its polygons, in CVAT's order
    for shape in shapes:
        if by_id[shape["label_id"]] == "fixer_patch":
            values = {a["spec_id"]: a["value"] for a in shape["attributes"]}
            patch_id = values[specs["patch_id"]].removeprefix("patch-")
            polygons.setdefault(patch_id, []).append(shape)
    split = [p for p, shapes in polygons.items() if len(shapes) > 1]
    single = [p for p, shapes in polygons.items() if len(shapes) == 1]
    assert split, "the run holds a patch of several regions"
    # One region of the split patch rejected (the first: an unreviewed one
    # follows it), another patch confirmed
    verdicts = {split[0]: "rejected", single[0]: "confirmed"}
    updates = [
        _mark(polygons[split[0]][0], specs, review="rejected"),
        _mark(polygons[single[0]][0], specs, review="confirmed"),
    ]
    live.edit_shapes(job, "update", updates)

    # A Building polygon drawn over the road of frame 0 (pixel edges)
    gt0 = expected[ids[0]]
    y, x = _inside(gt0, ROAD, 10, 16)
    square = [float(v) for v in (x, y, x + 16, y, x + 16, y + 10, x, y + 10)]
    gt0[y : y + 10, x : x + 16] = BUILDING
    # A Car brush mask with a hole in the sky of frame 1
    gt1 = expected[ids[1]]
    y, x = _inside(gt1, SKY, 14, 14)
    brush = np.zeros(gt1.shape, dtype=bool)
    brush[y : y + 14, x : x + 14] = True
    brush[y + 4 : y + 9, x + 4 : x + 9] = False
    gt1[brush] = CAR
    live.edit_shapes(
        job,
        "create",
        [
            _new_shape(0, labels["Building"]["id"], "polygon", square),
            _new_shape(1, labels["Car"]["id"], "mask", mask_points(brush)),
        ],
    )
    exported = live.export_annotations(task_id, "CVAT for images 1.1")
    return exported, expected, verdicts
