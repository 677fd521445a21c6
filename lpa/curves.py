"""Training curves of one run, from its ``metrics.jsonl``: each loss term, train top-1 and lr per epoch.

python -m lpa.curves --metrics results/.../metrics.jsonl --title "PaCo, seed 0" --out curves.png
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lpa.io.cli import run_main, setup_logging
from lpa.io.plots import pyplot, save_figure

log = logging.getLogger("lpa.curves")

LOSS_TERMS = ("loss", "ce", "paco", "supcon")  # as lpa.train reports them


def read_metrics(path: str | Path) -> pd.DataFrame:
    """One row per epoch; an error names the file when it holds no epoch."""
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path} holds no epoch")
    return pd.DataFrame([json.loads(line) for line in lines])


def plot_curves(metrics: pd.DataFrame, title: str, path: str | Path) -> None:
    fig, (losses, top1, lr) = pyplot().subplots(1, 3, figsize=(12, 3.4), dpi=110)
    for term in LOSS_TERMS:
        if term in metrics and metrics[term].notna().any():
            losses.plot(metrics["epoch"], metrics[term], label=term, linewidth=1.2 if term == "loss" else 1)
    losses.set_title("loss terms (mean per epoch)")
    losses.legend()
    top1.plot(metrics["epoch"], metrics["train_top1"], color="tab:green", label="raw argmax (as PaCo logs it)")
    if "train_balanced_top1" in metrics:  # older runs lack it
        top1.plot(metrics["epoch"], metrics["train_balanced_top1"], color="tab:blue", label="balanced (mean per class)")
    top1.set_title("train top-1 % (query view)")
    top1.legend(fontsize="small")
    if "stalled" in metrics and bool(metrics["stalled"].iloc[-1]):
        title += "  -  STALLED: near chance while the loss falls (lpa.training.monitor)"
    lr.plot(metrics["epoch"], metrics["lr"], color="tab:purple")
    lr.set_title("learning rate")
    for ax in (losses, top1, lr):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", required=True, help="metrics.jsonl of a training run")
    parser.add_argument("--title", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    metrics = read_metrics(args.metrics)
    plot_curves(metrics, args.title or str(args.metrics), args.out)
    log.info("%d epochs plotted to %s", len(metrics), args.out)


if __name__ == "__main__":
    run_main(main)
