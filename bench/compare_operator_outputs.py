"""Checks that two checkouts of FIXER store the same ``find_label_errors``
run on CamVid inputs: every stored field of every sample (patches,
error score, error map, corrected mask: the documents as MongoDB holds
them, types and key order included, and the PNG files they name) and
the run's summary and statistics, compared exactly.

    git archive d25e352 | tar -x -C /tmp/base
    python bench/compare_operator_outputs.py --base /tmp/base --images 40 \\
        --labels ../main/bench/results/rw-a \\
        --probs ../main/bench/results/realuse/probs/espnet

Each checkout runs the operator in a subprocess on a private mongod,
with its own plugin (its ``tests/conftest.py`` isolation). Label ids,
sample ids and the run's folders differ between the two datasets and
are hidden; everything else must be equal.

``--workers N`` runs this checkout's operator over ``N`` ranks (the
base runs one process); without ``--base``, the base is this checkout:
one process against ``N`` ranks.

    python bench/compare_operator_outputs.py --workers 2 --images 101 \
        --splits val --labels ../main/bench/results/rw-a \
        --probs ../main/bench/results/realuse/probs/espnet
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import pickle
import sys
from collections import Counter
from pathlib import Path

from compare_outputs import dumps_of_checkouts

REPO = Path(__file__).resolve().parent.parent
FIND = "@fixer/fixer/find_label_errors"
KEY = "cmp"


def main() -> None:
    args = _parse_args()
    if args.dump:
        _dump(args)
        return
    base, new = dumps_of_checkouts(
        __file__,
        args.base or REPO,
        ([], ["--dump-workers", str(args.workers)]),
    )
    differ = [k for k in base if base[k] != new[k]]
    differ += [k for k in new if k not in base]
    print(
        f"{new['patches']} patches ({base['patches']} in the base) over "
        f"{args.images} images ({', '.join(args.splits)}), "
        f"{args.workers} rank(s): "
        + (
            "identical"
            if not differ
            else f"{len(differ)} values differ: {differ[:10]}"
        )
    )
    fields = Counter(k[1] for k in differ if isinstance(k, tuple))
    if fields:
        print("  samples that differ, by field:", dict(sorted(fields.items())))
    if "schema" in differ:  # name the paths, with their types
        old, now = set(base["schema"]), set(new["schema"])
        print("  schema only in base:", sorted(old - now))
        print("  schema only in this checkout:", sorted(now - old))
    sys.exit(1 if differ else 0)


def _dump(args) -> None:
    checkout = Path(os.environ["PYTHONPATH"])
    sys.path[:0] = [str(checkout / "tests")]
    import conftest

    conftest._setup_fiftyone_env()  # this checkout's plugin
    import fiftyone as fo
    import fiftyone.operators as foo

    sys.path.insert(0, str(REPO / "bench"))
    from bench_operator import VOID, camvid_dataset, camvid_names

    stored_form = _load(REPO / "tests" / "fixer_testing.py").stored_form

    names = camvid_names(args)
    dataset = camvid_dataset(fo, args, names)
    foo.execute_operator(
        FIND,
        dict(
            dataset=dataset,
            params={
                "gt_field": "ground_truth",
                "probs_field": "probs_path",
                "ignore_values": str(VOID),
                "run_key": KEY,
                "num_threads": 1,
                "workers": args.dump_workers,
            },
        ),
    ).raise_exceptions()
    dataset.reload()
    config = dataset.get_run_info(KEY).config
    folder = os.path.dirname(config.corrected_dir)
    run_folder = os.path.basename(config.corrected_dir).split("-", 1)[1]
    out = {}
    for doc in dataset._sample_collection.find({}).sort("filepath", 1):
        replace = {
            folder: "<dir>",
            run_folder: "<run>",
            str(doc["_id"]): "<sample>",
        }
        for name in config.fields:
            value = doc.get(name)
            out[(doc["filepath"], name)] = stored_form(value, replace)
            label = value if isinstance(value, dict) else {}
            path = label.get("mask_path") or label.get("map_path")
            if path:  # the PNG's pixels, as written
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                out[(doc["filepath"], name, "file")] = digest
    results = dataset.load_run_results(KEY)
    out["summary"] = json.dumps(results.summary, sort_keys=True)
    out["statistics"] = json.dumps(results.statistics, sort_keys=True)
    out["schema"] = sorted(
        (k, type(v).__name__)
        for k, v in dataset.get_field_schema(flat=True).items()
    )
    out["patches"] = sum(
        len(d.detections) for d in dataset.values(f"{KEY}_patches")
    )
    Path(args.dump).write_bytes(pickle.dumps(out))


def _load(path: Path):
    """A module of this checkout by its file (the other checkout's
    ``tests`` folder comes first on the path)."""
    spec = importlib.util.spec_from_file_location(f"_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--splits", nargs="+", default=["train"])
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--probs", type=Path, required=True)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    parser.add_argument(
        "--dump-workers", type=int, default=1, help=argparse.SUPPRESS
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
