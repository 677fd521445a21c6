"""What the workflow runs: the LPA fine-tuning runs of a config, their controls, and the patterns of their names.

An LPA run is one (K, site, reading, similarity, alpha, SupCon temperature, fine-tuning epochs,
fine-tuning lr), named ``K<K>_<site>_<similarity>_alpha<alpha>_t<temperature>_e<epochs>_lr<lr>``
with numbers as Python prints them (0.5, 1e-05). The first run of a config is its "LPA" row.
alpha = 0 has no SupCon term, so it is one run per (K, epochs, lr), ``K<K>_none_alpha0.0_e<epochs>_lr<lr>``:
PaCo fine-tuned on the same schedule. Similarity ``label`` is plain SupCon (the term without
attributes). Another reading of s(x) than the histogram prefixes the similarity (``presence-jaccard``).
"""

from __future__ import annotations

import re

from lpa.targets.kinds import RUN_SIMILARITY_PATTERN, SITES, reading_and_similarity

NUMBER = r"[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?"  # a number as Python prints it in a path


def setting_pattern(named: bool = False) -> str:
    """A run's name after ``K<K>_``: its settings (with ``named``, as named groups, for :func:`parse_run`)."""

    def group(name: str, pattern: str) -> str:
        return f"(?P<{name}>{pattern})" if named else f"(?:{pattern})"

    term = (
        f"{group('site', '|'.join(SITES))}_{group('similarity', RUN_SIMILARITY_PATTERN)}"
        f"_alpha{group('alpha', NUMBER)}_t{group('temperature', NUMBER)}"
    )
    return f"(?:none_alpha{group('zero', NUMBER)}|{term})_e{group('epochs', r'[0-9]+')}_lr{group('lr', NUMBER)}"


SETTING_PATTERN = setting_pattern()
MODEL_PATTERN = rf"ce|paco|lpa_K\d+_{SETTING_PATTERN}"


def lpa_run(k: int, site: str, reading: str, similarity: str, alpha: float, temperature: float, epochs: int,
            lr: float) -> str:  # fmt: skip
    """The name of one LPA run (its folder under ``finetune/``)."""
    if not alpha:
        return f"K{k}_none_alpha{alpha}_e{epochs}_lr{lr}"
    if similarity != "label" and reading != "histogram":
        similarity = f"{reading}-{similarity}"
    return f"K{k}_{site}_{similarity}_alpha{alpha}_t{temperature}_e{epochs}_lr{lr}"


def parse_run(run: str) -> dict:
    """The settings of a run's name: K, site, reading, similarity, alpha, temperature, epochs, lr
    (alpha 0: site and similarity ``none``, temperature None)."""
    match = re.fullmatch(rf"K(?P<k>\d+)_{setting_pattern(named=True)}", run)
    if match is None:
        raise ValueError(f"{run!r} is not the name of an LPA run (K<K>_<site>_<similarity>_alpha<a>_t<t>_e<E>_lr<lr>)")
    g = match.groupdict()
    common = {"k": int(g["k"]), "epochs": int(g["epochs"]), "lr": float(g["lr"])}
    if g["zero"] is not None:
        return {**common, "site": "none", "reading": "histogram", "similarity": "none",
                "alpha": float(g["zero"]), "temperature": None}  # fmt: skip
    reading, similarity = reading_and_similarity(g["similarity"])
    return {**common, "site": g["site"], "reading": reading, "similarity": similarity, "alpha": float(g["alpha"]),
            "temperature": float(g["temperature"])}  # fmt: skip


def lpa_runs(config: dict) -> list[str]:
    """Every LPA run of a config, in grid order without repeats (``kmeans.K`` x the ``finetune`` lists)."""
    ft = config["finetune"]
    return list(
        dict.fromkeys(
            lpa_run(k, site, reading, sim, a, t, e, lr)
            for k in config["kmeans"]["K"]
            for site in ft["site"]
            for reading in ft["reading"]
            for sim in ft["similarity"]
            for a in ft["alpha"]
            for t in ft["supcon_temperature"]
            for e in ft["epochs"]
            for lr in ft["lr"]
        )
    )


def run_family(run: str) -> str:
    """Which row of the selection a run competes in: ``LPA`` (a target from a(y)), or a control,
    ``label`` (plain SupCon) or ``alpha0`` (no term: the extra epochs)."""
    similarity = parse_run(run)["similarity"]
    return {"none": "alpha0", "label": "label"}.get(similarity, "LPA")


def lpa_controls(run: str, runs: list[str]) -> list[str]:
    """The controls of an attribute run among ``runs``: alpha 0 on its schedule, and plain SupCon
    (label) at its site, alpha, temperature and schedule."""
    if run_family(run) != "LPA":
        return []
    # the names' own text for the numbers, so the controls are named as lpa_run named them
    k, site, schedule = re.fullmatch(r"K(\d+)_([a-z]+)_.*_(e\d+_lr[^_]+)", run).groups()
    alpha_and_t = re.search(r"_(alpha[^_]+_t[^_]+)_e\d+", run).group(1)
    controls = [f"K{k}_none_alpha0.0_{schedule}", f"K{k}_{site}_label_{alpha_and_t}_{schedule}"]
    return [c for c in controls if c in runs]
