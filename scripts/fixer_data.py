"""The datasets ``fixer_run.py`` builds: a folder of images, masks and
probabilities, the generated demo scenes, and the CamVid demo (real images
with planted errors)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEMO_MARK = "fixer_demo"  # dataset.info key: the CLI made this dataset
# Mask colours where the data gives none (contrasting, colour-blind safe)
PALETTE = (
    "#4477aa",
    "#ee6677",
    "#228833",
    "#ccbb44",
    "#66ccee",
    "#aa3377",
    "#bbbbbb",
    "#ee8866",
    "#44bb99",
    "#99ddff",
    "#eedd88",
    "#ffaabb",
)
CAMVID_VOID = 11
CAMVID_SMALL = (2, 6, 9)  # Pole, SignSymbol, Pedestrian
CAMVID_CAR, CAMVID_BUILDING = 8, 1
# The ESPNet model's exact preprocessing (../shared/models/README.md)
ESPNET_PREPROCESS = dict(
    size=(360, 480),
    scale=1 / 255,
    mean=(0.41156588, 0.42491373, 0.43213961),
    std=(69.8467, 72.5638, 72.0361),
    channel_order="BGR",
)


class InputError(ValueError):
    """Bad command-line input; the message names the file and field."""


@dataclass(frozen=True)
class Demo:
    """What was planted in a demo dataset."""

    known: list  # fixer_core.evaluation.KnownError
    class_names: tuple[str, ...]
    real: bool = False  # real labels, with errors of their own


# -- datasets the user owns --------------------------------------------------


def new_dataset(fo, name: str, *, overwrite: bool, demo: bool = False):
    """Creates the persistent dataset ``name``. An existing one is replaced
    only with ``overwrite``, or when it is a demo dataset the CLI made."""
    if fo.dataset_exists(name):
        old = fo.load_dataset(name)
        if not (overwrite or (demo and old.info.get(DEMO_MARK))):
            raise InputError(
                f"Dataset '{name}' exists ({len(old)} samples); pass "
                "--overwrite to replace it, or --dataset NAME"
            )
        old.delete()
    dataset = fo.Dataset(name, persistent=True)
    if demo:
        dataset.info[DEMO_MARK] = True
        dataset.save()
    return dataset


def set_mask_colors(fo, dataset, field: str, colors: dict[int, str]) -> None:
    """Draws ``field`` in the App with one colour per mask value (the App
    then colours labels by value)."""
    scheme = dataset.app_config.color_scheme or fo.ColorScheme()
    scheme.color_by = "value"
    entries = [f for f in (scheme.fields or []) if f.get("path") != field]
    entries.append(
        {
            "path": field,
            "maskTargetsColors": [
                {"intTarget": int(k), "color": c} for k, c in colors.items()
            ],
        }
    )
    scheme.fields = entries
    dataset.app_config.color_scheme = scheme
    dataset.save()


def palette_colors(values) -> dict[int, str]:
    """A colour per mask value, from :data:`PALETTE`."""
    return {int(v): PALETTE[i % len(PALETTE)] for i, v in enumerate(values)}


# -- a folder ----------------------------------------------------------------


def read_classes(path: Path) -> tuple[dict[int, str], dict[int, str]]:
    """Reads ``classes.json``: the mask targets and, where it gives them
    (``class_colors_rgb`` or ``colors``), the class colours."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"--classes {path}: cannot read it ({e})") from e
    colors_rgb = None
    if isinstance(data, dict) and "classes" in data:
        colors_rgb = data.get("class_colors_rgb") or data.get("colors")
        void = data.get("void_id")
        data = data["classes"]
    else:
        void = None
    if isinstance(data, list):
        targets = dict(enumerate(data))
    elif isinstance(data, dict):
        try:
            targets = {int(k): str(v) for k, v in data.items()}
        except ValueError as e:
            raise InputError(
                f"--classes {path}: keys must be mask values ({e})"
            ) from e
    else:
        raise InputError(
            f"--classes {path}: expected a list of class names or a "
            "{value: name} object"
        )
    if void is not None and void not in targets:
        targets[int(void)] = "void"
    if colors_rgb and len(colors_rgb) >= len(data):
        colors = {
            k: "#{:02x}{:02x}{:02x}".format(*colors_rgb[k])
            for k in range(len(data))
        }
    else:
        colors = palette_colors(targets)
    return targets, colors


def folder_pairs(
    images: Path, masks: Path, probs: Path
) -> tuple[list[tuple[Path, Path, Path | None]], list[str]]:
    """Pairs each image with its mask and probability file (same stem).

    Returns the ``(image, mask, probs)`` triples and the names of the
    images that have no mask (they are skipped)."""
    for flag, folder in (
        ("--images", images),
        ("--masks", masks),
        ("--probs", probs),
    ):
        if not folder.is_dir():
            raise InputError(f"{flag}: no such folder: {folder}")
    mask_files = {p.stem: p for p in masks.iterdir() if p.is_file()}
    prob_files = {
        p.stem: p for p in probs.iterdir() if p.suffix in (".npy", ".npz")
    }
    pairs, no_mask = [], []
    for image in sorted(p for p in images.iterdir() if p.is_file()):
        if image.stem in mask_files:
            pairs.append(
                (image, mask_files[image.stem], prob_files.get(image.stem))
            )
        else:
            no_mask.append(image.name)
    if not pairs:
        raise InputError(f"No image in {images} has a mask in {masks}")
    return pairs, no_mask


def check_pair(
    image: Path, mask: Path, probs: Path | None, num_classes: int
) -> None:
    """Refuses a mask whose size differs from its image's, and a missing
    or misshapen probability file; every message names the image."""
    size = _image_size(image)
    m = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise InputError(f"{image.name}: mask {mask} cannot be read")
    if m.ndim != 2:
        raise InputError(
            f"{image.name}: mask {mask.name} has shape {m.shape}; FIXER "
            "needs single-channel class masks"
        )
    if size is not None and m.shape != size:
        raise InputError(
            f"{image.name}: mask {mask.name} is {m.shape[1]}x{m.shape[0]} "
            f"but the image is {size[1]}x{size[0]}"
        )
    if probs is None:
        raise InputError(f"{image.name}: no probability file in --probs")
    shape = _array_shape(probs)
    if len(shape) != 3:
        raise InputError(
            f"{image.name}: {probs.name} holds an array of shape {shape}; "
            "FIXER needs (K, H, W) class probabilities"
        )
    if shape[0] != num_classes and shape[-1] == num_classes:
        raise InputError(
            f"{image.name}: {probs.name} has shape {shape}, channels last; "
            f"FIXER needs (K, H, W) with K = {num_classes} classes: save "
            "probs.transpose(2, 0, 1)"
        )
    if shape[0] != num_classes:
        raise InputError(
            f"{image.name}: {probs.name} has {shape[0]} channels (shape "
            f"{shape}) but --classes names {num_classes} classes"
        )


def _image_size(path: Path) -> tuple[int, int] | None:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"{path.name}: the image cannot be read ({path})")
    return image.shape[:2]


def _array_shape(path: Path) -> tuple[int, ...]:
    try:
        if path.suffix == ".npy":
            return tuple(np.load(path, mmap_mode="r").shape)
        with np.load(path) as archive:
            key = "probs" if "probs" in archive.files else archive.files[0]
            return tuple(archive[key].shape)
    except Exception as e:
        raise InputError(f"{path.name}: cannot be read ({e})") from e


def num_probability_classes(targets: dict[int, str]) -> int:
    """Probability channels expected: the mask values 0, 1, ... that the
    targets name, up to the first gap or ``void``."""
    k = 0
    while k in targets and targets[k].lower() != "void":
        k += 1
    return k


# -- the CamVid demo ---------------------------------------------------------


def camvid_model(camvid: Path) -> Path | None:
    """The ESPNet CamVid model kept beside the data (``../models``)."""
    path = camvid.resolve().parent.parent / "models" / "espnet_camvid.pt"
    return path if path.is_file() else None


def plant_camvid_errors(
    label: np.ndarray, rng: np.random.Generator
) -> list[tuple[np.ndarray, int, int, str]]:
    """Plants up to two errors into ``label`` in place: the largest car
    becomes building (a general error), the largest pole, sign or
    pedestrian takes its surroundings' class (a missed object). Each is
    kept with probability 0.7. Returns ``(mask, given, true, type)``."""
    planted = []
    cars = _components(label == CAMVID_CAR, 600)
    if cars and rng.random() < 0.7:
        label[cars[0]] = CAMVID_BUILDING
        planted.append((cars[0], CAMVID_BUILDING, CAMVID_CAR, "general"))
    for part in _components(np.isin(label, CAMVID_SMALL), 150)[:1]:
        true = int(np.bincount(label[part]).argmax())
        around = _surrounding(label, part)
        if around is not None and rng.random() < 0.7:
            label[part] = around
            planted.append((part, around, true, "false_negative"))
    return planted


def _components(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    parts = [comp == i for i in range(1, n)]
    return sorted(
        (p for p in parts if p.sum() >= min_area), key=lambda p: -p.sum()
    )


def _surrounding(label: np.ndarray, part: np.ndarray) -> int | None:
    ring = cv2.dilate(part.astype(np.uint8), np.ones((11, 11), np.uint8))
    values = label[ring.astype(bool) & ~part]
    values = values[values != CAMVID_VOID]
    return int(np.bincount(values).argmax()) if values.size else None


def planted_detection(fo, mask, given: str, true: str, error_type: str):
    """A planted error as a detection (label = the true class)."""
    ys, xs = mask.nonzero()
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    h, w = mask.shape
    return fo.Detection(
        label=true,
        bounding_box=[x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h],
        mask=mask[y0:y1, x0:x1],
        given_label=given,
        error_type=error_type,
    )
