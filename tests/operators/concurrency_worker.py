"""A separate process that runs one FIXER operator on a shared dataset, for
the concurrency tests (``test_concurrency.py``).

Usage: ``python concurrency_worker.py SPEC_JSON``, where the spec holds
``dataset``, ``ready`` and ``start`` (files: the worker creates ``ready``
once FiftyOne and the plugin are loaded, then waits for ``start``), and
either ``operator`` + ``params`` (runs it, as the App would) or ``hold``
(``resource`` and ``shared``: holds that lock until killed).

The environment (``FIFTYONE_DATABASE_URI``, ``FIFTYONE_PLUGINS_DIR`` ...)
is inherited from the test process. Prints one JSON line:
``{"ok": true}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

import fiftyone as fo
import fiftyone.operators as foo

PLUGIN = "@fixer/fixer"


def main(spec: dict) -> dict:
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


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
