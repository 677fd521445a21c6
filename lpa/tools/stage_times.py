"""Summarise the Snakemake ``benchmark:`` files of a dataset's run as a Markdown table of stage times.

    python -m lpa.tools.stage_times results/digits_lt

Each rule writes ``<results>/<dataset>/benchmarks/[seed<seed>/]<stage>/<job>.tsv``; the table gives,
per stage, the number of jobs, the median and total wall-clock seconds, and the peak memory.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def collect(root: str | Path) -> pd.DataFrame:
    """One row per job: ``stage``, ``job``, ``s`` (wall seconds), ``max_rss`` (MB)."""
    root = Path(root) / "benchmarks"
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        parts = path.relative_to(root).parts
        parts = parts[1:] if parts[0].startswith("seed") else parts
        stage = parts[0] if len(parts) > 1 else path.stem
        frame = pd.read_csv(path, sep="\t")
        rows.append({"stage": stage, "job": str(path.relative_to(root)), "s": frame["s"].iloc[-1],
                     "max_rss": frame["max_rss"].iloc[-1]})  # fmt: skip
    if not rows:
        raise FileNotFoundError(f"no benchmark files under {root}")
    return pd.DataFrame(rows)


def stage_table(jobs: pd.DataFrame) -> str:
    order = ["data", "baseline", "features", "kmeans", "attributes", "finetune", "evaluate", "tables", "ablation"]
    grouped = jobs.groupby("stage").agg(jobs=("s", "size"), median_s=("s", "median"), total_s=("s", "sum"),
                                        peak_rss_mb=("max_rss", "max"))  # fmt: skip
    grouped = grouped.reindex([s for s in order if s in grouped.index] + sorted(set(grouped.index) - set(order)))
    lines = ["| stage | jobs | median s/job | total s | peak RSS MB |", "|---|---|---|---|---|"]
    for stage, row in grouped.iterrows():
        cells = [stage, str(int(row["jobs"])), f"{row['median_s']:.1f}", f"{row['total_s']:.1f}"]
        lines.append("| " + " | ".join([*cells, f"{row['peak_rss_mb']:.0f}"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dir", help="results/<dataset>")
    args = parser.parse_args(argv)
    print(stage_table(collect(args.dataset_dir)), end="")


if __name__ == "__main__":
    main()
