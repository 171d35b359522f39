"""Pass 2 reuses pass 1's batches when they fit the memory budget (each
file is read once) and reads the files again otherwise; the output is
the same either way."""

from __future__ import annotations

import importlib
import os

import pytest
from fixer_testing import stored_form, write_scenes_dataset

from fixer_core.synthetic import IGNORE_VALUE, SIMULATED_MODEL, make_scenes

fo = pytest.importorskip("fiftyone")

NUM_IMAGES = 10
BATCH_SIZE = 4


def _module(fixer_plugin, name: str):
    """A module of the plugin package, as FiftyOne loaded it."""
    return importlib.import_module(f"{fixer_plugin.module.__name__}.{name}")


def _run(pipeline, dataset, run_key: str, keep_bytes, *, after_pass_1=None):
    """Runs the pipeline to its end; ``after_pass_1()`` is called once
    pass 1 has read every sample, before pass 2 starts."""
    params = pipeline.FindParams(
        gt_field="ground_truth",
        probs_field="probs_path",
        ignore_values=(IGNORE_VALUE,),
        run_key=run_key,
        batch_size=BATCH_SIZE,
        keep_bytes=keep_bytes,
        config=pipeline.FinderConfig(**SIMULATED_MODEL),
    )
    done = f"Estimating class statistics: {NUM_IMAGES} of {NUM_IMAGES}"
    for update in pipeline.run_find_label_errors(dataset, params):
        if after_pass_1 and update.label.startswith(done):
            after_pass_1()


def _remove_probability_files(dataset):
    def remove():
        for path in dataset.values("probs_path"):
            os.remove(path)

    return remove


def _batch_bytes(scenes) -> int:
    """Bytes of one kept batch: its probabilities and masks."""
    probs = scenes.pred_probs[:BATCH_SIZE]
    return probs.nbytes + scenes.labels[:BATCH_SIZE].astype("uint8").nbytes


@pytest.fixture
def scenes_dataset(dataset_factory, tmp_path):
    scenes = make_scenes(NUM_IMAGES, seed=3)
    dataset = dataset_factory("kept")
    write_scenes_dataset(dataset, scenes, tmp_path, inline_masks=True)
    return dataset, scenes


def test_pass_two_reuses_pass_one_batches_and_writes_the_same(
    fixer_plugin, scenes_dataset
):
    pipeline = _module(fixer_plugin, "operators._pipeline")
    dataset, _ = scenes_dataset
    _run(pipeline, dataset, "twice", 0)
    _run(
        pipeline,
        dataset,
        "once",
        None,
        after_pass_1=_remove_probability_files(dataset),
    )

    twice = pipeline.output_fields("twice")
    once = pipeline.output_fields("once")
    docs = list(dataset._sample_collection.find({}))
    patches = sum(len(d[once["patches"]]["detections"]) for d in docs)
    assert patches > 0
    for doc in docs:
        for kind, name in once.items():
            assert stored_form(doc[name]) == stored_form(doc[twice[kind]]), (
                kind
            )
    assert pipeline.load_run_summary(
        dataset, "once"
    ) == pipeline.load_run_summary(dataset, "twice")


def test_pass_two_reads_the_files_again_past_the_budget(
    fixer_plugin, scenes_dataset
):
    pipeline = _module(fixer_plugin, "operators._pipeline")
    dataset, scenes = scenes_dataset
    one_batch = _batch_bytes(scenes)  # the first batch fits, not the next
    with pytest.raises(pipeline.LabelErrorInputError, match="does not exist"):
        _run(
            pipeline,
            dataset,
            "over",
            one_batch,
            after_pass_1=_remove_probability_files(dataset),
        )
    assert "over" not in dataset.list_runs()


def test_budget_follows_the_rule(fixer_plugin):
    kept = _module(fixer_plugin, "operators._kept")
    available = kept.available_memory()
    assert available > 0
    one = kept.keep_budget(1)
    assert 0 < one <= kept.KEEP_MAX_BYTES
    assert one <= kept.KEEP_SHARE * available * 1.5  # memory moves a bit
    assert kept.keep_budget(4) <= one // 2
