"""Synthetic indoor scenes with planted label errors, for demos and tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .config import ERROR_TYPES
from .evaluation import KnownError

__all__ = [
    "CLASS_NAMES",
    "ERROR_TYPES",
    "IGNORE_VALUE",
    "SIMULATED_MODEL",
    "PlantedError",
    "SyntheticScenes",
    "make_scenes",
    "planted_error_map",
]

CLASS_NAMES = (
    "wall",
    "floor",
    "couch",
    "cushion",
    "rug",
    "table",
    "chair",
    "lamp",
)
IGNORE_VALUE = 255
# ``FinderConfig`` settings for the simulated probabilities of
# ``make_scenes``: they are not a model trained on the labels and carry no
# class prior, so the finder's prior correction stays off for them; and
# they make no mistakes of their own (every disagreement is planted), so
# the estimated share of label errors, which tells a model's habitual
# confusions from errors, neither filters nor holds back their patches.
SIMULATED_MODEL = {
    "prior_strength": 0.0,
    "min_error_probability": 0.0,
    "correct_min_probability": 0.0,
}

_WALL, _FLOOR, _COUCH, _CUSHION, _RUG, _TABLE, _CHAIR, _LAMP = range(
    len(CLASS_NAMES)
)
_NUM_CLASSES = len(CLASS_NAMES)
_MIN_SIZE = 48

# A box is (top, bottom, left, right), bottom and right exclusive.
_Box = tuple[int, int, int, int]
_GAP = 2
_PLACEMENT_TRIES = 50
_LAMP_CHANCE = 0.5

# At least this fraction of the images (and at least one) stays clean.
_CLEAN_FRACTION = 0.2
# Fewest planted errors of each kind, in ERROR_TYPES order, when the error
# rate is positive: two ambiguous ones, so that both directions occur.
_MIN_ERRORS = (1, 2, 1)

_CONFIDENT_LOGIT = 4.0
_NOISE_SIGMA = 2.0
_PROB_SIGMA = 1.0
# Share of the logit noise on pixels the model is split on.
_SPLIT_NOISE = 0.25
_CHUNK = 16

_COLOURS = np.array(
    [
        (205, 200, 188),  # wall
        (172, 132, 88),  # floor
        (62, 92, 150),  # couch
        (226, 176, 52),  # cushion
        (150, 38, 52),  # rug
        (84, 54, 32),  # table
        (46, 128, 90),  # chair
        (250, 238, 170),  # lamp
    ],
    dtype=np.float32,
)
_TEXTURE_NOISE = 6.0


@dataclass(frozen=True, eq=False)
class PlantedError:
    """One label error planted into a synthetic scene.

    Attributes:
        image_index: index of the image in the dataset.
        mask: ``(H, W)`` bool, exactly the pixels whose label was changed.
        given_label: the wrong label written into the noisy labels.
        true_label: the label of those pixels in the clean labels.
        error_type: one of ``ERROR_TYPES``.
    """

    image_index: int
    mask: np.ndarray
    given_label: int
    true_label: int
    error_type: str


@dataclass(frozen=True, eq=False)
class SyntheticScenes:
    """A synthetic dataset with clean and noisy labels.

    Attributes:
        images: ``(N, H, W, 3)`` uint8 RGB renderings of the clean labels.
        clean_labels: ``(N, H, W)`` uint8 true labels, ``IGNORE_VALUE`` on a
            one-pixel border.
        labels: ``(N, H, W)`` uint8 noisy labels, the clean labels with the
            planted errors written in.
        pred_probs: ``(N, K, H, W)`` float32 class probabilities of a
            simulated model, derived from the clean labels.
        planted: the planted errors, by image and then in ``ERROR_TYPES``
            order.
        class_names: the names of the ``K`` classes; a mask value is an
            index into them.
    """

    images: np.ndarray
    clean_labels: np.ndarray
    labels: np.ndarray
    pred_probs: np.ndarray
    planted: list[PlantedError]
    class_names: tuple[str, ...]

    def known_errors(self) -> list[KnownError]:
        """The planted errors as known errors, for
        :func:`~fixer_core.evaluation.recovery_by_type`."""
        return [
            KnownError(e.image_index, e.mask, e.true_label, e.error_type)
            for e in self.planted
        ]


@dataclass(frozen=True)
class _Layout:
    """Where the objects of one scene lie."""

    horizon: int
    rug: tuple[float, float, float, float]  # centre y, x; semi-axes y, x
    ring_width: int
    couch: _Box
    cushions: list[_Box]
    table: _Box | None
    chair: _Box | None
    lamp: _Box | None


def make_scenes(
    num_images: int = 24,
    *,
    height: int = 96,
    width: int = 128,
    seed: int = 0,
    error_rate: float = 0.5,
    noise: float = 0.6,
) -> SyntheticScenes:
    """Generates indoor scenes with planted label errors and model output.

    Each scene has a wall above a random horizon and a floor below it, an
    elliptical rug on the floor, a couch straddling the horizon with one to
    three cushions, a table, a chair and sometimes a standing lamp. A
    one-pixel border is void (``IGNORE_VALUE``).

    A fifth of the images (at least one) is kept clean. In each other image
    each kind of error is planted with probability ``error_rate``,
    independently:

    * ``"false_negative"``: one cushion is labelled couch.
    * ``"general"``: the table is labelled chair.
    * ``"ambiguous"``: either the whole rug is labelled floor, or a floor
      band around the rug (5-10% of the image size wide, at least 5 pixels)
      is labelled rug; the two directions alternate, from a random first
      one.

    When ``error_rate > 0``, each kind is planted at least once and the
    ambiguous kind at least twice (once per direction), as far as the
    images allow.

    The probabilities simulate a good but imperfect model: softmax of
    confident logits plus blobby noise, slightly blurred so that class
    boundaries are uncertain. The model is split between rug (0.55) and
    floor (0.35) on every rug, leans to floor (0.6 against 0.3 for rug) on
    the band around it, and gives cushions about 0.75 (0.2 to couch).

    Args:
        num_images: number of images ``N``.
        height: image height ``H``, at least 48.
        width: image width ``W``, at least 48.
        seed: seed of the random generator; equal seeds give equal scenes.
        error_rate: per-image probability of each kind of error.
        noise: standard deviation of the smoothed logit noise.

    Returns:
        The scenes, their clean and noisy labels, the probabilities and the
        planted errors.

    Raises:
        ValueError: if an argument is out of range.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be positive, got {num_images}")
    if min(height, width) < _MIN_SIZE:
        raise ValueError(
            f"height and width must be at least {_MIN_SIZE}, got "
            f"{height}x{width}"
        )
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
    if noise < 0.0:
        raise ValueError(f"noise must be non-negative, got {noise}")

    rng = np.random.default_rng(seed)
    layouts = [_sample_layout(rng, height, width) for _ in range(num_images)]
    clean_labels = np.empty((num_images, height, width), dtype=np.uint8)
    rings = np.empty((num_images, height, width), dtype=bool)
    for i, layout in enumerate(layouts):
        clean_labels[i], rings[i] = _paint(layout, height, width)

    eligible = np.stack(
        [
            np.array([layout.table is not None for layout in layouts]),
            (clean_labels == _RUG).any(axis=(1, 2)) & rings.any(axis=(1, 2)),
            np.ones(num_images, dtype=bool),
        ]
    )
    chosen = _choose_errors(rng, eligible, error_rate)
    labels, planted = _plant_errors(rng, clean_labels, rings, layouts, chosen)
    return SyntheticScenes(
        images=_render(rng, clean_labels),
        clean_labels=clean_labels,
        labels=labels,
        pred_probs=_model_probs(rng, clean_labels, rings, noise),
        planted=planted,
        class_names=CLASS_NAMES,
    )


def planted_error_map(scenes: SyntheticScenes) -> np.ndarray:
    """Returns where the planted errors are, by type.

    Args:
        scenes: output of :func:`make_scenes`.

    Returns:
        ``(N, H, W)`` int8, the index into ``ERROR_TYPES`` of the error on
        each pixel and -1 where no error was planted.
    """
    error_map = np.full(scenes.labels.shape, -1, dtype=np.int8)
    for error in scenes.planted:
        error_map[error.image_index][error.mask] = ERROR_TYPES.index(
            error.error_type
        )
    return error_map


def _sample_layout(
    rng: np.random.Generator, height: int, width: int
) -> _Layout:
    """Samples the objects of one scene."""
    horizon = round(height * rng.uniform(0.40, 0.55))

    # Wide enough to be a labelling-policy choice, not boundary noise.
    lo = max(5, round(0.05 * min(height, width)))
    floor_height = height - 1 - horizon
    # ... but leaves small floors room for a rug.
    ring_width = min(int(rng.integers(lo, 2 * lo)), (floor_height - 1) // 4)
    margin = ring_width + 1
    semi_y = min(
        height * rng.uniform(0.08, 0.14), (floor_height - 1) / 2 - margin
    )
    semi_x = width * rng.uniform(0.15, 0.25)
    rug = (
        rng.uniform(horizon + semi_y + margin, height - 2 - semi_y - margin),
        rng.uniform(1 + semi_x + margin, width - 2 - semi_x - margin),
        semi_y,
        semi_x,
    )

    couch_height = round(height * rng.uniform(0.22, 0.32))
    couch_width = round(width * rng.uniform(0.30, 0.45))
    top = horizon - round(couch_height * rng.uniform(0.35, 0.65))
    left = int(rng.integers(1, width - couch_width))
    couch = (top, top + couch_height, left, left + couch_width)

    cushions = _sample_cushions(rng, couch)
    table = _place(
        rng,
        (
            round(height * rng.uniform(0.10, 0.18)),
            round(width * rng.uniform(0.15, 0.25)),
        ),
        horizon + 1,
        height,
        width,
        [couch],
    )
    chair = _place(
        rng,
        (
            round(height * rng.uniform(0.12, 0.20)),
            round(width * rng.uniform(0.08, 0.13)),
        ),
        horizon + 1,
        height,
        width,
        [couch] if table is None else [couch, table],
    )
    lamp = None
    if rng.random() < _LAMP_CHANCE:
        lamp_height = round(height * rng.uniform(0.30, 0.50))
        lamp = _place(
            rng,
            (lamp_height, int(rng.integers(3, 6))),
            max(1, horizon + 2 - lamp_height),
            height,
            width,
            [box for box in (couch, table, chair) if box is not None],
        )
    return _Layout(
        horizon, rug, ring_width, couch, cushions, table, chair, lamp
    )


def _sample_cushions(rng: np.random.Generator, couch: _Box) -> list[_Box]:
    """Samples one to three separate cushions strictly inside the couch."""
    top, bottom, left, right = couch
    couch_height, couch_width = bottom - top, right - left
    count = min(int(rng.integers(1, 4)), (couch_width - 2) // 3)
    slot = (couch_width - 2) // count
    cushions = []
    for i in range(count):
        area = rng.uniform(0.06, 0.12) * couch_height * couch_width
        cushion_height = int(
            np.clip(
                round(couch_height * rng.uniform(0.35, 0.55)),
                2,
                couch_height - 2,
            )
        )
        cushion_width = int(np.clip(round(area / cushion_height), 2, slot - 1))
        y = int(rng.integers(top + 1, bottom - cushion_height))
        slot_left = left + 1 + i * slot
        x = int(rng.integers(slot_left, slot_left + slot - cushion_width))
        cushions.append((y, y + cushion_height, x, x + cushion_width))
    return cushions


def _place(
    rng: np.random.Generator,
    size: tuple[int, int],
    min_top: int,
    height: int,
    width: int,
    avoid: list[_Box],
) -> _Box | None:
    """Samples a box inside the image, clear of ``avoid``; None if none.

    Args:
        rng: the random generator.
        size: height and width of the box.
        min_top: smallest top row.
        height: image height.
        width: image width.
        avoid: boxes to keep at least ``_GAP`` pixels away from.

    Returns:
        The box, or None when no try found room for it.
    """
    box_height, box_width = size
    max_top = height - 1 - box_height
    if max_top < min_top:
        return None
    for _ in range(_PLACEMENT_TRIES):
        y = int(rng.integers(min_top, max_top + 1))
        x = int(rng.integers(1, width - box_width))
        box = (y, y + box_height, x, x + box_width)
        if not any(_near(box, other) for other in avoid):
            return box
    return None


def _near(a: _Box, b: _Box) -> bool:
    """Whether two boxes come closer than ``_GAP`` pixels."""
    return (
        a[0] < b[1] + _GAP
        and b[0] < a[1] + _GAP
        and a[2] < b[3] + _GAP
        and b[2] < a[3] + _GAP
    )


def _paint(
    layout: _Layout, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Returns the clean labels of a scene and the floor band round its rug."""
    labels = np.full((height, width), _WALL, dtype=np.uint8)
    labels[layout.horizon :] = _FLOOR
    rows, cols = np.ogrid[:height, :width]
    centre_y, centre_x, semi_y, semi_x = layout.rug
    dy, dx = rows - centre_y, cols - centre_x
    rug = (dy / semi_y) ** 2 + (dx / semi_x) ** 2 <= 1.0
    band = (dy / (semi_y + layout.ring_width)) ** 2 + (
        dx / (semi_x + layout.ring_width)
    ) ** 2 <= 1.0
    labels[rug] = _RUG
    boxes = [
        (layout.table, _TABLE),
        (layout.chair, _CHAIR),
        (layout.couch, _COUCH),
        *((cushion, _CUSHION) for cushion in layout.cushions),
        (layout.lamp, _LAMP),
    ]
    for box, value in boxes:
        if box is not None:
            labels[box[0] : box[1], box[2] : box[3]] = value
    labels[[0, -1], :] = IGNORE_VALUE
    labels[:, [0, -1]] = IGNORE_VALUE
    return labels, band & ~rug & (labels == _FLOOR)


def _choose_errors(
    rng: np.random.Generator, eligible: np.ndarray, error_rate: float
) -> np.ndarray:
    """Chooses which kinds of error go into which images.

    Args:
        rng: the random generator.
        eligible: ``(3, N)`` bool, whether each kind of error (in
            ``ERROR_TYPES`` order) can be planted into each image.
        error_rate: per-image probability of each kind.

    Returns:
        ``(3, N)`` bool, the chosen kinds and images.
    """
    num_images = eligible.shape[1]
    kept_clean = rng.choice(
        num_images,
        size=max(1, math.ceil(_CLEAN_FRACTION * num_images)),
        replace=False,
    )
    eligible = eligible.copy()
    eligible[:, kept_clean] = False
    chosen = eligible & (rng.random(eligible.shape) < error_rate)
    if error_rate > 0.0:
        for kind, minimum in enumerate(_MIN_ERRORS):
            spare = np.flatnonzero(eligible[kind] & ~chosen[kind])
            missing = min(minimum - int(chosen[kind].sum()), spare.size)
            if missing > 0:
                chosen[kind, rng.choice(spare, missing, replace=False)] = True
    return chosen


def _plant_errors(
    rng: np.random.Generator,
    clean_labels: np.ndarray,
    rings: np.ndarray,
    layouts: list[_Layout],
    chosen: np.ndarray,
) -> tuple[np.ndarray, list[PlantedError]]:
    """Writes the chosen errors into a copy of the clean labels.

    Args:
        rng: the random generator.
        clean_labels: ``(N, H, W)`` uint8 clean labels.
        rings: ``(N, H, W)`` bool, the floor band round each rug.
        layouts: the layout of each scene.
        chosen: ``(3, N)`` bool from :func:`_choose_errors`.

    Returns:
        The noisy labels and the planted errors.
    """
    ambiguous = np.flatnonzero(chosen[ERROR_TYPES.index("ambiguous")])
    rug_as_floor = np.zeros(len(layouts), dtype=bool)
    rug_as_floor[ambiguous] = (
        np.arange(ambiguous.size) + rng.integers(2)
    ) % 2 == 0

    labels = clean_labels.copy()
    planted = []
    for i, layout in enumerate(layouts):
        clean = clean_labels[i]
        for kind, error_type in enumerate(ERROR_TYPES):
            if not chosen[kind, i]:
                continue
            if error_type == "general":
                given, true, mask = _CHAIR, _TABLE, clean == _TABLE
            elif error_type == "ambiguous" and rug_as_floor[i]:
                given, true, mask = _FLOOR, _RUG, clean == _RUG
            elif error_type == "ambiguous":
                given, true, mask = _RUG, _FLOOR, rings[i].copy()
            else:
                top, bottom, left, right = layout.cushions[
                    rng.integers(len(layout.cushions))
                ]
                given, true = _COUCH, _CUSHION
                mask = np.zeros_like(clean, dtype=bool)
                mask[top:bottom, left:right] = True
                mask &= clean == _CUSHION
            labels[i][mask] = given
            planted.append(PlantedError(i, mask, given, true, error_type))
    return labels, planted


def _profile_logits() -> np.ndarray:
    """Returns the noise-free logits of each pixel profile.

    Profile ``k < K`` is a pixel of class ``k``; profile ``K`` is the floor
    band round a rug.

    Returns:
        ``(K + 1, K)`` float32 logits.
    """

    def split(shares: dict[int, float]) -> np.ndarray:
        rest = (1.0 - sum(shares.values())) / (_NUM_CLASSES - len(shares))
        probs = np.full(_NUM_CLASSES, rest)
        probs[list(shares)] = list(shares.values())
        return np.log(probs)

    logits = np.zeros((_NUM_CLASSES + 1, _NUM_CLASSES), dtype=np.float32)
    logits[:_NUM_CLASSES] = _CONFIDENT_LOGIT * np.eye(_NUM_CLASSES)
    logits[_RUG] = split({_RUG: 0.55, _FLOOR: 0.35})
    logits[_CUSHION] = split({_CUSHION: 0.75, _COUCH: 0.2})
    logits[_NUM_CLASSES] = split({_FLOOR: 0.6, _RUG: 0.3})
    return logits


def _gaussian_kernel(sigma: float) -> np.ndarray:
    """Returns a normalised 1-D Gaussian kernel reaching out 3 sigma."""
    radius = math.ceil(3.0 * sigma)
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def _blur(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Blurs each channel of ``(N, C, H, W)`` float32 ``x`` in place.

    Borders are reflected.
    """
    for channel in x.reshape(-1, *x.shape[2:]):
        cv2.sepFilter2D(channel, -1, kernel, kernel, dst=channel)
    return x


def _model_probs(
    rng: np.random.Generator,
    clean_labels: np.ndarray,
    rings: np.ndarray,
    noise: float,
) -> np.ndarray:
    """Simulates the class probabilities of a good but imperfect model.

    Args:
        rng: the random generator.
        clean_labels: ``(N, H, W)`` uint8 clean labels.
        rings: ``(N, H, W)`` bool, the floor band round each rug.
        noise: standard deviation of the smoothed logit noise.

    Returns:
        ``(N, K, H, W)`` float32 probabilities summing to one over ``K``.
    """
    num_images, height, width = clean_labels.shape
    profile_logits = _profile_logits()
    noise_scale = np.full(_NUM_CLASSES + 1, noise, dtype=np.float32)
    noise_scale[[_RUG, _CUSHION, _NUM_CLASSES]] *= _SPLIT_NOISE
    noise_kernel = _gaussian_kernel(_NOISE_SIGMA)
    # Blurring white noise shrinks its standard deviation by this factor.
    noise_scale /= np.square(noise_kernel).sum()
    prob_kernel = _gaussian_kernel(_PROB_SIGMA)

    probs = np.empty(
        (num_images, _NUM_CLASSES, height, width), dtype=np.float32
    )
    for start in range(0, num_images, _CHUNK):
        stop = min(start + _CHUNK, num_images)
        profile = clean_labels[start:stop].astype(np.intp)
        profile[profile == IGNORE_VALUE] = _WALL
        profile[rings[start:stop]] = _NUM_CLASSES
        logits = _blur(
            rng.standard_normal(
                (stop - start, _NUM_CLASSES, height, width), dtype=np.float32
            ),
            noise_kernel,
        )
        logits *= noise_scale[profile][:, None]
        logits += np.take(profile_logits.T, profile, axis=1).swapaxes(0, 1)
        logits -= logits.max(axis=1, keepdims=True)
        chunk = _blur(np.exp(logits, out=logits), prob_kernel)
        chunk /= chunk.sum(axis=1, keepdims=True)
        probs[start:stop] = chunk
    return probs


def _render(rng: np.random.Generator, clean_labels: np.ndarray) -> np.ndarray:
    """Renders the clean labels as shaded, textured RGB images.

    Args:
        rng: the random generator.
        clean_labels: ``(N, H, W)`` uint8 clean labels.

    Returns:
        ``(N, H, W, 3)`` uint8 images, black on void pixels.
    """
    num_images, height, width = clean_labels.shape
    images = np.empty((num_images, height, width, 3), dtype=np.uint8)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)
    for start in range(0, num_images, _CHUNK):
        stop = min(start + _CHUNK, num_images)
        labels = clean_labels[start:stop]
        void = labels == IGNORE_VALUE
        colours = _COLOURS[np.where(void, _WALL, labels)]
        top = rng.uniform(0.70, 0.90, size=(stop - start, 1))
        bottom = rng.uniform(1.00, 1.10, size=(stop - start, 1))
        shade = (top + (bottom - top) * ramp).astype(np.float32)
        texture = rng.standard_normal(colours.shape, dtype=np.float32)
        chunk = colours * shade[:, :, None, None] + _TEXTURE_NOISE * texture
        chunk[void] = 0.0
        images[start:stop] = np.clip(np.rint(chunk), 0, 255).astype(np.uint8)
    return images


class ColourModel(torch.nn.Module):
    """A stand-in for a trained model on these scenes: the nearest class
    colour. Logits are ``-40 * |x - colour_k|^2`` for RGB ``x`` in [0, 1]
    (feed it with ``Preprocess(mean=(0, 0, 0), std=(1, 1, 1))``).

    Args:
        colours: ``(K, 3)`` mean RGB colour of each class, in [0, 1].
    """

    def __init__(self, colours: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("colours", colours[:, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distance = (x[:, None] - self.colours[None]).pow(2).sum(dim=2)
        return -40.0 * distance


def fit_colour_model(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    num_classes: int,
) -> ColourModel:
    """Fits :class:`ColourModel` to RGB uint8 images and their (possibly
    noisy) labels: each class's colour is the mean of its pixels."""
    sums = np.zeros((num_classes, 3))
    counts = np.zeros(num_classes)
    for image, label in zip(images, labels, strict=True):
        pixels = image.reshape(-1, 3) / 255.0
        flat = label.reshape(-1)
        keep = flat < num_classes
        counts += np.bincount(flat[keep], minlength=num_classes)
        for c in range(3):
            sums[:, c] += np.bincount(
                flat[keep], weights=pixels[keep, c], minlength=num_classes
            )
    colours = sums / np.maximum(counts, 1)[:, None]
    return ColourModel(torch.tensor(colours, dtype=torch.float32))
