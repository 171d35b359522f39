"""Pass 2's sample fields as the documents FiftyOne stores, written in
one bulk update per batch.

Building an ``fo.Detection`` per patch and saving the samples through
FiftyOne's document layer costs more than the database write itself
(about 0.4 ms per patch, tens of patches per image). The patches are
written here as the plain documents ``fo.Detection(...).to_mongo()``
gives, field for field and in its key order; the few labels of one per
sample (corrected mask, error map) are serialized by FiftyOne itself.
``tests/operators/test_documents.py`` checks that both paths store the
same documents. The patches' issues and reasons, known once pass 2 is
done, are set by position with the same bulk writes.
"""

from __future__ import annotations

import datetime

import fiftyone as fo
import fiftyone.core.fields as fof
import fiftyone.core.odm as foo_odm
import fiftyone.core.sample as fos
import fiftyone.core.utils as fou
from bson import ObjectId
from pymongo import UpdateOne

from ..fixer_core import Patch
from ._evidence import evidence_attributes


def detections_document(patches: list[Patch], class_names: list[str]) -> dict:
    """The stored form of an ``fo.Detections`` of the patches."""
    return {
        "_cls": "Detections",
        "detections": [detection_document(p, class_names) for p in patches],
    }


def detection_document(patch: Patch, class_names: list[str]) -> dict:
    """The stored form of a patch's ``fo.Detection``: its label fields
    (``attributes`` and ``tags`` empty, ``mask_path`` and ``index``
    unset), then the patch's own attributes, with a new id."""
    suggested = class_names[patch.suggested_label]
    return {
        "_id": ObjectId(),
        "_cls": "Detection",
        "attributes": {},
        "tags": [],
        "label": suggested,
        "bounding_box": patch.bounding_box,
        "mask": fou.serialize_numpy_array(patch.mask),
        "confidence": patch.score,
        **_patch_attributes(patch, class_names),
    }


def _patch_attributes(patch: Patch, class_names: list[str]) -> dict:
    """A patch's custom attributes on its detection, in the order they
    are stored (``issue`` is set once the run knows its issues)."""
    return {
        "error_probability": patch.error_probability,
        "cause": patch.cause,
        "repeat": patch.repeat_of is not None,
        "run": run_attribute(patch),
        "run_length": patch.run_length,
        "given_label": class_names[patch.given_label],
        "suggested_label": class_names[patch.suggested_label],
        "error_type": patch.error_type,
        "issue": None,
        "area": patch.area,
        "coverage": patch.coverage,
        **evidence_attributes(patch, class_names),
    }


# The custom attributes of the patches' detections (beyond fo.Detection's
# own fields), with their field types and list element types: declared in
# the dataset's schema, so that the App's sidebar can filter on them.
DETECTION_ATTRIBUTE_FIELDS = {
    "error_probability": (fof.FloatField, None),
    "cause": (fof.StringField, None),
    "repeat": (fof.BooleanField, None),
    "run": (fof.StringField, None),
    "run_length": (fof.IntField, None),
    "given_label": (fof.StringField, None),
    "suggested_label": (fof.StringField, None),
    "error_type": (fof.StringField, None),
    "issue": (fof.StringField, None),
    "area": (fof.IntField, None),
    "coverage": (fof.FloatField, None),
    "top_classes": (fof.ListField, fof.StringField),
    "top_probs": (fof.ListField, fof.FloatField),
    "given_prob": (fof.FloatField, None),
    "given_threshold": (fof.FloatField, None),
    "rule": (fof.StringField, None),
    "vouched": (fof.FloatField, None),
    "contradicted": (fof.FloatField, None),
    "relabelled": (fof.FloatField, None),
    "same_confusion": (fof.IntField, None),
    "reason": (fof.StringField, None),
}


def detection_attribute_schema(patches_field: str) -> dict:
    """``{path: field}`` of the patches' custom attributes
    (:data:`DETECTION_ATTRIBUTE_FIELDS`) under the ``fo.Detections`` field
    ``patches_field``, for ``Dataset.add_dynamic_sample_fields``: declared,
    they can be filtered in the App (the bulk writes bypass FiftyOne's
    schema expansion)."""
    return {
        f"{patches_field}.detections.{name}": (
            ftype() if sub is None else ftype(field=sub())
        )
        for name, (ftype, sub) in DETECTION_ATTRIBUTE_FIELDS.items()
    }


def run_attribute(patch: Patch) -> str | None:
    """A patch's run of repeats as stored (see :func:`run_key`)."""
    return None if patch.run is None else run_key(patch.run)


def run_key(run: tuple[int, int]) -> str:
    """A run of repeats (``Patch.run``) as stored:
    ``"<image>:<position>"`` of the run's first patch."""
    return "{}:{}".format(*run)


def label_document(label: fo.Label) -> dict:
    """The stored form of a label, serialized by FiftyOne."""
    return label.to_mongo().to_dict()


def write_sample_fields(
    dataset: fo.Dataset, ids: list[str], values: list[dict]
) -> None:
    """Sets values as stored (``{path: value}``: a field and its
    document, or a path into one) on the samples with these ids, in one
    bulk write, as saving the samples would: each sample's
    ``last_modified_at`` is updated, and in-memory samples are
    reloaded."""
    now = datetime.datetime.utcnow()
    ops = [
        UpdateOne(
            {"_id": ObjectId(sample_id)},
            {"$set": {**fields, "last_modified_at": now}},
        )
        for sample_id, fields in zip(ids, values, strict=True)
    ]
    if not ops:
        return
    foo_odm.bulk_write(
        ops, dataset._sample_collection, ordered=False, batcher=False
    )
    for sample_id in ids:
        fos.Sample._reload_doc(dataset._sample_collection_name, sample_id)
