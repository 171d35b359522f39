"""Cross-validated training: folds, out-of-fold prediction, resuming."""

import os

import numpy as np
import pytest
import torch
from torch import nn

from fixer_core import training
from fixer_core.synthetic import IGNORE_VALUE, make_scenes
from fixer_core.training import (
    CrossValidationTrainer,
    TrainConfig,
    TrainProgress,
    UNet,
    assign_folds,
)

# Colours of the classes of the blob images: background, red, green, blue.
_COLOURS = np.array(
    [(40, 40, 40), (220, 50, 50), (50, 200, 70), (60, 80, 230)],
    dtype=np.uint8,
)


class ArrayData:
    """In-memory samples; counts loads."""

    def __init__(self, images, masks, ids=None):
        self.images = list(images)
        self.masks = list(masks)
        self.sample_ids = ids or [f"s{i:03d}" for i in range(len(images))]
        self.loads = 0

    def load(self, index):
        self.loads += 1
        return self.images[index], self.masks[index]


def _blobs(n, *, height=32, width=40, seed=0, sizes=None):
    """Colour-coded blobs: each class has its own colour (plus noise); a
    one-pixel void border (255) and a few pixels valued 9 (not a class)."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(n):
        h, w = sizes[i] if sizes else (height, width)
        mask = np.zeros((h, w), dtype=np.uint8)
        yy, xx = np.mgrid[:h, :w]
        for k in (1, 2, 3):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(0.15, 0.3) * h, rng.uniform(0.15, 0.3) * w
            mask[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = k
        image = _COLOURS[mask].astype(np.int16)
        image += rng.integers(-20, 21, size=image.shape, dtype=np.int16)
        images.append(np.clip(image, 0, 255).astype(np.uint8))
        mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = IGNORE_VALUE
        mask[1, 1:4] = 9
        masks.append(mask)
    return ArrayData(images, masks)


def _accuracy(probs, masks):
    correct = total = 0
    for p, m in zip(probs, masks, strict=True):
        m = torch.as_tensor(m.astype(np.int64), device=p.device)
        valid = m < 4
        correct += (p.argmax(0)[valid] == m[valid]).sum().item()
        total += valid.sum().item()
    return correct / total


class Recorder:
    def __init__(self, stop_at=None):
        self.events = []
        self.stop_at = stop_at

    def __call__(self, p):
        self.events.append(p)
        if (p.fold, p.epoch) == self.stop_at:
            raise KeyboardInterrupt


# -- folds and config ------------------------------------------------------


def test_assign_folds_is_balanced_seeded_and_order_independent():
    ids = [f"img{i}" for i in range(23)]
    folds = assign_folds(ids, 5, seed=3)
    assert set(folds) == set(ids)
    sizes = np.bincount(list(folds.values()), minlength=5)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 23
    shuffled = list(np.random.default_rng(1).permutation(ids))
    assert assign_folds(shuffled, 5, seed=3) == folds
    assert assign_folds(ids, 5, seed=3) == folds
    others = [assign_folds(ids, 5, seed=s) for s in range(4, 8)]
    assert any(other != folds for other in others)


def test_assign_folds_rejects_bad_input():
    with pytest.raises(ValueError, match="unique"):
        assign_folds(["a", "a", "b"], 2, seed=0)
    with pytest.raises(ValueError, match="3 samples into 4 folds"):
        assign_folds(["a", "b", "c"], 4, seed=0)
    with pytest.raises(ValueError, match="folds"):
        assign_folds(["a", "b", "c"], 1, seed=0)


def test_train_config_validates_and_round_trips():
    config = TrainConfig(folds=3, train_size=[48, 64], augment=False)
    assert config.train_size == (48, 64)
    assert TrainConfig.from_dict(config.to_dict() | {"x": 1}) == config
    for bad in (
        {"folds": 1},
        {"epochs": 0},
        {"batch_size": 0},
        {"learning_rate": 0.0},
        {"weight_decay": -1.0},
        {"train_size": (0, 5)},
        {"train_size": (5,)},
        {"width": 0},
        {"seed": -1},
    ):
        with pytest.raises(ValueError):
            TrainConfig(**bad)
    with pytest.raises(TypeError):
        TrainConfig(epochs=2.5)


def test_progress_label():
    p = TrainProgress(1, 5, 7, 30, 0.4123, 35.06)
    assert p.label == "fold 2/5, epoch 7/30, loss 0.412, 35.1 img/s"


def test_unet_keeps_any_input_size():
    assert 0.4e6 < sum(p.numel() for p in UNet(8).parameters()) < 0.6e6
    model = UNet(5, width=4)
    for h, w in ((37, 51), (5, 7), (64, 64)):
        assert model(torch.zeros(1, 3, h, w)).shape == (1, 5, h, w)


# -- a trained run, shared by several tests --------------------------------


@pytest.fixture(scope="module")
def blob_run(tmp_path_factory, device):
    data = _blobs(12, seed=0)
    recorder = Recorder()
    trainer = CrossValidationTrainer(
        data,
        4,
        config=TrainConfig(
            folds=3, epochs=20, batch_size=4, learning_rate=1e-2, width=8
        ),
        checkpoint_dir=tmp_path_factory.mktemp("blobs"),
        ignore_index=[IGNORE_VALUE],
        device=device,
    )
    trainer.fit(recorder)
    return trainer, data, recorder.events


def test_fit_reports_every_epoch_of_every_fold(blob_run):
    trainer, _, events = blob_run
    assert [(e.fold, e.epoch) for e in events] == [
        (f, e) for f in range(3) for e in range(1, 21)
    ]
    assert all(e.images_per_second > 0 for e in events)
    assert all(np.isfinite(e.loss) for e in events)
    for name in ("folds.json", "fold_0.pt", "fold_1.pt", "fold_2.pt"):
        assert (trainer.checkpoint_dir / name).is_file()


def test_out_of_fold_models_never_trained_on_their_samples(blob_run):
    trainer, data, _ = blob_run
    n = len(data.sample_ids)
    for fold in range(3):
        # Recorded from the batches actually fed to the model.
        trained = set(trainer.training_indices(fold))
        members = {i for i in range(n) if trainer.fold_of(i) == fold}
        assert trained == set(range(n)) - members
    # The model predict() uses for a sample never saw that sample.
    used = []
    fold_model = trainer.fold_model
    trainer.fold_model = lambda k: used.append(k) or fold_model(k)
    try:
        for i in range(n):
            used.clear()
            trainer.predict([i])
            assert used == [trainer.fold_of(i)]
            assert i not in trainer.training_indices(used[0])
    finally:
        del trainer.fold_model


def test_training_learns_colour_coded_blobs(blob_run):
    trainer, data, events = blob_run
    for fold in range(3):
        losses = [e.loss for e in events if e.fold == fold]
        assert losses[-1] < 0.5 * losses[0]
        train = trainer.training_indices(fold)
        probs = trainer.predict(train, fold=fold)
        assert _accuracy(probs, [data.masks[i] for i in train]) > 0.9
    # Colours generalise, so out-of-fold predictions are right too.
    probs = trainer.predict(range(12))
    assert _accuracy(probs, data.masks) > 0.9


def test_predict_returns_probabilities_at_each_mask_size(tmp_path, device):
    sizes = [(48, 64), (40, 56), (52, 50), (48, 64), (33, 47), (60, 30)]
    data = _blobs(6, sizes=sizes, seed=1)
    # A mask at another resolution than its image.
    data.masks[0] = data.masks[0][::2, ::2].copy()
    trainer = CrossValidationTrainer(
        data,
        4,
        config=TrainConfig(folds=2, epochs=1, train_size=(32, 32), width=4),
        checkpoint_dir=tmp_path,
        device=device,
    )
    trainer.fit()
    order = [5, 0, 3, 1]
    probs = trainer.predict(order)
    for i, p in zip(order, probs, strict=True):
        assert p.shape == (4, *data.masks[i].shape)
        assert p.dtype == torch.float32
        assert p.device.type == torch.device(device).type
        assert (p >= 0).all()
        torch.testing.assert_close(
            p.sum(0), torch.ones_like(p[0]), atol=1e-5, rtol=0
        )


def test_synthetic_scenes_at_native_size(tmp_path, device):
    scenes = make_scenes(4, height=48, width=64, seed=0)
    data = ArrayData(scenes.images, scenes.labels)
    trainer = CrossValidationTrainer(
        data,
        len(scenes.class_names),
        config=TrainConfig(folds=2, epochs=1, batch_size=2, width=4),
        checkpoint_dir=tmp_path,
        ignore_index=[IGNORE_VALUE],
        device=device,
    )
    trainer.fit()
    probs = trainer.predict(range(4))
    assert [tuple(p.shape) for p in probs] == [(8, 48, 64)] * 4


# -- behaviour ---------------------------------------------------------------


def test_out_of_fold_prediction_favours_the_other_folds_labels(
    tmp_path, device
):
    """Identical images; fold 0's samples are labelled all class 1 and fold
    1's all class 2. A model that never saw a sample can only predict the
    other fold's class."""
    n = 8
    ids = [f"s{i}" for i in range(n)]
    folds = assign_folds(ids, 2, seed=0)
    image = np.random.default_rng(0).integers(
        0, 256, size=(16, 16, 3), dtype=np.uint8
    )
    masks = [np.full((16, 16), 1 + folds[i], dtype=np.uint8) for i in ids]
    data = ArrayData([image] * n, masks, ids)
    trainer = CrossValidationTrainer(
        data,
        3,
        config=TrainConfig(
            folds=2, epochs=30, batch_size=4, learning_rate=1e-2, width=4
        ),
        checkpoint_dir=tmp_path,
        device=device,
    )
    assert trainer.folds == folds
    trainer.fit()
    oof = trainer.predict(range(n))
    for i, p in enumerate(oof):
        own, other = 1 + folds[ids[i]], 2 - folds[ids[i]]
        mean = p.mean(dim=(1, 2))
        assert (p.argmax(0) == other).all()
        assert mean[other] > 0.5 > 2 * mean[own]
        # The in-fold model (trained on this very sample) says the opposite.
        in_fold = trainer.predict([i], fold=1 - folds[ids[i]])[0]
        assert (in_fold.argmax(0) == own).all()


# -- resuming --------------------------------------------------------------


def _resume_config():
    return TrainConfig(
        folds=2, epochs=4, batch_size=3, learning_rate=1e-2, width=4
    )


def _trainer(data, directory, device):
    return CrossValidationTrainer(
        data,
        4,
        config=_resume_config(),
        checkpoint_dir=directory,
        ignore_index=[IGNORE_VALUE],
        device=device,
    )


def test_interrupted_fit_resumes_where_it_stopped(tmp_path, device):
    data = _blobs(8, seed=2)
    full = Recorder()
    reference = _trainer(data, tmp_path / "a", device)
    reference.fit(full)
    expected = reference.predict(range(8))

    rng_state = torch.get_rng_state()
    first = Recorder(stop_at=(1, 2))
    with pytest.raises(KeyboardInterrupt):
        _trainer(data, tmp_path / "b", device).fit(first)
    assert [(e.fold, e.epoch) for e in first.events][-3:] == [
        (0, 4),
        (1, 1),
        (1, 2),
    ]
    # fit() leaves the caller's global RNG as it found it.
    assert torch.equal(torch.get_rng_state(), rng_state)
    fold0 = tmp_path / "b" / "fold_0.pt"
    before = (os.stat(fold0).st_mtime_ns, fold0.read_bytes())

    second = Recorder()
    resumed = _trainer(data, tmp_path / "b", device)
    resumed.fit(second)
    assert [(e.fold, e.epoch) for e in second.events] == [(1, 3), (1, 4)]
    assert (os.stat(fold0).st_mtime_ns, fold0.read_bytes()) == before

    got = resumed.predict(range(8))
    if torch.device(device).type == "cpu":
        # Same seeds, restored optimiser/scheduler state, per-epoch
        # reseeding: the CPU run is bitwise reproducible.
        assert [e.loss for e in second.events] == [
            e.loss for e in full.events[-2:]
        ]
        for a, b in zip(got, expected, strict=True):
            assert torch.equal(a, b)
    else:
        # CUDA kernels (float16 autocast, atomic adds) are not all
        # deterministic; the resumed run only agrees closely.
        for a, b in zip(got, expected, strict=True):
            assert (a.argmax(0) == b.argmax(0)).float().mean() > 0.95

    # Nothing left to do: a third fit trains nothing.
    third = Recorder()
    _trainer(data, tmp_path / "b", device).fit(third)
    assert third.events == []


def test_checkpoint_dir_of_another_run_is_refused(tmp_path):
    data = _blobs(6, seed=3)
    _trainer(data, tmp_path, "cpu")
    _trainer(data, tmp_path, "cpu")  # the same run: fine
    reordered = ArrayData(
        data.images[::-1], data.masks[::-1], data.sample_ids[::-1]
    )
    _trainer(reordered, tmp_path, "cpu")  # samples are known by id
    with pytest.raises(ValueError, match="belongs to another run") as error:
        CrossValidationTrainer(
            data,
            4,
            config=TrainConfig(folds=2, epochs=5, width=4),
            checkpoint_dir=tmp_path,
            ignore_index=[IGNORE_VALUE],
        )
    assert str(tmp_path) in str(error.value)
    assert "config" in str(error.value)
    with pytest.raises(ValueError, match="num_classes"):
        CrossValidationTrainer(
            data,
            5,
            config=_resume_config(),
            checkpoint_dir=tmp_path,
            ignore_index=[IGNORE_VALUE],
        )
    other = ArrayData(data.images, data.masks, [f"x{i}" for i in range(6)])
    with pytest.raises(ValueError, match="sample ids"):
        _trainer(other, tmp_path, "cpu")


# -- data handling ---------------------------------------------------------


def test_uncached_loading_gives_the_same_models(tmp_path, monkeypatch, device):
    data = _blobs(6, seed=4)
    cached = _trainer(data, tmp_path / "cached", device)
    cached.fit()
    assert data.loads == 6  # each sample loaded once, then cached
    monkeypatch.setattr(training, "_CACHE_BUDGET", 0)
    data.loads = 0
    uncached = _trainer(data, tmp_path / "uncached", device)
    uncached.fit()
    # Each fold trains on 3 samples for 4 epochs; loads are not cached.
    assert data.loads == 2 * 4 * 3
    if torch.device(device).type == "cpu":
        for a, b in zip(
            cached.predict(range(6)),
            uncached.predict(range(6)),
            strict=True,
        ):
            assert torch.equal(a, b)


def test_native_size_needs_equal_sizes(tmp_path):
    data = _blobs(4, sizes=[(32, 40), (32, 40), (30, 40), (32, 40)])
    trainer = _trainer(data, tmp_path, "cpu")
    with pytest.raises(ValueError, match="train_size"):
        trainer.fit()


def test_bad_samples_are_rejected(tmp_path):
    data = _blobs(4)
    data.images[2] = data.images[2].astype(np.float32)
    with pytest.raises(ValueError, match="s002.*uint8"):
        _trainer(data, tmp_path, "cpu").fit()


def test_fold_model_needs_a_finished_fold(tmp_path):
    trainer = _trainer(_blobs(4), tmp_path, "cpu")
    with pytest.raises(RuntimeError, match="fit"):
        trainer.fold_model(0)
    with pytest.raises(RuntimeError, match="fit"):
        trainer.predict([0])


def test_fit_trains_the_folds_asked_for(tmp_path):
    trainer = _trainer(_blobs(4), tmp_path, "cpu")
    with pytest.raises(ValueError, match=r"fold must be in \[0, 2\)"):
        trainer.fit(folds=[2])
    trainer.fit(folds=[1])
    trainer.fold_model(1)
    with pytest.raises(RuntimeError, match="fit"):
        trainer.fold_model(0)


class _HalfResolution(nn.Module):
    """A torchvision-style model: a dict of logits at half resolution."""

    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 3, stride=2, padding=1)

    def forward(self, x):
        return {"out": self.conv(x)}


def test_model_factory_plugs_in_other_models(tmp_path, device):
    data = _blobs(4, seed=5)
    made = []

    def factory(num_classes):
        made.append(num_classes)
        return _HalfResolution(num_classes)

    trainer = CrossValidationTrainer(
        data,
        4,
        config=TrainConfig(folds=2, epochs=2),
        checkpoint_dir=tmp_path,
        model_factory=factory,
        device=device,
    )
    trainer.fit()
    assert isinstance(trainer.fold_model(0), _HalfResolution)
    assert made == [4, 4, 4]
    probs = trainer.predict(range(4))
    assert all(p.shape == (4, 32, 40) for p in probs)
