"""The conda files and pyproject.toml name the same packages."""

import re
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).parents[1]
# conda name -> the name pip knows the same software by; None: conda-only plumbing
CONDA_TO_PIP = {"pytorch": "torch", "faiss-gpu": "faiss", "pytorch-cuda": None, "python": None, "pip": None}
PIP_ALIASES = {"faiss-cpu": "faiss"}


def name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def conda_names(path: Path) -> set[str]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    names = {CONDA_TO_PIP.get(name(d), name(d)) for d in deps if isinstance(d, str)}
    return names - {None}


def pyproject_names(extra: str | None = None) -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return {PIP_ALIASES.get(name(d), name(d)) for d in deps}


def test_environment_yml_matches_pyproject():
    wanted = pyproject_names() | {"pytest"}
    assert conda_names(REPO / "environment.yml") == wanted


def test_rule_environments_hold_only_project_dependencies_and_cover_their_imports():
    runtime = pyproject_names()
    torch_env = conda_names(REPO / "workflow" / "envs" / "torch.yaml")
    faiss_env = conda_names(REPO / "workflow" / "envs" / "faiss.yaml")
    assert torch_env <= runtime and faiss_env <= runtime
    assert {"torch", "torchvision", "timm", "pandas", "pyarrow", "scikit-learn", "matplotlib"} <= torch_env
    assert "faiss" in faiss_env and "torch" not in faiss_env  # K-means never loads torch
