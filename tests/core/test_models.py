"""Loading a user's model and turning its output into probabilities."""

import json
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from fixer_core.models import (
    ModelError,
    Preprocess,
    SegmentationPredictor,
    load_model,
    resolve_entry_point,
)

# Class k of the colour-coded images is the pure colour of RGB channel k.
_COLOURS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255)], dtype=np.uint8)
# Feeds pixel values in [0, 1], unnormalised.
_PLAIN = Preprocess(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

_TINY_MODULE = """
import torch
from torch import nn


class ColourNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel_size=1)
        with torch.no_grad():
            self.conv.weight.copy_(10 * torch.eye(3).view(3, 3, 1, 1))
            self.conv.bias.zero_()

    def forward(self, x):
        return self.conv(x)


class Factory:
    @staticmethod
    def build():
        return ColourNet()


def make():
    return ColourNet()


def make_dict():
    return {"not": "a model"}


def broken():
    raise RuntimeError("no weights here")


NOT_CALLABLE = 3
"""


class ColourNet(nn.Module):
    """1x1 convolution; by default logit k is 10 times RGB channel k."""

    def __init__(self, out_channels: int = 3, *, seed: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(3, out_channels, kernel_size=1)
        with torch.no_grad():
            if seed is None:
                weight = torch.zeros(out_channels, 3)
                weight[:3, :3] = 10 * torch.eye(3)[:out_channels]
                self.conv.weight.copy_(weight.view(out_channels, 3, 1, 1))
                self.conv.bias.zero_()
            else:
                g = torch.Generator().manual_seed(seed)
                self.conv.weight.copy_(
                    torch.randn(out_channels, 3, 1, 1, generator=g)
                )
                self.conv.bias.copy_(torch.randn(out_channels, generator=g))

    def forward(self, x):
        return self.conv(x)


class Wrapped(nn.Module):
    """Returns a model's output in another container."""

    def __init__(self, model: nn.Module, kind: str):
        super().__init__()
        self.model = model
        self.kind = kind

    def forward(self, x):
        out = self.model(x)
        if self.kind == "dict":
            return {"aux": out[:, :1], "out": out}
        if self.kind == "tuple":
            return (out, out[:, :1])
        return [out]


class Fixed(nn.Module):
    """Returns ``fn(x)``."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _colour_image(classes: np.ndarray) -> np.ndarray:
    return _COLOURS[classes]


def _classes(height=6, width=9, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3, (height, width))


def _softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _hand_logits(
    model: ColourNet,
    images: list[np.ndarray],
    preprocess: Preprocess,
) -> np.ndarray:
    """``(N, C, H, W)`` logits of a 1x1 convolution, in float64."""
    x = np.stack(images).astype(np.float64) * preprocess.scale
    x = (x - np.array(preprocess.mean)) / np.array(preprocess.std)
    if preprocess.channel_order == "BGR":
        x = x[..., ::-1]
    weight = model.conv.weight.detach().double().numpy()[:, :, 0, 0]
    bias = model.conv.bias.detach().double().numpy()
    return np.einsum("nhwc,kc->nkhw", x, weight) + bias[None, :, None, None]


def _save_torchscript(model: nn.Module, path, how: str = "script") -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if how == "script":
            compiled = torch.jit.script(model)
        else:
            compiled = torch.jit.trace(model, torch.zeros(1, 3, 4, 4))
        compiled.save(str(path))
    return str(path)


@pytest.fixture
def tiny_module(tmp_path, monkeypatch):
    """``tinymodel`` importable from a temporary directory."""
    (tmp_path / "tinymodel.py").write_text(_TINY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tinymodel", raising=False)
    yield tmp_path
    sys.modules.pop("tinymodel", None)


# -- predictions --------------------------------------------------------


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_model_predicts_colour_classes(tmp_path, how):
    path = _save_torchscript(ColourNet(), tmp_path / "model.pt", how)
    model = load_model(path)
    assert not model.training
    classes = [_classes(seed=0), _classes(seed=1)]
    images = [_colour_image(c) for c in classes]
    predictor = SegmentationPredictor(model, 3, preprocess=_PLAIN)

    probs = predictor.predict(images, (6, 9))

    assert probs.shape == (2, 3, 6, 9)
    assert probs.dtype == torch.float32
    assert probs.device == torch.device("cpu")
    assert not probs.is_inference()
    np.testing.assert_allclose(probs.sum(dim=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(probs.argmax(dim=1), np.stack(classes))
    expected = _softmax(_hand_logits(ColourNet(), images, _PLAIN))
    np.testing.assert_allclose(probs, expected, atol=1e-6)


@pytest.mark.parametrize("channel_order", ["RGB", "BGR"])
def test_normalisation_matches_hand_computation(channel_order):
    model = ColourNet(4, seed=3)
    preprocess = Preprocess(channel_order=channel_order)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)]
    predictor = SegmentationPredictor(model, 4, preprocess=preprocess)

    probs = predictor.predict(images, (5, 7))

    expected = _softmax(_hand_logits(model, images, preprocess))
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_bgr_flip_changes_the_prediction():
    images = [_colour_image(_classes())]
    rgb = SegmentationPredictor(ColourNet(), 3, preprocess=_PLAIN)
    bgr = SegmentationPredictor(
        ColourNet(),
        3,
        preprocess=Preprocess(
            mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), channel_order="BGR"
        ),
    )

    classes = rgb.predict(images, (6, 9)).argmax(dim=1)
    flipped = bgr.predict(images, (6, 9)).argmax(dim=1)

    # Red and blue swap; green stays.
    np.testing.assert_array_equal(flipped, (2 - classes))


def test_output_is_resized_to_the_mask_size():
    classes = np.zeros((16, 24), dtype=int)
    classes[:, 12:] = 2
    images = [_colour_image(classes), _colour_image(classes[:, ::-1])]
    preprocess = Preprocess(
        size=(8, 12), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
    )
    predictor = SegmentationPredictor(ColourNet(), 3, preprocess=preprocess)

    probs = predictor.predict(images, (32, 48))

    assert probs.shape == (2, 3, 32, 48)
    np.testing.assert_allclose(probs.sum(dim=1), 1.0, atol=1e-6)
    predicted = probs.argmax(dim=1).numpy()
    assert (predicted[0, :, :20] == 0).all()
    assert (predicted[0, :, 28:] == 2).all()
    assert (predicted[1, :, :20] == 2).all()
    assert (predicted[1, :, 28:] == 0).all()


def test_images_of_different_sizes_are_resized_to_the_model_size():
    images = [
        _colour_image(np.full((10, 10), 1)),
        _colour_image(np.full((7, 13), 2)),
    ]
    preprocess = Preprocess(
        size=(8, 8), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
    )
    predictor = SegmentationPredictor(ColourNet(), 3, preprocess=preprocess)

    probs = predictor.predict(images, (4, 5))

    expected = _softmax(np.array([[0.0, 10.0, 0.0], [0.0, 0.0, 10.0]]))
    np.testing.assert_allclose(
        probs, np.broadcast_to(expected[:, :, None, None], probs.shape)
    )


def test_logits_are_resized_before_softmax():
    logits = torch.tensor([[[[4.0, 0.0]], [[0.0, 4.0]]]])
    model = Fixed(lambda x: logits.expand(x.shape[0], -1, -1, -1))
    predictor = SegmentationPredictor(model, 2)

    probs = predictor.predict([np.zeros((1, 2, 3), np.uint8)], (1, 4))

    # Bilinear, align_corners=False: columns at 0, 0.25, 0.75, 1 of the way.
    a = np.array([4.0, 0.0])
    b = np.array([0.0, 4.0])
    resized = np.stack([a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b])
    expected = _softmax(resized, axis=1).T[None, :, None, :]
    np.testing.assert_allclose(probs, expected, atol=1e-6)


def test_output_classes_reorder_and_drop_channels():
    model = ColourNet(5, seed=1)
    images = [np.random.default_rng(2).integers(0, 256, (4, 6, 3), np.uint8)]
    # Channel 2 is class 0, channel 4 class 1, channel 0 class 2; channels
    # 1 (-1) and 3 (no such class) are dropped.
    predictor = SegmentationPredictor(
        model, 3, output_classes=[2, -1, 0, 7, 1]
    )

    probs = predictor.predict(images, (4, 6))

    logits = _hand_logits(model, images, Preprocess())
    expected = _softmax(logits[:, [2, 4, 0]])
    np.testing.assert_allclose(probs, expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["dict", "tuple", "list"])
def test_wrapped_outputs_are_unwrapped(kind):
    images = [_colour_image(_classes())]
    plain = SegmentationPredictor(ColourNet(), 3, preprocess=_PLAIN)
    wrapped = SegmentationPredictor(
        Wrapped(ColourNet(), kind), 3, preprocess=_PLAIN
    )

    torch.testing.assert_close(
        wrapped.predict(images, (6, 9)), plain.predict(images, (6, 9))
    )


def test_probability_outputs_are_renormalised_over_kept_channels():
    probs_in = torch.tensor([0.1, 0.3, 0.6, 0.0]).view(1, 4, 1, 1)
    lost = torch.tensor([0.0, 0.0, 0.0, 1.0]).view(1, 4, 1, 1)
    out = torch.cat([probs_in, lost], dim=3)  # two pixels
    model = Fixed(lambda x: out.expand(x.shape[0], -1, -1, -1))
    predictor = SegmentationPredictor(
        model, 2, output_classes=[1, -1, 0, -1], outputs_logits=False
    )

    probs = predictor.predict([np.zeros((1, 2, 3), np.uint8)], (1, 2))

    # Pixel 0: classes 0, 1 from channels 2, 0; pixel 1 has no mass left.
    expected = np.array([[0.6 / 0.7, 0.5], [0.1 / 0.7, 0.5]])
    np.testing.assert_allclose(probs[0, :, 0], expected, atol=1e-6)


def test_amp_on_cpu_runs_in_float32():
    images = [np.random.default_rng(0).integers(0, 256, (5, 5, 3), np.uint8)]
    seen = []
    conv = ColourNet(3, seed=0)

    def forward(x):
        seen.append(x.dtype)
        out = conv(x)
        seen.append(out.dtype)
        return out

    amp = SegmentationPredictor(Fixed(forward), 3, amp=True)
    exact = SegmentationPredictor(ColourNet(3, seed=0), 3, amp=False)

    probs = amp.predict(images, (5, 5))

    assert seen == [torch.float32, torch.float32]
    assert probs.dtype == torch.float32
    torch.testing.assert_close(probs, exact.predict(images, (5, 5)))


def test_predictor_puts_the_model_in_eval_mode():
    model = ColourNet().train()
    SegmentationPredictor(model, 3)
    assert not model.training


# -- loading ------------------------------------------------------------


def test_entry_point_model_loads_without_weights(tiny_module):
    model = load_model("tinymodel:make")

    assert isinstance(model, nn.Module)
    assert not model.training
    torch.testing.assert_close(
        model.conv.weight[:, :, 0, 0], 10 * torch.eye(3)
    )


def test_entry_point_model_loads_weights(tiny_module):
    trained = ColourNet(seed=5)
    weights = tiny_module / "weights.pth"
    torch.save(trained.state_dict(), weights)

    model = load_model("tinymodel:make", weights=str(weights))

    torch.testing.assert_close(model.state_dict(), trained.state_dict())
    images = [_colour_image(_classes())]
    got = SegmentationPredictor(model, 3).predict(images, (6, 9))
    expected = SegmentationPredictor(trained, 3).predict(images, (6, 9))
    torch.testing.assert_close(got, expected)


def test_weights_load_into_a_torchscript_model(tmp_path):
    path = _save_torchscript(ColourNet(), tmp_path / "model.ts")
    trained = ColourNet(seed=6)
    torch.save(trained.state_dict(), tmp_path / "w.pt")

    model = load_model(path, weights=tmp_path / "w.pt")

    torch.testing.assert_close(model.state_dict(), trained.state_dict())


def test_dotted_entry_point_attribute(tiny_module):
    assert isinstance(load_model("tinymodel:Factory.build"), nn.Module)
    assert resolve_entry_point("tinymodel:NOT_CALLABLE") == 3


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _state_dict_file(path) -> str:
    torch.save(ColourNet().state_dict(), path)
    return str(path)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (lambda d: str(d / "missing.pt"), r"missing\.pt does not exist"),
        (lambda d: str(d / "sub" / "model"), r"model does not exist"),
        (lambda d: str(d), "is not a file"),
        (
            lambda d: _write(d / "garbage.pt", b"not a model"),
            r"garbage\.pt is not a TorchScript archive",
        ),
        (
            lambda d: _state_dict_file(d / "state.pth"),
            r"state\.pth is not a TorchScript archive.*a plain state_dict "
            r"needs an entry point 'package\.module:factory'",
        ),
        (lambda d: "tinymodel.make", "not an entry point of the form"),
        (lambda d: "tinymodel:", "not an entry point of the form"),
        (lambda d: ":make", "not an entry point of the form"),
        (lambda d: "tiny model:make", "not an entry point of the form"),
        (
            lambda d: "no_such_module_fixer:make",
            r"cannot import module 'no_such_module_fixer'.*No module named",
        ),
        (
            lambda d: "tinymodel:nope",
            r"'tinymodel' has no attribute 'nope'",
        ),
        (
            lambda d: "tinymodel:Factory.nope",
            r"'tinymodel\.Factory' has no attribute 'nope'",
        ),
        (
            lambda d: "tinymodel:NOT_CALLABLE",
            r"'tinymodel:NOT_CALLABLE' is a int, not a callable",
        ),
        (
            lambda d: "tinymodel:make_dict",
            r"returned a dict, not a torch\.nn\.Module",
        ),
        (
            lambda d: "tinymodel:broken",
            r"calling entry point 'tinymodel:broken' failed: RuntimeError: "
            "no weights here",
        ),
    ],
    ids=[
        "missing-file",
        "missing-path-without-suffix",
        "directory",
        "garbage-file",
        "state-dict-file",
        "no-colon",
        "no-attribute",
        "no-module",
        "not-identifier",
        "missing-module",
        "missing-attribute",
        "missing-dotted-attribute",
        "not-callable",
        "factory-returns-non-module",
        "factory-raises",
    ],
)
def test_bad_models_are_rejected(tiny_module, spec, match):
    with pytest.raises(ModelError, match=match):
        load_model(spec(tiny_module))


def test_module_failing_on_import_is_rejected(tiny_module):
    (tiny_module / "badmodel.py").write_text("raise KeyError('boom')\n")
    try:
        with pytest.raises(
            ModelError, match=r"importing module 'badmodel'.*KeyError"
        ):
            resolve_entry_point("badmodel:make")
    finally:
        sys.modules.pop("badmodel", None)


def _renamed(state: dict) -> dict:
    return {k.replace("conv.", "head."): v for k, v in state.items()}


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (
            lambda d: _write(d / "w.pt", b"garbage"),
            r"cannot read weights .*torch\.save\(model\.state_dict\(\)",
        ),
        (lambda d: str(d / "none.pt"), r"weights file .* does not exist"),
        (
            lambda d: _save(d, _renamed(ColourNet().state_dict())),
            r"2 missing key\(s\) \('conv\.bias', 'conv\.weight'\); "
            r"2 unexpected key\(s\) \('head\.bias', 'head\.weight'\)",
        ),
        (
            lambda d: _save(d, {"conv.weight": torch.zeros(3, 3, 1, 1)}),
            r"1 missing key\(s\) \('conv\.bias'\)$",
        ),
        (
            lambda d: _save(d, ColourNet(4).state_dict()),
            r"do not fit the model: .*size mismatch for conv\.weight",
        ),
        (
            lambda d: _save(d, {"state_dict": ColourNet().state_dict()}),
            "looks like a training checkpoint",
        ),
        (
            lambda d: _save(
                d,
                {
                    f"module.{k}": v
                    for k, v in ColourNet().state_dict().items()
                },
            ),
            "start with 'module.'",
        ),
        (lambda d: _save(d, [torch.zeros(1)]), "hold a list, not a state"),
    ],
    ids=[
        "garbage",
        "missing-file",
        "renamed-keys",
        "missing-key",
        "shape-mismatch",
        "checkpoint",
        "data-parallel",
        "not-a-dict",
    ],
)
def test_bad_weights_are_rejected(tiny_module, weights, match):
    with pytest.raises(ModelError, match=match):
        load_model("tinymodel:make", weights=weights(tiny_module))


def _save(directory, obj) -> str:
    path = directory / "weights.pt"
    torch.save(obj, path)
    return str(path)


def test_torchscript_loading_hides_the_deprecation_warning(tmp_path):
    path = _save_torchscript(ColourNet(), tmp_path / "model.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(path)


# -- bad outputs and inputs ---------------------------------------------


def _image(height=4, width=5):
    return np.zeros((height, width, 3), dtype=np.uint8)


def _outputs(shape):
    return Fixed(lambda x: torch.zeros(shape))


@pytest.mark.parametrize(
    ("model", "kwargs", "match"),
    [
        (
            _outputs((2, 3, 4)),
            {},
            r"model output has shape \(2, 3, 4\), expected \(N, C, H, W\) "
            "with N = 2",
        ),
        (_outputs((1, 3, 4, 5)), {}, r"shape \(1, 3, 4, 5\).*N = 2"),
        (
            _outputs((2, 5, 4, 5)),
            {},
            "model outputs 5 channels, the dataset has 3 classes: pass "
            "output_classes",
        ),
        (
            _outputs((2, 5, 4, 5)),
            {"output_classes": [0, 1, 2, -1]},
            "model outputs 5 channels but output_classes names 4",
        ),
        (
            Fixed(lambda x: {"logits": torch.zeros(2, 3, 4, 5)}),
            {},
            r"dict without key 'out' \(keys: \['logits'\]\)",
        ),
        (Fixed(lambda x: ()), {}, "returned an empty tuple"),
        (Fixed(lambda x: np.zeros((2, 3, 4, 5))), {}, "ndarray, not a tensor"),
    ],
    ids=[
        "wrong-ndim",
        "wrong-batch",
        "wrong-channels",
        "wrong-channels-output-classes",
        "dict-without-out",
        "empty-tuple",
        "not-a-tensor",
    ],
)
def test_bad_outputs_are_rejected(model, kwargs, match):
    predictor = SegmentationPredictor(model, 3, **kwargs)
    with pytest.raises(ModelError, match=match):
        predictor.predict([_image(), _image()], (4, 5))


@pytest.mark.parametrize(
    ("output_classes", "match"),
    [
        ([0, 2, -1], r"no channel to class\(es\) \[1\]"),
        ([0, 2], r"no channel to class\(es\) \[1\]"),
        (
            [0, 1, 0, 2, 1],
            r"several channels to one class: class 0 \(channels \[0, 2\]\), "
            r"class 1 \(channels \[1, 4\]\)",
        ),
    ],
    ids=["uncovered-class", "too-few-channels", "duplicate-class"],
)
def test_bad_output_classes_are_rejected(output_classes, match):
    with pytest.raises(ModelError, match=match):
        SegmentationPredictor(ColourNet(), 3, output_classes=output_classes)


@pytest.mark.parametrize(
    ("images", "size", "error", "match"),
    [
        ([_image(4, 5), _image(6, 5)], (4, 5), ValueError, "Preprocess.size"),
        ([_image().astype(np.float32)], (4, 5), TypeError, "uint8"),
        ([_image()[..., 0]], (4, 5), ValueError, r"image 0 has shape"),
        ([], (4, 5), ValueError, "at least one image"),
        ([_image()], (0, 5), ValueError, "size must be"),
    ],
    ids=["mixed-sizes", "float-image", "grayscale", "empty", "bad-size"],
)
def test_bad_images_are_rejected(images, size, error, match):
    predictor = SegmentationPredictor(ColourNet(), 3)
    with pytest.raises(error, match=match):
        predictor.predict(images, size)


# -- settings -----------------------------------------------------------


def test_preprocess_round_trips_through_json():
    settings = Preprocess(
        size=(480, 640),
        scale=1.0,
        mean=(123.675, 116.28, 103.53),
        std=(58.395, 57.12, 57.375),
        channel_order="BGR",
    )
    restored = Preprocess.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert restored == settings
    assert restored.size == (480, 640)
    assert Preprocess.from_dict({**Preprocess().to_dict(), "extra": 1}) == (
        Preprocess()
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": (0, 4)}, r"size must be None or \(H, W\) with positive"),
        ({"size": (4,)}, r"size must be None or \(H, W\)"),
        ({"size": (4.0, 4)}, r"size must be None or \(H, W\)"),
        ({"scale": 0}, "scale must be a positive number, got 0"),
        ({"mean": (0.5, 0.5)}, "mean must be three finite numbers"),
        ({"std": (1.0, 0.0, 1.0)}, "std must be three positive numbers"),
        ({"channel_order": "rgb"}, "channel_order must be 'RGB' or 'BGR'"),
    ],
    ids=[
        "zero-size",
        "short-size",
        "float-size",
        "scale",
        "mean",
        "std",
        "order",
    ],
)
def test_bad_preprocess_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Preprocess(**kwargs)
