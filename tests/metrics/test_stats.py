"""Intervals over seeds and the paired differences of two methods."""

import pytest

from lpa.metrics.stats import paired_differences, paired_markdown


def summary(many, medium, few, all_):
    return {"many": many, "medium": medium, "few": few, "all": all_}


def seeded(seed, many, medium, few, all_):
    return {**summary(many, medium, few, all_), "seed": seed}


def test_paired_differences_pair_by_seed_with_a_t_interval():
    paco = [seeded(1, 80, 60, 30, 50), seeded(0, 70, 60, 30, 40), seeded(2, 90, 60, 30, 60)]
    lpa = [seeded(0, 80, 61, 40, 41), seeded(1, 91, 59, 30, 52), seeded(2, 102, 60, 20, 63)]
    rows = [("PaCo", x) for x in paco] + [("LPA", x) for x in lpa]
    paired = paired_differences(rows, [("LPA", "PaCo")]).set_index("column")
    # all: differences +1, +2, +3 (seeds 0, 1, 2 paired whatever the order): mean 2, sd 1, t(0.975, 2) = 4.303
    assert paired.loc["all", "per_seed"] == "+1.00 +2.00 +3.00"
    assert paired.loc["all", "mean"] == pytest.approx(2.0)
    assert paired.loc["all", "low"] == pytest.approx(2.0 - 4.3027 / 3**0.5, abs=1e-3)
    assert paired.loc["all", "within_noise"]  # [-0.5, +4.5]: three seeds cannot tell +2 from noise
    assert paired.loc["many", "mean"] == pytest.approx(11.0) and not paired.loc["many", "within_noise"]
    assert paired.loc["few", "within_noise"] and paired.loc["few", "mean"] == pytest.approx(0.0)
    md = paired_markdown(paired_differences(rows, [("LPA", "PaCo")]))
    assert "| LPA - PaCo |" in md and "+2.0 [-0.5, +4.5]*" in md and "| 3 |" in md
    with pytest.raises(ValueError, match="no 'seed'"):
        paired_differences([("PaCo", summary(1, 1, 1, 1))], [("PaCo", "PaCo")])
    with pytest.raises(ValueError, match="'CE', which has no --summary"):
        paired_differences(rows, [("CE", "PaCo")])
