"""Model and architecture entry points typed in the App are imported and
called in the server: only those an administrator allowed may be, and a
refused one is never imported. The Python API may call its own."""

from __future__ import annotations

import sys
import textwrap
import uuid
from types import SimpleNamespace

import pytest
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core.synthetic import make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
from fiftyone.operators.executor import (  # noqa: E402
    ExecutionError,
    Executor,
)

FIND = f"{PLUGIN}/find_label_errors"
GT = "ground_truth"
SECRET = "FIXER_ALLOWED_ENTRY_POINTS"

CANARY = textwrap.dedent(
    """
    import pathlib

    import torch

    from fixer_core.synthetic import ColourModel

    pathlib.Path(__file__).with_suffix(".imported").write_text("imported")


    def make():
        return ColourModel(torch.zeros(8, 3))


    def unet(num_classes):
        from fixer_core.training import UNet

        return UNet(num_classes)
    """
)


@pytest.fixture
def small(fixer_plugin, dataset_factory, tmp_path, monkeypatch):
    """4 scenes on disk and a fresh canary module that marks its import."""
    dataset = dataset_factory("entry-points")
    write_scenes_dataset(
        dataset, make_scenes(4, height=48, width=64, seed=3), tmp_path
    )
    name = f"fixer_canary_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(CANARY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(SECRET, raising=False)
    return SimpleNamespace(
        dataset=dataset,
        root=tmp_path,
        module=name,
        marker=tmp_path / f"{name}.imported",
    )


def _from_app(dataset, **params):
    """Runs the operator with flat params, exactly as the App sends them."""
    params = {"gt_field": GT, "run_key": "ep", **params}
    return foo.execute_operator(FIND, dict(dataset=dataset, params=params))


def _snapshot(dataset) -> dict:
    dataset.reload()
    return {
        "fields": sorted(dataset.get_field_schema()),
        "views": sorted(dataset.list_saved_views()),
        "runs": sorted(dataset.list_runs()),
    }


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(
            {"probs_source": "model", "model": "{m}:make"}, id="model"
        ),
        pytest.param(
            {"probs_source": "cross_validation", "architecture": "{m}:unet"},
            id="architecture",
        ),
        pytest.param(
            {"probs_source": "model", "model": " {m}:make "}, id="padded"
        ),
    ],
)
def test_app_entry_point_not_allowed_is_refused_before_import(small, params):
    params = {k: v.format(m=small.module) for k, v in params.items()}
    before = _snapshot(small.dataset)
    with pytest.raises(ExecutionError, match="not allowed"):
        _from_app(small.dataset, **params)
    assert small.module not in sys.modules
    assert not small.marker.exists()
    assert _snapshot(small.dataset) == before


def test_execute_refuses_an_entry_point_that_skipped_the_form(small):
    """A crafted request (or a queued delegated run) reaches ``execute``
    without the form's check: execute refuses on its own."""
    spec = f"{small.module}:make"
    ctx = foo.ExecutionContext(
        request_params={
            "dataset_name": small.dataset.name,
            "dataset_id": str(small.dataset._doc.id),
            "params": {"gt_field": GT, "probs_source": "model", "model": spec},
        },
        executor=Executor(),
    )
    operator = foo.get_operator(FIND)
    before = _snapshot(small.dataset)
    with pytest.raises(ValueError, match="has not allowed"):
        list(operator.execute(ctx))
    assert small.module not in sys.modules
    assert not small.marker.exists()
    assert _snapshot(small.dataset) == before


def test_app_cannot_call_a_standard_library_callable(small):
    with pytest.raises(ExecutionError, match="'os:abort' is not allowed"):
        _from_app(small.dataset, probs_source="model", model="os:abort")


def test_entry_point_allowed_by_the_secret_runs(small, monkeypatch):
    spec = f"{small.module}:make"
    monkeypatch.setenv(SECRET, f"other.pkg:factory, {spec}")
    _from_app(small.dataset, probs_source="model", model=spec)
    assert small.marker.exists()
    assert "ep" in small.dataset.list_runs()


def test_entry_point_registered_in_the_fixer_models_group_runs(small):
    spec = f"{small.module}:make"
    dist = small.root / f"{small.module}_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {small.module}-pkg\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[fixer.models]\ncanary = {spec}\n"
    )
    _from_app(small.dataset, probs_source="model", model=spec)
    assert small.marker.exists()


def test_python_api_may_call_its_own_entry_point(small):
    find = foo.get_operator(FIND)
    find(
        small.dataset,
        GT,
        probs_source="model",
        model=f"{small.module}:make",
        run_key="ep",
    )
    assert small.marker.exists()
    assert "ep" in small.dataset.list_runs()


def test_torchscript_files_stay_allowed_from_the_app(small):
    import torch

    from fixer_core.synthetic import ColourModel

    path = small.root / "colour.pt"
    torch.jit.script(ColourModel(torch.rand(8, 3))).save(str(path))
    _from_app(small.dataset, probs_source="model", model=str(path))
    assert "ep" in small.dataset.list_runs()


def _form(dataset, **params):
    ctx = foo.ExecutionContext(
        request_params={
            "dataset_name": dataset.name,
            "dataset_id": str(dataset._doc.id),
            "params": params,
        },
        executor=Executor(),
        operator_uri=FIND,
        required_secrets=[SECRET],
    )
    return foo.get_operator(FIND).resolve_input(ctx).type.properties


@pytest.mark.parametrize(
    "source, name",
    [("model", "model"), ("cross_validation", "architecture")],
)
def test_form_offers_only_allowed_entry_points(
    small, monkeypatch, source, name
):
    allowed = f"{small.module}:make"
    monkeypatch.setenv(SECRET, allowed)
    props = _form(small.dataset, gt_field=GT, probs_source=source)
    choices = [c.value for c in props[name].view.choices]
    assert choices == [allowed]
    assert not [k for k, p in props.items() if p.invalid]

    props = _form(
        small.dataset, gt_field=GT, probs_source=source, **{name: "os:abort"}
    )
    assert props[f"{name}_error"].invalid
    assert "not allowed" in props[f"{name}_error"].error_message
    assert small.module not in sys.modules
