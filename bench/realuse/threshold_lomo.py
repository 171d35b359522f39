"""The corrections' threshold chosen leaving one model out, from the
reports of ``evaluate.py`` (their ``miou_corrected_at``: the corrected
labels' mIoU at each ``correct_min_probability``).

For each held-out model, the threshold is chosen on the other models'
cells by two rules: the best worst gain (mIoU points over the labels)
and the smallest largest regret (each cell's loss against its own best
threshold). Prints each cell's points and each held-out model's picks::

    python bench/realuse/threshold_lomo.py bench/results/reports-s10 \\
        bench/results/reports-s10-runs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

Gains = dict[float, float]


def read_gains(folders: list[Path]) -> dict[str, tuple[str, Gains]]:
    """``{cell: (model, {threshold: points over the labels})}``."""
    cells = {}
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            fixer = json.loads(path.read_text())["fixer"]
            base = fixer["miou_labels"]
            gains = {
                float(t): 100 * (v - base)
                for t, v in fixer["miou_corrected_at"].items()
            }
            cells[path.stem] = (path.stem.split("-rw-")[0], gains)
    return cells


def picks(cells: dict[str, tuple[str, Gains]], held: str) -> dict:
    """The thresholds the other models' cells pick, by each rule."""
    others = [g for model, g in cells.values() if model != held]
    thresholds = sorted(others[0])

    def worst_gain(t: float) -> float:
        return min(g[t] for g in others)

    def largest_regret(t: float) -> float:
        return max(max(g.values()) - g[t] for g in others)

    return {
        "best worst gain": max(thresholds, key=worst_gain),
        # ties go to the higher threshold: fewer corrections
        "smallest largest regret": min(
            thresholds, key=lambda t: (largest_regret(t), -t)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+")
    cells = read_gains(parser.parse_args().folders)
    for name, (_, gains) in sorted(cells.items()):
        points = " ".join(f"{t:.1f}: {v:+.2f}" for t, v in gains.items())
        print(f"{name:30s} {points}")
    for held in sorted({model for model, _ in cells.values()}):
        chosen = picks(cells, held)
        own = {
            name: gains
            for name, (model, gains) in cells.items()
            if model == held
        }
        print(f"{held} held out:")
        for rule, t in chosen.items():
            held_points = ", ".join(f"{g[t]:+.2f}" for g in own.values())
            print(f"  {rule}: {t} (its own cells there: {held_points})")


if __name__ == "__main__":
    main()
