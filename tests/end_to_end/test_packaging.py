"""pyproject.toml, the Makefile, constraints-floor.txt and the conda files name the same packages."""

import os
import re
import subprocess
from pathlib import Path

from envfiles import CONDA_TO_PIP, ENV_FILES, REPO, env_deps, pip_floors, pyproject
from packaging.requirements import Requirement

# conda-only plumbing, not a dependency pip knows
CONDA_ONLY = {"python", "cuda-version", "pip", "setuptools"}


def names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def conda_names(path: Path) -> set[str]:
    return {CONDA_TO_PIP.get(n, n) for n in env_deps(path)} - CONDA_ONLY


def test_environment_yml_holds_every_dependency_of_the_project():
    """`pip install --no-deps -e .` adds lpa alone, so conda holds the rest: the base dependencies,
    the gpu extra (conda-forge's faiss-gpu) and pytest."""
    project = pyproject()
    wanted = names(project["dependencies"] + project["optional-dependencies"]["gpu"]) | {"pytest"}
    assert conda_names(REPO / "environment.yml") == wanted


def test_rule_environments_hold_only_project_dependencies():
    project = pyproject()
    runtime = names(project["dependencies"] + project["optional-dependencies"]["gpu"])
    for path in ENV_FILES[:-1]:
        assert conda_names(path) <= runtime, path.name
    assert "torch" not in conda_names(REPO / "workflow" / "envs" / "faiss.yaml")  # K-means never loads torch


def test_faiss_is_an_extra_cpu_or_gpu():
    project = pyproject()
    assert not {n for n in names(project["dependencies"]) if n.startswith("faiss")}
    assert names(project["optional-dependencies"]["cpu"]) == {"faiss-cpu"}
    assert names(project["optional-dependencies"]["gpu"]) == {"faiss-gpu"}


def test_floor_constraints_are_pyprojects_floors():
    pins = {}
    for line in (REPO / "constraints-floor.txt").read_text().splitlines():
        if line.split("#")[0].strip():
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    floors = pip_floors()
    # every floor but the workflow tools' is pinned to exactly that floor
    tools = {"snakemake", "pygments", "pytest", "snakefmt", "ruff", "faiss-gpu"}  # faiss-gpu: no GPU here
    assert set(pins) == set(floors) - tools
    for name, version in pins.items():
        assert floors[name] == type(floors[name])(version), (name, version, floors[name])


def make_env(tmp_path: Path, nvidia_smi_rc: int | None, *args: str) -> subprocess.CompletedProcess:
    """`make -n env` (print the commands, run none) with a stand-in nvidia-smi first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if nvidia_smi_rc is not None:
        (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\nexit {nvidia_smi_rc}\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("FAISS", None)
    return subprocess.run(
        ["make", "-n", "-C", str(REPO), "env", f"VENV={tmp_path / 'venv'}", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def installed_extra(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, out.stderr
    return re.search(r"pip install --quiet -e '\.\[test,(\w+)\]'", out.stdout).group(1)


def test_make_installs_gpu_faiss_where_nvidia_smi_answers(tmp_path):
    assert installed_extra(make_env(tmp_path, 0)) == "gpu"
    assert "pip uninstall --quiet --yes faiss-cpu" in make_env(tmp_path, 0).stdout
    assert installed_extra(make_env(tmp_path, 9)) == "cpu"  # nvidia-smi fails: no driver
    assert installed_extra(make_env(tmp_path, 0, "FAISS=cpu")) == "cpu"
    assert installed_extra(make_env(tmp_path, 9, "FAISS=gpu")) == "gpu"
    bad = make_env(tmp_path, 0, "FAISS=cuda")
    assert bad.returncode != 0 and "FAISS must be cpu or gpu" in bad.stderr


def test_make_reinstalls_only_when_the_faiss_build_changes(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".faiss-cpu").touch()
    (venv / ".installed").touch()  # newer than pyproject.toml and the stamp
    assert "pip install" not in make_env(tmp_path, 9).stdout
    assert installed_extra(make_env(tmp_path, 9, "FAISS=gpu")) == "gpu"
