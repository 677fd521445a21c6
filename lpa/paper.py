"""The paper's tables: our measured numbers beside the ones Kim, Ke and Yu (NeurIPS 2022) report.

    python -m lpa.paper --table table1 --result PaCo 100 results/.../summary.json ... --out-md t.md --out-csv t.csv

Each ``--result METHOD COLUMN PATH`` is one evaluation (one seed) of METHOD for one column of
the table (an imbalance factor for Table 1, ``all`` for Table 2, ignored for Table 3, whose
columns are the shot groups). Cells with no result read "not run", shot groups without a class
"n/a"; several seeds give mean ± std. A last row gives LPA - PaCo of ours, paired by seed:
the mean difference, its 95% t-interval, and "within noise" where the interval holds zero.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lpa.io.cli import run_main, setup_logging
from lpa.io.files import read_json, write_text
from lpa.metrics.stats import t_interval

log = logging.getLogger("lpa.paper")

# Top-1 % as printed in the LPA paper (None: not quoted here; see the paper).
TABLES = {
    "table1": {
        "title": "Table 1: CIFAR100-LT, ResNet-32, top-1 % by imbalance factor",
        "columns": ["100", "50", "10"],
        "metric": "all",
        "reported": {"PaCo": {"100": 52.0, "50": 56.0, "10": 64.2}, "LPA": {"100": 53.3, "50": 57.1, "10": 65.1}},
    },
    "table2": {
        "title": "Table 2: iNaturalist 2018, ResNet-50, top-1 % (the official val set serves as test set)",
        "columns": ["all"],
        "metric": "all",
        "reported": {"PaCo": {"all": None}, "LPA": {"all": 73.6}},
    },
    "table3": {
        "title": "Table 3: ImageNet-LT, ResNeXt-50, top-1 %",
        "columns": ["many", "medium", "few", "all"],
        "metric": None,  # the columns are the shot groups themselves
        "reported": {
            "PaCo": {"many": None, "medium": None, "few": None, "all": None},
            "LPA": {"many": 66.7, "medium": 55.4, "few": 39.0, "all": 57.5},
        },
    },
}
METHODS = ("PaCo", "LPA")


def _cell(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"


def build(table: str, results: Sequence[tuple[str, str, dict]]) -> pd.DataFrame:
    """Rows ``METHOD (paper)`` and ``METHOD (ours)``; one column per table column; strings for display."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; choose one of {sorted(TABLES)}")
    spec = TABLES[table]
    measured: dict[tuple[str, str], list[float]] = {}
    by_seed: dict[tuple[str, str], dict[int, float]] = {}  # (method, column) -> seed -> value
    for method, column, summary in results:
        if method not in METHODS:
            raise ValueError(f"method {method!r} is not in the paper's tables; choose one of {METHODS}")
        columns = spec["columns"] if spec["metric"] is None else [column]
        for col in columns:
            if col not in spec["columns"]:
                raise ValueError(f"{table} has columns {spec['columns']}, not {col!r}")
            value = summary[spec["metric"] or col]
            # None: the run has no class in that shot group
            measured.setdefault((method, col), []).extend([] if value is None else [float(value)])
            if value is not None and "seed" in summary:
                by_seed.setdefault((method, col), {})[int(summary["seed"])] = float(value)
    rows = []
    for method in METHODS:
        reported = spec["reported"][method]
        rows.append({"method": f"{method} (paper)", **{c: "—" if reported[c] is None else f"{reported[c]:.1f}"
                                                       for c in spec["columns"]}})  # fmt: skip
        ours = {c: _cell(measured[method, c]) if (method, c) in measured else "not run" for c in spec["columns"]}
        rows.append({"method": f"{method} (ours)", **ours})
    rows.append({"method": "LPA - PaCo (ours, paired)", **{c: _paired_cell(by_seed, c) for c in spec["columns"]}})
    return pd.DataFrame(rows)


def _paired_cell(by_seed: dict[tuple[str, str], dict[int, float]], column: str) -> str:
    lpa, paco = by_seed.get(("LPA", column), {}), by_seed.get(("PaCo", column), {})
    diffs = [lpa[s] - paco[s] for s in sorted(set(lpa) & set(paco))]
    if not diffs:
        return "not run"
    mean, low, high = t_interval(diffs)
    if len(diffs) < 2:
        return f"{mean:+.1f} (1 seed)"
    verdict = " within noise" if low <= 0 <= high else ""
    return f"{mean:+.1f} [{low:+.1f}, {high:+.1f}]{verdict}"


def to_markdown(table: str, frame: pd.DataFrame, notes: Sequence[str] = ()) -> str:
    columns = list(frame.columns)
    lines = [f"**{TABLES[table]['title']}**", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for _, row in frame.iterrows()]
    lines += [
        "",
        "— : not quoted here (see the paper). not run: no result of ours yet. n/a: no class in that group.",
        "LPA - PaCo: per-seed differences of ours, mean [95% t-interval]; within noise: the interval holds 0.",
    ]
    lines += [f"Note: {n}" for n in notes if n]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, choices=sorted(TABLES))
    parser.add_argument("--result", nargs=3, action="append", default=[], metavar=("METHOD", "COLUMN", "PATH"))
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--out-md", required=True)
    parser.add_argument("--out-csv", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    frame = build(args.table, [(m, c, read_json(p)) for m, c, p in args.result])
    write_text(args.out_csv, frame.to_csv(index=False))
    write_text(args.out_md, to_markdown(args.table, frame, args.note))
    log.info("\n%s", to_markdown(args.table, frame, args.note))


if __name__ == "__main__":
    run_main(main)
