"""Draws the benchmark plots of BENCHMARKS.md from the benchmarks' outputs.

* ``pr_camvid_<split>.png``: pixel precision-recall curves of FIXER and
  cleanlab from a CamVid known-error report (``bench/camvid/evaluate.py``);
* ``scale.png``: peak memory and scoring time against dataset size from
  the JSON lines of ``bench/bench_scoring.py`` and, when given, of
  ``bench/bench_vs_cleanlab_speed.py`` (its runs with one core each);
* ``recall_realuse_<split>.png``: share of the injected errors found
  after reviewing the N best patches, FIXER and cleanlab, on each model x
  injector cell of a folder of ``bench/realuse/evaluate.py`` reports
  (injector C's from ``bench/realuse/evaluate_runs.py``, same folder).

    python bench/plots.py \\
        --report bench/results/camvid-f4/runs/<tag>/report-val.json \\
        --scale bench/results/scale-ade.jsonl \\
        --speed bench/results/speed-camvid.jsonl \\
        --realuse bench/results/reports-s9b --out bench/plots
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"fixer": "tab:blue", "cleanlab": "tab:orange"}


def plot_pr(report: dict, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4))
    for method in ("fixer", "cleanlab"):
        result = report[method]
        curve = result["pr_curve"]
        ax.plot(
            curve["recall"],
            curve["precision"],
            color=COLORS[method],
            label=f"{method} (AUPRC {result['auprc']:.3f})",
        )
    chance = report["error_pixels"] / report["labelled_pixels"]
    ax.axhline(chance, color="grey", ls=":", label=f"chance {chance:.3f}")
    ax.set(
        xlabel="pixel recall",
        ylabel="pixel precision",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"CamVid known errors, {report['split']} split",
    )
    ax.legend()
    path = out / f"pr_camvid_{report['split']}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _lines(path: Path | None) -> list[dict]:
    if path is None:
        return []
    rows = [json.loads(x) for x in path.read_text().splitlines() if x]
    return [r for r in rows if "failed" not in r]


def plot_scale(scale: list[dict], speed: list[dict], out: Path) -> Path:
    fig, (mem, time) = plt.subplots(1, 2, figsize=(10, 4))
    for method in ("fixer", "cleanlab"):
        rows = sorted(
            (r for r in scale if r["method"] == method),
            key=lambda r: r["images"],
        )
        if not rows:
            continue
        x = [r["images"] for r in rows]
        style = dict(color=COLORS[method], marker="o")
        label = f"{method}, ADE-like 150 cls 256x256"
        mem.plot(
            x, [r["peak_rss_mb"] / 1024 for r in rows], label=label, **style
        )
        time.plot(x, [r["seconds"] for r in rows], label=label, **style)
    # like for like: the runs that gave each method one core
    same_cores = [r for r in speed if r.get("cores", 1) == 1]
    for method in ("fixer", "cleanlab"):
        rows = sorted(same_cores, key=lambda r: r["images"])
        if not rows:
            continue
        x = [r["images"] for r in rows]
        style = dict(color=COLORS[method], marker="s", ls="--")
        label = f"{method}, CamVid 11 cls 360x480, 1 core"
        mem.plot(
            x,
            [r[method]["peak_rss_mb"] / 1024 for r in rows],
            label=label,
            **style,
        )
        time.plot(
            x, [r[method]["seconds"] for r in rows], label=label, **style
        )
    mem.set(xlabel="images", ylabel="peak RSS (GiB)", title="Peak memory")
    time.set(
        xlabel="images",
        ylabel="scoring time (s)",
        title="Scoring time (log-log: linear growth has slope 1)",
        yscale="log",
    )
    for ax in (mem, time):
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    path = out / "scale.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


REALUSE_MODELS = ("espnet", "unet-clean", "unet-cv")
REALUSE_INJECTORS = ("a", "b", "c")
# bench/realuse/evaluate.py counts the errors found every this many patches
CURVE_STEP = 50


def plot_realuse(folder: Path, out: Path, split: str = "val") -> Path:
    """Recall after N reviewed patches, one panel per model x injector."""
    fig, axes = plt.subplots(
        len(REALUSE_INJECTORS),
        len(REALUSE_MODELS),
        figsize=(12, 10),
        sharex=True,
        sharey=True,
    )
    for row, injector in enumerate(REALUSE_INJECTORS):
        for col, model in enumerate(REALUSE_MODELS):
            ax = axes[row, col]
            path = folder / f"{model}-rw-{injector}-noisy-{split}.json"
            ax.set_title(f"{model} x {injector.upper()}", fontsize=10)
            if not path.is_file():
                ax.text(
                    0.5, 0.5, "not run", ha="center", transform=ax.transAxes
                )
                continue
            report = json.loads(path.read_text())
            for method in ("fixer", "cleanlab"):
                result = report.get(method)
                if not result:
                    continue
                found = result["curve"]
                ax.plot(
                    [CURVE_STEP * k for k in range(len(found))],
                    [n / result["errors"] for n in found],
                    color=COLORS[method],
                    label=f"{method} (P@100 {result['precision@100']:.2f})",
                )
            ax.legend(fontsize=8, loc="lower right")
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("patches reviewed, best first")
    for ax in axes[:, 0]:
        ax.set_ylabel("injected errors found")
    fig.suptitle(f"Native-resolution cells, {split} split")
    path = out / f"recall_realuse_{split}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, action="append", default=[])
    parser.add_argument("--scale", type=Path)
    parser.add_argument("--speed", type=Path)
    parser.add_argument("--realuse", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/plots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for report in args.report:
        print(plot_pr(json.loads(report.read_text()), args.out))
    if args.scale or args.speed:
        print(plot_scale(_lines(args.scale), _lines(args.speed), args.out))
    if args.realuse:
        print(plot_realuse(args.realuse, args.out))


if __name__ == "__main__":
    main()
