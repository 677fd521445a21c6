"""Intervals over seeds, and the paired differences of two methods' summaries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from lpa.io.artifacts import GROUPS

COLUMNS = (*GROUPS, "all")  # a summary's top-1 columns


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t-interval of ``values`` (NaN bounds with fewer than two, NaN mean with none)."""
    n = len(values)
    mean = float(np.mean(values)) if n else np.nan
    if n < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half


def paired_differences(summaries: Sequence[tuple[str, dict]], pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """One row per (pair, column): the per-seed differences A - B, their mean and 95% t-interval.

    ``within_noise`` is true where the interval holds zero (undefined, NaN, with one seed).
    """
    by_method: dict[str, dict[int, dict]] = {}
    for name, summary in summaries:
        if "seed" not in summary:
            raise ValueError(f"the summary of {name} has no 'seed': rerun its evaluation to pair it")
        by_method.setdefault(name, {})[int(summary["seed"])] = summary
    rows = []
    for a, b in pairs:
        for name in (a, b):
            if name not in by_method:
                raise ValueError(f"--pair names {name!r}, which has no --summary")
        seeds = sorted(set(by_method[a]) & set(by_method[b]))
        for col in COLUMNS:
            diffs = [by_method[a][s][col] - by_method[b][s][col] for s in seeds
                     if by_method[a][s][col] is not None and by_method[b][s][col] is not None]  # fmt: skip
            mean, low, high = t_interval(diffs)
            rows.append({"comparison": f"{a} - {b}", "column": col, "seeds": len(diffs), "mean": mean,
                         "low": low, "high": high, "within_noise": bool(low <= 0 <= high),
                         "per_seed": " ".join(f"{d:+.2f}" for d in diffs)})  # fmt: skip
    return pd.DataFrame(rows)


def paired_markdown(paired: pd.DataFrame) -> str:
    """Comparison rows, a cell per column: mean difference [95% interval], * where it holds zero."""

    def cell(r: pd.Series) -> str:
        if pd.isna(r["mean"]):
            return "n/a"
        if pd.isna(r["low"]):
            return f"{r['mean']:+.1f} (1 seed)"
        return f"{r['mean']:+.1f} [{r['low']:+.1f}, {r['high']:+.1f}]" + ("*" if r["within_noise"] else "")

    lines = ["| comparison | " + " | ".join(COLUMNS) + " | seeds |", "|---" * (len(COLUMNS) + 2) + "|"]
    for comparison, rows in paired.groupby("comparison", sort=False):
        cells = rows.set_index("column").apply(cell, axis=1)
        lines.append(f"| {comparison} | " + " | ".join(cells[c] for c in COLUMNS) + f" | {rows['seeds'].max()} |")
    lines += ["", "Paired over seeds: mean of the per-seed differences (top-1 points) [95% t-interval]; "
              "* the interval holds zero (within noise)."]  # fmt: skip
    return "\n".join(lines) + "\n"
