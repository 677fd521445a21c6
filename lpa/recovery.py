"""The recovery table: the recovery metrics of several attributes runs (seeds) as mean and std, per K.

Each run's ``recovery.json`` holds the figures :mod:`lpa.metrics.recovery` defines: part recovery,
the class-sharing AUC (pairs that share a part) and, for a source whose classes share a global
look, the look-sharing AUC (pairs that share the look).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import pandas as pd

from lpa.io.cli import name_path_pairs, run_main, setup_logging
from lpa.io.files import read_json, write_text

log = logging.getLogger("lpa.recovery")


def recovery_rows(name: str, metrics: dict) -> list[dict]:
    """The figures of one recovery.json as rows (run, K, metric, reading, similarity, auc)."""
    if not metrics.get("ground_truth"):
        return []
    k = metrics.get("K", "")
    rows = [{"metric": "part (images)", "reading": r, "similarity": "", "auc": m["mean"]}
            for r, m in metrics["part_images"].items()]  # fmt: skip
    rows.append({"metric": "part (positions)", "reading": "cosine", "similarity": "",
                 "auc": metrics["part_positions"]["mean"]})  # fmt: skip
    for key, metric in (("class_sharing", "class sharing (part)"), ("look_sharing", "class sharing (look)")):
        rows += [{"metric": metric, "reading": r, "similarity": kind, "auc": auc}
                 for r, kinds in metrics.get(key, {}).items() for kind, auc in kinds.items()]  # fmt: skip
    return [{"run": name, "K": k, **row} for row in rows]


def recovery_table(runs: Sequence[tuple[str, dict]]) -> pd.DataFrame:
    """Mean and std over runs (seeds) of every recovery figure, with the run count."""
    frame = pd.DataFrame([row for name, metrics in runs for row in recovery_rows(name, metrics)])
    if frame.empty:
        raise ValueError("no recovery.json holds ground truth: the source knows no parts")
    grouped = frame.groupby(["K", "metric", "reading", "similarity"], sort=False)["auc"]
    return pd.concat([grouped.mean().rename("mean"), grouped.std(ddof=1).rename("std"),
                      grouped.size().rename("runs")], axis=1).reset_index()  # fmt: skip


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["| K | metric | reading | similarity | ROC AUC | runs |", "|---" * 6 + "|"]
    for _, r in table.iterrows():
        spread = f" ± {r['std']:.3f}" if r["runs"] > 1 else ""
        lines.append(f"| {r['K']} | {r['metric']} | {r['reading']} | {r['similarity'] or '-'} | "
                     f"{r['mean']:.3f}{spread} | {r['runs']} |")  # fmt: skip
    lines += ["", "ROC AUC: chance 0.5, perfect recovery 1.0 (lpa/metrics/recovery.py defines each figure). "
              "class sharing (part): pairs of classes that share a planted part against pairs that share "
              "none; (look): pairs that share the global look against the rest. A reading that finds the "
              "parts scores high on the first; one that finds the look, on the second."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Gather the recovery metrics of several runs into one table.")
    parser.add_argument("--recovery", action="append", required=True, metavar="NAME=PATH",
                        help="recovery.json of one attributes run (seed, K)")  # fmt: skip
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-md", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    runs = [(name, read_json(path)) for name, path in name_path_pairs(args.recovery, "--recovery")]
    table = recovery_table(runs)
    write_text(args.out_csv, table.to_csv(index=False, float_format="%.4f"))
    markdown = to_markdown(table)
    write_text(args.out_md, markdown)
    log.info("\n%s", markdown)


if __name__ == "__main__":
    run_main(main)
