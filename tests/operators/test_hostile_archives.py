"""CVAT archive import under hostile or broken archives: sizes, entry
names, boxes, points, labels and fill values are refused with the plugin's
own error before any shape is decoded or anything is written."""

from __future__ import annotations

import importlib
import uuid
import zipfile
from types import SimpleNamespace

import pytest
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core.synthetic import make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone.operators.executor import ExecutionError  # noqa: E402

GT = "ground_truth"
DEST = "gt_edit"


@pytest.fixture(scope="module")
def exported(fixer_plugin, tmp_path_factory):
    """Two scenes (96x128) and their exported archive's XML."""
    root = tmp_path_factory.mktemp("hostile")
    dataset = fo.Dataset(f"hostile-{uuid.uuid4().hex[:10]}")
    try:
        write_scenes_dataset(
            dataset, make_scenes(2, height=96, width=128, seed=0), root
        )
        path = root / "task.zip"
        result = foo.execute_operator(
            f"{PLUGIN}/export_cvat_archive",
            dict(
                dataset=dataset,
                params={"gt_field": GT, "archive_path": str(path)},
            ),
        )
        assert result.error is None, result.error
        with zipfile.ZipFile(path) as z:
            xml = z.read("annotations.xml").decode()
        yield SimpleNamespace(
            dataset=dataset, root=root, xml=xml, sid=dataset.first().id
        )
    finally:
        dataset.delete()


@pytest.fixture
def limits(fixer_plugin):
    """The plugin's ``operators._archive_limits`` module."""
    return importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._archive_limits"
    )


def _import(dataset, path, **params):
    return foo.execute_operator(
        f"{PLUGIN}/import_cvat_archive",
        dict(
            dataset=dataset,
            params={
                "gt_field": GT,
                "archive_path": str(path),
                "dest_field": DEST,
                **params,
            },
        ),
    )


def _zip(root, xml: str, name: str = "annotations.xml"):
    path = root / f"{uuid.uuid4().hex[:8]}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, xml)
    return path


def _with_shape(exported, shape: str) -> str:
    xml = exported.xml
    start = xml.index(f'name="{exported.sid}.jpg"')
    end = xml.index("</image>", start)
    return xml[:end] + shape + "\n" + xml[end:]


def _refused(exported, path, pattern, **params):
    with pytest.raises(ExecutionError) as info:
        _import(exported.dataset, path, **params)
    message = str(info.value)
    assert "LabelErrorInputError" in message, message[-2000:]
    assert pattern in message, message[-2000:]
    exported.dataset.reload()
    assert not exported.dataset.has_sample_field(DEST)


def test_xml_larger_than_the_limit_is_refused_before_extracting(
    exported, limits, monkeypatch
):
    monkeypatch.setattr(limits, "MAX_XML_BYTES", 2**20)
    bomb = exported.xml.replace(
        "</annotations>", "<!--" + " " * 2**21 + "--></annotations>"
    )
    path = _zip(exported.root, bomb)
    assert path.stat().st_size < 2**17  # a small zip ...
    _refused(exported, path, "larger than 1 MiB uncompressed")


def test_plain_xml_larger_than_the_limit_is_refused(
    exported, limits, monkeypatch
):
    monkeypatch.setattr(limits, "MAX_XML_BYTES", 2**20)
    path = exported.root / "big.xml"
    path.write_text(exported.xml + " " * 2**21)
    _refused(exported, path, "larger than 1 MiB")


@pytest.mark.parametrize("kind", ["absolute", "parent"])
def test_entry_names_never_read_a_file_outside_the_archive(exported, kind):
    outside = exported.root / "outside" / "x.xml"
    outside.parent.mkdir(exist_ok=True)
    outside.write_text(exported.xml)  # a valid XML the server must not read
    name = str(outside) if kind == "absolute" else "../../outside/x.xml"
    path = _zip(exported.root, "<annotations>not this</annotations>", name)
    _refused(exported, path, "holds an entry with an unsafe name")


def test_brush_mask_box_outside_its_image_is_refused_before_decoding(
    exported,
):
    shape = (
        '<mask label="lamp" source="manual" occluded="0" '
        'rle="3600000000" left="0" top="0" width="60000" height="60000" '
        'z_order="0"></mask>'
    )
    path = _zip(exported.root, _with_shape(exported, shape))
    _refused(exported, path, "outside the 128x96 image")


def test_polygon_with_too_many_points_is_refused(
    exported, limits, monkeypatch
):
    monkeypatch.setattr(limits, "MAX_POINTS_PER_SHAPE", 1000)
    points = ";".join(f"{i % 100},{i // 100}" for i in range(1001))
    shape = f'<polygon label="lamp" points="{points}" occluded="0"/>'
    path = _zip(exported.root, _with_shape(exported, shape))
    _refused(exported, path, "has 1001 points; at most 1000 are read")


@pytest.mark.parametrize(
    "points", ["0,0;nan,4;4,4", "0,0;4;4,4", "0,0;a,b;4,4"]
)
def test_malformed_points_are_refused(exported, points):
    shape = f'<polygon label="lamp" points="{points}" occluded="0"/>'
    path = _zip(exported.root, _with_shape(exported, shape))
    _refused(exported, path, "has the malformed point")


@pytest.mark.parametrize("label", ["99", "300"])
def test_numeric_label_of_no_class_is_refused(exported, label):
    shape = f'<polygon label="{label}" points="0,0;8,0;8,8" occluded="0"/>'
    path = _zip(exported.root, _with_shape(exported, shape))
    _refused(exported, path, f"shapes of class value(s) [{label}]")


def test_duplicate_image_entry_is_refused(exported):
    xml = exported.xml
    start = xml.index("<image ")
    end = xml.index("</image>", start) + len("</image>")
    path = _zip(exported.root, xml[:end] + xml[start:end] + xml[end:])
    _refused(exported, path, "appears twice in the archive")


@pytest.mark.parametrize("fill_value", [1000, -1, 99])
def test_fill_value_the_masks_cannot_hold_is_refused(exported, fill_value):
    path = _zip(exported.root, exported.xml)
    _refused(
        exported,
        path,
        f"fill_value {fill_value} is not a value of the mask targets",
        fill_value=fill_value,
    )
