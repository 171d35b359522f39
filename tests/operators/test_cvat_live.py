"""The live CVAT path up to the HTTP boundary (no CVAT server runs here)."""

from __future__ import annotations

import importlib
import socket
import types as pytypes
import uuid

import numpy as np
import pytest
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
import fiftyone.utils.annotations as foua  # noqa: E402
import fiftyone.utils.cvat as fouc  # noqa: E402
from fiftyone.operators.executor import ExecutionError  # noqa: E402

GT = "ground_truth"
CVAT_ENV = ("URL", "USERNAME", "PASSWORD", "EMAIL")


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


def test_label_schema_passes_fiftyones_own_checks(cvat, found):
    names = cvat.write_edit_field(found.view(), GT, "k")
    schema = cvat.cvat_label_schema(
        found, GT, "k", "fixer_patches", extra_classes=names
    )
    classes = sorted(found.default_mask_targets.values())
    assert schema["fixer_cvat_k"] == {"type": "instances", "classes": classes}
    assert found.get_field("fixer_cvat_k").info == {"fixer_gt_field": GT}
    patches = schema["fixer_patches"]
    assert patches["type"] == "instances"
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
    refs = built["fixer_patches"]
    assert refs["existing_field"] and refs["type"] == "instances"
    for flag in ("additions", "deletions", "label_edits", "spatial_edits"):
        assert refs[f"allow_{flag}"] is False
    for name in ("given_label", "error_type", "issue"):
        assert refs["attributes"][name] == {
            "type": "text",
            "values": [],
            "read_only": True,
        }
    # Only the review mark is loaded back
    assert foua._get_writeable_attributes(refs["attributes"]) == ["review"]
    found.delete_sample_field("fixer_cvat_k")


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
    message = str(info.value)
    assert (
        f"Could not reach or log in to the CVAT server at {closed_server}"
        in message
    )
    assert closed_server in message and "ConnectionError" in message
    assert "Export CVAT archive" in message
    assert found.list_annotation_runs() == []
    # Nor the field it sent
    assert not found.has_sample_field("fixer_cvat_fix_cvat")


def test_send_of_an_issue_view_fails_cleanly_too(found, closed_server):
    view = found.load_saved_view("fixer-general")
    with pytest.raises(ExecutionError, match="No annotation run was kept"):
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


def test_load_writes_edits_to_a_new_field_and_reviews_to_tags(
    cvat, dataset_factory, tmp_path, monkeypatch, fixer_plugin
):
    """``load_from_cvat`` around FiftyOne's loader, which is replaced by
    what it would write: the sent masks decoded from CVAT's encoding (one
    of them edited by an annotator) and the patches with review marks."""
    dataset = dataset_factory("load")
    scenes = make_scenes(3, seed=0)
    write_scenes_dataset(dataset, scenes, tmp_path)
    foo.execute_operator(
        f"{PLUGIN}/find_label_errors",
        dict(
            dataset=dataset,
            params=dict(
                gt_field=GT, probs_field="probs_path", **SIMULATED_MODEL
            ),
        ),
    )
    names = cvat.write_edit_field(dataset.view(), GT, "sent")
    config = foua._parse_config(
        "cvat",
        cvat.cvat_label_schema(
            dataset, GT, "sent", "fixer_patches", extra_classes=names
        ),
        url="http://127.0.0.1:1",
        username="u",
        password="p",
    )
    config.build().register_run(dataset, "sent", overwrite=False)
    patches = dataset.values("fixer_patches.detections.id", unwind=True)
    verdicts = {patches[0]: "confirmed", patches[1]: "rejected"}
    edited_id = dataset.first().id
    calls = []

    def load_annotations(self, anno_key, dest_field=None, **kwargs):
        calls.append((anno_key, dest_field, kwargs))
        loaded, reviews = {}, {}
        for sample in self.iter_samples():
            width, height = scenes.labels.shape[2], scenes.labels.shape[1]
            dets = []
            for det in sample.fixer_cvat_sent.detections:
                x, y = det.bounding_box[:2]
                shape = _cvat_mask_shape(
                    det.mask,
                    round(x * width),
                    round(y * height),
                    (width, height),
                    det.label,
                )
                dets.append(fouc.CVATShape.to_instance(shape))
            if sample.id == edited_id:  # a lamp drawn in the top-left
                dets.append(
                    fo.Detection(
                        label="lamp",
                        bounding_box=[1 / width, 1 / height, 0.1, 0.1],
                        mask=np.ones((2, 3), dtype=bool),
                    )
                )
            loaded[sample.id] = fo.Detections(detections=dets)
            refs = fo.Detections.from_dict(sample.fixer_patches.to_dict())
            for det in refs.detections:
                det["review"] = verdicts.get(det.id, "unreviewed")
            reviews[sample.id] = refs
        self.set_values(dest_field["fixer_cvat_sent"], loaded, key_field="id")
        self.set_values(dest_field["fixer_patches"], reviews, key_field="id")

    monkeypatch.setattr(fo.Dataset, "load_annotations", load_annotations)
    result = foo.execute_operator(
        f"{PLUGIN}/load_from_cvat",
        dict(dataset=dataset, params=dict(anno_key="sent", cleanup=True)),
    ).result
    assert calls[0][0] == "sent" and calls[0][2]["cleanup"] is True
    assert result == {
        "samples": 3,
        "confirmed": 1,
        "rejected": 1,
        "unmatched": 0,
    }
    lamp = scenes.class_names.index("lamp")
    tags = {"confirmed": ["fixer:confirmed"], "rejected": ["fixer:rejected"]}
    for sample, label in zip(
        dataset.iter_samples(), scenes.labels, strict=True
    ):
        expected = label.copy()
        if sample.id == edited_id:
            expected[1:3, 1:4] = lamp
        np.testing.assert_array_equal(
            sample.ground_truth_cvat.get_mask(), expected
        )
        np.testing.assert_array_equal(sample[GT].get_mask(), label)
        for det in sample.fixer_patches.detections:
            assert det.tags == tags.get(verdicts.get(det.id), [])
    schema = dataset.get_field_schema()
    assert "fixer_cvat_loaded_tmp" not in schema
    assert "fixer_cvat_review_tmp" not in schema
    # cleanup=True also forgets the run and the field that was sent
    assert "fixer_cvat_sent" not in schema
    assert dataset.list_annotation_runs() == []


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
