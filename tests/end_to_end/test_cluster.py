"""Every paper config planned through the SLURM profile: jobs sized for the paper's data."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lpa.tools.step_cost import measure, train_images

REPO = Path(__file__).resolve().parents[2]
GPU_RULES = {"baseline", "finetune", "features", "kmeans", "evaluate"}
# Stated GPU rate for the wall-time check: 20 TFLOP/s sustained in fp32 training, below what an
# A100 or H100 gives ResNet-50-sized models, so the planned slices are an upper bound.
GPU_TFLOPS = 20.0


def planned_jobs(config_path: Path, workdir: Path) -> list[dict]:
    """rule, wildcards and resources of every job of a dry run through profiles/slurm."""
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile"), "--directory",
         str(workdir), "--dry-run", "--profile", str(REPO / "profiles" / "slurm"), "--configfile", str(config_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out.stdout + out.stderr):
        head = re.match(r"(?:local)?rule (\w+):", block)
        resources = re.search(r"resources: (.*)", block)
        if head and resources:
            values = dict(kv.split("=", 1) for kv in resources.group(1).split(", "))
            jobs.append({"rule": head.group(1), **values})
    return jobs


@pytest.mark.parametrize("name", ["cifar100_lt", "imagenet_lt", "inat2018"])
def test_paper_configs_ask_the_cluster_for_what_their_jobs_need(name, tmp_path):
    path = REPO / "config" / f"{name}.yaml"
    config = yaml.safe_load(path.read_text())
    jobs = planned_jobs(path, tmp_path)
    assert GPU_RULES <= {j["rule"] for j in jobs}
    for job in jobs:
        if job["rule"] in GPU_RULES:
            assert int(job["gpu"]) >= 1 or "gpu" in job.get("gres", ""), job
    # K-means holds max_points x D float32 points
    dim = 64 if config["model"]["arch"] == "resnet_cifar" else 2048
    need_mb = config["kmeans"]["max_points"] * dim * 4 / 2**20
    assert all(int(j["mem_mb"]) >= need_mb for j in jobs if j["rule"] == "kmeans")
    # attributes: the streaming stage's measured peak, and at least its measured time
    dataset = next(iter(config["datasets"].values()))
    attributes = [j for j in jobs if j["rule"] == "attributes"]
    assert attributes and all(int(j["mem_mb"]) >= 431 for j in attributes)
    images, _ = train_images(dataset)
    assert all(int(j["runtime"]) >= images * 2.27e-3 / 60 for j in attributes)
    # each training job's slices cover the FLOPs of its schedule at GPU_TFLOPS
    flops_per_image = measure(config, batch_size=2, steps=1, device="cpu")["gflop_per_step"] * 1e9 / 2
    slices = config["execution"].get("slices", 20)
    for stage in ("baseline", "finetune"):
        epochs = max(config[stage]["epochs"]) if isinstance(config[stage]["epochs"], list) else config[stage]["epochs"]
        hours = flops_per_image * images * epochs / (GPU_TFLOPS * 1e12) / 3600
        runtimes = {int(j["runtime"]) for j in jobs if j["rule"] == stage}
        assert runtimes and min(runtimes) * slices / 60 >= hours, (stage, runtimes, hours)
    print(f"{name}: PaCo baseline {flops_per_image * images * config['baseline']['epochs'] / 1e18:.2f} EFLOP")


def test_gres_replaces_gpus_where_a_cluster_refuses_them(tmp_path):
    config = yaml.safe_load((REPO / "config" / "imagenet_lt.yaml").read_text())
    config["execution"]["gpu_request"] = "gres"
    (tmp_path / "gres.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(tmp_path / "gres.yaml", tmp_path)
    for job in jobs:
        if job["rule"] in GPU_RULES:
            assert job["gres"] == "gpu:1" and job["gpu"] == "0", job
