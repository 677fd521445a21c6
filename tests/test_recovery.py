"""The recovery stage: the recovery.json of several runs gathered into one table."""

import json

from lpa import recovery


def test_the_recovery_table_gathers_runs(tmp_path):
    metrics = {
        "ground_truth": True,
        "part_images": {"histogram": {"mean": 0.9}, "presence": {"mean": 0.8}},
        "part_positions": {"mean": 0.95},
        "class_sharing": {"histogram": {"cosine": 0.7, "jaccard": 0.75}},
    }
    paths = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        bumped = json.loads(json.dumps(metrics))
        bumped["part_positions"]["mean"] += shift
        paths.append(tmp_path / f"seed{seed}.json")
        paths[-1].write_text(json.dumps(bumped))
    recovery.main([f"--recovery=seed{i}={p}" for i, p in enumerate(paths)]
                  + ["--out-csv", str(tmp_path / "r.csv"), "--out-md", str(tmp_path / "r.md")])  # fmt: skip
    text = (tmp_path / "r.md").read_text()
    assert "| part (positions) | cosine | - | 0.960 ± 0.014 | 2 |" in text
    assert "| class sharing | histogram | jaccard | 0.750 ± 0.000 | 2 |" in text
