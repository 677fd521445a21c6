"""Run names, controls and the patterns of the workflow's wildcards, without Snakemake."""

import re

import pytest

from lpa.planning.runs import MODEL_PATTERN, lpa_controls, lpa_run, lpa_runs
from lpa.targets.kinds import RUN_SIMILARITY_PATTERN, reading_and_similarity


def grid(**finetune):
    ft = {"reading": ["histogram"], "similarity": ["cosine", "label"], "alpha": [0.5], "epochs": [20], "lr": [0.01]}
    return {"kmeans": {"K": [16]}, "finetune": {**ft, **finetune}}


def test_a_run_is_named_by_its_settings_as_python_prints_them():
    assert lpa_run(16, "histogram", "cosine", 0.5, 20, 0.01) == "K16_cosine_alpha0.5_e20_lr0.01"
    assert lpa_run(8, "presence", "jaccard", 1.0, 5, 1e-05) == "K8_presence-jaccard_alpha1.0_e5_lr1e-05"
    # label reads no attributes, so no reading prefix; alpha 0 has no SupCon term at all
    assert lpa_run(8, "presence", "label", 0.5, 5, 0.1) == "K8_label_alpha0.5_e5_lr0.1"
    assert lpa_run(8, "presence", "jaccard", 0.0, 5, 0.1) == "K8_none_alpha0.0_e5_lr0.1"


def test_the_grid_keeps_its_order_and_runs_alpha_zero_once():
    runs = lpa_runs(grid(alpha=[0.5, 0.0], reading=["histogram", "maxcos"]))
    assert runs == [
        "K16_cosine_alpha0.5_e20_lr0.01",
        "K16_none_alpha0.0_e20_lr0.01",
        "K16_label_alpha0.5_e20_lr0.01",
        "K16_maxcos-cosine_alpha0.5_e20_lr0.01",
    ]


def test_controls_share_the_schedule_and_exist_in_the_grid():
    runs = lpa_runs(grid(alpha=[0.5, 0.0]))
    assert lpa_controls("K16_cosine_alpha0.5_e20_lr0.01", runs) == [
        "K16_none_alpha0.0_e20_lr0.01",
        "K16_label_alpha0.5_e20_lr0.01",
    ]
    assert lpa_controls("K16_label_alpha0.5_e20_lr0.01", runs) == []  # a control has no controls
    assert lpa_controls("K16_cosine_alpha0.5_e20_lr0.01", lpa_runs(grid(similarity=["cosine"]))) == []


@pytest.mark.parametrize("reading", ["histogram", "maxcos", "softmax", "presence"])
@pytest.mark.parametrize("similarity", ["cosine", "cosine_pow4", "top3", "dominant", "jaccard", "label"])
def test_every_run_matches_the_model_wildcard_and_reads_back(reading, similarity):
    for alpha in (0.5, 0.0):
        run = lpa_run(4, reading, similarity, alpha, 1, 0.01)
        assert re.fullmatch(MODEL_PATTERN, f"lpa_{run}"), run
        tag = run.split("_alpha")[0].removeprefix("K4_")
        assert re.fullmatch(RUN_SIMILARITY_PATTERN, tag)
        if alpha and similarity != "label":
            assert reading_and_similarity(tag) == (reading, similarity)


def test_the_similarity_wildcard_refuses_what_no_run_is_named():
    for tag in ("histogram-cosine", "presence-label", "cosin", "maxcos-"):
        assert not re.fullmatch(RUN_SIMILARITY_PATTERN, tag), tag
