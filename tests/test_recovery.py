"""The recovery stage: the recovery.json of several runs gathered into one table, per K."""

import json

from lpa import recovery


def test_the_recovery_table_gathers_runs_per_k(tmp_path):
    metrics = {
        "ground_truth": True,
        "K": 16,
        "part_images": {"histogram": {"mean": 0.9}, "presence": {"mean": 0.8}},
        "part_positions": {"mean": 0.95},
        "class_sharing": {"histogram": {"cosine": 0.7, "jaccard": 0.75}},
        "look_sharing": {"histogram": {"cosine": 0.99, "jaccard": 0.98}},
    }
    paths = []
    for name, shift, k in (("seed0_K16", 0.0, 16), ("seed1_K16", 0.02, 16), ("seed0_K64", 0.1, 64)):
        bumped = json.loads(json.dumps(metrics))
        bumped["part_positions"]["mean"] += shift
        bumped["K"] = k
        paths.append((name, tmp_path / f"{name}.json"))
        paths[-1][1].write_text(json.dumps(bumped))
    recovery.main([f"--recovery={n}={p}" for n, p in paths]
                  + ["--out-csv", str(tmp_path / "r.csv"), "--out-md", str(tmp_path / "r.md")])  # fmt: skip
    text = (tmp_path / "r.md").read_text()
    assert "| 16 | part (positions) | cosine | - | 0.960 ± 0.014 | 2 |" in text
    assert "| 64 | part (positions) | cosine | - | 1.050 | 1 |" in text  # K 64 is not averaged with K 16
    assert "| 16 | class sharing (part) | histogram | jaccard | 0.750 ± 0.000 | 2 |" in text
    assert "| 16 | class sharing (look) | histogram | cosine | 0.990 ± 0.000 | 2 |" in text
