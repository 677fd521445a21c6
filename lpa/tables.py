"""Stage 8, tables: accuracy per method (mean and std over seeds) as CSV and Markdown, and a plot.

Each ``--summary NAME=PATH`` adds one evaluation of method NAME (once per seed); rows keep the
order in which methods first appear. ``--pair A=B`` adds the paired difference A - B: per
seed, then its mean and 95% t-interval over the seeds both methods ran (the seed is read from
each summary). ``--per-class NAME=PATH`` feeds the plot of per-class accuracy against
training count.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import pandas as pd

from lpa.io.artifacts import GROUPS, read_class_attributes, read_class_counts
from lpa.io.cli import name_path_pairs, run_main, setup_logging
from lpa.io.files import read_json, write_text
from lpa.io.plots import pyplot, save_figure
from lpa.metrics.stats import COLUMNS, paired_differences, paired_markdown
from lpa.targets.weights import diagnostic_summary

log = logging.getLogger("lpa.tables")



def accuracy_table(summaries: Sequence[tuple[str, dict]]) -> pd.DataFrame:
    """One row per method: ``method``, many, medium, few, all (mean top-1 %), ``seeds``, ``stalled_seeds``
    (how many of its runs :mod:`lpa.training.monitor` flagged as not learning) and ``<col>_std``."""
    frame = pd.DataFrame([{"method": name, **{c: s[c] for c in COLUMNS}, "stalled": bool(s.get("stalled"))}
                          for name, s in summaries])  # fmt: skip
    frame[list(COLUMNS)] = frame[list(COLUMNS)].astype(float)
    grouped = frame.groupby("method", sort=False)
    table = grouped[list(COLUMNS)].mean()
    table["seeds"] = grouped.size()
    table["stalled_seeds"] = grouped["stalled"].sum()  # runs flagged by lpa.training.monitor: near chance in training
    std = grouped[list(COLUMNS)].std(ddof=1).add_suffix("_std")
    return pd.concat([table, std], axis=1).reset_index()


def weights_markdown(diagnostics: Sequence[tuple[str, dict]]) -> str:
    """Positive-weight diagnostics (:func:`lpa.targets.weights.diagnostic_summary`), mean over runs of a K.

    One row per (K, target, shot group): the share of an anchor's SupCon positive weight on its
    own class, the effective number of positives out of the 2B - 1 other rows, and the entropy
    of its target (nats) against a uniform one's.
    """
    rows = []
    for name, diag in diagnostics:
        for kind, groups in diag["similarities"].items():
            for group, values in groups.items():
                rows.append({"K": name, "similarity": kind, "group": group, "rows": diag["rows"], **values})
    frame = pd.DataFrame(rows)
    frame["order"] = frame["group"].map({g: i for i, g in enumerate(GROUPS)})
    frame = frame.sort_values("order", kind="stable").groupby(["K", "similarity", "group"], sort=False)
    frame = frame[["rows", "other_share", "effective_positives", "entropy", "uniform_entropy"]].mean()
    lines = ["| K | target | group | weight on own class | effective positives (of rows) | entropy (uniform) |",
             "|---" * 6 + "|"]  # fmt: skip
    for (k, kind, group), row in frame.iterrows():
        lines.append(f"| {k} | {kind} | {group} | {100 * (1 - row['other_share']):.1f}% | "
                     f"{row['effective_positives']:.1f} (of {row['rows']:.0f}) | "
                     f"{row['entropy']:.3f} ({row['uniform_entropy']:.3f}) |")  # fmt: skip
    return "\n".join(lines) + "\n"


def to_markdown(table: pd.DataFrame) -> str:
    def cell(row: pd.Series, col: str) -> str:
        mean, std = row[col], row[f"{col}_std"]
        if pd.isna(mean):
            return "n/a"
        return f"{mean:.1f} ± {std:.1f}" if row["seeds"] > 1 else f"{mean:.1f}"

    def method(row: pd.Series) -> str:
        stalled = row.get("stalled_seeds", 0)
        return f"{row['method']} (STALLED: {stalled} of {row['seeds']} runs)" if stalled else row["method"]

    lines = ["| method | " + " | ".join(COLUMNS) + " | seeds |", "|---" * (len(COLUMNS) + 2) + "|"]
    for _, row in table.iterrows():
        lines.append(f"| {method(row)} | " + " | ".join(cell(row, c) for c in COLUMNS) + f" | {row['seeds']} |")
    if table.get("stalled_seeds", pd.Series(dtype=int)).any():
        lines += ["", "STALLED: the run's balanced training top-1 stayed near chance while its loss fell "
                  "(lpa.training.monitor; `stalled` in its metrics.jsonl): its numbers do not measure the method. "
                  "See docs/diagnostics.md, 'The stall warning'."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_per_class(per_class: Sequence[tuple[str, pd.DataFrame]], path: str) -> None:
    """Per-class top-1 against training count (log scale), one series per method (mean over seeds)."""
    fig, ax = pyplot().subplots(figsize=(6.4, 4.0), dpi=120)
    methods = list(dict.fromkeys(name for name, _ in per_class))
    for name in methods:
        frames = [f for n, f in per_class if n == name]
        mean = pd.concat(frames).groupby("label").agg(train_count=("train_count", "first"), top1=("top1", "mean"))
        mean = mean.sort_values("train_count")
        ax.plot(mean["train_count"], mean["top1"], marker="o", markersize=3, linewidth=1, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("training images of the class (log scale)")
    ax.set_ylabel("test top-1 accuracy (%)")
    ax.set_title("Per-class accuracy against class frequency")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--summary", action="append", default=[], metavar="NAME=PATH", required=True)
    parser.add_argument("--per-class", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--pair", action="append", default=[], metavar="A=B", help="report the paired A - B")
    parser.add_argument("--out-paired-csv", help="the --pair differences as CSV")
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="K=PATH",
        help="class_attributes.parquet of an attributes run: adds its positive-weight diagnostic",
    )
    parser.add_argument("--counts", help="class_counts.csv (with --weights)")
    parser.add_argument("--batch-size", type=int, help="fine-tuning batch (with --weights)")
    parser.add_argument("--similarity", nargs="+", default=["label"], help="similarities to diagnose (with --weights)")
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-md", required=True)
    parser.add_argument("--out-plot")
    args = parser.parse_args(argv)
    setup_logging()
    summaries = [(name, read_json(path)) for name, path in name_path_pairs(args.summary, "--summary")]
    table = accuracy_table(summaries)
    markdown = to_markdown(table)
    if args.pair:
        paired = paired_differences(summaries, name_path_pairs(args.pair, "--pair"))
        markdown += "\n" + paired_markdown(paired)
        if args.out_paired_csv:
            write_text(args.out_paired_csv, paired.to_csv(index=False, float_format="%.3f"))
    if args.weights:
        if not args.counts or not args.batch_size:
            raise ValueError("--weights needs --counts and --batch-size")
        counts = read_class_counts(args.counts)
        kinds = list(dict.fromkeys(["label", *args.similarity]))  # label: plain SupCon, the reference
        diagnostics = []
        for name, path in name_path_pairs(args.weights, "--weights"):
            unit = read_class_attributes(path, len(counts), unit=True) if "image_cosine" in kinds else None
            attributes = read_class_attributes(path, len(counts))
            diagnostics.append((name, diagnostic_summary(attributes, counts, args.batch_size, kinds, unit)))
        markdown += f"\nPositive weights of the SupCon term at batch {args.batch_size} (expected per anchor class; "
        markdown += "mean over the group and the seeds):\n\n" + weights_markdown(diagnostics)
    write_text(args.out_csv, table.to_csv(index=False, float_format="%.2f"))
    write_text(args.out_md, markdown)
    if args.out_plot:
        per_class = [(name, pd.read_csv(path)) for name, path in name_path_pairs(args.per_class, "--per-class")]
        if not per_class:
            raise ValueError("--out-plot needs at least one --per-class NAME=PATH")
        plot_per_class(per_class, args.out_plot)
    log.info("\n%s", markdown)


if __name__ == "__main__":
    run_main(main)
