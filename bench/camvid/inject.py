"""Stage 1 of the CamVid known-error benchmark: plant label errors.

Loads the real CamVid labels (367 train + 101 val, 360x480, classes 0..10,
void 11) from ``../shared/data/camvid``, downscales them by ``--factor``
(nearest; default 2 -> 180x240) and plants three kinds of errors into a
copy, on connected (8-connected) regions, with one seeded generator:

* general: whole objects relabelled to another plausible class (Car ->
  Building or Pedestrian, Tree -> Building, Building -> Tree, Pedestrian
  <-> Bicyclist, SignSymbol -> Pole); ``GENERAL_SHARE`` of the eligible
  objects of each source class (``GENERAL_MIN_AREA`` px up to
  ``GENERAL_MAX_SHARE`` of the image);
* ambiguous: a systematic policy on one class pair: ``AMBIGUOUS_SHARE`` of
  the Pavement regions (``AMBIGUOUS_MIN_AREA`` px or more) labelled Road;
* false negative: rare objects (Pole, SignSymbol, Fence, Pedestrian,
  Bicyclist; ``FN_MIN_AREA`` px or more, untouched by other errors)
  painted over with the most common label of a ring ``FN_RING`` px wide
  around them (void and their own class excluded); ``FN_SHARE`` of the
  eligible objects of each class.

Errors never overlap. Output folder (default ``bench/results/camvid``,
git-ignored)::

    meta.json                   seed, factor, size, classes, images, counts
    errors.json                 one record per planted error
    clean/<split>/<name>.png    downscaled original labels
    noisy/<split>/<name>.png    the same with the planted errors
    errors/<split>/<name>.npy   (3, H, W) int16: error type id (index in
                                ERROR_TYPES), true class, error id (index
                                in errors.json); -1 off the errors

Re-running with the same settings does nothing; a folder made with other
settings is refused (use another ``--out`` or delete it).

    python bench/camvid/inject.py --factor 2 --seed 0
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fixer_core import ERROR_TYPES

REPO = Path(__file__).resolve().parents[2]
CAMVID = REPO.parent / "shared" / "data" / "camvid"
DEFAULT_OUT = REPO / "bench" / "results" / "camvid"
SPLITS = ("train", "val")

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE = 0, 1, 2, 3, 4, 5
SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = 6, 7, 8, 9, 10
VOID = 11
NUM_CLASSES = 11

GENERAL_TARGETS: dict[int, tuple[int, ...]] = {
    CAR: (BUILDING, PEDESTRIAN),
    TREE: (BUILDING,),
    BUILDING: (TREE,),
    PEDESTRIAN: (BICYCLIST,),
    BICYCLIST: (PEDESTRIAN,),
    SIGN: (POLE,),
}
GENERAL_SHARE = 0.10
GENERAL_MIN_AREA = 100
GENERAL_MAX_SHARE = 0.10  # of the image: whole objects, not the backdrop
AMBIGUOUS_PAIR = (PAVEMENT, ROAD)  # (true, given)
AMBIGUOUS_SHARE = 1 / 3
AMBIGUOUS_MIN_AREA = 100
FN_CLASSES = (POLE, SIGN, FENCE, PEDESTRIAN, BICYCLIST)
FN_SHARE = 0.25
FN_MIN_AREA = 30
FN_RING = 3  # px at the working resolution

META_FILE = "meta.json"
ERRORS_FILE = "errors.json"


@dataclass(frozen=True)
class Layout:
    """Where the benchmark's files live under its output folder."""

    root: Path

    def label(self, kind: str, split: str, name: str) -> Path:
        """``kind`` is ``"clean"`` or ``"noisy"``."""
        return self.root / kind / split / f"{name}.png"

    def error_map(self, split: str, name: str) -> Path:
        return self.root / "errors" / split / f"{name}.npy"

    @property
    def meta(self) -> Path:
        return self.root / META_FILE

    @property
    def errors(self) -> Path:
        return self.root / ERRORS_FILE

    def run_dir(self, tag: str) -> Path:
        """Folder of one probability run (checkpoints, probabilities,
        reports)."""
        return self.root / "runs" / tag


@dataclass(frozen=True)
class Sample:
    """One CamVid image: its split, name and file paths."""

    split: str
    name: str
    image: Path
    label: Path

    @property
    def id(self) -> str:
        return f"{self.split}/{self.name}"


@dataclass
class Error:
    """One planted error: ``mask`` pixels of image ``index`` show class
    ``true`` and are now labelled ``given``."""

    index: int
    mask: np.ndarray
    error_type: str
    given: int
    true: int


def list_samples(camvid: Path = CAMVID) -> list[Sample]:
    """CamVid's train then val images, each split in file order."""
    out = []
    for split in SPLITS:
        lines = (camvid / f"{split}.txt").read_text().split("\n")
        for line in lines:
            if not line.strip():
                continue
            image, label = line.split()
            name = Path(image).stem
            out.append(Sample(split, name, camvid / image, camvid / label))
    return out


def working_size(factor: int, camvid: Path = CAMVID) -> tuple[int, int]:
    """``(H, W)`` of the labels after downscaling by ``factor``."""
    classes = json.loads((camvid / "classes.json").read_text())
    width, height = classes["image_size_wh"]
    return height // factor, width // factor


def load_label(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Reads a label PNG and resizes it (nearest) to ``(H, W)``."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise FileNotFoundError(path)
    if label.shape != size:
        label = cv2.resize(
            label, size[::-1], interpolation=cv2.INTER_NEAREST_EXACT
        )
    return label.astype(np.uint8)


def read_png(path: Path) -> np.ndarray:
    """Reads a single-channel PNG written by this stage."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise FileNotFoundError(path)
    return label


def components(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected components of a bool mask, as bool masks."""
    n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return [comp == i for i in range(1, n)]


def ring_majority(
    label: np.ndarray, component: np.ndarray, own: int
) -> int | None:
    """Most common label in a ring ``FN_RING`` px wide around a component,
    void and ``own`` excluded (``None`` when nothing else is there)."""
    kernel = cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * FN_RING + 1,) * 2
    )
    ring = cv2.dilate(component.astype(np.uint8), kernel).astype(bool)
    values = label[ring & ~component]
    values = values[(values != VOID) & (values != own)]
    if values.size == 0:
        return None
    return int(np.bincount(values, minlength=NUM_CLASSES).argmax())


def _pick(rng: np.random.Generator, n: int, share: float) -> list[int]:
    """``round(share * n)`` (at least one when ``n > 0``) of ``n`` items,
    sorted."""
    if n == 0:
        return []
    count = max(1, round(share * n))
    return sorted(int(i) for i in rng.choice(n, count, replace=False))


def plant_errors(
    clean: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, list[Error]]:
    """Plants the three kinds of errors into a copy of ``(N, H, W)``
    labels; returns the noisy labels and the errors, in planting order."""
    noisy = clean.copy()
    touched = np.zeros(clean.shape, dtype=bool)
    errors: list[Error] = []
    image_area = clean.shape[1] * clean.shape[2]

    def plant(index: int, mask: np.ndarray, kind: str, given: int) -> None:
        true = int(clean[index][mask][0])
        noisy[index][mask] = given
        touched[index] |= mask
        errors.append(Error(index, mask, kind, given, true))

    # general: whole objects of each source class, relabelled
    for source, targets in GENERAL_TARGETS.items():
        eligible = [
            (i, c)
            for i in range(len(clean))
            for c in components(clean[i] == source)
            if GENERAL_MIN_AREA
            <= int(c.sum())
            <= GENERAL_MAX_SHARE * image_area
        ]
        for j in _pick(rng, len(eligible), GENERAL_SHARE):
            i, c = eligible[j]
            target = targets[int(rng.integers(len(targets)))]
            plant(i, c, "general", target)

    # ambiguous: a share of the Pavement regions labelled Road
    true, given = AMBIGUOUS_PAIR
    eligible = [
        (i, c)
        for i in range(len(clean))
        for c in components(noisy[i] == true)
        if int(c.sum()) >= AMBIGUOUS_MIN_AREA and not (c & touched[i]).any()
    ]
    for j in _pick(rng, len(eligible), AMBIGUOUS_SHARE):
        i, c = eligible[j]
        plant(i, c, "ambiguous", given)

    # false negatives: rare objects painted over with their surroundings;
    # eligibility is decided on the labels before any is painted over
    eligible_by_class = {k: [] for k in FN_CLASSES}
    for k in FN_CLASSES:
        for i in range(len(clean)):
            for c in components(noisy[i] == k):
                if int(c.sum()) < FN_MIN_AREA or (c & touched[i]).any():
                    continue
                majority = ring_majority(noisy[i], c, k)
                if majority is not None:
                    eligible_by_class[k].append((i, c, majority))
    for k in FN_CLASSES:
        eligible = eligible_by_class[k]
        for j in _pick(rng, len(eligible), FN_SHARE):
            i, c, majority = eligible[j]
            plant(i, c, "false_negative", majority)
    return noisy, errors


def error_maps(
    clean: np.ndarray,
    errors: Sequence[Error],
    types: Sequence[str] = ERROR_TYPES,
) -> np.ndarray:
    """``(N, 3, H, W)`` int16: type id (index in ``types``), true class
    (the clean label) and error id per pixel, -1 off the errors."""
    out = np.full((len(clean), 3, *clean.shape[1:]), -1, dtype=np.int16)
    for error_id, e in enumerate(errors):
        out[e.index, 0][e.mask] = types.index(e.error_type)
        out[e.index, 1][e.mask] = clean[e.index][e.mask]
        out[e.index, 2][e.mask] = error_id
    return out


def error_records(
    samples: Sequence[Sample],
    errors: Sequence[Error],
    types: Sequence[str] = ERROR_TYPES,
) -> tuple[list[dict], dict]:
    """The ``errors.json`` records and the error counts by split and
    type."""
    records = [
        {
            "id": error_id,
            "image": samples[e.index].name,
            "split": samples[e.index].split,
            "index": e.index,
            "type": e.error_type,
            "given": e.given,
            "true": e.true,
            "area": int(e.mask.sum()),
        }
        for error_id, e in enumerate(errors)
    ]
    counts = {
        split: {
            t: sum(r["split"] == split and r["type"] == t for r in records)
            for t in types
        }
        for split in SPLITS
    }
    return records, counts


def _settings(factor: int, seed: int, size: tuple[int, int]) -> dict:
    return {
        "seed": seed,
        "factor": factor,
        "size": list(size),
        "general": {
            "targets": {str(k): list(v) for k, v in GENERAL_TARGETS.items()},
            "share": GENERAL_SHARE,
            "min_area": GENERAL_MIN_AREA,
            "max_image_share": GENERAL_MAX_SHARE,
        },
        "ambiguous": {
            "pair_true_given": list(AMBIGUOUS_PAIR),
            "share": AMBIGUOUS_SHARE,
            "min_area": AMBIGUOUS_MIN_AREA,
        },
        "false_negative": {
            "classes": list(FN_CLASSES),
            "share": FN_SHARE,
            "min_area": FN_MIN_AREA,
            "ring": FN_RING,
        },
    }


def load_meta(out: Path, *, factor: int, seed: int) -> dict:
    """Reads the output folder's ``meta.json``, checking that stage 1 ran
    with this ``factor`` and ``seed``."""
    path = Layout(out).meta
    if not path.is_file():
        raise SystemExit(
            f"{path} not found: run bench/camvid/inject.py (stage 1) first"
        )
    meta = json.loads(path.read_text())
    made = meta["settings"]["factor"], meta["settings"]["seed"]
    if made != (factor, seed):
        raise SystemExit(
            f"{out} was made with --factor {made[0]} --seed {made[1]}, not "
            f"--factor {factor} --seed {seed}"
        )
    return meta


def select_images(meta: dict, limit: int | None) -> list[dict]:
    """The images a run uses: all, or the first ``limit`` of the dataset
    split proportionally between train and val (so that a small run still
    has val images), each split in file order."""
    images = meta["images"]
    if limit is None or limit >= len(images):
        return images
    by_split = {s: [im for im in images if im["split"] == s] for s in SPLITS}
    n_train = min(
        len(by_split["train"]),
        max(1, round(limit * len(by_split["train"]) / len(images))),
    )
    n_val = min(len(by_split["val"]), limit - n_train)
    return by_split["train"][:n_train] + by_split["val"][:n_val]


def inject(
    *,
    camvid: Path = CAMVID,
    out: Path = DEFAULT_OUT,
    factor: int = 2,
    seed: int = 0,
) -> dict:
    """Runs stage 1; returns the metadata (see the module docstring)."""
    layout = Layout(out)
    size = working_size(factor, camvid)
    settings = _settings(factor, seed, size)
    if layout.meta.is_file():
        meta = json.loads(layout.meta.read_text())
        if meta.get("settings") != json.loads(json.dumps(settings)):
            raise SystemExit(
                f"{out} holds a benchmark made with other settings (factor "
                f"{meta['settings']['factor']}, seed "
                f"{meta['settings']['seed']} or other planting constants); "
                "use another --out or delete it"
            )
        print(f"inject: {out} is already prepared, skipping")
        return meta
    samples = list_samples(camvid)
    began = time.perf_counter()
    clean = np.stack([load_label(s.label, size) for s in samples])
    noisy, errors = plant_errors(clean, np.random.default_rng(seed))
    write_labels(layout, samples, clean, noisy, error_maps(clean, errors))
    records, counts = error_records(samples, errors)
    layout.errors.write_text(json.dumps(records, indent=1))
    meta = write_meta(
        layout, samples, clean, noisy, counts, settings=settings, camvid=camvid
    )
    print(
        f"inject: {len(samples)} images at {size[0]}x{size[1]}, "
        f"{len(records)} errors ({counts}), "
        f"{100 * meta['error_pixel_share']:.2f}% of labelled pixels wrong, "
        f"{time.perf_counter() - began:.1f} s"
    )
    return meta


def write_meta(
    layout: Layout,
    samples: Sequence[Sample],
    clean: np.ndarray,
    noisy: np.ndarray,
    counts: dict,
    *,
    settings: dict,
    camvid: Path,
    **extra,
) -> dict:
    """Writes and returns a benchmark folder's ``meta.json``, last: its
    presence marks a finished stage."""
    classes = json.loads((camvid / "classes.json").read_text())
    meta = {
        "settings": settings,
        "camvid": str(camvid),
        **extra,
        "class_names": classes["classes"],
        "void": VOID,
        "images": [
            {"split": s.split, "name": s.name, "image": str(s.image)}
            for s in samples
        ],
        "counts": counts,
        "error_pixel_share": float((noisy != clean)[clean != VOID].mean()),
    }
    layout.meta.write_text(json.dumps(meta, indent=1))
    return meta


def write_labels(
    layout: Layout,
    samples: Sequence[Sample],
    clean: np.ndarray,
    noisy: np.ndarray,
    maps: np.ndarray,
) -> None:
    """Writes each image's clean and noisy label PNGs and error map."""
    for i, s in enumerate(samples):
        for kind, labels in (("clean", clean), ("noisy", noisy)):
            path = layout.label(kind, s.split, s.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), labels[i]):
                raise OSError(f"could not write {path}")
        path = layout.error_map(s.split, s.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, maps[i])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by all stages: data, output folder, injection."""
    parser.add_argument(
        "--camvid", type=Path, default=CAMVID, help="CamVid folder"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder"
    )
    parser.add_argument(
        "--factor", type=int, default=2, help="label downscaling factor"
    )
    parser.add_argument("--seed", type=int, default=0, help="planting seed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    inject(
        camvid=args.camvid, out=args.out, factor=args.factor, seed=args.seed
    )


if __name__ == "__main__":
    main()
