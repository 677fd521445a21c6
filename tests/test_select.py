"""The selection on val: each family's pick, its independence from the test labels, the paired test rows."""

import json

import numpy as np
import pandas as pd
import pytest

from lpa.evaluate import per_class_accuracy, summarize
from lpa.select import main, select

RUNS = {  # run -> how often it predicts right on val (its quality)
    "K4_projection_cosine_alpha0.5_t0.1_e2_lr0.01": 0.55,
    "K4_pooled_multilabel_alpha0.5_t0.1_e2_lr0.01": 0.75,
    "K4_none_alpha0.0_e2_lr0.01": 0.6,
    "K4_projection_label_alpha0.5_t0.1_e2_lr0.01": 0.5,
    "K4_pooled_label_alpha0.5_t0.1_e2_lr0.01": 0.65,
}
COUNTS = pd.DataFrame(
    {"label": range(4), "train_count": [120, 50, 30, 5], "group": ["many", "medium", "medium", "few"]}
)


def summary(labels, predictions, seed):
    return {**summarize(per_class_accuracy(labels, predictions, COUNTS)), "seed": seed}


def summaries(seeds=(0, 1, 2), shuffle_test=False):
    """Every run's val and test summaries; ``shuffle_test``: the same predictions scored against
    the test labels in another order."""
    rng = np.random.default_rng(0)
    val_labels, test_labels = np.repeat(np.arange(4), 10), np.repeat(np.arange(4), 20)
    scored = np.random.default_rng(1).permutation(test_labels) if shuffle_test else test_labels
    val, test = [], []
    for s in seeds:
        for run, q in RUNS.items():
            for labels, truth, out in ((val_labels, val_labels, val), (test_labels, scored, test)):
                predictions = np.where(rng.random(len(labels)) < q, labels, (labels + 1) % 4)
                out.append((run, summary(truth, predictions, s)))
    return val, test


def test_each_family_picks_its_best_val_run_and_the_test_labels_never_choose():
    val, test = summaries()
    picks, paired = select(val, test)
    assert dict(zip(picks["family"], picks["run"])) == {
        "LPA": "K4_pooled_multilabel_alpha0.5_t0.1_e2_lr0.01",
        "label": "K4_pooled_label_alpha0.5_t0.1_e2_lr0.01",
        "alpha0": "K4_none_alpha0.0_e2_lr0.01",
    }
    assert picks["candidates"].tolist() == [2, 2, 1]
    assert set(paired["comparison"]) == {"LPA - label", "LPA - alpha0"}
    # the same val, the test labels shuffled: the test scores change, the picks do not
    same_val, shuffled_test = summaries(shuffle_test=True)
    assert same_val == val
    again, _ = select(val, shuffled_test)
    assert again["run"].tolist() == picks["run"].tolist()
    assert again["val"].tolist() == picks["val"].tolist()
    assert again["test_all"].tolist() != picks["test_all"].tolist()


def test_a_tie_goes_to_the_first_run_in_grid_order():
    one = {"balanced": 50.0, "seed": 0, **{c: 50.0 for c in ("many", "medium", "few", "all")}}
    runs = ["K4_projection_cosine_alpha0.5_t0.1_e2_lr0.01", "K4_pooled_cosine_alpha0.5_t0.1_e2_lr0.01"]
    picks, paired = select([(r, one) for r in runs], [(r, one) for r in reversed(runs)])
    assert picks["run"].tolist() == runs[:1] and paired.empty


def test_the_stage_writes_its_tables_and_names_a_missing_score(tmp_path):
    val, test = summaries(seeds=(0, 1))
    args = []
    for flag, rows in (("--val", val), ("--test", test)):
        for i, (run, s) in enumerate(rows):
            path = tmp_path / f"{flag[2:]}{i}.json"
            path.write_text(json.dumps(s))
            args += [flag, f"{run}={path}"]
    out = {k: str(tmp_path / f"selected.{k}") for k in ("csv", "md")}
    main([*args, "--out-csv", out["csv"], "--out-md", out["md"], "--out-paired-csv", str(tmp_path / "p.csv")])
    assert pd.read_csv(out["csv"])["family"].tolist() == ["LPA", "label", "alpha0"]
    assert "K4_pooled_multilabel_alpha0.5_t0.1_e2_lr0.01" in open(out["md"]).read()
    with pytest.raises(ValueError, match="without 'balanced'"):
        select([(r, {**s, "balanced": None}) for r, s in val], test)
