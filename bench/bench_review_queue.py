"""How fast the review panel's queue opens, for a review sample and for a
view of many patches: the server's side of each request the panel makes.

A synthetic scenes dataset (stored probabilities) gets a FIXER run and a
review sample; its patches are then repeated (new ids, no tags) until the
run holds ``--patches``. Times, per ``--repeats``: opening the review
sample and the whole view (``get_review_queue``, first page included), a
later page (``get_review_page``) and a page's examples
(``get_review_examples``: the first call describes the run's example
regions, later calls reuse them). Then ``--verdicts`` patches of the
view are tagged (every third confirmed, the others rejected) and, per
repeat, the whole view is opened again (its order learned from them) and
its tail after the first two pages reordered (``get_review_order``, as
the panel asks on entering a page). FiftyOne runs on a private mongod
(the tests' isolation). Prints one JSON line per repeat, then the
medians.

    python bench/bench_review_queue.py --patches 10000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import conftest  # noqa: E402

PLUGIN = "@fixer/fixer"


def main() -> None:
    args = _parse_args()
    conftest._setup_fiftyone_env()  # private mongod, before fiftyone
    import fiftyone as fo
    import fiftyone.operators as foo
    from fixer_testing import write_scenes_dataset

    from fixer_core.synthetic import SIMULATED_MODEL, make_scenes

    def run(name, dataset=None, view=None, **params):
        ctx = {"params": params}
        ctx.update(
            {"view": view} if view is not None else {"dataset": dataset}
        )
        start = time.perf_counter()
        result = foo.execute_operator(f"{PLUGIN}/{name}", ctx)
        result.raise_exceptions()
        return result.result, time.perf_counter() - start

    dataset = fo.Dataset()
    with tempfile.TemporaryDirectory() as tmp:
        write_scenes_dataset(
            dataset, make_scenes(args.images, seed=0), Path(tmp)
        )
        params = {"gt_field": "ground_truth", "probs_field": "probs_path"}
        run("find_label_errors", dataset, **params, **SIMULATED_MODEL)
        run("draw_review_sample", dataset, run_key="fixer", per_class=25)
        found = dataset.count("fixer_patches.detections")
        _repeat_patches(fo, dataset, math.ceil(args.patches / found))
        total = dataset.count("fixer_patches.detections")
        rows = []
        for rep in range(args.repeats):
            review, t_review = run("get_review_queue", dataset)
            whole, t_whole = run(
                "get_review_queue", view=dataset.view(), source="current view"
            )
            page = whole["ids"][50:100]
            _, t_page = run(
                "get_review_page", dataset, run_key="fixer", ids=page
            )
            answer, t_examples = run(
                "get_review_examples", dataset, run_key="fixer", ids=page
            )
            row = {
                "repeat": rep,
                "review_patches": len(review["ids"]),
                "view_patches": len(whole["ids"]),
                "open_review_s": round(t_review, 3),
                "open_view_s": round(t_whole, 3),
                "page_s": round(t_page, 3),
                "examples_s": round(t_examples, 3),
                "descriptor": answer["descriptor"],
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
        reviewed = whole["ids"][: args.verdicts]
        for tag, ids in (
            ("fixer:confirmed", reviewed[::3]),
            (
                "fixer:rejected",
                [i for i in reviewed if i not in reviewed[::3]],
            ),
        ):
            dataset.select_labels(ids=ids).tag_labels(tag)
        for row in rows:
            learned, t_learned = run(
                "get_review_queue", view=dataset.view(), source="current view"
            )
            tail = slice(100, None)
            _, t_reorder = run(
                "get_review_order",
                dataset,
                run_key="fixer",
                ids=learned["ids"][tail],
                places=learned["places"][tail],
            )
            row.update(
                open_view_learned_s=round(t_learned, 3),
                reorder_s=round(t_reorder, 3),
            )
            print(json.dumps(row), flush=True)
        keys = (
            "open_review_s",
            "open_view_s",
            "page_s",
            "open_view_learned_s",
            "reorder_s",
        )
        medians = {k: statistics.median(r[k] for r in rows) for k in keys}
        medians["verdicts"] = len(reviewed)
        medians["examples_s_first"] = rows[0]["examples_s"]
        medians["examples_s_later"] = statistics.median(
            r["examples_s"] for r in rows[1:] or rows
        )
        print(json.dumps({"patches": total, "median": medians}))
    dataset.delete()


def _repeat_patches(fo, dataset, copies: int) -> None:
    """Each patch ``copies`` times in all (the copies: new ids, no tags)."""
    for sample in dataset.iter_samples(autosave=True):
        dets = sample["fixer_patches"].detections
        extra = []
        for det in dets:
            values = {
                n: det[n] for n in det.field_names if n not in ("id", "tags")
            }
            extra += [fo.Detection(**values) for _ in range(copies - 1)]
        sample["fixer_patches"].detections = dets + extra


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--patches", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--verdicts", type=int, default=500)
    return parser.parse_args()


if __name__ == "__main__":
    main()
