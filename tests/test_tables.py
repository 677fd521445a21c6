import json

import pandas as pd
import pytest

from lpa import tables
from lpa.evaluate import per_class_accuracy, summarize


def summary(many, medium, few, all_):
    return {"many": many, "medium": medium, "few": few, "all": all_}


def test_accuracy_table_means_and_stds_over_seeds():
    rows = [("CE", summary(90, 50, 10, 50)), ("PaCo", summary(80, 60, 30, 57)), ("CE", summary(80, 40, 20, 46))]
    table = tables.accuracy_table(rows)
    assert list(table.columns[:5]) == ["method", "many", "medium", "few", "all"]
    assert table["method"].tolist() == ["CE", "PaCo"]
    ce = table.iloc[0]
    assert (ce["many"], ce["few"], ce["seeds"]) == (85, 15, 2)
    assert ce["many_std"] == pytest.approx(7.0711, abs=1e-4)
    md = tables.to_markdown(table)
    assert "| CE | 85.0 ± 7.1 | 45.0 ± 7.1 | 15.0 ± 7.1 | 48.0 ± 2.8 | 2 |" in md
    assert "| PaCo | 80.0 | 60.0 | 30.0 | 57.0 | 1 |" in md


def test_a_stalled_run_is_marked_not_tabled_silently():
    rows = [("CE", summary(90, 50, 10, 50)), ("PaCo", {**summary(5, 5, 5, 5), "stalled": True}),
            ("PaCo", {**summary(80, 60, 30, 57), "stalled": False})]  # fmt: skip
    table = tables.accuracy_table(rows)
    assert table.set_index("method")["stalled_seeds"].to_dict() == {"CE": 0, "PaCo": 1}
    md = tables.to_markdown(table)
    assert "| PaCo (STALLED: 1 of 2 runs) |" in md and "| CE |" in md
    assert "do not measure the method" in md
    assert "STALLED" not in tables.to_markdown(tables.accuracy_table(rows[:1]))


def test_group_accuracy_counts_test_images_per_group():
    counts = pd.DataFrame({"label": [0, 1, 2], "train_count": [200, 50, 5], "group": ["many", "medium", "few"]})
    labels = pd.Series([0, 0, 1, 1, 2, 2]).to_numpy()
    predictions = pd.Series([0, 0, 1, 0, 0, 0]).to_numpy()
    per_class = per_class_accuracy(labels, predictions, counts)
    assert per_class["top1"].tolist() == [100.0, 50.0, 0.0]
    result = summarize(per_class)
    assert (result["many"], result["medium"], result["few"]) == (100.0, 50.0, 0.0)
    assert result["all"] == pytest.approx(50.0)


def test_empty_group_is_none():
    counts = pd.DataFrame({"label": [0, 1], "train_count": [200, 50], "group": ["many", "medium"]})
    result = summarize(per_class_accuracy(pd.Series([0, 1]).to_numpy(), pd.Series([0, 1]).to_numpy(), counts))
    assert result["few"] is None and result["few_classes"] == 0


def test_main_writes_csv_markdown_and_plot(tmp_path):
    per_class = pd.DataFrame(
        {"label": [0, 1], "train_count": [100, 10], "group": ["medium", "few"], "test_images": [5, 5],
         "correct": [5, 1], "top1": [100.0, 20.0]}
    )  # fmt: skip
    per_class.to_csv(tmp_path / "pc.csv", index=False)
    (tmp_path / "s.json").write_text(json.dumps(summary(None, 100.0, 20.0, 60.0)))
    args = []
    for name in ("CE", "PaCo", "LPA"):
        args += ["--summary", f"{name}={tmp_path / 's.json'}", "--per-class", f"{name}={tmp_path / 'pc.csv'}"]
    out = tmp_path / "t"
    tables.main(args + ["--out-csv", f"{out}.csv", "--out-md", f"{out}.md", "--out-plot", f"{out}.png"])
    frame = pd.read_csv(f"{out}.csv")
    assert frame["method"].tolist() == ["CE", "PaCo", "LPA"]
    assert frame["many"].isna().all() and (frame["all"] == 60.0).all()
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="NAME=PATH"):
        tables.main(["--summary", "CE", "--out-csv", f"{out}.csv", "--out-md", f"{out}.md"])


def test_benchmark_summary_groups_jobs_by_stage(tmp_path):
    from lpa.tools.stage_times import collect, stage_table

    header = "s\th:m:s\tmax_rss\n"
    for rel, seconds in [("data.tsv", 2.0), ("seed0/baseline/ce.tsv", 10.0), ("seed1/baseline/ce.tsv", 30.0)]:
        path = tmp_path / "benchmarks" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{seconds}\t0:00:10\t100.0\n")
    jobs = collect(tmp_path)
    assert sorted(jobs["stage"]) == ["baseline", "baseline", "data"]
    table = stage_table(jobs)
    assert "| data | 1 | 2.0 | 2.0 | 100 |" in table and "| baseline | 2 | 20.0 | 40.0 | 100 |" in table
