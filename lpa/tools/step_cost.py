"""Expected compute of a benchmark config: FLOPs and measured time of one PaCo training step.

    python -m lpa.tools.step_cost config/cifar100_lt.yaml [--batch-size 16] [--steps 3] [--device cuda]

Builds the config's model at its crop size, runs ``--steps`` PaCo training steps on random
images (after one warm-up step), and prints the counted FLOPs per step, the median seconds per
step on this device, the achieved FLOP rate, and the extrapolation to the config's full
baseline training (steps per epoch from the expected training-set size). A smaller
``--batch-size`` measures big models on small machines; the extrapolation scales by batch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from lpa.augment.recipes import RECIPES
from lpa.models.networks import LongTailNet
from lpa.sources.longtail import long_tailed_counts
from lpa.training.config import TrainConfig
from lpa.training.distributed import resolve_device
from lpa.training.objectives import PaCoObjective


def train_images(dataset: dict) -> tuple[int, int]:
    """(training images, classes) a dataset entry of the config describes."""
    if dataset.get("source") == "listfile":
        expected = dataset.get("expected") or {}
        return int(expected.get("train") or 0), int(expected.get("classes") or 0)
    classes = 100 if dataset.get("source") == "cifar100" else 10
    return sum(long_tailed_counts(dataset["n_max"], dataset["imbalance_factor"], classes)), classes


def measure(config: dict, batch_size: int | None, steps: int, device: str) -> dict:
    dataset = next(iter(config["datasets"].values()))
    images, classes = train_images(dataset)
    model_cfg, paco, optim = config.get("model", {}), config["paco"], config["baseline"]
    batch = batch_size or optim["batch_size"]
    recipe = dataset.get("augment", "digits")
    crop = dataset.get("image_size") or RECIPES[recipe][0]
    channels = 1 if recipe == "digits" else 3
    cfg = TrainConfig(
        objective="paco",
        arch=model_cfg.get("arch", "resnet_cifar"),
        depth=model_cfg.get("depth", 32),
        widths=tuple(model_cfg.get("widths", (16, 32, 64))),
        strides=tuple(model_cfg.get("strides", (1, 2, 2))),
        proj_dims=tuple(paco["proj_dims"]),
        queue_size=paco["queue_size"],
        augment=recipe,
    )
    dev = resolve_device(device)
    model = LongTailNet(cfg.model_config(channels), classes).to(dev)
    objective = PaCoObjective([1] * classes, paco["alpha"], 1.0, 1.0, paco["temperature"]).to(dev)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    views = tuple(torch.randn(batch, channels, crop, crop, device=dev) for _ in range(2))
    labels = torch.randint(classes, (batch,), device=dev)

    def step() -> None:
        losses, _ = objective(model, views, labels)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()  # also the warm-up
    times = []
    for _ in range(steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - tic)
    seconds = statistics.median(times)
    full_batch = optim["batch_size"]
    steps_per_epoch = max(images // full_batch, 1)
    # time scales with the batch; the measured batch may be smaller than the config's
    hours = seconds * full_batch / batch * steps_per_epoch * optim["epochs"] / 3600
    return {
        "arch": cfg.arch,
        "crop": crop,
        "device": str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        "batch_measured": batch,
        "gflop_per_step": counter.get_total_flops() / 1e9,
        "seconds_per_step": seconds,
        "achieved_tflops": counter.get_total_flops() / seconds / 1e12,
        "train_images": images,
        "steps_per_epoch": steps_per_epoch,
        "epochs": optim["epochs"],
        "baseline_hours_on_this_device": hours,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--batch-size", type=int, help="measure with this batch (default: the config's)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with open(args.config) as fh:
        config = yaml.safe_load(fh)
    result = measure(config, args.batch_size, args.steps, args.device)
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
