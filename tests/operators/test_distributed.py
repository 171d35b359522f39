"""Runs over two real CPU ranks (gloo): started by the operator's
``workers`` parameter in a delegated run, and by ``torchrun``. They must
write what a single-process run writes.

Tolerance: pass 1's float sums (thresholds, background probabilities) are
summed per rank, then over the ranks, so they may differ from a single
process's in float summation order: statistics agree to a relative 1e-6,
patch scores and probabilities to an absolute 1e-6 (they are computed
from those statistics in float32). Everything else (patches, masks,
boxes, types, issues, counts) is identical.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fixer_testing import (
    PLUGIN,
    painted_over_frames,
    panning_images,
    write_frames_dataset,
    write_scenes_dataset,
)

from fixer_core.neighbours import NEIGHBOURS_CAUSE
from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")
foo = pytest.importorskip("fiftyone.operators")
food = pytest.importorskip("fiftyone.core.odm.database")
from fiftyone.operators.delegated import (  # noqa: E402
    DelegatedOperationService,
)

FIND = f"{PLUGIN}/find_label_errors"
REPO = Path(__file__).resolve().parents[2]
RUN_SCRIPT = REPO / "scripts" / "fixer_distributed.py"
NUM_IMAGES = 10
TOLERANCE = 1e-6
# Patch attributes compared exactly / within TOLERANCE
EXACT = (
    "label",
    "bounding_box",
    "given_label",
    "suggested_label",
    "error_type",
    "issue",
    "cause",
    "repeat",
    "run",
    "run_length",
    "area",
    "rule",
    "vouched",
    "contradicted",
    "relabelled",
    "top_classes",
    "same_confusion",
)
CLOSE = ("confidence", "error_probability", "coverage", "top_probs")


def _params(run_key: str, **extra) -> dict:
    return {
        "gt_field": "ground_truth",
        "probs_field": "probs_path",
        "run_key": run_key,
        "batch_size": 3,
        **SIMULATED_MODEL,
        **extra,
    }


def _find(dataset, run_key: str, **extra) -> None:
    result = foo.execute_operator(
        FIND, dict(dataset=dataset, params=_params(run_key, **extra))
    )
    result.raise_exceptions()


def _find_delegated(dataset, run_key: str, workers: int, **extra):
    """Queues a delegated run and executes it here; returns its
    operation (its ``run_state`` and ``result``)."""
    foo.execute_operator(
        FIND,
        dict(
            dataset=dataset,
            params=_params(run_key, workers=workers, **extra),
        ),
        request_delegation=True,
    )
    service = DelegatedOperationService()
    service.execute_queued_operations(dataset_name=dataset.name)
    (op,) = service.list_operations(dataset_name=dataset.name)
    service.delete_operation(op.id)
    return op


@pytest.fixture
def scenes_dataset(fixer_plugin, dataset_factory, tmp_path):
    dataset = dataset_factory("ranks")
    write_scenes_dataset(
        dataset, make_scenes(NUM_IMAGES, seed=0), tmp_path / "data"
    )
    return dataset


def _assert_same_run(dataset, single: str, ranks: str) -> None:
    """The outputs of run ``ranks`` equal those of run ``single``."""
    for sample in dataset.iter_samples():
        a, b = sample[f"{single}_patches"], sample[f"{ranks}_patches"]
        assert len(a.detections) == len(b.detections), sample.filepath
        for da, db in zip(a.detections, b.detections, strict=True):
            for name in EXACT:
                assert da[name] == db[name], (sample.filepath, name)
            for name in CLOSE:
                assert da[name] == pytest.approx(db[name], abs=TOLERANCE)
            np.testing.assert_array_equal(da.mask, db.mask)
        assert sample[f"{single}_error_score"] == pytest.approx(
            sample[f"{ranks}_error_score"], abs=TOLERANCE
        )
        np.testing.assert_array_equal(
            sample[f"{single}_corrected"].get_mask(),
            sample[f"{ranks}_corrected"].get_mask(),
        )
        np.testing.assert_allclose(
            sample[f"{single}_error_map"].get_map(),
            sample[f"{ranks}_error_map"].get_map(),
            atol=TOLERANCE,
        )
    one = dataset.load_run_results(single)
    two = dataset.load_run_results(ranks)
    s1, s2 = one.statistics, two.statistics
    assert s1.keys() == s2.keys()
    for name in s1:
        np.testing.assert_allclose(s1[name], s2[name], rtol=TOLERANCE)
    sum1, sum2 = dict(one.summary), dict(two.summary)
    assert sum1.pop("expected_errors") == pytest.approx(
        sum2.pop("expected_errors"), abs=0.1
    )
    for a, b in zip(
        sum1.pop("expected_errors_interval"),
        sum2.pop("expected_errors_interval"),
        strict=True,
    ):
        assert a == pytest.approx(b, abs=0.1)
    assert sum1 == sum2
    assert sum1["num_images"] == NUM_IMAGES
    assert sum1["issues"], "the planted errors form specific issues"
    info = dataset.get_run_info(ranks).config
    assert info.fields == [
        f"{ranks}_{s}"
        for s in ("patches", "error_score", "corrected", "error_map")
    ]
    assert dataset.has_saved_view(f"{ranks}-patches")
    assert f"{ranks}_pending" not in dataset.list_runs()


def _assert_same_scores(dataset, single: str, ranks: str) -> None:
    """Run ``ranks`` scores each sample's patches as run ``single`` does."""
    for a, b in zip(
        dataset.values(f"{single}_patches.detections"),
        dataset.values(f"{ranks}_patches.detections"),
        strict=True,
    ):
        assert [p.confidence for p in a] == pytest.approx(
            [p.confidence for p in b], abs=TOLERANCE
        )


# Started workers are forked with one thread per rank, else new interpreters
STARTS = pytest.mark.parametrize(
    "num_threads", [1, 2], ids=["forked", "new-interpreters"]
)


@STARTS
def test_two_workers_write_what_one_process_writes(
    fixer_plugin, scenes_dataset, num_threads
):
    distributed = importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._distributed"
    )
    params = {"gt_field": "ground_truth", "num_threads": num_threads}
    assert distributed.forks(params, 2) == (num_threads == 1)
    _find(scenes_dataset, "single")
    op = _find_delegated(
        scenes_dataset, "ranks", workers=2, num_threads=num_threads
    )
    assert op.run_state == "completed", op.result.error
    _assert_same_run(scenes_dataset, "single", "ranks")


def test_two_torchrun_ranks_write_what_one_process_writes(
    scenes_dataset, tmp_path
):
    _find(scenes_dataset, "single")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(RUN_SCRIPT),
            scenes_dataset.name,
            "--gt-field",
            "ground_truth",
            "--probs-field",
            "probs_path",
            "--run-key",
            "ranks",
            "--batch-size",
            "3",
            *(
                f"--{k.replace('_', '-')}={v}"
                for k, v in SIMULATED_MODEL.items()
            ),
        ],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    scenes_dataset.reload()
    _assert_same_run(scenes_dataset, "single", "ranks")


@pytest.mark.parametrize("told_by", ["labels", "images"])
def test_the_frames_around_a_ranks_shard_are_its_edges_neighbours(
    fixer_plugin, dataset_factory, tmp_path, told_by
):
    """Two workers on 10 frames (shards 0-4 and 5-9): frames 4 and 5, on
    the shards' edges, get their neighbours from the other shard (told by
    their labels, or by their images where the labels of frames 3 and 5
    agree too little)."""
    # frame 4's object painted over: a slip the model doubts but does not
    # name, which frames 3 and 5 contradict; in frame 5 the model calls a
    # block of ground background: a label frames 4 and 6 vouch for
    labels, truth, probs = painted_over_frames(NUM_IMAGES, painted=4)
    probs[5, :, 46:60, 40:54] = np.array([0.9, 0.05, 0.05])[:, None, None]
    images = None
    if told_by == "images":
        # a sixth of the ground of frames 3 and 5 relabelled
        labels[3, 45:, :40] = 0
        labels[5, 45:, 60:] = 0
        images = panning_images(NUM_IMAGES)
    dataset = dataset_factory("frames")
    write_frames_dataset(
        dataset, tmp_path / "frames", labels, truth, probs, images=images
    )

    _find(dataset, "single", batch_size=2)
    op = _find_delegated(dataset, "ranks", workers=2)
    assert op.run_state == "completed", op.result.error

    for run in ("single", "ranks"):
        found = [d.detections for d in dataset.values(f"{run}_patches")]
        causes = [[p.cause for p in patches] for patches in found]
        assert causes[4] == [NEIGHBOURS_CAUSE], run
        if told_by == "labels":
            assert found[5] == [], run
            assert dataset.load_run_results(run).summary["vouched"] == 1, run
    _assert_same_scores(dataset, "single", "ranks")


def test_two_workers_score_a_shuffled_video_in_the_order_of_its_views(
    fixer_plugin, dataset_factory, tmp_path
):
    """Frames stored out of time order: rank 0 orders their views, and the
    ranks' shards of that order find what one process finds, the painted
    frame named by its neighbours."""
    labels, truth, probs = painted_over_frames(NUM_IMAGES, painted=4)
    stored = np.random.default_rng(0).permutation(NUM_IMAGES)
    dataset = dataset_factory("shuffled")
    write_frames_dataset(
        dataset,
        tmp_path / "shuffled",
        labels[stored],
        truth[stored],
        probs[stored],
        images=panning_images(NUM_IMAGES)[stored],
    )

    _find(dataset, "single", batch_size=2)
    op = _find_delegated(dataset, "ranks", workers=2)
    assert op.run_state == "completed", op.result.error

    painted = int(np.flatnonzero(stored == 4)[0])
    for run in ("single", "ranks"):
        assert dataset.get_run_info(run).config.views_ordered, run
        found = dataset.values(f"{run}_patches.detections")
        assert [p.cause for p in found[painted]] == [NEIGHBOURS_CAUSE], run
    _assert_same_scores(dataset, "single", "ranks")


def _run_frames(
    changed: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """10 frames (labels, truth, probabilities) labelled 0 over a ground
    of class 3 rising 6 px a frame (the frames differ too much to be
    each other's neighbours), in which frames 2-7 label an object of
    class 2 drifting 2 px a frame as class 1: one disagreement repeated
    in 6 frames. Where the run began with a ``changed`` label, frames 0-1
    show the object too, labelled 2."""
    size = (64, 80)
    truth = np.zeros((NUM_IMAGES, *size), np.uint8)
    for i in range(NUM_IMAGES):
        truth[i, 60 - 6 * i :, :] = 3
    labels = truth.copy()
    for i in range(0 if changed else 2, 8):
        truth[i, 5:17, 5 + 2 * i : 17 + 2 * i] = 2
        labels[i, 5:17, 5 + 2 * i : 17 + 2 * i] = 1 if i >= 2 else 2
    probs = np.where(
        truth[:, None] == np.arange(4)[None, :, None, None], 0.94, 0.02
    ).astype(np.float32)
    return labels, truth, probs


@pytest.mark.parametrize("changed", [False, True], ids=["habit", "changed"])
def test_a_run_of_repeats_across_shards_is_the_run_one_process_finds(
    fixer_plugin, dataset_factory, tmp_path, changed, caplog
):
    """The run of frames 2-7 crosses the edge of two workers' shards
    (0-4, 5-9) and both edges of three workers' (0-2, 3-5, 6-9): it is
    one run of 6 frames, as with one process (its first patch, repeats,
    scores, corrected masks and the summary's repeats). A run that began
    with a change of the label has no repeats: each of its patches keeps
    its score."""
    dataset = dataset_factory("run")
    frames = _run_frames(changed)
    write_frames_dataset(dataset, tmp_path / "frames", *frames)
    least = {
        "batch_size": 2,
        "correct_min_probability": 0.4 if changed else 0.7,
    }
    _find(dataset, "single", **least)
    _find(dataset, "two", workers=2, **least)
    _find(dataset, "three", workers=3, **least)
    dataset.reload()
    # a run begun with a change that crosses an edge is named: past it,
    # the neighbouring frames could have vouched for its frames
    crossing = "cross the ranks' shards' edges" in caplog.text
    assert crossing == changed

    found = [d.detections for d in dataset.values("single_patches")]
    assert [len(patches) for patches in found] == [0, 0] + [1] * 6 + [0, 0]
    patches = [p for image in found for p in image]
    assert [p.run for p in patches] == ["2:0"] * 6
    assert [p.repeat for p in patches] == [False] + [not changed] * 5
    assert [p.run_length for p in patches] == [6] * 6
    summary = dataset.load_run_results("single").summary
    assert summary["repeats"] == (0 if changed else 5)
    labels = frames[0]
    corrected = [c.get_mask() for c in dataset.values("single_corrected")]
    if changed:
        # each frame keeps its own probability (0.5; the run's 6 frames
        # would share it: 0.2) and is corrected: the same mistake again,
        # over the shards' edges too, past their first images
        assert [p.error_probability for p in patches] == pytest.approx(
            [0.5] * 6, abs=0.02
        )
        assert "the label changed here" in patches[0].reason
        assert "repeats the label's mistake" in patches[1].reason
        assert all((corrected[i] != labels[i]).any() for i in range(2, 8))
    else:
        # the run's first patch, corrected as its frame was scored
        # (0.82), is taken back once the run is known (0.33 for the run's
        # 6 frames), over the shards' edges too
        assert patches[0].error_probability < 0.7
        np.testing.assert_array_equal(corrected[2], labels[2])
        for i in range(3, 8):
            np.testing.assert_array_equal(corrected[i], labels[i])
    for run in ("two", "three"):
        _assert_same_run(dataset, "single", run)


def test_a_failing_rank_stops_the_run_and_keeps_the_previous_one(
    scenes_dataset,
):
    _find(scenes_dataset, "fixer")
    before = scenes_dataset.load_run_results("fixer").summary
    # the last sample is in rank 1's shard
    last = scenes_dataset.last()
    Path(last.probs_path).write_bytes(b"not a numpy file")
    op = _find_delegated(scenes_dataset, "fixer", workers=2)
    assert op.run_state == "failed"
    message = str(op.result.error)
    assert "Rank 1 of 2 failed" in message
    assert os.path.basename(last.filepath) in message
    assert "probs_path" in message
    scenes_dataset.reload()
    # nothing written: the previous run is whole, no pending run
    assert scenes_dataset.list_runs() == ["fixer"]
    assert scenes_dataset.load_run_results("fixer").summary == before
    assert not scenes_dataset.has_sample_field("fixer_pending_patches")
    assert scenes_dataset.count("fixer_patches") == NUM_IMAGES


def test_a_daemonic_process_starts_new_interpreters(fixer_plugin):
    """A daemonic ``multiprocessing`` process may not have children: its
    workers are new interpreters even with one thread per rank."""
    distributed = importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._distributed"
    )
    params = {"gt_field": "ground_truth", "num_threads": 1}
    assert distributed.forks(params, 2)
    context = multiprocessing.get_context("fork")
    answer = context.SimpleQueue()
    daemon = context.Process(
        target=lambda: answer.put(distributed.forks(params, 2)), daemon=True
    )
    daemon.start()
    daemon.join()
    assert answer.get() is False


def test_a_forked_worker_leaves_its_parents_garbage_alone(
    fixer_plugin, tmp_path
):
    """A process group destroyed in this process but still held by a
    garbage cycle (as a finished operator's traceback holds one) would,
    collected in a forked worker, wait on threads the fork did not copy:
    the worker hung (or aborted, "terminate called ... Invalid
    argument"). A forked worker never collects its parent's garbage."""
    import gc

    import torch.distributed as dist

    distributed = importlib.import_module(
        f"{fixer_plugin.module.__name__}.operators._distributed"
    )

    class Cycle:
        pass

    gc.disable()  # the cycle stays uncollected until the fork
    try:
        dist.init_process_group(
            "gloo",
            init_method=f"file://{tmp_path / 'store'}",
            rank=0,
            world_size=1,
        )
        cycle = Cycle()
        cycle.group, cycle.itself = dist.group.WORLD, cycle
        del cycle
        dist.destroy_process_group()

        def worker():
            distributed._enter_fork({})
            gc.collect()

        forked = multiprocessing.get_context("fork").Process(target=worker)
        forked.start()
        forked.join(60)
        if forked.exitcode is None:
            forked.kill()
        assert forked.exitcode == 0
    finally:
        gc.enable()
        gc.collect()


@STARTS
def test_a_worker_that_cannot_start_fails_the_run_at_once(
    scenes_dataset, monkeypatch, num_threads
):
    """A started worker that exits before it reports ready (here a new
    interpreter's Python cannot start, or a forked worker cannot make its
    own database client) fails the run at once, with nothing written,
    instead of leaving rank 0 waiting for the collectives' timeout."""
    _find(scenes_dataset, "fixer")
    before = scenes_dataset.load_run_results("fixer").summary
    if num_threads == 1:  # the forked worker's first step fails

        def cannot_connect():
            raise ConnectionError("no database client")

        monkeypatch.setattr(food, "_disconnect", cannot_connect)
    else:
        monkeypatch.setattr(sys, "executable", "/bin/false")
    op = _find_delegated(
        scenes_dataset, "fixer", workers=2, num_threads=num_threads
    )
    assert op.run_state == "failed"
    assert "Rank 1 of 2 exited (status 1) before it started" in str(
        op.result.error
    )
    scenes_dataset.reload()
    assert scenes_dataset.list_runs() == ["fixer"]
    assert scenes_dataset.load_run_results("fixer").summary == before


def test_a_rank_without_samples_takes_part(scenes_dataset):
    """Two workers on one sample: rank 0's shard is empty."""
    target = scenes_dataset.limit(1)
    foo.execute_operator(
        FIND, dict(view=target, params=_params("single"))
    ).raise_exceptions()
    foo.execute_operator(
        FIND, dict(view=target, params=_params("ranks", workers=2))
    ).raise_exceptions()
    scenes_dataset.reload()
    sample = scenes_dataset.first()
    single, ranks = sample["single_patches"], sample["ranks_patches"]
    assert len(single.detections) == len(ranks.detections) > 0
    one = scenes_dataset.load_run_results("single").summary
    two = scenes_dataset.load_run_results("ranks").summary
    assert one["totals"] == two["totals"]
    assert two["num_images"] == 1


def _started_ranks() -> list[int]:
    """Pids of the rank processes this process started: forked, or new
    interpreters."""
    pids = [p.pid for p in multiprocessing.active_children()]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"operators._distributed" in cmdline:
            pids.append(int(entry))
    return pids


def _kill_rank_once_pending(dataset, run_key: str, done) -> None:
    """Kills rank 1 (SIGKILL) as soon as the run's pending run record
    exists: pass 1's statistics were reduced, pass 2 starts."""
    runs = fo.core.odm.get_db_conn().runs
    query = {"_dataset_id": dataset._doc.id, "key": f"{run_key}_pending"}
    while not done.is_set():
        if runs.find_one(query, {"_id": 1}) is not None:
            for pid in _started_ranks():
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.005)


def test_a_killed_rank_leaves_what_an_interrupted_run_leaves(
    scenes_dataset,
):
    _find(scenes_dataset, "fixer")
    before = scenes_dataset.load_run_results("fixer").summary
    done = threading.Event()
    killer = threading.Thread(
        target=_kill_rank_once_pending, args=(scenes_dataset, "fixer", done)
    )
    killer.start()
    try:
        op = _find_delegated(scenes_dataset, "fixer", workers=2)
    finally:
        done.set()
        killer.join()
    assert op.run_state == "failed"
    assert "stopped answering" in str(op.result.error)
    scenes_dataset.reload()
    # as an interrupted run: the pending run is left, the previous whole
    assert set(scenes_dataset.list_runs()) == {"fixer", "fixer_pending"}
    assert scenes_dataset.load_run_results("fixer").summary == before
    assert scenes_dataset.count("fixer_patches") == NUM_IMAGES
    # and the next run with the key clears it
    _find(scenes_dataset, "fixer")
    scenes_dataset.reload()
    assert scenes_dataset.list_runs() == ["fixer"]
    assert not scenes_dataset.has_sample_field("fixer_pending_patches")


def test_two_workers_train_the_folds_one_process_trains(
    fixer_plugin, dataset_factory, tmp_path
):
    """Cross-validation over two ranks: each trains its folds (fold k on
    rank k mod 2) and both predict with all of them; the fold models and
    the run equal one process's (one thread each, so that the models'
    float sums run in the same order)."""
    dataset = dataset_factory("ranks-cv")
    write_scenes_dataset(
        dataset, make_scenes(8, height=48, width=64, seed=1), tmp_path / "d"
    )
    training = {
        "probs_source": "cross_validation",
        "folds": 3,
        "epochs": 2,
        "train_batch_size": 4,
        "learning_rate": 1e-2,
        "width": 4,
        "num_threads": 1,
    }
    _find(
        dataset,
        "single",
        checkpoint_dir=str(tmp_path / "one"),
        **training,
    )
    foo.execute_operator(
        FIND,
        dict(
            dataset=dataset,
            params=_params(
                "ranks",
                checkpoint_dir=str(tmp_path / "two"),
                workers=2,
                **training,
            ),
        ),
        request_delegation=True,
    )
    service = DelegatedOperationService()
    service.execute_queued_operations(dataset_name=dataset.name)
    (op,) = service.list_operations(dataset_name=dataset.name)
    assert op.run_state == "completed", op.result.error
    for fold in range(3):
        one = torch.load(tmp_path / "one" / f"fold_{fold}.pt")["model"]
        two = torch.load(tmp_path / "two" / f"fold_{fold}.pt")["model"]
        assert one.keys() == two.keys()
        for name in one:
            assert torch.equal(one[name], two[name]), (fold, name)
    dataset.reload()
    for a, b in zip(
        dataset.values("single_patches"),
        dataset.values("ranks_patches"),
        strict=True,
    ):
        assert len(a.detections) == len(b.detections)
        for da, db in zip(a.detections, b.detections, strict=True):
            for name in EXACT:
                assert da[name] == db[name], name
            for name in CLOSE:
                assert da[name] == pytest.approx(db[name], abs=TOLERANCE)
    one = dataset.load_run_results("single").summary
    two = dataset.load_run_results("ranks").summary
    assert one["totals"] == two["totals"]
    assert one["num_images"] == two["num_images"] == 8
