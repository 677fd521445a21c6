# Config validation, wildcard constraints and the input/target functions. Nothing else.
#
# The planning logic (run names, controls, flags, resource requests, targets) is Python in
# lpa/planning/, tested without Snakemake; the functions here hand it the config and a job's
# wildcards, in sections named after the rule files that use them, in the Snakefile's include
# order. Snakemake's linter (snakemake --lint, kept clean by tests/end_to_end/test_workflow.py)
# asks that a rule file hold no functions and that they be collected in a common module.
import os
import shlex
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

# The package's code: the checkout this file belongs to (found from this file, not from the
# working directory, so the workflow also runs as a Snakemake module), else an installed lpa
# (e.g. a remote module, with `pip install` of this repository).
HERE = Path(str(workflow.current_basedir)).resolve()  # workflow/rules
REPO = HERE.parents[1]
if not (REPO / "lpa" / "__init__.py").exists():
    import lpa

    REPO = Path(lpa.__file__).resolve().parents[1]
# Jobs (local, conda or SLURM) import the package from there. Snakemake formats the
# prefix too, hence the doubled braces around the shell's ${PYTHONPATH:-}. Without
# --use-conda, a job's `python` is the interpreter that runs Snakemake (e.g. .venv/bin), so
# `.venv/bin/snakemake ...` works without activating the environment.
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
PYTHON_PATH = (
    ""
    if USE_CONDA
    else f"export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH; "
)
sys.path.insert(0, str(REPO))

# dependency-free (standard library only)
from lpa.io.cli import SPEED_ENV, cli_flags  # noqa: E402
from lpa.planning import flags, runs, sizing, tables, targets  # noqa: E402
from lpa.planning.checks import check_config  # noqa: E402

validate(config, schema="../schemas/config.schema.yaml", set_default=True)
check_config(config)


def speed_exports():
    """Speed-only settings reach the jobs as environment variables, never as params, so that
    changing them (device, DataLoader workers, evaluation and extraction batch) redoes nothing.
    """
    ex = config["execution"]
    values = {
        "device": ex["device"],
        "num_workers": ex["num_workers"],
        "compile": ex["compile"],
        "eval_batch_size": ex["eval_batch_size"],
        "features_batch_size": config["features"]["batch_size"],
    }
    return " ".join(f"{SPEED_ENV[k]}={shlex.quote(str(v))}" for k, v in values.items())


shell.prefix(
    f"set -euo pipefail; {PYTHON_PATH}export {speed_exports()} "
    f"PYTHONPATH={shlex.quote(str(REPO))}:${{{{PYTHONPATH:-}}}}; "
)


wildcard_constraints:
    dataset="|".join(map(str, config["datasets"])) or "none",
    seed=r"\d+",
    K=r"\d+",
    setting=runs.SETTING_PATTERN,
    method="ce|paco",
    model=runs.MODEL_PATTERN,


# ---- shared by every stage: paths and resources --------------------------------------
def run_path(path):
    """Per-run outputs: results/<dataset>/seed<seed>/<path>."""
    return f"results/{{dataset}}/seed{{seed}}/{path}"


def logged(kind, path):
    """Log or benchmark file of a job: results/<dataset>/<kind>/seed<seed>/<path>."""
    return f"results/{{dataset}}/{kind}/seed{{seed}}/{path}"


def dataset_cfg(wildcards):
    return config["datasets"][wildcards.dataset]


def gpus(n):
    """The gpu resource of a job using n GPUs (0 where execution.gpu_request is gres)."""
    return n if config["execution"]["gpu_request"] == "gpu" else 0


def gres(n):
    """The gres resource ("gpu:n") where execution.gpu_request is gres, else none."""
    return f"gpu:{n}" if n and config["execution"]["gpu_request"] == "gres" else ""


TRAIN_GPUS = config["execution"]["gpus"]
# On a cluster each retry of a training job is another wall-time slice that resumes from
# last.pt (same runtime); run here, a failure fails at once.
TRAIN_RETRIES = config["execution"]["slices"] - 1 if workflow.non_local_exec else 0
ONE_GPU = min(TRAIN_GPUS, 1)  # extraction, K-means, evaluation: one GPU is enough


def growing(base):
    return lambda wildcards, attempt: sizing.doubled(base, attempt)


# ---- data.smk ------------------------------------------------------------------------
def data_flags(wildcards):
    return flags.data_flags(config, wildcards.dataset)


def verify_report(wildcards):
    """List-file datasets are verified before their split is made."""
    if dataset_cfg(wildcards)["source"] != "listfile":
        return []
    return f"results/{wildcards.dataset}/data/verify.json"


def verify_flags(wildcards):
    return flags.verify_flags(config, wildcards.dataset)


def verify_runtime(wildcards, threads, attempt):
    return sizing.verify_runtime(dataset_cfg(wildcards)["expected"], threads, attempt)


# ---- baseline.smk and finetune.smk: the training jobs --------------------------------
def train_flags(wildcards, objective, stage):
    return flags.train_flags(
        config, wildcards.dataset, wildcards.seed, objective, stage, dict(wildcards)
    )


def train_launcher():
    return flags.train_launcher(config)


def paco_model(wildcards):
    return targets.paco_model(config, wildcards.dataset, wildcards.seed)


# ---- features.smk, kmeans.smk, attributes.smk ----------------------------------------
def feature_shards(wildcards):
    """Every shard of a run's dense features (the gather side of the features scatter)."""
    return gather.features(
        f"results/{wildcards.dataset}/seed{wildcards.seed}/features/shard-{{scatteritem}}.parquet"
    )


def feature_samples(wildcards):
    """Every shard's part of the local features K-means clusters."""
    return gather.features(
        f"results/{wildcards.dataset}/seed{wildcards.seed}/features/sample-{{scatteritem}}.parquet"
    )


def kmeans_mem_mb(wildcards, attempt):
    return sizing.kmeans_mem_mb(config, attempt)


def attributes_mem_mb(wildcards, attempt):
    return sizing.attributes_mem_mb(
        config, dataset_cfg(wildcards), int(wildcards.K), attempt
    )


def attributes_runtime(wildcards, attempt):
    return sizing.attributes_runtime(
        config, dataset_cfg(wildcards), int(wildcards.K), attempt
    )


# ---- evaluate.smk --------------------------------------------------------------------
def model_checkpoint(wildcards):
    return targets.model_checkpoint(
        config, wildcards.dataset, wildcards.seed, wildcards.model
    )


# ---- report.smk ----------------------------------------------------------------------
def training_metrics(wildcards):
    """The metrics.jsonl beside a trained model (an imported PaCo model has none)."""
    return str(Path(model_checkpoint(wildcards)).with_name("metrics.jsonl"))


def table_inputs(wildcards):
    return tables.table_inputs(config, wildcards.dataset)


def table_flags(wildcards):
    return tables.table_flags(config, wildcards.dataset)


def ablation_inputs(wildcards, stage="evaluate"):
    return tables.ablation_inputs(config, wildcards.dataset, stage)


def ablation_flags(wildcards, stage="evaluate"):
    return tables.ablation_flags(config, wildcards.dataset, stage)


def selection_inputs(wildcards):
    return tables.selection_inputs(config, wildcards.dataset)


def selection_flags(wildcards):
    return tables.selection_flags(config, wildcards.dataset)


def recovery_inputs(wildcards):
    return list(tables.recovery_files(config, wildcards.dataset).values())


def recovery_flags(wildcards):
    return tables.recovery_flags(config, wildcards.dataset)


def paper_table_inputs(wildcards):
    return [path for _, _, path in tables.paper_results(config)]


def paper_table_flags(wildcards):
    return tables.paper_table_flags(config)


# ---- the targets of the Snakefile's rule all -----------------------------------------
def all_targets():
    return targets.all_targets(config)
