"""What the workflow runs: the LPA fine-tuning runs of a config, their controls, and the patterns of their names.

An LPA run is one (K, reading, similarity, alpha, fine-tuning epochs, fine-tuning lr), named
``K<K>_<similarity>_alpha<alpha>_e<epochs>_lr<lr>`` with numbers as Python prints them (0.5,
1e-05). The first run of a config is its "LPA" row. alpha = 0 has no SupCon term, so it is one
run per (K, epochs, lr), with similarity ``none``: PaCo fine-tuned on the same schedule.
Similarity ``label`` is plain SupCon (the term without attributes). Another reading of s(x)
than the histogram prefixes the similarity (``presence-jaccard``).
"""

from __future__ import annotations

import re

from lpa.targets.kinds import RUN_SIMILARITY_PATTERN

NUMBER = r"[0-9]+(\.[0-9]+)?(e-?[0-9]+)?"  # a number as Python prints it in a path
MODEL_PATTERN = rf"ce|paco|lpa_K\d+_({RUN_SIMILARITY_PATTERN})_alpha{NUMBER}_e\d+_lr{NUMBER}"


def lpa_run(k: int, reading: str, similarity: str, alpha: float, epochs: int, lr: float) -> str:
    """The name of one LPA run (its folder under ``finetune/``)."""
    if not alpha:
        similarity = "none"
    elif similarity != "label" and reading != "histogram":
        similarity = f"{reading}-{similarity}"
    return f"K{k}_{similarity}_alpha{alpha}_e{epochs}_lr{lr}"


def lpa_runs(config: dict) -> list[str]:
    """Every LPA run of a config, in grid order without repeats (``kmeans.K`` x the ``finetune`` lists)."""
    ft = config["finetune"]
    return list(
        dict.fromkeys(
            lpa_run(k, reading, sim, a, e, lr)
            for k in config["kmeans"]["K"]
            for reading in ft["reading"]
            for sim in ft["similarity"]
            for a in ft["alpha"]
            for e in ft["epochs"]
            for lr in ft["lr"]
        )
    )


def lpa_controls(run: str, runs: list[str]) -> list[str]:
    """The controls of an attribute run on the same schedule among ``runs``: alpha 0, and plain SupCon (label)."""
    k, similarity, alpha, schedule = re.fullmatch(r"K(\d+)_([a-z_0-9-]+?)_alpha([^_]+)_(e.*)", run).groups()
    if similarity in ("label", "none"):
        return []
    controls = [f"K{k}_none_alpha0.0_{schedule}", f"K{k}_label_alpha{alpha}_{schedule}"]
    return [c for c in controls if c in runs]
