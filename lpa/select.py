"""Stage 8, selection: each method's setting chosen on the val split, and the chosen settings compared on test.

Each ``--val NAME=PATH`` and ``--test NAME=PATH`` adds one seed's val or test summary
(:mod:`lpa.evaluate`) of the fine-tuning run NAME (a run name of :mod:`lpa.planning.runs`).
The runs compete in families (:func:`lpa.planning.runs.run_family`): ``LPA`` (every target
from a(y), at every site, alpha, temperature, epochs and lr of the grid) and its two
controls, ``label`` (plain SupCon, on the same grid where a setting applies) and ``alpha0``
(no term: the extra epochs, over epochs and lr). In each family the pick is the run with the
highest mean balanced val top-1 over the seeds it ran (``balanced``: the mean per-class
top-1); a tie goes to the run listed first in the grid's order (the config's lists, so the
first-listed setting wins a tie). Only the val summaries choose: the test summaries are read
after the pick, to report it.

Writes the picks (``--out-csv``: family, run, val score and its std, candidates, test top-1 per
shot group), the paired test differences of picked LPA against each picked control per seed
with 95% t-intervals (``--out-paired-csv``), and both as Markdown (``--out-md``).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lpa.io.cli import name_path_pairs, run_main, setup_logging
from lpa.io.files import read_json, write_text
from lpa.metrics.stats import COLUMNS, paired_differences, paired_markdown
from lpa.planning.runs import run_family

log = logging.getLogger("lpa.select")

FAMILIES = ("LPA", "label", "alpha0")
SCORE = "balanced"  # mean per-class top-1 on val


def val_scores(val: Sequence[tuple[str, dict]]) -> pd.DataFrame:
    """One row per run, in the order runs first appear: family, mean and std of the val score, seeds."""
    frame = pd.DataFrame([{"run": name, "seed": int(s["seed"]), "score": s[SCORE]} for name, s in val])
    if frame["score"].isna().any():
        raise ValueError(f"val summaries without '{SCORE}': {sorted(frame.loc[frame['score'].isna(), 'run'])}")
    grouped = frame.groupby("run", sort=False)["score"]
    table = pd.DataFrame({"val": grouped.mean(), "val_std": grouped.std(ddof=1), "seeds": grouped.size()})
    table = table.reset_index()
    table.insert(0, "family", [run_family(r) for r in table["run"]])
    return table


def pick(scores: pd.DataFrame) -> pd.DataFrame:
    """Each family's run with the highest mean val score; a tie goes to the first in grid order."""
    rows = []
    for family in FAMILIES:
        members = scores[scores["family"] == family]
        if len(members):
            best = members.iloc[int(np.argmax(members["val"].to_numpy()))]  # argmax: the first of equals
            rows.append({**best.to_dict(), "candidates": len(members)})
    return pd.DataFrame(rows)


def test_scores(picks: pd.DataFrame, test: Sequence[tuple[str, dict]]) -> pd.DataFrame:
    """The picks with their mean test top-1 per shot group over the seeds."""
    frame = pd.DataFrame([{"run": name, **{c: s[c] for c in COLUMNS}} for name, s in test])
    means = frame.groupby("run", sort=False)[list(COLUMNS)].mean()
    missing = sorted(set(picks["run"]) - set(means.index))
    if missing:
        raise ValueError(f"picked runs without a --test summary: {missing}")
    return picks.join(means.add_prefix("test_"), on="run")


def select(val: Sequence[tuple[str, dict]], test: Sequence[tuple[str, dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The picks with their test scores, and the paired test differences of picked LPA against the picked controls."""
    picks = test_scores(pick(val_scores(val)), test)
    chosen = dict(zip(picks["family"], picks["run"]))
    pairs = [("LPA", control) for control in ("label", "alpha0") if "LPA" in chosen and control in chosen]
    by_family = [(family, s) for family, run in chosen.items() for name, s in test if name == run]
    return picks, paired_differences(by_family, pairs) if pairs else pd.DataFrame()


def to_markdown(picks: pd.DataFrame, paired: pd.DataFrame) -> str:
    lines = ["| family | picked run | val balanced top-1 | candidates | test: " + " | ".join(COLUMNS) + " |",
             "|---" * (4 + len(COLUMNS)) + "|"]  # fmt: skip
    for _, r in picks.iterrows():
        std = "" if pd.isna(r["val_std"]) else f" ± {r['val_std']:.1f}"
        tests = " | ".join("n/a" if pd.isna(r[f"test_{c}"]) else f"{r[f'test_{c}']:.1f}" for c in COLUMNS)
        lines.append(f"| {r['family']} | `{r['run']}` | {r['val']:.1f}{std} ({r['seeds']} seeds) | "
                     f"{r['candidates']} | {tests} |")  # fmt: skip
    lines += ["", "Each family's setting is the one with the best mean balanced val top-1 (ties: the first in "
              "grid order); the test columns are the picked run's mean test top-1 %."]  # fmt: skip
    if len(paired):
        lines += ["", "Picked LPA against each picked control, on test:", "", paired_markdown(paired)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--val", action="append", default=[], metavar="RUN=PATH", required=True)
    parser.add_argument("--test", action="append", default=[], metavar="RUN=PATH", required=True)
    parser.add_argument("--out-csv", required=True)
    parser.add_argument("--out-paired-csv", required=True)
    parser.add_argument("--out-md", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    val = [(name, read_json(path)) for name, path in name_path_pairs(args.val, "--val")]
    test = [(name, read_json(path)) for name, path in name_path_pairs(args.test, "--test")]
    picks, paired = select(val, test)
    markdown = to_markdown(picks, paired)
    write_text(args.out_csv, picks.to_csv(index=False, float_format="%.3f"))
    write_text(args.out_paired_csv, paired.to_csv(index=False, float_format="%.3f"))
    write_text(args.out_md, markdown)
    log.info("\n%s", markdown)


if __name__ == "__main__":
    run_main(main)
