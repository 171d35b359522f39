"""Bad inputs to ``find_label_errors`` get clear errors, and nothing is
written before they are raised.

Every case builds a small real dataset (JPEG images, PNG masks, ``.npy``
probabilities on disk), breaks one thing, runs the operator through
FiftyOne's executor (``foo.execute_operator``) and checks that

* the run fails with ``fiftyone.operators.executor.ExecutionError``. How
  the message surfaces depends on who refuses the input:

  - the plugin's pipeline raises ``LabelErrorInputError``; ``str(exc)`` is
    then the whole traceback, ending in ``...LabelErrorInputError:
    <message>``;
  - values that the operator's form itself refuses (a field that is not
    in its dropdown, an invalid run key, an unknown device, a batch size
    below 1) never reach ``execute``: ``str(exc)`` is FiftyOne's
    ``Validation error. Path: <input>. Reason: <reason>``. For these the
    pipeline's own check is tested too (delegated runs and Python callers
    of the pipeline rely on it);

* the message names the offending field and, for a per-sample problem,
  the sample's id;
* the dataset is exactly as before: no new fields (no ``fixer_*``), saved
  views or runs, every sample document and every mask file unchanged.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core.synthetic import make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone import ViewField as F  # noqa: E402
from fiftyone.operators.executor import ExecutionError  # noqa: E402

OPERATOR = f"{PLUGIN}/find_label_errors"
GT = "ground_truth"
PROBS = "probs_path"
NUM_SAMPLES = 4
BAD = 2  # index of the sample a per-sample case breaks (not the first)
HEIGHT, WIDTH = 48, 64
NUM_CLASSES = 8  # the synthetic scenes' classes; 255 is void
ENUM = r"Invalid enum value"  # FiftyOne's reason for a bad dropdown value


# -- helpers -----------------------------------------------------------------


@dataclass
class Scene:
    """A dataset written to disk, and where its files are."""

    dataset: object
    ids: list[str]
    root: Path

    def sample(self, index: int):
        return self.dataset[self.ids[index]]

    def probs_path(self, index: int) -> Path:
        return Path(self.sample(index)[PROBS])

    def mask_path(self, index: int) -> Path:
        return Path(self.sample(index)[GT].mask_path)

    def load_probs(self, index: int) -> np.ndarray:
        return np.load(self.probs_path(index))

    def save_probs(self, index: int, array: np.ndarray) -> None:
        np.save(self.probs_path(index), array)

    def set_value(self, index: int, field: str, value) -> None:
        sample = self.sample(index)
        sample[field] = value
        sample.save()


@pytest.fixture
def scene(fixer_plugin, dataset_factory, tmp_path) -> Scene:
    scenes = make_scenes(NUM_SAMPLES, height=HEIGHT, width=WIDTH, seed=3)
    ds = dataset_factory("bad-inputs")
    ids = write_scenes_dataset(ds, scenes, tmp_path)
    return Scene(ds, ids, tmp_path)


def run_operator(dataset, view=None, **params):
    """Runs ``find_label_errors`` (default device: ``auto``, the CPU
    here); ``params`` override the fields."""
    params = {"gt_field": GT, "probs_field": PROBS, **params}
    kwargs = {"dataset": dataset, "params": params}
    if view is not None:
        kwargs["view"] = view
    return foo.execute_operator(OPERATOR, **kwargs)


def _file_digest(path) -> str | None:
    if not path or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(dataset) -> dict:
    """Everything a failed run must leave alone: fields, saved views,
    runs, every sample's document and the mask files."""
    dataset.reload()
    samples = [s.to_dict() for s in dataset.iter_samples()]
    gts = dataset.values(GT) if dataset.has_sample_field(GT) else []
    return {
        "fields": sorted(dataset.get_field_schema()),
        "views": sorted(dataset.list_saved_views()),
        "runs": sorted(dataset.list_runs()),
        "samples": samples,
        "mask_files": [
            _file_digest(g.mask_path) if g is not None else None for g in gts
        ],
    }


def assert_untouched(dataset, before: dict) -> None:
    after = snapshot(dataset)
    new_fields = sorted(set(after["fields"]) - set(before["fields"]))
    assert not new_fields, f"the failed run added fields {new_fields}"
    assert after["views"] == before["views"], "saved views changed"
    assert after["runs"] == before["runs"], "runs changed"
    assert after["mask_files"] == before["mask_files"], "masks changed"
    assert after == before, "sample documents changed"


def expect_input_error(dataset, pattern: str, view=None, **params) -> str:
    """Runs the operator, expects a LabelErrorInputError matching
    ``pattern``; returns the plugin's message."""
    with pytest.raises(ExecutionError, match=pattern) as info:
        run_operator(dataset, view=view, **params)
    text = str(info.value)
    # The plugin's own error, not a crash deeper down
    found = re.search(r"LabelErrorInputError: (.*)", text)
    assert found, f"not a LabelErrorInputError:\n{text[-2000:]}"
    message = found.group(1)
    assert re.search(pattern, message), (
        f"{pattern!r} is not in the plugin's message {message!r}"
    )
    return message


# -- cases -------------------------------------------------------------------
#
# Each case breaks the scene and returns what to expect.


@dataclass
class Expect:
    """What a broken scene must fail with.

    Attributes:
        pattern: regex the plugin's message must match.
        params: operator params overriding the defaults.
        view: the target view, if not the whole dataset.
        sample: index of the sample the message must name by id.
        field: the field the message must name (quoted).
        form: the operator param whose form input refuses the value
            before ``execute`` runs (FiftyOne then raises "Validation
            error. Path: <form>. Reason: <reason>"), if any.
        reason: regex the form's reason must match.
    """

    pattern: str
    params: dict = field(default_factory=dict)
    view: object = None
    sample: int | None = None
    field: str | None = None
    form: str | None = None
    reason: str = r"\S"


def _unknown_gt(s):
    return Expect(
        r"has no field 'nope'",
        {"gt_field": "nope"},
        field="nope",
        form="gt_field",
        reason=ENUM,
    )


def _gt_classification(s):
    for i in range(NUM_SAMPLES):
        s.set_value(i, "label", fo.Classification(label="wall"))
    return Expect(
        r"Field 'label' must be a Segmentation field, found Classification",
        {"gt_field": "label"},
        field="label",
        form="gt_field",
        reason=ENUM,
    )


def _gt_string(s):
    return Expect(
        rf"Field '{PROBS}' must be a Segmentation field, found StringField",
        {"gt_field": PROBS},
        field=PROBS,
        form="gt_field",
        reason=ENUM,
    )


def _unknown_probs(s):
    return Expect(
        r"has no field 'nope'",
        {"probs_field": "nope"},
        field="nope",
        form="probs_field",
        reason=ENUM,
    )


def _probs_float_field(s):
    for i in range(NUM_SAMPLES):
        s.set_value(i, "score", 0.5)
    return Expect(
        r"Field 'score' must be a string field .*found FloatField",
        {"probs_field": "score"},
        field="score",
        form="probs_field",
        reason=ENUM,
    )


def _probs_label_field(s):
    return Expect(
        rf"Field '{GT}' must be a string field",
        {"probs_field": GT},
        field=GT,
        form="probs_field",
        reason=ENUM,
    )


def _no_mask_targets(s):
    s.dataset.default_mask_targets = {}
    s.dataset.save()
    return Expect(rf"Field '{GT}' has no mask targets")


def _rgb_mask_targets(s):
    s.dataset.default_mask_targets = {}
    s.dataset.mask_targets = {GT: {"#000000": "wall", "#ff0000": "floor"}}
    s.dataset.save()
    return Expect(rf"Field '{GT}' has RGB mask targets")


def _empty_view(s):
    view = s.dataset.match(F("filepath") == "nope")
    return Expect(r"The target view holds no samples", view=view)


def _gt_none(s):
    s.set_value(BAD, GT, None)
    return Expect(rf"has no '{GT}' segmentation", sample=BAD, field=GT)


def _mask_missing(s):
    s.mask_path(BAD).unlink()
    return Expect(r"could not be read", sample=BAD, field=GT)


def _mask_garbage(s):
    s.mask_path(BAD).write_bytes(b"this is not a png")
    return Expect(r"could not be read", sample=BAD, field=GT)


def _mask_rgb(s):
    path = s.mask_path(BAD)
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(path), np.dstack([mask] * 3))
    return Expect(r"has shape \(48, 64, 3\)", sample=BAD, field=GT)


def _mask_wrong_size(s):
    s.dataset.compute_metadata()
    path = s.mask_path(BAD)
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(path), mask[: HEIGHT // 2, : WIDTH // 2])
    return Expect(
        rf"is {WIDTH // 2}x{HEIGHT // 2} but its image is {WIDTH}x{HEIGHT}",
        sample=BAD,
        field=GT,
    )


def _probs_path_none(s):
    s.set_value(BAD, PROBS, None)
    return Expect(r"No probability file", sample=BAD, field=PROBS)


def _probs_missing(s):
    s.probs_path(BAD).unlink()
    return Expect(r"does not exist", sample=BAD, field=PROBS)


def _probs_garbage(s):
    s.probs_path(BAD).write_bytes(b"\x00\x01garbage bytes\xff" * 10)
    return Expect(r"could not be read", sample=BAD, field=PROBS)


def _probs_2d(s):
    s.save_probs(BAD, s.load_probs(BAD)[0])
    return Expect(
        r"shape \(48, 64\); expected \(K, H, W\)", sample=BAD, field=PROBS
    )


def _probs_wrong_k(s):
    s.save_probs(BAD, s.load_probs(BAD)[:-1])
    return Expect(
        rf"have {NUM_CLASSES - 1} channels but those of sample .+ have "
        rf"{NUM_CLASSES}",
        sample=BAD,
        field=PROBS,
    )


def _probs_wrong_k_first(s):
    # The first sample is the odd one out: the error must still name it,
    # not only the good samples after it.
    s.save_probs(0, s.load_probs(0)[:-1])
    return Expect(r"channels", sample=0, field=PROBS)


def _probs_k_beyond_targets_first(s):
    probs = s.load_probs(0)
    s.save_probs(0, np.concatenate([probs, np.zeros_like(probs[:1])]))
    return Expect(r"name no class for value\(s\) \[8\]", sample=0, field=PROBS)


def _probs_k_beyond_targets_all(s):
    for i in range(NUM_SAMPLES):
        probs = s.load_probs(i)
        s.save_probs(i, np.concatenate([probs, np.zeros_like(probs[:1])]))
    return Expect(r"name no class for value\(s\) \[8\]", sample=0, field=PROBS)


def _probs_nan(s):
    probs = s.load_probs(BAD)
    probs[3, 10, 10] = np.nan
    s.save_probs(BAD, probs)
    return Expect(r"NaN or infinite", sample=BAD, field=PROBS)


def _probs_inf_second_batch(s):
    probs = s.load_probs(3)
    probs[0, 0, 0] = np.inf
    s.save_probs(3, probs)
    return Expect(r"NaN or infinite", {"batch_size": 2}, sample=3, field=PROBS)


def _probs_negative(s):
    probs = s.load_probs(BAD)
    probs[1, 5, 5] = -0.5
    probs[2, 5, 5] += 0.5
    s.save_probs(BAD, probs)
    return Expect(r"negative values.*logits=True", sample=BAD, field=PROBS)


def _probs_not_normalized(s):
    s.save_probs(BAD, s.load_probs(BAD) * 1.5)
    return Expect(r"do not sum to 1", sample=BAD, field=PROBS)


def _probs_integer_one(s):
    # Probabilities quantized to uint8 by a careless exporter, on one
    # sample: refused when its file is read
    s.save_probs(BAD, (s.load_probs(BAD) * 255).astype(np.uint8))
    return Expect(
        r"holds uint8 values; expected float16 or float32",
        sample=BAD,
        field=PROBS,
    )


def _probs_integer_all(s):
    # ... on every sample: the finder refuses the integer batch
    for i in range(NUM_SAMPLES):
        s.save_probs(i, (s.load_probs(i) * 255).astype(np.uint8))
    return Expect(r"float", sample=0, field=PROBS)


def _logits_without_flag(s):
    for i in range(NUM_SAMPLES):
        s.save_probs(i, np.log(s.load_probs(i) + 1e-6) * 3)
    return Expect(r"logits=True", sample=0, field=PROBS)


def _bad_run_key(s):
    return Expect(
        r"Run key 'bad-key' must be a valid variable name",
        {"run_key": "bad-key"},
        form="run_key_error",
        reason=r"bad-key",
    )


def _foreign_run_key(s):
    s.dataset.register_run("other", s.dataset.init_run(method="other"))
    return Expect(
        r"Run key 'other' is already used by another kind of run",
        {"run_key": "other"},
        form="run_key_error",
        reason=r"'other'",
    )


def _bad_device(s):
    return Expect(
        r"device must be one of .*'tpu'",
        {"device": "tpu"},
        form="device",
        reason=ENUM,
    )


def _cuda_without_cuda(s):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    return Expect(r"torch sees no CUDA device", {"device": "cuda"})


def _bad_batch_size(s):
    return Expect(
        r"batch_size must be positive",
        {"batch_size": -1},
        form="batch_size",
        reason=r"greater than",
    )


def _user_field_clash(s):
    # A field of the user's that a run with key "fixer" would write
    for i in range(NUM_SAMPLES):
        s.set_value(i, "fixer_error_score", float(i))
    return Expect(
        r"Run key 'fixer' would replace field 'fixer_error_score'",
        field="fixer_error_score",
        form="run_key_error",
        reason=r"fixer_error_score",
    )


def _user_field_clash_other_type(s):
    # ... and one of another type than the run's (a string, not a mask)
    for i in range(NUM_SAMPLES):
        s.set_value(i, "fixer_corrected", f"note {i}")
    return Expect(
        r"Run key 'fixer' would replace field 'fixer_corrected'",
        field="fixer_corrected",
        form="run_key_error",
        reason=r"fixer_corrected",
    )


def _user_view_clash(s):
    # A saved view of the user's that a run with key "fixer" would save
    s.dataset.save_view("fixer-general", s.dataset.limit(1))
    return Expect(
        r"would replace saved view 'fixer-general'",
        form="run_key_error",
        reason=r"fixer-general",
    )


def _probs_transposed(s):
    s.save_probs(BAD, s.load_probs(BAD).transpose(0, 2, 1).copy())
    return Expect(
        rf"are {HEIGHT}x{WIDTH} \(width x height\) but the labels are "
        rf"{WIDTH}x{HEIGHT}",
        sample=BAD,
        field=PROBS,
    )


def _probs_one_pixel_all(s):
    for i in range(NUM_SAMPLES):
        s.save_probs(i, s.load_probs(i)[:, :1, :1].copy())
    return Expect(r"are 1x1 \(width x height\)", sample=0, field=PROBS)


def _probs_other_aspect(s):
    s.save_probs(BAD, s.load_probs(BAD)[:, :, :HEIGHT].copy())
    return Expect(r"same aspect ratio", sample=BAD, field=PROBS)


def _mask_value_not_in_targets(s):
    path = s.mask_path(BAD)
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    mask[:4, :4] = 99
    cv2.imwrite(str(path), mask)
    return Expect(
        rf"holds value\(s\) \[99\] that the mask targets of '{GT}' do "
        "not name",
        sample=BAD,
        field=GT,
    )


def _mask_all_void(s):
    for i in range(NUM_SAMPLES):
        path = s.mask_path(i)
        cv2.imwrite(str(path), np.full((HEIGHT, WIDTH), 255, np.uint8))
    return Expect(r"Nothing to score: every pixel", field=GT)


def _mask_float(s):
    mask = cv2.imread(str(s.mask_path(BAD)), cv2.IMREAD_UNCHANGED)
    s.set_value(BAD, GT, fo.Segmentation(mask=mask.astype(float) + 0.5))
    return Expect(r"holds float64 values", sample=BAD, field=GT)


def _mask_wrong_size_no_metadata(s):
    assert s.sample(BAD).metadata is None
    path = s.mask_path(BAD)
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(path), mask[: HEIGHT // 2, : WIDTH // 2])
    return Expect(
        rf"is {WIDTH // 2}x{HEIGHT // 2} but its image is {WIDTH}x{HEIGHT}",
        sample=BAD,
        field=GT,
    )


def _view_without_probs(s):
    return Expect(
        rf"The target view leaves out field '{PROBS}'",
        view=s.dataset.select_fields(GT),
        field=PROBS,
    )


def _view_excluding_probs(s):
    return Expect(
        rf"The target view leaves out field '{PROBS}'",
        view=s.dataset.exclude_fields(PROBS),
        field=PROBS,
    )


def _private_run_key(s):
    return Expect(
        r"Run key '_hidden' must not start with '_'",
        {"run_key": "_hidden"},
        form="run_key_error",
        reason=r"_hidden",
    )


def _long_run_key(s):
    return Expect(
        r"is 300 characters long; at most 64",
        {"run_key": "k" * 300},
        form="run_key_error",
        reason=r"300 characters",
    )


CASES: dict[str, Callable] = {
    "unknown-gt-field": _unknown_gt,
    "gt-classification": _gt_classification,
    "gt-string-field": _gt_string,
    "unknown-probs-field": _unknown_probs,
    "probs-float-field": _probs_float_field,
    "probs-label-field": _probs_label_field,
    "no-mask-targets": _no_mask_targets,
    "rgb-mask-targets": _rgb_mask_targets,
    "empty-view": _empty_view,
    "gt-none": _gt_none,
    "mask-missing": _mask_missing,
    "mask-garbage": _mask_garbage,
    "mask-rgb": _mask_rgb,
    "mask-size-differs": _mask_wrong_size,
    "probs-path-none": _probs_path_none,
    "probs-missing": _probs_missing,
    "probs-garbage": _probs_garbage,
    "probs-2d": _probs_2d,
    "probs-wrong-k": _probs_wrong_k,
    "probs-wrong-k-first-sample": _probs_wrong_k_first,
    "probs-k-beyond-targets-first": _probs_k_beyond_targets_first,
    "probs-k-beyond-targets-all": _probs_k_beyond_targets_all,
    "probs-nan": _probs_nan,
    "probs-inf-second-batch": _probs_inf_second_batch,
    "probs-negative": _probs_negative,
    "probs-not-normalized": _probs_not_normalized,
    "probs-integer-dtype-one": _probs_integer_one,
    "probs-integer-dtype-all": _probs_integer_all,
    "logits-without-flag": _logits_without_flag,
    "run-key-invalid": _bad_run_key,
    "run-key-foreign-run": _foreign_run_key,
    "device-unknown": _bad_device,
    "device-cuda-unavailable": _cuda_without_cuda,
    "batch-size-negative": _bad_batch_size,
    "user-field-clash": _user_field_clash,
    "user-field-clash-other-type": _user_field_clash_other_type,
    "user-saved-view-clash": _user_view_clash,
    # issue 24: layouts, mask values, empty work, views, run keys
    "probs-transposed": _probs_transposed,
    "probs-1x1-all": _probs_one_pixel_all,
    "probs-other-aspect-ratio": _probs_other_aspect,
    "mask-value-not-in-targets": _mask_value_not_in_targets,
    "mask-all-void": _mask_all_void,
    "mask-float": _mask_float,
    "mask-size-differs-no-metadata": _mask_wrong_size_no_metadata,
    "view-leaves-out-probs-field": _view_without_probs,
    "view-excludes-probs-field": _view_excluding_probs,
    "run-key-private": _private_run_key,
    "run-key-too-long": _long_run_key,
}


# -- tests -------------------------------------------------------------------

# The cases whose value the operator's form refuses first
FORM_CASES = [
    "unknown-gt-field",
    "gt-classification",
    "gt-string-field",
    "unknown-probs-field",
    "probs-float-field",
    "probs-label-field",
    "run-key-invalid",
    "run-key-foreign-run",
    "device-unknown",
    "batch-size-negative",
    "user-field-clash",
    "user-field-clash-other-type",
    "user-saved-view-clash",
    "run-key-private",
    "run-key-too-long",
]
FORM_FUNCS = {CASES[k] for k in FORM_CASES}


def assert_names(message: str, scene: Scene, expect: Expect) -> None:
    if expect.sample is not None:
        sample_id = scene.ids[expect.sample]
        assert sample_id in message, (
            f"the message does not name sample {sample_id}: {message!r}"
        )
        name = Path(scene.sample(expect.sample).filepath).name
        assert f"'{name}'" in message, (
            f"the message does not name file {name!r}: {message!r}"
        )
    if expect.field is not None:
        assert f"'{expect.field}'" in message, (
            f"the message does not name field {expect.field!r}: {message!r}"
        )


@pytest.fixture(scope="session")
def pipeline(fixer_plugin):
    """The plugin's ``operators._pipeline`` module, as FiftyOne loaded it."""
    return importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._pipeline"
    )


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_operator_refuses_bad_input_before_writing(scene, case):
    expect = case(scene)
    assert (expect.form is not None) == (case in FORM_FUNCS)
    before = snapshot(scene.dataset)
    if expect.form is None:
        message = expect_input_error(
            scene.dataset, expect.pattern, view=expect.view, **expect.params
        )
        assert_names(message, scene, expect)
    else:
        # Refused by the operator's form before execute() runs
        with pytest.raises(ExecutionError) as info:
            run_operator(scene.dataset, view=expect.view, **expect.params)
        text = str(info.value)
        form = re.fullmatch(
            r"Validation error\. Path: (\S+)\. Reason: (.*)", text, re.S
        )
        assert form, f"not a form validation error: {text[-2000:]}"
        assert form.group(1) == expect.form
        assert re.search(expect.reason, form.group(2)), (
            f"the form refuses '{expect.form}' without a clear reason: "
            f"{text!r}"
        )
    assert_untouched(scene.dataset, before)


@pytest.mark.parametrize(
    "case", [CASES[k] for k in FORM_CASES], ids=FORM_CASES
)
def test_pipeline_refuses_bad_input_before_writing(scene, case, pipeline):
    """What the form refuses, the pipeline refuses too (delegated runs,
    Python callers), with the plugin's own LabelErrorInputError."""
    expect = case(scene)
    assert expect.form is not None
    before = snapshot(scene.dataset)
    params = {"gt_field": GT, "probs_field": PROBS, **expect.params}
    view = expect.view if expect.view is not None else scene.dataset
    with pytest.raises(pipeline.LabelErrorInputError, match=expect.pattern):
        for _ in pipeline.run_find_label_errors(
            view, pipeline.FindParams(**params)
        ):
            pass
    assert_untouched(scene.dataset, before)


def test_logits_are_accepted_with_the_logits_flag(scene):
    _logits_without_flag(scene)
    run_operator(scene.dataset, logits=True)
    ds = scene.dataset
    ds.reload()
    assert "fixer" in ds.list_runs()
    for name in ("fixer_patches", "fixer_error_score", "fixer_corrected"):
        assert ds.has_sample_field(name)
    assert ds.count("fixer_corrected") == NUM_SAMPLES
    config = ds.get_run_info("fixer").config
    assert config.logits is True


def _break_targets(s):
    s.dataset.default_mask_targets = {}
    s.dataset.save()
    return {}, r"has no mask targets", None


def _break_probs_file(s):
    s.probs_path(3).write_bytes(b"garbage")
    return {}, r"could not be read", 3


def _break_last_batch(s):
    probs = s.load_probs(3)
    probs[:, 0, 0] = np.nan
    s.save_probs(3, probs)
    return {"batch_size": 2}, r"NaN or infinite", 3


@pytest.mark.parametrize(
    "breaker",
    [_break_targets, _break_probs_file, _break_last_batch],
    ids=["validation", "pass-1-unreadable-probs", "pass-1-last-batch-nan"],
)
def test_failed_rerun_keeps_the_previous_run(scene, breaker):
    ds = scene.dataset
    run_operator(ds)
    ds.reload()
    assert "fixer" in ds.list_runs()
    fields = set(ds.get_field_schema())
    assert {"fixer_patches", "fixer_error_score", "fixer_corrected"} <= fields
    assert "fixer-patches" in ds.list_saved_views()
    patches = ds.values("fixer_patches")
    corrected = [
        _file_digest(p) for p in ds.values("fixer_corrected.mask_path")
    ]
    assert all(corrected)
    summary = ds.load_run_results("fixer", cache=False).summary

    # The rerun with the same key fails before it deletes anything
    params, pattern, bad_sample = breaker(scene)
    before = snapshot(ds)
    view_sizes = {n: len(ds.load_saved_view(n)) for n in before["views"]}
    message = expect_input_error(ds, pattern, **params)
    if bad_sample is not None:
        assert scene.ids[bad_sample] in message

    assert_untouched(ds, before)
    assert ds.values("fixer_patches") == patches
    assert [
        _file_digest(p) for p in ds.values("fixer_corrected.mask_path")
    ] == corrected
    assert sum(view_sizes.values()) > 0
    for name, size in view_sizes.items():
        assert len(ds.load_saved_view(name)) == size
    again = ds.load_run_results("fixer", cache=False)
    assert again is not None and again.summary == summary
