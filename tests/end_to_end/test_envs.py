"""The conda environments held to the code, without a network (no solve: the files are read).

Every rule with ``conda:`` runs ``python -m lpa.<module>``; each third-party module that module
imports, directly or through other ``lpa`` modules, must come from a package of the rule's
environment (``IMPORT_TO_CONDA``). The channel policy, one ``cuda-version`` pin everywhere and the
version floors shared with pyproject.toml are checked too, and so is how a job under
``--use-conda`` imports this checkout's ``lpa``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from envfiles import BIOCONDA, CONDA_TO_PIP, ENV_FILES, IMPORT_TO_CONDA, REPO, env_deps, pip_floors
from packaging.version import Version


def conda_lower_bound(version_spec: str) -> Version | None:
    """The lowest version a conda version spec admits: '>=2.0' -> 2.0, '=2.13' (2.13.*) -> 2.13."""
    m = re.fullmatch(r"(>=|==|=)?([0-9][0-9a-z.]*?)(\.\*)?(,<[0-9.]+)?", version_spec)
    return Version(m.group(2)) if version_spec and m else None


# --- what each rule runs ----------------------------------------------------------------------

PROBE = """
import json, sys, tempfile
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, DeploymentMethod, DeploymentSettings, OutputSettings,
    ResourceSettings, StorageSettings)
from snakemake.shell import shell
repo = Path(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp, SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(configfiles=[repo / "config" / "config.yaml"]),
        storage_settings=StorageSettings(),
        deployment_settings=DeploymentSettings(deployment_method={DeploymentMethod.CONDA}),
        snakefile=repo / "workflow" / "Snakefile", workdir=Path(tmp))._workflow
    rules = [{"rule": r.name, "shell": r.shellcmd,
              "conda": str((Path(r.snakefile).parent / r.conda_env).resolve()) if r.conda_env else None}
             for r in wf.rules]
    print("PROBE" + json.dumps({"prefix": shell._process_prefix, "rules": rules}))
"""


@pytest.fixture(scope="module")
def workflow_under_conda() -> dict:
    """The workflow as ``snakemake --use-conda`` loads it (in a child process: the shell prefix is
    process-wide state): every rule's shell command and conda file, and the jobs' shell prefix."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO)], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.split("PROBE", 1)[1])


def rule_modules(workflow: dict) -> list[tuple[str, str, Path]]:
    """(rule, module, environment file) for every rule with a conda environment."""
    found = []
    for rule in workflow["rules"]:
        if rule["conda"]:
            modules = re.findall(r"-m (lpa(?:\.\w+)*)", rule["shell"] or "")
            assert modules, f"rule {rule['rule']} has conda: but runs no `python -m lpa.<module>`"
            found += [(rule["rule"], m, Path(rule["conda"])) for m in modules]
    return found


def module_path(module: str) -> Path:
    base = REPO.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def catches_import_error(node: ast.Try) -> bool:
    names = set()
    for handler in node.handlers:
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {t.id for t in types if isinstance(t, ast.Name)}
    return bool(names & {"ImportError", "ModuleNotFoundError"})


def imports_of(module: str) -> set[str]:
    """Absolute module names imported anywhere in a module, except under ``try/except ImportError``
    (an optional import: e.g. lpa.kmeans's torch backend, which the faiss environment lacks)."""
    tree = ast.parse(module_path(module).read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Try) and catches_import_error(node):
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            # `from lpa import data` imports the submodule lpa.data
            subs = (f"{node.module}.{alias.name}" for alias in node.names)
            found.update(sub for sub in subs if module_path(sub).exists())
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def third_party_imports(module: str) -> dict[str, str]:
    """Top-level third-party import -> the lpa module that imports it, over every lpa module the
    given one reaches (including the package __init__ files Python runs on the way)."""
    seen, todo, third = set(), [module], {}
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        for name in sorted(imports_of(current)):
            top = name.split(".")[0]
            if top == "lpa":
                if module_path(name).exists():
                    todo.append(name)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third.setdefault(top, current)
    return third


def missing_packages(workflow: dict) -> list[str]:
    problems = []
    for rule, module, env in rule_modules(workflow):
        packages = set(env_deps(env))
        for top, where in sorted(third_party_imports(module).items()):
            package = IMPORT_TO_CONDA.get(top)
            if package is None:
                problems.append(f"rule {rule}: {where} imports {top!r}, which IMPORT_TO_CONDA does not name")
            elif package not in packages:
                problems.append(
                    f"rule {rule}: {where} imports {top!r}, but package {package!r} is not in {env.relative_to(REPO)}"
                )
    return problems


# --- the tests -----------------------------------------------------------------------------------


def test_every_rule_environment_holds_what_its_module_imports(workflow_under_conda):
    envs = {env for _, _, env in rule_modules(workflow_under_conda)}
    assert envs == set(ENV_FILES) - {REPO / "environment.yml"}, "an environment file no rule uses, or a missing one"
    assert not missing_packages(workflow_under_conda), "\n".join(missing_packages(workflow_under_conda))


def test_a_package_dropped_from_an_environment_names_rule_module_and_package(workflow_under_conda, monkeypatch):
    """The check above can fail: without scipy in torch.yaml, the tables rule's lpa.metrics.stats lacks it."""
    torch_env = REPO / "workflow" / "envs" / "torch.yaml"
    real = env_deps

    def without_scipy(path: Path) -> dict[str, str]:
        deps = real(path)
        return {k: v for k, v in deps.items() if k != "scipy"} if path == torch_env else deps

    monkeypatch.setitem(globals(), "env_deps", without_scipy)  # the name missing_packages reads
    problems = missing_packages(workflow_under_conda)
    wanted = "rule tables: lpa.metrics.stats imports 'scipy', but package 'scipy' is not in workflow/envs/torch.yaml"
    assert wanted in problems


def test_walker_skips_optional_imports_and_follows_lpa_modules():
    # lpa.kmeans imports lpa.clustering.torch_kmeans (torch) only under try/except ImportError
    assert "torch" not in third_party_imports("lpa.kmeans")
    assert third_party_imports("lpa.kmeans")["faiss"] == "lpa.kmeans"
    assert third_party_imports("lpa.clustering.torch_kmeans")["torch"] == "lpa.clustering.torch_kmeans"
    # reached through lpa.train -> ... -> lpa.augment.randaugment
    assert "timm" in third_party_imports("lpa.train")


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_channels_pins_and_no_pip(path):
    env = yaml.safe_load(path.read_text())
    assert env["channels"][0] == "conda-forge" and env["channels"][-1] == "nodefaults", env["channels"]
    assert set(env["channels"]) <= {"conda-forge", "bioconda", "nodefaults"}
    deps = env_deps(path)
    pip_sections = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert not pip_sections, "a pip: section (pip would replace conda packages)"
    # conda-forge's GPU builds; the old pytorch/nvidia-channel names are gone
    assert not {"pytorch-cuda", "pytorch", "faiss", "faiss-cpu", "matplotlib", "cudatoolkit"} & set(deps)
    if "bioconda" in env["channels"]:
        assert BIOCONDA & set(deps), "bioconda listed without a package from it"
    else:
        assert not BIOCONDA & set(deps), "snakemake comes from bioconda: list the channel"
    assert "cuda-version" in deps and any(p in deps for p in ("pytorch-gpu", "faiss-gpu"))


def test_one_cuda_version_and_one_python_everywhere():
    for key in ("cuda-version", "python"):
        pins = {path.name: env_deps(path)[key] for path in ENV_FILES}
        assert len(set(pins.values())) == 1, (key, pins)
    assert re.fullmatch(r"=?=?\d+\.\d+", env_deps(ENV_FILES[0])["cuda-version"])


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_version_floors_agree_with_pyproject(path):
    """A conda floor equals pyproject's; a conda pin admits nothing below pyproject's floor."""
    floors = pip_floors()
    for package, version_spec in env_deps(path).items():
        pip_name = CONDA_TO_PIP.get(package, package)
        if pip_name not in floors:
            continue
        assert version_spec, f"{path.name}: {package} has no version, pyproject says >={floors[pip_name]}"
        lowest = conda_lower_bound(version_spec)
        assert lowest is not None, f"{path.name}: cannot read {package} {version_spec}"
        if version_spec.startswith(">="):
            assert lowest == floors[pip_name], f"{path.name}: {package} {version_spec}, pyproject >={floors[pip_name]}"
        else:
            assert lowest >= floors[pip_name], f"{path.name}: {package} {version_spec} below pyproject's floor"


def test_conda_lower_bound_reads_the_specs_we_write():
    assert conda_lower_bound(">=2.0") == Version("2.0")
    assert conda_lower_bound("=2.13") == Version("2.13")
    assert conda_lower_bound("2.13.*") == Version("2.13")
    assert conda_lower_bound("") is None and conda_lower_bound("<3") is None


def test_jobs_under_use_conda_import_this_checkouts_lpa(workflow_under_conda, tmp_path):
    """A conda job's ``python`` has no lpa installed: the jobs' shell prefix puts this checkout on
    PYTHONPATH. Emulated with ``python -S`` (no site-packages, so no installed or editable lpa)
    from another directory, after and without the prefix."""
    prefix = workflow_under_conda["prefix"]
    assert str(Path(sys.executable).parent) not in prefix, "under --use-conda a job must run its environment's python"
    probe = f"{sys.executable} -S -c 'import lpa, sys; sys.stdout.write(lpa.__file__)'"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(["bash", "-c", prefix + probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout) == REPO / "lpa" / "__init__.py"
    bare = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert bare.returncode != 0 and "No module named 'lpa'" in bare.stderr
