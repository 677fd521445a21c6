"""Run names, controls and the patterns of the workflow's wildcards, without Snakemake."""

import re

import pytest

from lpa.planning.runs import MODEL_PATTERN, SETTING_PATTERN, lpa_controls, lpa_run, lpa_runs, parse_run, run_family


def grid(**finetune):
    ft = {"site": ["projection"], "reading": ["histogram"], "similarity": ["cosine", "label"], "alpha": [0.5],
          "supcon_temperature": [0.1], "epochs": [20], "lr": [0.01]}  # fmt: skip
    return {"kmeans": {"K": [16]}, "finetune": {**ft, **finetune}}


def test_a_run_is_named_by_its_settings_as_python_prints_them():
    assert lpa_run(16, "projection", "histogram", "cosine", 0.5, 0.1, 20, 0.01) == (
        "K16_projection_cosine_alpha0.5_t0.1_e20_lr0.01"
    )
    assert lpa_run(8, "pooled", "presence", "jaccard", 1.0, 0.05, 5, 1e-05) == (
        "K8_pooled_presence-jaccard_alpha1.0_t0.05_e5_lr1e-05"
    )
    # label reads no attributes, so no reading prefix; alpha 0 has no SupCon term at all
    assert lpa_run(8, "logits", "presence", "label", 0.5, 0.1, 5, 0.1) == "K8_logits_label_alpha0.5_t0.1_e5_lr0.1"
    assert lpa_run(8, "logits", "presence", "jaccard", 0.0, 0.1, 5, 0.1) == "K8_none_alpha0.0_e5_lr0.1"


def test_the_grid_keeps_its_order_and_runs_alpha_zero_once():
    runs = lpa_runs(grid(alpha=[0.5, 0.0], site=["projection", "pooled"], supcon_temperature=[0.1, 0.2]))
    assert runs == [
        "K16_projection_cosine_alpha0.5_t0.1_e20_lr0.01",
        "K16_projection_cosine_alpha0.5_t0.2_e20_lr0.01",
        "K16_none_alpha0.0_e20_lr0.01",
        "K16_projection_label_alpha0.5_t0.1_e20_lr0.01",
        "K16_projection_label_alpha0.5_t0.2_e20_lr0.01",
        "K16_pooled_cosine_alpha0.5_t0.1_e20_lr0.01",
        "K16_pooled_cosine_alpha0.5_t0.2_e20_lr0.01",
        "K16_pooled_label_alpha0.5_t0.1_e20_lr0.01",
        "K16_pooled_label_alpha0.5_t0.2_e20_lr0.01",
    ]


def test_controls_share_the_site_and_schedule_and_exist_in_the_grid():
    runs = lpa_runs(grid(alpha=[0.5, 0.0], site=["projection", "logits"]))
    assert lpa_controls("K16_logits_cosine_alpha0.5_t0.1_e20_lr0.01", runs) == [
        "K16_none_alpha0.0_e20_lr0.01",
        "K16_logits_label_alpha0.5_t0.1_e20_lr0.01",
    ]
    assert lpa_controls("K16_logits_label_alpha0.5_t0.1_e20_lr0.01", runs) == []  # a control has no controls
    assert lpa_controls("K16_projection_cosine_alpha0.5_t0.1_e20_lr0.01", lpa_runs(grid(similarity=["cosine"]))) == []
    assert [run_family(r) for r in runs[:3]] == ["LPA", "alpha0", "label"]


@pytest.mark.parametrize("site", ["projection", "pooled", "logits"])
@pytest.mark.parametrize("reading", ["histogram", "maxcos", "softmax", "presence"])
@pytest.mark.parametrize(
    "similarity", ["cosine", "cosine_pow4", "centred_cosine", "idf_cosine", "top3", "dominant", "jaccard",
                   "multilabel", "label"]  # fmt: skip
)
def test_every_run_matches_the_model_wildcard_and_reads_back(site, reading, similarity):
    for alpha in (0.5, 0.0):
        run = lpa_run(4, site, reading, similarity, alpha, 0.07, 3, 0.01)
        assert re.fullmatch(MODEL_PATTERN, f"lpa_{run}"), run
        assert re.fullmatch(SETTING_PATTERN, run.removeprefix("K4_")), run
        settings = parse_run(run)
        assert (settings["k"], settings["epochs"], settings["lr"], settings["alpha"]) == (4, 3, 0.01, alpha)
        if alpha:
            assert (settings["site"], settings["temperature"]) == (site, 0.07)
            assert settings["similarity"] == similarity
            assert settings["reading"] == (reading if similarity != "label" else "histogram")
        else:
            assert settings["similarity"] == "none"


def test_the_setting_wildcard_refuses_what_no_run_is_named():
    for name in (
        "projection_histogram-cosine_alpha0.5_t0.1_e1_lr0.1",
        "head_cosine_alpha0.5_t0.1_e1_lr0.1",
        "pooled_cosin_alpha0.5_t0.1_e1_lr0.1",
        "pooled_cosine_alpha0.5_e1_lr0.1",
        "cosine_alpha0.5_e1_lr0.1",
    ):
        assert not re.fullmatch(SETTING_PATTERN, name), name
    with pytest.raises(ValueError, match="not the name of an LPA run"):
        parse_run("K4_cosine_alpha0.5_e1_lr0.1")
