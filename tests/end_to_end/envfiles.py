"""Reading the environment files (the conda files, pyproject.toml) for the environment tests."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((REPO / "workflow" / "envs").glob("*.yaml")) + [REPO / "environment.yml"]

# import name -> the conda-forge package that provides it in our environments. The GPU builds are
# the ones named: pytorch-gpu (pulls conda-forge's cuda* build of pytorch) and faiss-gpu.
IMPORT_TO_CONDA = {
    "faiss": "faiss-gpu",
    "matplotlib": "matplotlib-base",
    "numpy": "numpy",
    "pandas": "pandas",
    "PIL": "pillow",
    "pyarrow": "pyarrow",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "snakemake": "snakemake",
    "timm": "timm",
    "torch": "pytorch-gpu",
    "torchvision": "torchvision",
    "tqdm": "tqdm",
    "yaml": "pyyaml",
}
# conda-forge package -> the name pip knows it by (pyproject.toml), where the two differ
CONDA_TO_PIP = {"pytorch-gpu": "torch", "matplotlib-base": "matplotlib"}
# only these come from bioconda (conda-forge carries neither)
BIOCONDA = {"snakemake", "snakemake-minimal", "snakemake-executor-plugin-slurm"}


# --- reading the files -------------------------------------------------------------------------


def spec(dep: str) -> tuple[str, str]:
    """A conda match spec 'name op version' -> (name, version part); version part may be ''."""
    name, _, rest = dep.strip().partition(" ")
    match = re.match(r"([A-Za-z0-9_.\-]+)(.*)", name)
    return match.group(1).lower(), (match.group(2) + rest).replace(" ", "")


def env_deps(path: Path) -> dict[str, str]:
    """package -> version spec of a conda environment file (no pip section allowed: see below)."""
    deps = yaml.safe_load(path.read_text())["dependencies"]
    return dict(spec(d) for d in deps if isinstance(d, str))


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pip_floors() -> dict[str, Version]:
    """pip name -> the floor (>=) pyproject.toml declares, over the base dependencies and extras."""
    project = pyproject()
    floors = {}
    for req in project["dependencies"] + sum(project["optional-dependencies"].values(), []):
        r = Requirement(req)
        for s in r.specifier:
            if s.operator == ">=":
                floors[r.name.lower()] = Version(s.version)
    return floors
