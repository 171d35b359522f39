"""A separate process that runs one FIXER operator on a shared dataset, for
the concurrency tests (``test_concurrency.py``).

Usage: ``python concurrency_worker.py SPEC_JSON``, where the spec holds
``dataset``, ``ready`` and ``start`` (files: the worker creates ``ready``
once FiftyOne and the plugin are loaded, then waits for ``start``), and
either ``operator`` + ``params`` (runs it, as the App would), ``hold``
(``resource`` and ``shared``: holds that lock until killed) or
``lose_database`` (``root``, ``paused``, ``go``: makes its own dataset in
its own database, runs the finder and, in pass 2, creates ``paused`` and
waits for ``go``, while the test kills the database).

The environment (``FIFTYONE_DATABASE_URI``, ``FIFTYONE_PLUGINS_DIR`` ...)
is inherited from the test process. Prints one JSON line:
``{"ok": true}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

import fiftyone as fo
import fiftyone.operators as foo

PLUGIN = "@fixer/fixer"


def main(spec: dict) -> dict:
    if "lose_database" in spec:
        return lose_database(spec["lose_database"])
    dataset = fo.load_dataset(spec["dataset"])
    operator = foo.get_operator(f"{PLUGIN}/find_label_errors")
    package = type(operator).__module__.rsplit(".", 1)[0]
    locks = importlib.import_module(f"{package}._locks")
    Path(spec["ready"]).touch()
    while not Path(spec["start"]).exists():
        time.sleep(0.01)
    if "hold" in spec:
        hold = spec["hold"]
        take = locks.shared if hold["shared"] else locks.exclusive
        with take(dataset, hold["resource"], "a test worker"):
            print(json.dumps({"ok": True, "held": True}), flush=True)
            time.sleep(3600)
    try:
        foo.execute_operator(
            f"{PLUGIN}/{spec['operator']}",
            dict(dataset=dataset, params=spec["params"]),
        )
    except Exception as e:  # noqa: BLE001 - reported to the test
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True}


def lose_database(spec: dict) -> dict:
    from fixer_testing import write_scenes_dataset

    from fixer_core.synthetic import make_scenes

    dataset = fo.Dataset("lost")
    write_scenes_dataset(
        dataset,
        make_scenes(8, height=48, width=64, seed=0),
        Path(spec["root"]),
    )
    operator = foo.get_operator(f"{PLUGIN}/find_label_errors")
    package = type(operator).__module__.rsplit(".", 1)[0]
    pipeline = importlib.import_module(f"{package}._pipeline")
    params = pipeline.FindParams(
        gt_field="ground_truth", probs_field="probs_path", batch_size=2
    )
    try:
        for update in pipeline.run_find_label_errors(dataset, params):
            if update.label.startswith("Finding errors"):
                Path(spec["paused"]).touch()
                while not Path(spec["go"]).exists():
                    time.sleep(0.01)
    except Exception as e:  # noqa: BLE001 - reported to the test
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
    # FiftyOne's exit hooks query the database, which may be gone
    os._exit(0)
