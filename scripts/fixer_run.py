"""Run FIXER end to end: load a dataset into FiftyOne, find label errors
with FIXER's Python API, and print what it found.

With no data arguments it runs a demo with planted label errors: on real
CamVid street images when ``../shared/data/camvid`` (or ``--camvid DIR``)
is there, else on generated indoor scenes. With
``--images/--masks/--probs/--classes`` it runs on your own folder.

    python scripts/fixer_run.py                 # demo
    python scripts/fixer_run.py --app           # demo, then open the App
    python scripts/fixer_run.py --images IMG --masks MASKS --probs PROBS \\
        --classes classes.json --dataset my-data

Demo files go to ~/.fixer (or $FIXER_HOME); datasets are kept in
FiftyOne's database until you delete them.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# this checkout's fixer_core (not another install's), and fixer_data
sys.path[:0] = [str(REPO), str(REPO / "scripts")]
HOME = Path(os.environ.get("FIXER_HOME", Path.home() / ".fixer"))
SHARED_CAMVID = REPO.parent / "shared" / "data" / "camvid"
PROG = "fixer_run"

from fixer_data import (  # noqa: E402
    ESPNET_PREPROCESS,
    Demo,
    InputError,
    camvid_model,
    check_pair,
    folder_pairs,
    new_dataset,
    num_probability_classes,
    palette_colors,
    plant_camvid_errors,
    planted_detection,
    read_classes,
    set_mask_colors,
)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        print(f"{PROG}: (--debug shows the traceback)", file=sys.stderr)
        return 1


def _run(args) -> int:
    _use_plugin_from_repo()
    # FiftyOne's notice about the bundled MongoDB's version, not for users
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")

    import fiftyone as fo

    from fixer_core import FinderConfig
    from fixer_core.synthetic import SIMULATED_MODEL

    logging.getLogger("fiftyone").setLevel(logging.INFO)
    if args.clean:
        return _clean(fo)

    camvid = _camvid_dir(args)
    if args.images:
        dataset, demo = _load_folder(fo, args), None
    elif camvid:
        dataset, demo = _load_camvid(fo, args, camvid)
    else:
        dataset, demo = _load_scenes(fo, args)
    _Context.dataset = dataset
    print(f"Dataset '{dataset.name}': {len(dataset)} samples")

    fxf = _import_api()
    # The generated scenes' simulated probabilities and the colour model
    # fitted to them carry no class prior (see FinderConfig.prior_strength)
    scenes = demo is not None and not camvid
    simulated = scenes and (
        _source(args, camvid) == "stored"
        or (args.source == "model" and not args.model)
    )
    results = fxf.find_label_errors(
        dataset,
        "ground_truth",
        **_source_params(args, dataset, camvid),
        config=FinderConfig(**SIMULATED_MODEL) if simulated else None,
        run_key=args.run_key,
        device=args.device,
    )
    dataset.app_config.active_fields = fo.ActiveFields(
        paths=["ground_truth", results.patches_field]
    )
    dataset.save()
    _print_summary(results, demo)
    if args.report:
        _print_report(fxf, dataset, args.run_key, args.review_per_class)
    _print_files(dataset, demo, camvid)

    if args.app:
        _open_app(fo, dataset, args)
    return 0


def _open_app(fo, dataset, args) -> None:
    """Serves the App on the dataset, worst samples first, until Ctrl-C.

    The view is part of the session's initial state: setting
    ``session.view`` afterwards races the session's connection to its
    server and fails on a busy machine ("Client is not connected")."""
    view = dataset.sort_by(f"{args.run_key}_error_score", reverse=True)
    session = fo.launch_app(
        view=view, port=args.port, address=args.address, remote=True
    )
    print(
        f"App at http://{args.address}:{args.port}/datasets/{dataset.name}"
        " (Ctrl-C to stop)",
        flush=True,
    )
    session.wait(-1)


def _camvid_dir(args) -> Path | None:
    """The CamVid folder of the real-image demo, if the demo uses one."""
    if args.images or args.scenes:
        return None
    if args.camvid:
        if not (args.camvid / "classes.json").is_file():
            raise InputError(
                f"--camvid: {args.camvid} holds no CamVid copy (no "
                "classes.json)"
            )
        return args.camvid
    ok = (SHARED_CAMVID / "classes.json").is_file()
    return SHARED_CAMVID if ok and camvid_model(SHARED_CAMVID) else None


def _source(args, camvid: Path | None) -> str:
    return args.source or ("model" if camvid else "stored")


def _source_params(args, dataset, camvid: Path | None) -> dict:
    """The operator's probability-source parameters for ``--source``."""
    source = _source(args, camvid)
    ignore = _ignore_values(args, dataset)
    if source == "stored":
        if camvid:
            raise InputError(
                "--source stored: the CamVid demo has no stored "
                "probabilities; use --source model or train"
            )
        return {
            "probs_field": "probs_path",
            "logits": args.logits,
            "ignore_values": ignore,
        }
    if source == "model":
        return {
            "probs_source": "model",
            **_model_params(args, dataset, camvid),
            "ignore_values": ignore,
        }
    from fixer_core.training import TrainConfig

    return {
        "probs_source": "cross_validation",
        "training": TrainConfig(
            folds=args.folds,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            train_size=_size(args.train_size, "--train-size"),
        ),
        "ignore_values": ignore,
    }


def _model_params(args, dataset, camvid: Path | None) -> dict:
    from fixer_core.models import Preprocess

    size = _size(args.input_size, "--input-size")
    if args.model:
        preprocess = Preprocess(
            size=size,
            scale=args.scale,
            mean=_triple(args.mean, "--mean"),
            std=_triple(args.std, "--std"),
            channel_order=args.channel_order,
        )
        return {
            "model": args.model,
            "model_weights": args.weights,
            "preprocess": preprocess,
        }
    if camvid:
        model = camvid_model(camvid)
        if model is None:
            raise InputError(
                f"--camvid: no ESPNet model beside {camvid} "
                "(../models/espnet_camvid.pt); pass --model PATH with "
                "--mean/--std/--channel-order"
            )
        return {
            "model": str(model),
            "preprocess": Preprocess(**ESPNET_PREPROCESS),
        }
    return {
        "model": str(_demo_colour_model(dataset)),
        "preprocess": Preprocess(
            size=size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
        ),
    }


def _ignore_values(args, dataset) -> list[int] | None:
    """``--ignore-values``, else the mask values named ``void``."""
    if args.ignore_values is not None:
        try:
            return [
                int(v) for v in re.split(r"[,\s]+", args.ignore_values) if v
            ]
        except ValueError as e:
            raise InputError(
                f"--ignore-values: expected integers like 255 or 0,255, "
                f"got {args.ignore_values!r}"
            ) from e
    targets = dataset.default_mask_targets
    void = [k for k, v in targets.items() if str(v).lower() == "void"]
    return void or None


def _size(text: str | None, flag: str) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        h, w = (int(v) for v in re.split(r"[,\s]+", text.strip()))
    except ValueError as e:
        raise InputError(
            f"{flag}: expected H,W such as 360,480, got {text!r}"
        ) from e
    return h, w


def _triple(text: str, flag: str) -> tuple[float, float, float]:
    try:
        a, b, c = (float(v) for v in re.split(r"[,\s]+", text.strip()))
    except ValueError as e:
        raise InputError(
            f"{flag}: expected three numbers, got {text!r}"
        ) from e
    return a, b, c


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


def _import_api():
    """This checkout's ``fixer_fiftyone`` package (the repository root),
    installed or not: like ``fixer_core`` above, never another
    install's."""
    import importlib.util

    if "fixer_fiftyone" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "fixer_fiftyone",
            REPO / "__init__.py",
            submodule_search_locations=[str(REPO)],
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["fixer_fiftyone"]


def _use_plugin_from_repo() -> None:
    """Points FiftyOne at this checkout's plugin, for the App of
    ``--app``, unless a plugins dir is configured already (must run before
    fiftyone is imported)."""
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


# -- datasets ----------------------------------------------------------------


def _load_folder(fo, args):
    import fiftyone.core.utils as fou

    targets, colors = read_classes(args.classes)
    pairs, no_mask = folder_pairs(args.images, args.masks, args.probs)
    if no_mask:
        shown = ", ".join(no_mask[:5]) + (", ..." if len(no_mask) > 5 else "")
        print(
            f"{PROG}: warning: {len(no_mask)} of {len(pairs) + len(no_mask)} "
            f"images have no mask in {args.masks} and are skipped: {shown}",
            file=sys.stderr,
        )
    num_classes = num_probability_classes(targets)
    print(f"Checking {len(pairs)} images, masks and probability files")
    with fou.ProgressBar(total=len(pairs)) as bar:
        for image, mask, probs in pairs:
            check_pair(image, mask, probs, num_classes)
            bar.update()
    name = args.dataset or args.images.resolve().name
    dataset = new_dataset(fo, name, overwrite=args.overwrite)
    dataset.default_mask_targets = targets
    dataset.add_samples(
        [
            fo.Sample(
                filepath=str(image.resolve()),
                ground_truth=fo.Segmentation(mask_path=str(mask.resolve())),
                probs_path=str(probs.resolve()),
            )
            for image, mask, probs in pairs
        ]
    )
    dataset.compute_metadata()
    set_mask_colors(fo, dataset, "ground_truth", colors)
    return dataset


def _load_scenes(fo, args):
    import cv2
    import fiftyone.core.utils as fou
    import numpy as np

    from fixer_core.synthetic import IGNORE_VALUE, make_scenes

    n = args.num_images or 32
    scenes = make_scenes(n, height=240, width=320, seed=args.seed)
    root = HOME / "demo" / f"seed{args.seed}-n{n}"
    for sub in ("images", "masks", "probs"):
        (root / sub).mkdir(parents=True, exist_ok=True)

    dataset = new_dataset(
        fo, args.dataset or "fixer-demo", overwrite=args.overwrite, demo=True
    )
    dataset.description = (
        "FIXER demo: generated indoor scenes with planted label errors "
        "(the answer key: field 'planted_errors', hidden by default) and "
        "simulated model probabilities"
    )
    targets = dict(enumerate(scenes.class_names))
    targets[IGNORE_VALUE] = "void"
    dataset.default_mask_targets = targets

    by_image: dict[int, list] = {}
    for error in scenes.planted:
        by_image.setdefault(error.image_index, []).append(error)
    samples = []
    print(f"Writing {n} demo scenes to {root}")
    with fou.ProgressBar(total=n) as bar:
        for i in range(n):
            image = root / "images" / f"scene_{i:04d}.jpg"
            mask = root / "masks" / f"scene_{i:04d}.png"
            probs = root / "probs" / f"scene_{i:04d}.npy"
            cv2.imwrite(str(image), scenes.images[i][:, :, ::-1])
            cv2.imwrite(str(mask), scenes.labels[i])
            np.save(probs, scenes.pred_probs[i].astype(np.float16))
            names = scenes.class_names
            planted = [
                planted_detection(
                    fo,
                    e.mask,
                    names[e.given_label],
                    names[e.true_label],
                    e.error_type,
                )
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
            bar.update()
    dataset.add_samples(samples)
    set_mask_colors(fo, dataset, "ground_truth", palette_colors(targets))
    return dataset, Demo(scenes.known_errors(), scenes.class_names)


def _load_camvid(fo, args, camvid: Path):
    """CamVid val images (read in place, never copied) with errors planted
    into copies of their labels."""
    import cv2
    import fiftyone.core.utils as fou
    import numpy as np

    from fixer_core.evaluation import KnownError

    targets, colors = read_classes(camvid / "classes.json")
    names = sorted(p.stem for p in (camvid / "images" / "val").glob("*.jpg"))
    n = min(args.num_images or 50, len(names))
    names = names[:: len(names) // n][:n]  # spread over the val sequences
    root = HOME / "demo" / f"camvid-seed{args.seed}"
    (root / "masks").mkdir(parents=True, exist_ok=True)
    dataset = new_dataset(
        fo, args.dataset or "fixer-camvid", overwrite=args.overwrite, demo=True
    )
    dataset.description = (
        "FIXER demo: CamVid street scenes with planted label errors (the "
        "answer key: field 'planted_errors', hidden by default)"
    )
    dataset.default_mask_targets = targets
    classes = tuple(
        targets[k] for k in range(num_probability_classes(targets))
    )
    rng = np.random.default_rng(args.seed)
    samples, known = [], []
    print(f"Planting errors into {len(names)} CamVid labels, in {root}")
    with fou.ProgressBar(total=len(names)) as bar:
        for i, name in enumerate(names):
            label = cv2.imread(
                str(camvid / "labels" / "val" / f"{name}.png"),
                cv2.IMREAD_UNCHANGED,
            )
            # slips of single frames: every other image keeps its labels,
            # so no planted error is repeated by both neighbouring frames
            # (such a label is vouched for; docs/how-it-works.md, step 8)
            planted = plant_camvid_errors(label, rng) if i % 2 == 0 else []
            mask = root / "masks" / f"{name}.png"
            cv2.imwrite(str(mask), label)
            known += [KnownError(i, m, t, e) for m, _, t, e in planted]
            detections = [
                planted_detection(fo, m, classes[g], classes[t], e)
                for m, g, t, e in planted
            ]
            samples.append(
                fo.Sample(
                    filepath=str(
                        (camvid / "images" / "val" / f"{name}.jpg").resolve()
                    ),
                    ground_truth=fo.Segmentation(mask_path=str(mask)),
                    planted_errors=fo.Detections(detections=detections),
                    tags=["planted-errors"] if planted else ["clean"],
                )
            )
            bar.update()
    dataset.add_samples(samples)
    dataset.compute_metadata()
    set_mask_colors(fo, dataset, "ground_truth", colors)
    return dataset, Demo(known, classes, real=True)


def _clean(fo) -> int:
    """Deletes the demo datasets, their FIXER files and the demo files;
    nothing else."""
    import shutil

    from fixer_data import DEMO_MARK

    root = Path(fo.config.default_dataset_dir) / "fixer"
    for name in fo.list_datasets():
        dataset = fo.load_dataset(name)
        if dataset.info.get(DEMO_MARK):
            shutil.rmtree(root / str(dataset._doc.id), ignore_errors=True)
            dataset.delete()
            print(f"deleted dataset '{name}'")
    demo = HOME / "demo"
    if demo.exists():
        shutil.rmtree(demo)
        print(f"deleted {demo}")
    return 0


def _print_summary(results, demo: Demo | None) -> None:
    from fixer_core.neighbours import ALONE_NOTE
    from fixer_core.quality import weakly_predicted_note

    dataset, run_key = results.dataset, results.run_key
    summary = results.summary
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
    if "expected_errors" in summary:  # runs before the estimate have none
        low, high = summary["expected_errors_interval"]
        print(
            f"  expected label errors among the patches: "
            f"{summary['expected_errors']:.0f} ({low:.0f}-{high:.0f}; an "
            "estimate from the model's own confusions, see "
            "docs/how-it-works.md)"
        )
    shifted = summary.get("shifted_labels", {})
    if shifted:
        print(f"  labels shifted against their images: {len(shifted)}")
    repeats = summary.get("repeats", 0)
    if repeats:
        print(
            f"  patches repeating one of the previous image: {repeats} "
            "(listed after the others)"
        )
    vouched = summary.get("vouched", 0)
    if vouched:
        print(
            f"  disagreements not reported, their labels repeated by the "
            f"previous and next images: {vouched}"
        )
    framed = summary.get("framed", 0)
    if framed:
        print(f"  images between neighbouring frames of their scene: {framed}")
    else:
        print(f"  {ALONE_NOTE}")
    note = weakly_predicted_note(summary["weakly_predicted"])
    if note:
        print(f"  {note}")
    if demo is not None:
        _print_recovery(dataset, run_key, demo)
    print(f"\nSaved views: {', '.join(dataset.list_saved_views())}")


def _print_report(fxf, dataset, run_key: str, per_class: int) -> None:
    out = fxf.label_quality_report(dataset, run_key)
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
    sample = fxf.draw_review_sample(dataset, run_key, per_class=per_class)
    counts = ", ".join(
        f"{c['class']} {c['sampled']}/{c['flagged_patches']}"
        for c in sample["classes"]
    )
    print(
        f"Review sample: {sample['num_sampled']} patches ({counts}) in the "
        f"saved view '{sample['view']}'; tag them fixer:confirmed or "
        "fixer:rejected, then run estimate_flag_precision"
    )


def _print_recovery(dataset, run_key: str, demo: Demo) -> None:
    from fixer_core import Patch
    from fixer_core.evaluation import recovery_by_type

    known = demo.known
    index = {name: k for k, name in enumerate(demo.class_names)}
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
    if demo.real:
        print(
            "  (real labels hold errors of their own: not all the others "
            "are false)"
        )
    print("  planted errors recovered (>= half their pixels flagged):")
    for error_type, r in recovery_by_type(patches, known).items():
        if not r.total:
            continue
        print(
            f"    {error_type:15s} {r.found:3d} / {r.total:3d} "
            f"({r.recall:.0%}); right suggestion {r.suggested_right}, "
            f"right type {r.typed_right}"
        )


def _print_files(dataset, demo: Demo | None, camvid: Path | None) -> None:
    """Says where things were written and how to remove them."""
    import fiftyone as fo

    print(f"\nDataset '{dataset.name}' is kept in FiftyOne's database.")
    if demo is not None:
        where = "CamVid images are read in place; " if camvid else ""
        print(f"  {where}demo files are under {HOME / 'demo'}")
    print(
        "  FIXER's corrected masks are under "
        f"{Path(fo.config.default_dataset_dir) / 'fixer'}"
    )
    if demo is not None:
        print(f"  Remove the demos: python scripts/{PROG}.py --clean")
    else:
        print(
            '  Remove it: python -c "import fiftyone as fo; '
            f"fo.delete_dataset('{dataset.name}')\""
        )


class _Context:
    """What error messages need to name samples by file name."""

    dataset = None


def _one_line(error: Exception) -> str:
    """An error as one line, samples named by file name and options as the
    CLI spells them. Bad input (FIXER's input errors are ValueErrors) is
    the message alone."""
    text = str(error).strip()
    if not isinstance(error, (ValueError, OSError)):
        text = f"{type(error).__name__}: {text}"
    text = text.splitlines()[0] if text else type(error).__name__
    text = text.replace("pass logits=True", "pass --logits")
    return re.sub(r"sample ([0-9a-f]{24})", _sample_name, text)


def _sample_name(match: re.Match) -> str:
    dataset = _Context.dataset
    if dataset is None:
        return match.group(0)
    try:
        path = dataset[match.group(1)].filepath
    except KeyError:
        return match.group(0)
    return f"sample {os.path.basename(path)}"


def _parse_args(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    real = [args.images, args.masks, args.probs, args.classes]
    if any(real) and not all(real):
        parser.error("--images, --masks, --probs and --classes go together")
    return args


def build_parser() -> argparse.ArgumentParser:
    """The command line's options, each with its help and default."""
    parser = argparse.ArgumentParser(
        prog="fixer_run.py",
        description=__doc__.split("\n\n")[0],
        epilog="Demo files go to ~/.fixer ($FIXER_HOME); datasets stay in "
        "FiftyOne's database (--clean removes the demos).",
    )
    data = parser.add_argument_group(
        "your data (all four together; without them, the demo runs)"
    )
    data.add_argument("--images", type=Path, help="folder of images")
    data.add_argument(
        "--masks",
        type=Path,
        help="folder of single-channel PNG masks named like the images "
        "(images without one are skipped, with a warning)",
    )
    data.add_argument(
        "--probs",
        type=Path,
        help="folder of <image stem>.npy/.npz probability arrays, shape "
        "(K, H, W): channel k = mask value k",
    )
    data.add_argument(
        "--classes",
        type=Path,
        help="JSON: a list of class names in mask-value order, a "
        "{value: name} object, or an object with a 'classes' list (and "
        "optional 'class_colors_rgb' for the App)",
    )
    data.add_argument(
        "--dataset",
        help="dataset name (default: the images folder's name; demos: "
        "fixer-camvid or fixer-demo)",
    )
    data.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing dataset of that name (never done "
        "without it)",
    )
    data.add_argument(
        "--logits",
        action="store_true",
        help="the stored arrays are logits, not probabilities",
    )
    data.add_argument(
        "--ignore-values",
        metavar="V[,V...]",
        help="mask values never scored, e.g. 255 (default: values named "
        "'void'; values without a channel are never scored)",
    )

    demo = parser.add_argument_group("the demo only")
    demo.add_argument(
        "--camvid",
        type=Path,
        metavar="DIR",
        help="run on real CamVid val images with planted errors (default "
        "when ../shared/data/camvid and its ESPNet model are there)",
    )
    demo.add_argument(
        "--scenes",
        action="store_true",
        help="run on generated indoor scenes even if CamVid is there",
    )
    demo.add_argument(
        "--num-images",
        type=int,
        help="images in the demo (default: 32 scenes, 50 of the 101 CamVid "
        "val images)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the planted errors (default: 0)",
    )
    demo.add_argument(
        "--clean",
        action="store_true",
        help="delete the demo datasets and ~/.fixer/demo, then exit",
    )

    run = parser.add_argument_group("the run")
    run.add_argument(
        "--run-key",
        default="fixer",
        help="names the run and prefixes its fields and views (default: "
        "fixer)",
    )
    run.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="auto uses CUDA when torch sees a GPU (default: auto)",
    )
    run.add_argument(
        "--report",
        action="store_true",
        help="also write the label-quality report and draw a review sample",
    )
    run.add_argument(
        "--review-per-class",
        type=int,
        default=25,
        help="review sample size per given class, with --report (default: 25)",
    )

    source = parser.add_argument_group("where probabilities come from")
    source.add_argument(
        "--source",
        choices=("stored", "model", "train"),
        help="stored files, a model, or models trained with "
        "cross-validation (default: stored; the CamVid demo: model)",
    )
    source.add_argument(
        "--model",
        help="TorchScript file or package.module:factory (demo default: "
        "ESPNet on CamVid, a colour classifier fitted to the labels on "
        "the scenes)",
    )
    source.add_argument("--weights", help="state_dict file for --model")
    source.add_argument(
        "--input-size",
        metavar="H,W",
        help="size the model expects (default: each image's own)",
    )
    source.add_argument(
        "--scale",
        type=float,
        default=1 / 255,
        help="factor on the 0-255 pixel values first (default: 1/255)",
    )
    source.add_argument(
        "--mean",
        default="0.485,0.456,0.406",
        metavar="R,G,B",
        help="subtracted after scaling, RGB order (default: ImageNet's)",
    )
    source.add_argument(
        "--std",
        default="0.229,0.224,0.225",
        metavar="R,G,B",
        help="divides after the mean, RGB order (default: ImageNet's)",
    )
    source.add_argument(
        "--channel-order",
        default="RGB",
        choices=("RGB", "BGR"),
        help="what the model expects (default: RGB)",
    )
    source.add_argument(
        "--folds",
        type=int,
        default=3,
        help="--source train: folds (default: 3)",
    )
    source.add_argument(
        "--epochs",
        type=int,
        default=30,
        help="--source train: epochs per fold (default: 30)",
    )
    source.add_argument(
        "--learning-rate",
        type=float,
        default=1e-2,
        help="--source train: learning rate (default: 0.01)",
    )
    source.add_argument(
        "--train-size",
        default="96,128",
        metavar="H,W",
        help="--source train: size images are trained at (default: 96,128)",
    )

    app = parser.add_argument_group("the App")
    app.add_argument(
        "--app",
        action="store_true",
        help="serve the FiftyOne App on the result until Ctrl-C",
    )
    app.add_argument(
        "--port", type=int, default=5151, help="App port (default: 5151)"
    )
    app.add_argument(
        "--address",
        default="127.0.0.1",
        help="App address (default: 127.0.0.1; 0.0.0.0 to serve others)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
