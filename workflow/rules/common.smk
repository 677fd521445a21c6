# Config validation, wildcard constraints and the input/target functions. Nothing else.
#
# Every stage's functions are here, in sections named after the rule files that use them, in
# the Snakefile's include order: Snakemake's linter (snakemake --lint, kept clean by
# tests/test_workflow.py) asks that a rule file hold no functions and that they be collected
# in a common module, as snakemake-workflows' rna-seq-star-deseq2 does.
import os
import re
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

from lpa.cli import SPEED_ENV, cli_flags  # noqa: E402  (dependency-free)

validate(config, schema="../schemas/config.schema.yaml", set_default=True)


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

NUMBER = r"[0-9]+(\.[0-9]+)?(e-?[0-9]+)?"

DATASETS = list(config["datasets"])
SEEDS = config["seeds"]
KS = config["kmeans"]["K"]


# LPA runs: every (K, similarity, alpha, fine-tuning epochs, fine-tuning lr); the first of each
# is the "LPA" row. alpha = 0 has no SupCon term, so it is one run per (K, epochs, lr), with
# similarity "none": PaCo fine-tuned on the same schedule. similarity "label" is plain SupCon
# (the term without attributes). Numbers appear in paths as Python prints them (0.5, 1e-05).
# Another reading of s(x) than the histogram prefixes the similarity: presence-jaccard.
def lpa_run(k, reading, sim, a, e, lr):
    if not a:
        sim = "none"
    elif sim != "label" and reading != "histogram":
        sim = f"{reading}-{sim}"
    return f"K{k}_{sim}_alpha{a}_e{e}_lr{lr}"


LPA_RUNS = list(
    dict.fromkeys(
        lpa_run(k, reading, sim, a, e, lr)
        for k in KS
        for reading in config["finetune"]["reading"]
        for sim in config["finetune"]["similarity"]
        for a in config["finetune"]["alpha"]
        for e in config["finetune"]["epochs"]
        for lr in config["finetune"]["lr"]
    )
)
LPA_PRIMARY = f"lpa_{LPA_RUNS[0]}"
# lpa.attributes.SIMILARITY_PATTERN, with the reading's prefix
SIMILARITY = r"((maxcos|softmax|presence)-)?(cosine|cosine_pow[0-9]+|top[0-9]+|dominant|jaccard)|label|none"


def check_consistency():
    """Settings that are only wrong together; errors name the keys."""
    gpus = config["execution"]["gpus"]
    queue = config["paco"]["queue_size"]
    for stage in ("baseline", "finetune"):
        batch = config[stage]["batch_size"]
        if gpus > 1 and batch % gpus:
            raise ValueError(
                f"{stage}.batch_size={batch} (the global batch) must be divisible by execution.gpus={gpus}"
            )
        if queue % batch:
            raise ValueError(
                f"paco.queue_size={queue} must be a multiple of {stage}.batch_size={batch} "
                "(the queue is refreshed a whole batch at a time, as in PaCo's code)"
            )


check_consistency()


wildcard_constraints:
    dataset="|".join(map(str, DATASETS)) or "none",
    seed=r"\d+",
    K=r"\d+",
    alpha=NUMBER,
    similarity=SIMILARITY,
    ft_epochs=r"\d+",
    ft_lr=NUMBER,
    method="ce|paco",
    model=rf"ce|paco|lpa_K\d+_({SIMILARITY})_alpha{NUMBER}_e\d+_lr{NUMBER}",


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


def doubled(value, attempt):
    """A resource doubled on every retry (Snakemake's attempt counts from 1)."""
    return int(value) * 2 ** (attempt - 1)


def growing(base):
    return lambda wildcards, attempt: doubled(base, attempt)


# ---- data.smk ------------------------------------------------------------------------
DATA_KEYS = (
    "source",
    "root",
    "download",
    "train_list",
    "val_list",
    "test_list",
    "n_max",
    "imbalance_factor",
    "test_per_class",
    "split_seed",
)


PARTS_KEYS = ("val_per_class", "num_classes")  # only the parts source reads them


def data_flags(wildcards):
    ds = dataset_cfg(wildcards)
    keys = DATA_KEYS + (PARTS_KEYS if ds["source"] == "parts" else ())
    return cli_flags({**{k: ds[k] for k in keys}, **config["groups"]})


def verify_report(wildcards):
    """List-file datasets are verified before their split is made."""
    if dataset_cfg(wildcards)["source"] != "listfile":
        return []
    return f"results/{wildcards.dataset}/data/verify.json"


def verify_flags(wildcards):
    ds = dataset_cfg(wildcards)
    lists = {f"{s}_list": ds[f"{s}_list"] for s in ("train", "val", "test")}
    expected = {k: v for k, v in ds["expected"].items() if v is not None}
    flags = {
        "root": ds["root"],
        **lists,
        **expected,
        "check_images": ds["check_images"],
    }
    return f"{cli_flags(flags)} --note {shlex.quote(ds['note'])}"


def verify_runtime(wildcards, threads, attempt):
    """Minutes to open every listed image: 10 + the listed images at 25 images/s per thread."""
    expected = dataset_cfg(wildcards)["expected"]
    images = sum(expected.get(k) or 0 for k in ("train", "val", "test"))
    return doubled(10 + images / (25 * threads * 60), attempt)


# ---- baseline.smk and finetune.smk: the training jobs --------------------------------
OPTIM_KEYS = (
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "warmup_epochs",
    "schedule",
    "milestones",
    "lr_decay",
)


def reading_and_similarity(tag):
    """The reading of s(x) and the similarity of a run's similarity wildcard (presence-jaccard)."""
    reading, _, sim = tag.rpartition("-")
    return reading or "histogram", sim


def train_flags(wildcards, objective, stage):
    """TrainConfig flags for one training job: model, PaCo, the stage's optimiser, execution."""
    model, paco, optim = config["model"], config["paco"], config[stage]
    settings = {
        "objective": objective,
        "seed": int(wildcards.seed),
        "arch": model["arch"],
        "depth": model["depth"],
        "widths": model["widths"],
        "strides": model["strides"],
        "norm": model["norm"],
        "shortcut": model["shortcut"],
        "proj_dims": paco["proj_dims"],
        "queue_size": paco["queue_size"],
        "key_momentum": paco["key_momentum"],
        "augment": dataset_cfg(wildcards)["augment"],
        "normalize": dataset_cfg(wildcards)["normalize"],
        "image_size": dataset_cfg(wildcards)["image_size"],
        **{k: optim[k] for k in OPTIM_KEYS},
        "paco_alpha": paco["alpha"],
        "paco_beta": paco["beta"],
        "paco_gamma": paco["gamma"],
        "paco_temperature": paco["temperature"],
        # bf16 and the device's random stream change the numbers: params, unlike the speed settings
        "amp": config["execution"]["amp"],
        "augment_on": config["execution"]["augment_on"],
    }
    if objective == "lpa":
        reading, similarity = reading_and_similarity(wildcards.similarity)
        settings.update(
            epochs=int(wildcards.ft_epochs),
            lr=float(wildcards.ft_lr),
            lpa_alpha=float(wildcards.alpha),
            supcon_temperature=optim["supcon_temperature"],
            similarity=similarity,
            reading=reading,
        )
    return cli_flags(settings)


def train_launcher():
    """One process, or one per GPU under torchrun (DistributedDataParallel) when a job asks for several."""
    gpus = config["execution"]["gpus"]
    if gpus > 1:
        return f"python -m torch.distributed.run --standalone --nproc-per-node {gpus}"
    return "python"


def paco_model(wildcards):
    """The PaCo baseline: imported from datasets.<name>.paco_checkpoint when set, else trained."""
    kind = "paco_imported" if dataset_cfg(wildcards)["paco_checkpoint"] else "paco"
    return run_path(f"baseline/{kind}/model.pt").format(**wildcards)


# ---- features.smk, kmeans.smk, attributes.smk ----------------------------------------
def feature_shards(wildcards):
    """Every shard of a run's dense features (the gather side of the features scatter)."""
    return gather.features(
        f"results/{wildcards.dataset}/seed{wildcards.seed}/features/shard-{{scatteritem}}.parquet"
    )


def kmeans_mem_mb(wildcards, attempt):
    """K-means holds its max_points x D float32 points once (normalised in place), plus room
    for one feature shard batch and the libraries; doubled on every retry."""
    model = config["model"]
    dim = model["widths"][-1] if model["arch"] == "resnet_cifar" else 2048
    points_mb = config["kmeans"]["max_points"] * dim * 4 / 2**20
    return doubled(max(config["execution"]["mem_mb"], 1.25 * points_mb + 2000), attempt)


# ---- evaluate.smk --------------------------------------------------------------------
def model_checkpoint(wildcards):
    """The model.pt that evaluate/{model} scores."""
    if wildcards.model == "paco":
        return paco_model(wildcards)
    if wildcards.model == "ce":
        return run_path("baseline/ce/model.pt").format(**wildcards)
    tag = wildcards.model.removeprefix("lpa_")
    return run_path(f"finetune/{tag}/model.pt").format(**wildcards)


# ---- report.smk ----------------------------------------------------------------------
def training_metrics(wildcards):
    """The metrics.jsonl beside a trained model (an imported PaCo model has none)."""
    return str(Path(model_checkpoint(wildcards)).with_name("metrics.jsonl"))


def evaluations(wildcards, model, name, stage="evaluate"):
    """The evaluation file `name` of one model, for every seed (stage evaluate_val: on the val split)."""
    return [
        f"results/{wildcards.dataset}/seed{s}/{stage}/{model}/{name}" for s in SEEDS
    ]


def lpa_controls(run):
    """The controls of an attribute run on the same schedule: alpha 0, and plain SupCon (label)."""
    k, sim, alpha, rest = re.fullmatch(
        r"K(\d+)_([a-z_0-9-]+?)_alpha([^_]+)_(e.*)", run
    ).groups()
    if sim in ("label", "none"):
        return []
    controls = [f"K{k}_none_alpha0.0_{rest}", f"K{k}_label_alpha{alpha}_{rest}"]
    return [c for c in controls if c in LPA_RUNS]


TABLE_MODELS = {"CE": "ce", "PaCo": "paco", "LPA": LPA_PRIMARY}


def table_inputs(wildcards):
    """Every seed's evaluation of the table's models, keyed summary_<model> / per_class_<model>."""
    return {
        f"{kind}_{model}": evaluations(wildcards, model, name)
        for model in TABLE_MODELS.values()
        for kind, name in (("summary", "summary.json"), ("per_class", "per_class.csv"))
    }


def table_flags(wildcards, input):
    parts = []
    for label, model in TABLE_MODELS.items():
        parts += [f"--summary {label}={p}" for p in input[f"summary_{model}"]]
        parts += [f"--per-class {label}={p}" for p in input[f"per_class_{model}"]]
    return " ".join(parts + ["--pair LPA=PaCo", "--pair PaCo=CE"])


# The ablation: PaCo (no fine-tuning) and every LPA run, named as in their paths.
ABLATION_MODELS = {"PaCo": "paco", **{f"LPA_{run}": f"lpa_{run}" for run in LPA_RUNS}}


def class_attribute_files(wildcards):
    """Every seed's and K's class_attributes.parquet (for the positive-weight diagnostic)."""
    return {
        f"K{k}": [
            f"results/{wildcards.dataset}/seed{s}/attributes/K{k}/class_attributes.parquet"
            for s in SEEDS
        ]
        for k in KS
    }


def ablation_inputs(wildcards, stage="evaluate"):
    summaries = [
        p
        for m in ABLATION_MODELS.values()
        for p in evaluations(wildcards, m, "summary.json", stage)
    ]
    attributes = [
        p for paths in class_attribute_files(wildcards).values() for p in paths
    ]
    return (
        summaries + attributes + [f"results/{wildcards.dataset}/data/class_counts.csv"]
    )


def ablation_flags(wildcards, stage="evaluate"):
    """Every run against PaCo, and each attribute run against its controls (paired over seeds)."""
    summaries = [
        f"--summary {label}={p}"
        for label, m in ABLATION_MODELS.items()
        for p in evaluations(wildcards, m, "summary.json", stage)
    ]
    pairs = [f"--pair LPA_{run}=PaCo" for run in LPA_RUNS]
    pairs += [
        f"--pair LPA_{run}=LPA_{c}" for run in LPA_RUNS for c in lpa_controls(run)
    ]
    weights = [
        f"--weights {k}={p}"
        for k, paths in class_attribute_files(wildcards).items()
        for p in paths
    ]
    weights += [
        f"--counts results/{wildcards.dataset}/data/class_counts.csv",
        f"--batch-size {config['finetune']['batch_size']}",
        "--similarity " + " ".join(config["finetune"]["similarity"]),
    ]
    return " ".join(summaries + pairs + weights)


def recovery_files(wildcards):
    """Every seed's and K's recovery.json of a dataset, by run name (seed<s>_K<K>)."""
    return {
        f"seed{s}_K{k}": f"results/{wildcards.dataset}/seed{s}/attributes/K{k}/recovery.json"
        for s in SEEDS
        for k in KS
    }


def recovery_inputs(wildcards):
    return list(recovery_files(wildcards).values())


def recovery_flags(wildcards):
    return " ".join(f"--recovery {n}={p}" for n, p in recovery_files(wildcards).items())


def paper_column(dataset):
    """The column of the paper's table a dataset fills: its imbalance factor (Table 1) or all."""
    if config["paper_table"] == "table1":
        return f"{config['datasets'][dataset]['imbalance_factor']:g}"
    return "all"


def paper_results():
    """(method, column, summary path) of every seed of PaCo and the primary LPA run, per dataset."""
    return [
        (label, paper_column(d), f"results/{d}/seed{s}/evaluate/{model}/summary.json")
        for d in DATASETS
        for label, model in (("PaCo", "paco"), ("LPA", LPA_PRIMARY))
        for s in SEEDS
    ]


def paper_table_inputs(wildcards):
    return [path for _, _, path in paper_results()]


def paper_table_flags(wildcards):
    results = " ".join(f"--result {m} {c} {p}" for m, c, p in paper_results())
    notes = " ".join(
        f"--note {shlex.quote(d['note'])}"
        for d in config["datasets"].values()
        if d["note"]
    )
    return f"{results} {notes}"


# ---- the targets of the Snakefile's rule all -----------------------------------------
def trained_models(dataset):
    """Every model of a dataset trained by this workflow: ce, paco (unless imported), the LPA runs."""
    imported = config["datasets"][dataset]["paco_checkpoint"]
    return ["ce"] + ([] if imported else ["paco"]) + [f"lpa_{run}" for run in LPA_RUNS]


def validated(dataset):
    """Whether a dataset's models are also evaluated on its val split (datasets.<name>.validate)."""
    return config["datasets"][dataset]["validate"]


def has_ground_truth(dataset):
    """Sources that know which part lies where: their attributes stage measures recovery."""
    return config["datasets"][dataset]["source"] == "parts"


def all_targets():
    tables = [
        "accuracy.csv",
        "accuracy.md",
        "per_class_accuracy.png",
        "lpa_ablation.csv",
    ]
    targets = expand("results/{dataset}/tables/{name}", dataset=DATASETS, name=tables)
    targets += expand("results/{dataset}/data/provenance.json", dataset=DATASETS)
    targets += expand(
        "results/{dataset}/seed{seed}/attributes/K{K}/balance.json",
        dataset=DATASETS,
        seed=SEEDS,
        K=KS,
    )
    targets += expand(
        "results/{dataset}/seed{seed}/figures/K{K}/retrieval.png",
        dataset=DATASETS,
        seed=SEEDS[0],
        K=KS[0],
    )
    targets += [
        f"results/{d}/seed{s}/figures/training/{m}.png"
        for d in DATASETS
        for s in SEEDS
        for m in trained_models(d)
    ]
    targets += [
        f"results/{d}/tables/lpa_ablation_val.csv" for d in DATASETS if validated(d)
    ]
    targets += [
        f"results/{d}/tables/recovery.csv" for d in DATASETS if has_ground_truth(d)
    ]
    if config["paper_table"] != "none":
        targets.append(f"results/paper/{config['paper_table']}.md")
    return targets
