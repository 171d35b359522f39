"""Run ``find_label_errors`` on a FiftyOne dataset as one rank of a
``torchrun`` launch (one node or several; see docs/distributed.md).

    torchrun --nproc-per-node 2 scripts/fixer_distributed.py DATASET \\
        --gt-field ground_truth --probs-field probs_path

Every rank runs the operator on the same dataset; each reads a shard of
the samples and writes its own samples' results, and rank 0 writes the
run record, views and summary. Finder options go as ``--name=value``
(``--min-area=64``). Rank 0 prints the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("FIXER_HOME", Path.home() / ".fixer"))


def main(argv: list[str] | None = None) -> int:
    args, extra = _parse_args(argv)
    # idle OpenMP threads sleep (read when torch loads; see
    # fixer_core.threads.passive_waits)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _use_plugin_from_repo()
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    import fiftyone as fo
    import fiftyone.operators as foo

    dataset = fo.load_dataset(args.dataset)
    params = {
        "gt_field": args.gt_field,
        "probs_field": args.probs_field,
        "run_key": args.run_key,
        "batch_size": args.batch_size,
        "device": args.device,
        **extra,
    }
    if args.num_threads:
        params["num_threads"] = args.num_threads
    result = foo.execute_operator(
        "@fixer/fixer/find_label_errors",
        dict(dataset=dataset, params=params),
    )
    result.raise_exceptions()
    if os.environ.get("RANK", "0") == "0":
        dataset.reload()
        summary = dataset.load_run_results(args.run_key).summary
        print(json.dumps({k: summary[k] for k in ("num_images", "totals")}))
    return 0


def _parse_args(argv) -> tuple[argparse.Namespace, dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="name of the FiftyOne dataset")
    parser.add_argument("--gt-field", required=True)
    parser.add_argument("--probs-field", required=True)
    parser.add_argument("--run-key", default="fixer")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-threads", type=int)
    args, rest = parser.parse_known_args(argv)
    extra = {}
    for item in rest:
        name, sep, value = item.removeprefix("--").partition("=")
        if not item.startswith("--") or not sep:
            parser.error(f"finder options go as --name=value, got {item!r}")
        extra[name.replace("-", "_")] = json.loads(value)
    return args, extra


def _use_plugin_from_repo() -> None:
    """Points FiftyOne at this checkout's plugin unless a plugins dir is
    configured already (as ``fixer_run.py`` does)."""
    if "FIFTYONE_PLUGINS_DIR" in os.environ:
        return
    plugins = HOME / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "fixer"
    with contextlib.suppress(FileExistsError):  # another rank's
        if link.is_symlink() and link.resolve() != REPO:
            link.unlink()
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
    os.environ["FIFTYONE_PLUGINS_DIR"] = str(plugins)


if __name__ == "__main__":
    sys.exit(main())
