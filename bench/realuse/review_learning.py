"""A reviewer's gain from a queue that learns from the verdicts (issue
23), on the patch tables of ``calibration_dump.py``::

    python bench/realuse/review_learning.py DIR/*.npz

A simulated reviewer takes the run's patches a page at a time (50, the
panel's page) and judges each by the injected errors (a patch is an
error when at least half its pixels are, as ``evaluate.py`` counts it).
The fixed queue is the run's own view: score order, repeats of the
previous image last. The learned queue is reopened after each page in
``fixer_core.verdict_order``'s order. The panel's queue is the one the
review panel keeps open: it fetches each page ``AHEAD`` patches before
the reviewer reaches it, first reordering what follows the pages fetched
with the verdicts so far (``fixer_core.learned_order`` from the
patches' places in the view), so a page's last verdicts first move the
page after next. Printed per table:
errors found among the first 100, 500 and 1000 reviewed, fixed ->
learned -> panel, and the learned queue with ``PRIOR`` at 1 and 4.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from fixer_core.review_order import (
    PRIOR,
    learned_order,
    pair_weights,
    verdict_order,
)

PAGE = 50
AHEAD = 10  # the panel fetches a page this many patches before it
REVIEWED = (100, 500, 1000)


def fixed_order(table) -> np.ndarray:
    """The run's view: score order, the repeats after the others (the key
    of ``evaluate.py``'s ranking)."""
    key = table["score"] - table["repeat"].astype(bool)
    return np.argsort(-key, kind="stable")


def found(table, prior: float | None) -> list[int]:
    """Errors among the first ``REVIEWED`` patches; ``prior`` None: the
    fixed queue."""
    hit = table["on_error"] >= 0.5
    queue = fixed_order(table)
    if prior is None:
        return [int(hit[queue[:n]].sum()) for n in REVIEWED]
    pairs = list(
        zip(table["given"][queue], table["suggested"][queue], strict=True)
    )
    probability = table["probability"][queue]
    verdicts: list[bool | None] = [None] * len(queue)
    seen: list[int] = []
    while len(seen) < min(max(REVIEWED), len(queue)):
        order = verdict_order(pairs, probability, verdicts, prior)
        # the patches still to review come first
        for k in order[:PAGE]:
            verdicts[k] = bool(hit[queue[k]])
            seen.append(k)
    seen_hits = hit[queue[np.asarray(seen)]]
    return [int(seen_hits[:n].sum()) for n in REVIEWED]


def found_in_panel(table, ahead: int = AHEAD) -> list[int]:
    """Errors among the first ``REVIEWED`` patches of the panel's queue
    (see the module)."""
    hit = table["on_error"] >= 0.5
    queue = fixed_order(table)
    pairs = list(
        zip(table["given"][queue], table["suggested"][queue], strict=True)
    )
    probability = table["probability"][queue]
    verdicts: list[bool | None] = [None] * len(queue)
    order = np.arange(len(queue))  # the panel's order, places in the view
    reviewed = 0
    for page in range(1, min(max(REVIEWED), len(queue)) // PAGE + 1):
        # the reviewer is ``ahead`` patches before the page when it is
        # fetched, and what follows the pages fetched is reordered
        for k in order[reviewed : page * PAGE - ahead]:
            verdicts[k] = bool(hit[queue[k]])
        reviewed = max(reviewed, page * PAGE - ahead)
        done = [k for k, v in enumerate(verdicts) if v is not None]
        start = page * PAGE
        if done and start < len(order):
            weights = pair_weights(
                [pairs[k] for k in done],
                probability[done],
                [verdicts[k] for k in done],
            )
            tail = order[start:]
            moved = learned_order(
                [pairs[k] for k in tail],
                [verdicts[k] for k in tail],
                weights,
                tail + 1,
            )
            order[start:] = tail[moved]
    seen_hits = hit[queue[order]]
    return [int(seen_hits[:n].sum()) for n in REVIEWED]


def main(paths: list[str]) -> None:
    print("table | fixed | learned | panel | PRIOR 1 | PRIOR 4")
    for path in paths:
        table = np.load(path)
        runs = [found(table, p) for p in (None, PRIOR)]
        runs += [found_in_panel(table)]
        runs += [found(table, p) for p in (1.0, 4.0)]
        cells = " | ".join("/".join(map(str, r)) for r in runs)
        print(f"{Path(path).parent.name}/{Path(path).stem} | {cells}")


if __name__ == "__main__":
    main(sys.argv[1:])
