"""Pass 2 writes its sample fields as plain documents in one bulk write
per batch: they must equal, field for field, type for type and in key
order, what saving FiftyOne's label objects stores."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
from fixer_testing import (
    stored_form,
    write_documents,
    write_scenes_dataset,
    write_with_label_objects,
)

from fixer_core.synthetic import IGNORE_VALUE, SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
from fiftyone import ViewField as F  # noqa: E402

NUM_IMAGES = 6
KINDS = ("patches", "score", "error_map", "corrected")


def _module(fixer_plugin, name: str):
    """A module of the plugin package, as FiftyOne loaded it."""
    return importlib.import_module(f"{fixer_plugin.module.__name__}.{name}")


def _write(writer, fixer_plugin, dataset, scenes, found, fields, folder):
    writer(
        fixer_plugin.module.__name__,
        dataset,
        list(scenes.labels),
        found,
        list(scenes.class_names),
        fields,
        folder,
        batch_size=4,
    )


def _varied_patches(core, scenes) -> list[list]:
    """The finder's patches per image, with every optional attribute
    varied on one patch each: no evidence, a cause, a repeat of a run of
    two; the last image gets none."""
    patches, _ = core.find_label_errors(
        scenes.labels,
        scenes.pred_probs,
        class_names=scenes.class_names,
        ignore_index=[IGNORE_VALUE],
        config=core.FinderConfig(**SIMULATED_MODEL),
    )
    found = [[] for _ in range(NUM_IMAGES)]
    for p in patches:
        if p.image_index < NUM_IMAGES - 1:
            found[p.image_index].append(p)
    where = [
        (i, j) for i, image in enumerate(found) for j in range(len(image))
    ]
    changes = (
        {"evidence": None},
        {"cause": "label shifted against its image"},
        {"repeat_of": 0, "run": (0, 0), "run_length": 2},
    )
    assert len(where) > len(changes), "the scenes give too few patches"
    for (i, j), change in zip(where, changes, strict=False):
        found[i][j] = dataclasses.replace(found[i][j], **change)
    return found


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(NUM_IMAGES, seed=0)


@pytest.mark.parametrize("on_disk", [False, True], ids=["inline", "files"])
def test_documents_equal_what_label_objects_store(
    fixer_plugin, dataset_factory, tmp_path, scenes, on_disk
):
    core = _module(fixer_plugin, "fixer_core")
    pipeline = _module(fixer_plugin, "operators._pipeline")
    found = _varied_patches(core, scenes)
    dataset = dataset_factory("documents")
    write_scenes_dataset(dataset, scenes, tmp_path / "scenes")
    ref = pipeline.output_fields("ref")
    new = pipeline.output_fields("new")
    dirs = {"ref": None, "new": None}
    if on_disk:
        for key in dirs:
            dirs[key] = tmp_path / f"corrected-{key}"
            dirs[key].mkdir()
            dirs[key] = str(dirs[key])
    for fields in (ref, new):
        pipeline._declare_fields(dataset, fields, None)

    _write(
        write_with_label_objects,
        fixer_plugin,
        dataset,
        scenes,
        found,
        ref,
        dirs["ref"],
    )
    modified = dict(
        zip(*dataset.values(["id", "last_modified_at"]), strict=True)
    )
    _write(
        write_documents, fixer_plugin, dataset, scenes, found, new, dirs["new"]
    )

    replace = {}
    if on_disk:
        replace = {
            dirs["ref"]: "<dir>",
            dirs["new"]: "<dir>",
            "error-maps-ref": "<maps>",
            "error-maps-new": "<maps>",
        }
    docs = list(dataset._sample_collection.find({}).sort("filepath", 1))
    assert len(docs) == NUM_IMAGES
    for doc in docs:
        for kind in KINDS:
            assert stored_form(doc[new[kind]], replace) == stored_form(
                doc[ref[kind]], replace
            ), kind
        assert doc["last_modified_at"] >= modified[str(doc["_id"])]
    label_ids = [
        d["_id"] for doc in docs for d in doc[new["patches"]]["detections"]
    ] + [
        doc[new[k]]["_id"] for doc in docs for k in ("corrected", "error_map")
    ]
    assert len(set(label_ids)) == len(label_ids)
    assert sum(map(len, found)) == len(label_ids) - 2 * NUM_IMAGES > 0

    schema = dataset.get_field_schema(flat=True)
    assert {
        k.replace("ref_", "", 1): type(v)
        for k, v in schema.items()
        if k.startswith("ref_")
    } == {
        k.replace("new_", "", 1): type(v)
        for k, v in schema.items()
        if k.startswith("new_")
    }


def test_documents_read_back_through_fiftyone(
    fixer_plugin, dataset_factory, tmp_path, scenes
):
    core = _module(fixer_plugin, "fixer_core")
    pipeline = _module(fixer_plugin, "operators._pipeline")
    found = _varied_patches(core, scenes)
    dataset = dataset_factory("documents-read")
    write_scenes_dataset(dataset, scenes, tmp_path / "scenes")
    fields = pipeline.output_fields("new")
    pipeline._declare_fields(dataset, fields, None)
    held = dataset.first()
    _write(write_documents, fixer_plugin, dataset, scenes, found, fields, None)

    names = list(scenes.class_names)
    assert held[fields["patches"]] is not None  # reloaded in memory
    samples = dataset.iter_samples()
    for i, (sample, patches) in enumerate(zip(samples, found, strict=True)):
        detections = sample[fields["patches"]].detections
        assert len(detections) == len(patches)
        for det, patch in zip(detections, patches, strict=True):
            assert isinstance(det, fo.Detection)
            assert det.suggested_label == names[patch.suggested_label]
            assert det.given_label == names[patch.given_label]
            assert det.confidence == patch.score
            assert det.repeat == (patch.repeat_of is not None)
            np.testing.assert_array_equal(det.mask, patch.mask)
        np.testing.assert_array_equal(
            sample[fields["corrected"]].get_mask(),
            core.apply_patches(
                scenes.labels[i],
                patches,
                min_probability=0.0,
                skip_repeats=True,
            ),
        )
    general = sum(p.error_type == "general" for image in found for p in image)
    view = dataset.filter_labels(
        fields["patches"], F("error_type") == "general"
    )
    assert view.count(f"{fields['patches']}.detections") == general
    assert dataset.bounds(fields["score"])[1] > 0


def test_a_run_stores_each_patch_with_the_attributes_in_order(
    fixer_plugin, dataset_factory, tmp_path, scenes
):
    """Issues and reasons are set by position after pass 2; the stored
    detections keep the key order label objects and ``set_values`` gave
    them."""
    pipeline = _module(fixer_plugin, "operators._pipeline")
    dataset = dataset_factory("documents-run")
    write_scenes_dataset(dataset, scenes, tmp_path / "scenes")
    params = pipeline.FindParams(
        gt_field="ground_truth",
        probs_field="probs_path",
        ignore_values=(IGNORE_VALUE,),
        config=pipeline.FinderConfig(**SIMULATED_MODEL),
    )
    for _ in pipeline.run_find_label_errors(dataset, params):
        pass
    keys = [
        list(d)
        for doc in dataset._sample_collection.find({})
        for d in doc["fixer_patches"]["detections"]
    ]
    assert keys
    assert all(
        k
        == [
            "_id",
            "_cls",
            "attributes",
            "tags",
            "label",
            "bounding_box",
            "mask",
            "confidence",
            "error_probability",
            "cause",
            "repeat",
            "run",
            "run_length",
            "given_label",
            "suggested_label",
            "error_type",
            "issue",
            "area",
            "coverage",
            "top_classes",
            "top_probs",
            "given_prob",
            "given_threshold",
            "rule",
            "vouched",
            "contradicted",
            "relabelled",
            "same_confusion",
            "reason",
        ]
        for k in keys
    )
    reasons = dataset.values("fixer_patches.detections.reason", unwind=True)
    assert all(isinstance(r, str) and r for r in reasons)
