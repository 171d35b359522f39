"""Run FIXER end to end: load a dataset into FiftyOne, find label errors
through the plugin's operator, and print what it found.

With no data arguments it builds a small, clearly labelled demo: generated
indoor scenes with planted errors of all three types and matching
probabilities. With ``--images/--masks/--probs/--classes`` it runs on a real
folder of images, masks and probability files.

    python scripts/fixer_run.py                 # demo
    python scripts/fixer_run.py --app           # demo, then open the App
    python scripts/fixer_run.py --images IMG --masks MASKS --probs PROBS \\
        --classes classes.json --dataset my-data
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("FIXER_HOME", Path.home() / ".fixer"))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    _use_plugin_from_repo()

    import fiftyone as fo
    import fiftyone.operators as foo

    from fixer_core import FinderConfig
    from fixer_core.synthetic import SIMULATED_MODEL

    logging.getLogger("fiftyone").setLevel(logging.INFO)

    if args.images:
        dataset, known = _load_folder(fo, args), None
    else:
        dataset, known = _load_demo(fo, args)
    print(f"Dataset '{dataset.name}': {len(dataset)} samples")

    find = foo.get_operator("@fixer/fixer/find_label_errors")
    # The generated scenes' simulated probabilities and the colour model
    # fitted to them carry no class prior (see FinderConfig.prior_strength)
    simulated = known is not None and (
        args.source == "stored" or (args.source == "model" and not args.model)
    )
    find(
        dataset,
        gt_field="ground_truth",
        **_source_params(args, dataset),
        config=FinderConfig(**SIMULATED_MODEL) if simulated else None,
        run_key=args.run_key,
        device=args.device,
    )
    _print_summary(dataset, args.run_key, known)
    if args.report:
        _print_report(foo, dataset, args.run_key, args.review_per_class)

    if args.app:
        session = fo.launch_app(
            dataset, port=args.port, address=args.address, remote=True
        )
        session.view = dataset.load_saved_view(f"{args.run_key}-patches")
        print(f"App at http://{args.address}:{args.port} (Ctrl-C to stop)")
        session.wait(-1)
    return 0


def _source_params(args, dataset) -> dict:
    """The operator's probability-source parameters for ``--source``."""
    if args.source == "stored":
        return {"probs_field": "probs_path", "logits": args.logits}
    if args.source == "model":
        from fixer_core.models import Preprocess

        model = args.model or _demo_colour_model(dataset)
        size = _size(args.input_size)
        return {
            "probs_source": "model",
            "model": str(model),
            "model_weights": args.weights,
            "preprocess": Preprocess(
                size=size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
            )
            if not args.model
            else Preprocess(size=size),
        }
    from fixer_core.training import TrainConfig

    return {
        "probs_source": "cross_validation",
        "training": TrainConfig(
            folds=args.folds,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            train_size=_size(args.train_size),
        ),
        "ignore_values": [255]
        if "void" in dataset.default_mask_targets.values()
        else None,
    }


def _size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    h, w = (int(v) for v in text.replace(",", " ").split())
    return h, w


def _demo_colour_model(dataset) -> Path:
    """A stand-in for "your own model" on the demo: a nearest-colour
    classifier fitted to the (noisy) labels, saved as TorchScript."""
    import cv2
    import torch

    from fixer_core.synthetic import fit_colour_model

    samples = dataset.select_fields("ground_truth")
    images = [cv2.imread(s.filepath)[:, :, ::-1] for s in samples]
    labels = [s.ground_truth.get_mask() for s in samples]
    classes = [v for v in dataset.default_mask_targets.values() if v != "void"]
    model = fit_colour_model(images, labels, len(classes))
    path = HOME / "demo" / "colour_model.pt"
    torch.jit.script(model).save(str(path))
    return path


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data = parser.add_argument_group("real data (all four, else the demo)")
    data.add_argument("--images", type=Path, help="folder of images")
    data.add_argument(
        "--masks",
        type=Path,
        help="folder of single-channel PNG masks named like the images",
    )
    data.add_argument(
        "--probs",
        type=Path,
        help="folder of <image stem>.npy/.npz (K, H, W) probabilities",
    )
    data.add_argument(
        "--classes",
        type=Path,
        help="JSON: a list of class names in mask-value order, a "
        "{value: name} object, or an object with a 'classes' list",
    )
    parser.add_argument("--dataset", help="dataset name (default fixer-demo)")
    parser.add_argument("--num-images", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-key", default="fixer")
    parser.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda")
    )
    parser.add_argument(
        "--logits", action="store_true", help="probability files are logits"
    )
    source = parser.add_argument_group("where probabilities come from")
    source.add_argument(
        "--source",
        default="stored",
        choices=("stored", "model", "train"),
        help="stored files (default), a model, or cross-validated training",
    )
    source.add_argument(
        "--model",
        help="TorchScript file or package.module:factory (default on the "
        "demo: a colour classifier fitted to its labels)",
    )
    source.add_argument("--weights", help="state_dict file for --model")
    source.add_argument("--input-size", help="H,W the model expects")
    source.add_argument("--folds", type=int, default=3)
    source.add_argument("--epochs", type=int, default=30)
    source.add_argument("--learning-rate", type=float, default=1e-2)
    source.add_argument(
        "--train-size", default="96,128", help="H,W for training"
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="also write the label-quality report and draw a review sample",
    )
    parser.add_argument(
        "--review-per-class",
        type=int,
        default=25,
        help="review sample size per given class (with --report)",
    )
    parser.add_argument(
        "--app", action="store_true", help="open the App on the result"
    )
    parser.add_argument("--port", type=int, default=5151)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args(argv)
    real = [args.images, args.masks, args.probs, args.classes]
    if any(real) and not all(real):
        parser.error("--images, --masks, --probs and --classes go together")
    return args


def _use_plugin_from_repo() -> None:
    """Points FiftyOne at this checkout's plugin unless a plugins dir is
    configured already (must run before fiftyone is imported)."""
    if "FIFTYONE_PLUGINS_DIR" in os.environ:
        return
    plugins = HOME / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "fixer"
    if link.is_symlink() and link.resolve() != REPO:
        link.unlink()  # left by another checkout
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    os.environ["FIFTYONE_PLUGINS_DIR"] = str(plugins)


def _load_demo(fo, args):
    import cv2
    import numpy as np

    from fixer_core.synthetic import IGNORE_VALUE, make_scenes

    scenes = make_scenes(
        args.num_images, height=240, width=320, seed=args.seed
    )
    root = HOME / "demo" / f"seed{args.seed}-n{args.num_images}"
    for sub in ("images", "masks", "probs"):
        (root / sub).mkdir(parents=True, exist_ok=True)

    name = args.dataset or "fixer-demo"
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = fo.Dataset(name)
    dataset.description = (
        "FIXER demo: generated indoor scenes with planted label errors "
        "(field 'planted_errors') and simulated model probabilities"
    )
    targets = dict(enumerate(scenes.class_names))
    targets[IGNORE_VALUE] = "void"
    dataset.default_mask_targets = targets

    by_image: dict[int, list] = {}
    for error in scenes.planted:
        by_image.setdefault(error.image_index, []).append(error)
    samples = []
    for i in range(len(scenes.labels)):
        image = root / "images" / f"scene_{i:04d}.jpg"
        mask = root / "masks" / f"scene_{i:04d}.png"
        probs = root / "probs" / f"scene_{i:04d}.npy"
        cv2.imwrite(str(image), scenes.images[i][:, :, ::-1])
        cv2.imwrite(str(mask), scenes.labels[i])
        np.save(probs, scenes.pred_probs[i].astype(np.float16))
        planted = [
            _planted_detection(fo, e, scenes.class_names)
            for e in by_image.get(i, [])
        ]
        samples.append(
            fo.Sample(
                filepath=str(image),
                ground_truth=fo.Segmentation(mask_path=str(mask)),
                probs_path=str(probs),
                planted_errors=fo.Detections(detections=planted),
                tags=["planted-errors"] if planted else ["clean"],
            )
        )
    dataset.add_samples(samples)
    dataset.persistent = True
    return dataset, (scenes.known_errors(), scenes.class_names)


def _planted_detection(fo, error, class_names):
    ys, xs = error.mask.nonzero()
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    h, w = error.mask.shape
    return fo.Detection(
        label=class_names[error.true_label],
        bounding_box=[x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h],
        mask=error.mask[y0:y1, x0:x1],
        given_label=class_names[error.given_label],
        error_type=error.error_type,
    )


def _load_folder(fo, args):
    classes = json.loads(args.classes.read_text())
    if isinstance(classes, dict) and "classes" in classes:
        classes = classes["classes"]
    if isinstance(classes, list):
        targets = dict(enumerate(classes))
    else:
        targets = {int(k): v for k, v in classes.items()}
    masks = {p.stem: p for p in args.masks.iterdir()}
    probs = {
        p.stem: p for p in args.probs.iterdir() if p.suffix in (".npy", ".npz")
    }
    samples = []
    for image in sorted(args.images.iterdir()):
        if image.stem not in masks:
            continue
        samples.append(
            fo.Sample(
                filepath=str(image.resolve()),
                ground_truth=fo.Segmentation(
                    mask_path=str(masks[image.stem].resolve())
                ),
                probs_path=str(probs[image.stem].resolve())
                if image.stem in probs
                else None,
            )
        )
    if not samples:
        raise SystemExit(
            f"No image in {args.images} has a mask in {args.masks}"
        )
    name = args.dataset or args.images.resolve().name
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = fo.Dataset(name, persistent=True)
    dataset.default_mask_targets = targets
    dataset.add_samples(samples)
    return dataset


def _print_summary(dataset, run_key: str, known) -> None:
    from fixer_core.quality import weakly_predicted_note

    summary = dataset.load_run_results(run_key, cache=False).summary
    flagged = summary["flagged_pixels"]
    print(f"\nFIXER run '{run_key}' on {summary['num_images']} images")
    print(
        f"  flagged pixels: {flagged} "
        f"({flagged / max(summary['num_pixels'], 1):.2%} of scored)"
    )
    for error_type, t in summary["totals"].items():
        print(
            f"  {error_type:15s} {t.get('patches', 0):5d} patches "
            f"{t.get('pixels', 0):8d} px"
        )
    print(
        f"  specific issues: {len(summary['issues'])}, holding "
        f"{summary['issue_share']:.0%} of flagged pixels"
    )
    for issue in summary["issues"]:
        print(
            f"    {issue['name']:32s} {issue['error_type']:15s} "
            f"{issue['num_patches']:4d} patches {issue['num_images']:4d} "
            f"images {issue['num_pixels']:7d} px"
        )
    note = weakly_predicted_note(summary["weakly_predicted"])
    if note:
        print(f"  {note}")
    if known is not None:
        _print_recovery(dataset, run_key, *known)
    print(f"\nSaved views: {', '.join(v for v in dataset.list_saved_views())}")


def _print_report(foo, dataset, run_key: str, per_class: int) -> None:
    report = foo.get_operator("@fixer/fixer/label_quality_report")
    out = report(dataset, run_key).result
    print(
        f"\nLabel quality (original vs corrected labels): mIoU "
        f"{out['miou']:.4f}, {out['changed_share']:.2%} of the pixels "
        "corrected"
    )
    for row in out["classes"]:
        ratio = "new" if row["ratio"] is None else f"x{row['ratio']:.3f}"
        iou = "n/a" if row["iou"] is None else f"{row['iou']:.3f}"
        print(
            f"  {row['class']:15s} IoU {iou} pixels "
            f"{row['pixels_before']:8d} -> {row['pixels_after']:8d} {ratio}"
        )
    print(f"  report: {out['files']['markdown']}")
    draw = foo.get_operator("@fixer/fixer/draw_review_sample")
    sample = draw(dataset, run_key, per_class=per_class).result
    counts = ", ".join(
        f"{c['class']} {c['sampled']}/{c['flagged_patches']}"
        for c in sample["classes"]
    )
    print(
        f"Review sample: {sample['num_sampled']} patches ({counts}) in the "
        f"saved view '{sample['view']}'; tag them fixer:confirmed or "
        "fixer:rejected, then run estimate_flag_precision"
    )


def _print_recovery(dataset, run_key, known, class_names) -> None:
    from fixer_core import Patch
    from fixer_core.evaluation import recovery_by_type

    index = {class_name: k for k, class_name in enumerate(class_names)}
    patches = []
    view = dataset.select_fields([f"{run_key}_patches", "ground_truth"])
    for i, sample in enumerate(view):
        h, w = sample.ground_truth.get_mask().shape
        for d in sample[f"{run_key}_patches"].detections:
            mh, mw = d.mask.shape
            x, y = round(d.bounding_box[0] * w), round(d.bounding_box[1] * h)
            patches.append(
                Patch(
                    image_index=i,
                    box=(x, y, mw, mh),
                    image_shape=(h, w),
                    mask=d.mask,
                    given_label=index[d.given_label],
                    suggested_label=index[d.suggested_label],
                    score=d.confidence,
                    area=int(d.mask.sum()),
                    coverage=d.coverage,
                    inside_share=0.0,
                    given_prob=0.0,
                    suggested_prob=0.0,
                    error_type=d.error_type,
                )
            )
    planted: dict[int, object] = {}
    for error in known:
        planted[error.image_index] = planted.get(error.image_index, 0) | (
            error.mask
        )
    on_errors = sum(
        (p.full_mask() & planted.get(p.image_index, False)).sum() >= p.area / 2
        for p in patches
    )
    print(
        f"\n  patches on planted errors: {on_errors} of {len(patches)} "
        "(mostly planted pixels)"
    )
    print("  planted errors recovered (>= half their pixels flagged):")
    for error_type, r in recovery_by_type(patches, known).items():
        print(
            f"    {error_type:15s} {r.found:3d} / {r.total:3d} "
            f"({r.recall:.0%}); right suggestion {r.suggested_right}, "
            f"right type {r.typed_right}"
        )


if __name__ == "__main__":
    sys.exit(main())
