"""The command-line flags of each rule's job, rendered from the config (the inverse of each stage's parser).

Every function takes the validated config and the job's wildcards as plain values, so the
planned commands can be checked without Snakemake.
"""

from __future__ import annotations

import shlex

from lpa.io.cli import cli_flags
from lpa.planning.runs import parse_run
from lpa.sources import PLANTED_SOURCES

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
VAL_SOURCES = (*PLANTED_SOURCES, "cifar100")  # the sources that read val_per_class
PLANTED_KEYS = ("num_classes",)  # only the planted sources read it
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


def data_flags(config: dict, dataset: str) -> str:
    ds = config["datasets"][dataset]
    keys = DATA_KEYS + (("val_per_class",) if ds["source"] in VAL_SOURCES else ())
    keys += PLANTED_KEYS if ds["source"] in PLANTED_SOURCES else ()
    return cli_flags({**{k: ds[k] for k in keys}, **config["groups"]})


def verify_flags(config: dict, dataset: str) -> str:
    ds = config["datasets"][dataset]
    lists = {f"{s}_list": ds[f"{s}_list"] for s in ("train", "val", "test")}
    expected = {k: v for k, v in ds["expected"].items() if v is not None}
    flags = {"root": ds["root"], **lists, **expected, "check_images": ds["check_images"],
             "augment": ds["augment"], "image_size": ds["image_size"]}  # fmt: skip
    return f"{cli_flags(flags)} --note {shlex.quote(ds['note'])}"


def train_flags(config: dict, dataset: str, seed: int, objective: str, stage: str, run: dict | None = None) -> str:
    """TrainConfig flags of one training job: model, PaCo, the stage's optimiser, execution.

    ``run`` (objective lpa): the run's wildcards ``K`` and ``setting`` (:func:`lpa.planning.runs.parse_run`).
    """
    model, paco, optim, ds = config["model"], config["paco"], config[stage], config["datasets"][dataset]
    settings = {
        "objective": objective,
        "seed": int(seed),
        "arch": model["arch"],
        "depth": model["depth"],
        "widths": model["widths"],
        "strides": model["strides"],
        "norm": model["norm"],
        "shortcut": model["shortcut"],
        "proj_dims": paco["proj_dims"],
        "queue_size": paco["queue_size"],
        "key_momentum": paco["key_momentum"],
        "augment": ds["augment"],
        "normalize": ds["normalize"],
        "image_size": ds["image_size"],
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
        s = parse_run(f"K{run['K']}_{run['setting']}")
        settings.update(
            epochs=s["epochs"],
            lr=s["lr"],
            lpa_alpha=s["alpha"],
            # alpha 0 has no term: its temperature and site are never read
            supcon_temperature=s["temperature"] or optim["supcon_temperature"][0],
            similarity=s["similarity"],
            reading=s["reading"],
            site=s["site"] if s["site"] != "none" else "projection",
        )
    return cli_flags(settings)


def train_launcher(config: dict) -> str:
    """One process, or one per GPU under torchrun (DistributedDataParallel) when a job asks for several."""
    gpus = config["execution"]["gpus"]
    if gpus > 1:
        return f"python -m torch.distributed.run --standalone --nproc-per-node {gpus}"
    return "python"
