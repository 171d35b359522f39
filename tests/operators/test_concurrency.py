"""FIXER operators run at the same time in separate processes on one
dataset (real processes, one real MongoDB): nothing is lost, and work that
would overlap is refused with a "busy" error naming the holder."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fixer_testing import PLUGIN, write_scenes_dataset

from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")

GT = "ground_truth"
WORKER = Path(__file__).with_name("concurrency_worker.py")
FIND_PARAMS = {"gt_field": GT, "probs_field": "probs_path", **SIMULATED_MODEL}
APPLY_PARAMS = {
    "gt_field": GT,
    "source": "suggestions",
    "run_key": "fixer",
    "selection": "score",
    "min_score": 0.3,
}


# -- helpers ------------------------------------------------------------------


@pytest.fixture
def shared_dataset(fixer_plugin, dataset_factory, tmp_path):
    """16 scenes on disk, with a finished run ``fixer``; its original
    masks by sample id."""
    dataset = dataset_factory("concurrency")
    write_scenes_dataset(
        dataset, make_scenes(16, height=48, width=64, seed=1), tmp_path
    )
    _run_here("find_label_errors", dataset, **FIND_PARAMS, run_key="fixer")
    originals = {s.id: s[GT].get_mask() for s in dataset.iter_samples()}
    return SimpleNamespace(dataset=dataset, root=tmp_path, masks=originals)


@pytest.fixture
def locks(fixer_plugin):
    """The plugin's ``operators._locks`` module, as FiftyOne loaded it."""
    return importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._locks"
    )


def _run_here(operator, dataset, **params):
    result = foo.execute_operator(
        f"{PLUGIN}/{operator}", dict(dataset=dataset, params=params)
    )
    assert result.error is None, result.error
    return result


def _start(root: Path, dataset, specs: list[dict]) -> list[subprocess.Popen]:
    """Starts one worker process per spec and releases them together once
    all have loaded FiftyOne and the plugin."""
    start = root / f"start-{time.monotonic_ns()}"
    procs, ready = [], []
    for i, spec in enumerate(specs):
        flag = root / f"ready-{start.name}-{i}"
        ready.append(flag)
        spec = dict(
            spec, dataset=dataset.name, ready=str(flag), start=str(start)
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(spec)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=dict(os.environ, PYTHONPATH=str(WORKER.parent)),
            )
        )
    for flag, proc in zip(ready, procs, strict=True):
        while not flag.exists():
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
    start.touch()
    return procs


def _outcomes(procs) -> list[dict]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _run_in_processes(root, dataset, specs) -> list[dict]:
    return _outcomes(_start(root, dataset, specs))


def _assert_busy_or_ok(outcome: dict) -> None:
    assert outcome["ok"] or "is busy" in outcome["error"], outcome


def _assert_run_complete(dataset, run_key: str) -> None:
    """Every output of the run is declared, set on every sample and its
    saved views load."""
    dataset.reload()
    assert run_key in dataset.list_runs()
    assert dataset.load_run_results(run_key, cache=False) is not None
    config = dataset.get_run_info(run_key).config
    for name in config.fields:
        assert dataset.has_sample_field(name), name
    scores = dataset.values(f"{run_key}_error_score")
    assert None not in scores and len(scores) == len(dataset)
    for name in config.views:
        dataset.load_saved_view(name).count()
    assert sorted(dataset.list_saved_views()) == sorted(
        set(dataset.list_saved_views())
    )


def _assert_every_sample_loads(dataset) -> None:
    dataset.reload()
    assert len(list(dataset.iter_samples())) == len(dataset)


def _undo_all(dataset) -> None:
    applies = [
        k
        for k in dataset.list_runs()
        if dataset.get_run_info(k).config.method == "fixer.apply_corrections"
    ]
    order = sorted(applies, key=lambda k: dataset.get_run_info(k).timestamp)
    for key in reversed(order):
        _run_here("undo_corrections", dataset, apply_key=key)


def _assert_ground_truth_is(dataset, masks: dict) -> None:
    dataset.reload()
    for sample in dataset.iter_samples():
        np.testing.assert_array_equal(sample[GT].get_mask(), masks[sample.id])
    assert not dataset.has_sample_field("fixer_applied")


# -- finder runs --------------------------------------------------------------


def test_two_finder_runs_with_different_keys_keep_both_outputs(
    shared_dataset,
):
    ds = shared_dataset.dataset
    outcomes = _run_in_processes(
        shared_dataset.root,
        ds,
        [
            {
                "operator": "find_label_errors",
                "params": {**FIND_PARAMS, "run_key": key},
            }
            for key in ("ka", "kb")
        ],
    )
    assert outcomes == [{"ok": True}, {"ok": True}]
    _assert_every_sample_loads(ds)
    for key in ("fixer", "ka", "kb"):
        _assert_run_complete(ds, key)


def test_same_run_key_twice_at_once_leaves_one_complete_run(shared_dataset):
    ds = shared_dataset.dataset
    outcomes = _run_in_processes(
        shared_dataset.root,
        ds,
        [
            {
                "operator": "find_label_errors",
                "params": {**FIND_PARAMS, "run_key": "same"},
            }
        ]
        * 2,
    )
    for outcome in outcomes:
        _assert_busy_or_ok(outcome)
    assert any(o["ok"] for o in outcomes)
    _assert_every_sample_loads(ds)
    _assert_run_complete(ds, "same")


def test_finder_run_refuses_while_its_run_key_is_held(shared_dataset, locks):
    ds = shared_dataset.dataset
    before = sorted(ds.get_field_schema())
    with locks.exclusive(ds, locks.run_resource("held"), "a test holder"):
        (outcome,) = _run_in_processes(
            shared_dataset.root,
            ds,
            [
                {
                    "operator": "find_label_errors",
                    "params": {**FIND_PARAMS, "run_key": "held"},
                }
            ],
        )
    assert not outcome["ok"]
    assert "is busy: run:held is held by a test holder" in outcome["error"]
    assert f"process {os.getpid()}" in outcome["error"]
    ds.reload()
    assert sorted(ds.get_field_schema()) == before


# -- apply and undo -----------------------------------------------------------


def test_two_applies_at_once_lose_no_labels(shared_dataset):
    ds = shared_dataset.dataset
    outcomes = _run_in_processes(
        shared_dataset.root,
        ds,
        [
            {
                "operator": "apply_corrections",
                "params": {**APPLY_PARAMS, "apply_key": key},
            }
            for key in ("a1", "a2")
        ],
    )
    for outcome in outcomes:
        _assert_busy_or_ok(outcome)
    _assert_every_sample_loads(ds)
    _undo_all(ds)
    _assert_ground_truth_is(ds, shared_dataset.masks)


def test_apply_and_finder_run_at_once_lose_no_labels(shared_dataset):
    ds = shared_dataset.dataset
    outcomes = _run_in_processes(
        shared_dataset.root,
        ds,
        [
            {
                "operator": "apply_corrections",
                "params": {**APPLY_PARAMS, "apply_key": "a1"},
            },
            {
                "operator": "find_label_errors",
                "params": {**FIND_PARAMS, "run_key": "fixer"},
            },
        ],
    )
    for outcome in outcomes:
        _assert_busy_or_ok(outcome)
    _assert_every_sample_loads(ds)
    _assert_run_complete(ds, "fixer")
    _undo_all(ds)
    _assert_ground_truth_is(ds, shared_dataset.masks)


def test_apply_refuses_while_a_finder_run_reads_the_labels(
    shared_dataset, locks
):
    ds = shared_dataset.dataset
    with locks.shared(ds, locks.labels_resource(GT), "finder run 'x'"):
        (outcome,) = _run_in_processes(
            shared_dataset.root,
            ds,
            [
                {
                    "operator": "apply_corrections",
                    "params": {**APPLY_PARAMS, "apply_key": "a1"},
                }
            ],
        )
    assert not outcome["ok"]
    assert (
        f"is busy: labels:{GT} is held by finder run 'x'" in (outcome["error"])
    )
    ds.reload()
    assert "a1" not in ds.list_runs()
    _assert_ground_truth_is(ds, shared_dataset.masks)


def test_finder_run_refuses_while_an_apply_changes_the_labels(
    shared_dataset, locks
):
    ds = shared_dataset.dataset
    with locks.exclusive(ds, locks.labels_resource(GT), "apply 'a1'"):
        (outcome,) = _run_in_processes(
            shared_dataset.root,
            ds,
            [
                {
                    "operator": "find_label_errors",
                    "params": {**FIND_PARAMS, "run_key": "fixer"},
                }
            ],
        )
    assert not outcome["ok"]
    assert "is held by apply 'a1'" in outcome["error"]
    _assert_run_complete(ds, "fixer")  # the previous run is kept


def test_a_killed_holder_does_not_block_the_next_run(shared_dataset):
    ds = shared_dataset.dataset
    (holder,) = _start(
        shared_dataset.root,
        ds,
        [{"hold": {"resource": f"labels:{GT}", "shared": False}}],
    )
    assert json.loads(holder.stdout.readline())["held"]
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    _run_here("apply_corrections", ds, **APPLY_PARAMS, apply_key="a1")
    _undo_all(ds)
    _assert_ground_truth_is(ds, shared_dataset.masks)


# -- a lost field declaration -------------------------------------------------


def test_delete_removes_values_whose_declaration_was_lost(shared_dataset):
    """An older version could lose a field's declaration to a concurrent
    schema write; its values then made every sample load fail. Deleting
    the run removes them."""
    ds = shared_dataset.dataset
    _run_here("find_label_errors", ds, **FIND_PARAMS, run_key="xb")
    fo.core.odm.get_db_conn().datasets.update_one(
        {"_id": ds._doc.id},
        {"$pull": {"sample_fields": {"name": "xb_patches"}}},
    )
    ds.reload()
    with pytest.raises(Exception, match="xb_patches"):
        list(ds.iter_samples())
    _run_here("delete_label_error_run", ds, run_key="xb")
    _assert_every_sample_loads(ds)
    raw = ds._sample_collection.count_documents({"xb_patches": {"$exists": 1}})
    assert raw == 0


# -- the database goes away ---------------------------------------------------


def _start_private_mongod(mongod: str, root: Path) -> tuple:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (root / "db").mkdir()
    proc = subprocess.Popen(
        [mongod, "--bind_ip", "127.0.0.1", "--port", str(port),
         "--dbpath", str(root / "db"), "--wiredTigerCacheSizeGB", "0.25",
         "--nounixsocket", "--logpath", str(root / "mongod.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("the private mongod did not start")


def test_losing_the_database_mid_run_names_it(fo_env, fixer_plugin, tmp_path):
    proc, port = _start_private_mongod(fo_env["mongod"], tmp_path)
    paused, go = tmp_path / "paused", tmp_path / "go"
    spec = {
        "lose_database": {
            "root": str(tmp_path / "data"),
            "paused": str(paused),
            "go": str(go),
        }
    }
    uri = f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=5000"
    repo = WORKER.parents[2]
    env = dict(
        os.environ,
        FIFTYONE_DATABASE_URI=uri,
        FIFTYONE_DATABASE_NAME="fixer-db-loss",
        PYTHONPATH=os.pathsep.join([str(repo / "tests"), str(repo)]),
    )
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        while not paused.exists():
            assert worker.poll() is None, worker.communicate()
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    go.touch()
    stdout, stderr = worker.communicate(timeout=600)
    outcome = json.loads(stdout.strip().splitlines()[-1])
    assert not outcome["ok"]
    assert outcome["error"].startswith("DatabaseUnavailableError"), outcome
    assert f"'fixer-db-loss' at 127.0.0.1:{port}" in outcome["error"]
