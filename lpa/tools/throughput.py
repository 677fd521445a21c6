"""Throughput of the training input and step for a config's recipe and model, with the ratios between paths.

    python -m lpa.tools.throughput config/cifar100_lt.yaml [--device cuda] [--steps 10] [--json out.json]

Figures (medians of repeats, on synthetic images in the dataset's format: photo-like uint8
arrays for in-memory sources, JPEGs of ImageNet's typical 500x375 size for list files):

- worker path: the PIL recipe image by image (``lpa.augment.recipes.train_transform``), per
  core (one process, one thread) and in total (a DataLoader with one worker per core);
- evaluation input (the features and evaluate stages): the deterministic transform in a
  DataLoader with 0 workers (in the stage's process) and with one worker per core;
- device path: the batched recipe (``lpa.augment.recipes.BatchRecipe``) on ``--device``, per
  core (one thread; CPU only) and in total; for JPEG recipes the workers' share (decode + crop) is timed;
  its bound: a batch's operations, the bytes their tensors hold and its bmm FLOPs, against
  this device's streaming rate, bmm rate and cost of one small operation (one thread on a CPU);
  with ``--compile`` also the recipe through ``torch.compile`` (its compile time, then its rate);
- step: one training step of the config's model and batch, ours (no read-back) and written as
  PaCo's reference loop is (``loss.item()`` and the accuracy read every step);
- training images/s: input + step together, each path, and the reference loop (PIL workers
  and a read-back every step, as PaCo's scripts train); with ``--compile`` also the device path
  with the recipe and the step compiled (``execution.compile: true`` on a GPU).
The ratio lines compare them within this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import yaml
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.data import DataLoader

from lpa.augment.recipes import (
    CROP_RECIPES,
    DEVICE_RECIPES,
    RECIPES,
    BatchRecipe,
    decode_crop_transform,
    eval_transform,
    train_transform,
)
from lpa.io.cli import run_main
from lpa.models.networks import LongTailNet
from lpa.sources.loaders import DeviceFinisher, DeviceLoader, ImageDataset
from lpa.training.config import TrainConfig
from lpa.training.distributed import Context, GlobalBatchSampler
from lpa.training.objectives import PaCoObjective
from lpa.training.step import LOSS_NAMES, train_step

CLASSES = {"digits": 10, "cifar100": 100, "listfile": 1000}
T = TypeVar("T")


class SyntheticSource:
    """Photo-like images (smooth colour fields plus noise) in memory, or as JPEG files for list-file recipes."""

    def __init__(self, n: int, size: int, channels: int, jpeg_dir: Path | None = None, seed: int = 0) -> None:
        rng = np.random.RandomState(seed)
        self.in_channels = channels
        self.files: list[Path] = []
        shape = (375, 500) if jpeg_dir else (size, size)
        images = []
        for i in range(n):
            coarse = Image.fromarray(rng.randint(0, 256, (max(2, shape[0] // 8), max(2, shape[1] // 8), 3),
                                                 dtype=np.uint8))  # fmt: skip
            smooth = np.asarray(coarse.resize(shape[::-1], Image.BICUBIC)).astype(np.int16)
            pixels = np.clip(smooth + rng.randint(-12, 13, smooth.shape), 0, 255).astype(np.uint8)[..., :channels]
            if jpeg_dir:
                path = jpeg_dir / f"{i}.jpg"
                Image.fromarray(pixels).save(path, quality=90)
                self.files.append(path)
            else:
                images.append(pixels)
        self.images = np.stack(images) if images else None

    def load(self, image_id: int) -> Image.Image:
        if self.files:
            with Image.open(self.files[image_id]) as image:
                return image.convert("RGB")
        array = self.images[image_id]
        return Image.fromarray(array[..., 0] if self.in_channels == 1 else array)

    def pixels(self, image_ids: Sequence[int]) -> np.ndarray:
        return self.images[np.asarray(image_ids)]


def alternating_medians(fns: Sequence[Callable[[], object]], repeats: int, sync: Callable[[], None]) -> list[float]:
    """Median seconds of each of ``fns`` after a warm-up call (allocations, cudnn autotuning), run in
    turn ``repeats`` times, so that a drift of the machine's speed falls on all of them alike."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(repeats):
        for fn, seen in zip(fns, times):
            sync()
            tic = time.perf_counter()
            fn()
            sync()
            seen.append(time.perf_counter() - tic)
    return [statistics.median(seen) for seen in times]


def median_seconds(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    return alternating_medians((fn,), repeats, sync)[0]


class Traffic(TorchDispatchMode):
    """Counts the operations a call runs, the bytes their tensors hold (a view at most its storage's)
    and the FLOPs of its batched matrix products."""

    def __init__(self) -> None:
        super().__init__()
        self.operations = self.bytes = self.bmm_flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [t for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
        self.operations += 1
        self.bytes += sum(min(t.numel() * t.element_size(), t.untyped_storage().nbytes()) for t in tensors)
        if func is torch.ops.aten.bmm.default:
            (batch, rows, inner), cols = args[0].shape, args[1].shape[-1]
            self.bmm_flops += 2 * batch * rows * inner * cols
        return out


def machine_rates(device: torch.device, sync: Callable[[], None], repeats: int = 50) -> dict:
    """This device's float64 rates at the recipes' sizes: streaming (a 1 MB add, in cache), bmm
    ((128, 96, 32) @ (128, 32, 32), a CIFAR batch's resize and blur passes), one small operation."""
    big, small = (torch.rand(shape, dtype=torch.float64, device=device) for shape in ((128, 1024), (128, 4)))
    out_big, out_small = torch.empty_like(big), torch.empty_like(small)
    left, right = (torch.rand(shape, dtype=torch.float64, device=device) for shape in ((128, 96, 32), (128, 32, 32)))
    product = torch.empty(128, 96, 32, dtype=torch.float64, device=device)
    each = lambda fn: median_seconds(lambda: [fn() for _ in range(repeats)], 5, sync) / repeats  # noqa: E731
    return {
        "stream_gb_per_s": 3 * big.numel() * 8 / each(lambda: torch.add(big, big, out=out_big)) / 1e9,
        "bmm_gflop_per_s": 2 * 128 * 96 * 32 * 32 / each(lambda: torch.bmm(left, right, out=product)) / 1e9,
        "operation_us": each(lambda: torch.add(small, small, out=out_small)) * 1e6,
    }


def bound_figures(recipe: BatchRecipe, batch, generator: torch.Generator, device: torch.device,
                  sync: Callable[[], None]) -> dict:  # fmt: skip
    """A batch's traffic, the device's rates, and the time those allow."""
    with Traffic() as traffic:
        recipe(batch, generator)
    rates = machine_rates(device, sync)
    bound = (traffic.bytes / 1e9 / rates["stream_gb_per_s"] + traffic.bmm_flops / 1e9 / rates["bmm_gflop_per_s"]
             + traffic.operations * rates["operation_us"] / 1e6)  # fmt: skip
    return {"device_operations": traffic.operations, "device_gbytes": traffic.bytes / 1e9,
            "device_bmm_gflop": traffic.bmm_flops / 1e9, **rates, "device_bound_ms": bound * 1e3}  # fmt: skip


def one_thread(fn: Callable[[], T]) -> T:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


def load_settings(path: str) -> tuple[TrainConfig, str, int]:
    """The baseline's TrainConfig for the config's first dataset, its source kind and its classes."""
    config = yaml.safe_load(Path(path).read_text())
    dataset = next(iter(config["datasets"].values()))
    model, paco, base = config["model"], config["paco"], config["baseline"]
    cfg = TrainConfig(
        objective="paco", arch=model["arch"], depth=model.get("depth", 32),
        widths=tuple(model.get("widths", (16, 32, 64))), strides=tuple(model.get("strides", (1, 2, 2))),
        proj_dims=tuple(paco["proj_dims"]), queue_size=paco["queue_size"],
        augment=dataset["augment"], normalize=dataset.get("normalize"), image_size=dataset.get("image_size"),
        batch_size=base["batch_size"],
    )  # fmt: skip
    return cfg, dataset["source"], CLASSES[dataset["source"]]


def worker_figures(cfg: TrainConfig, source, ids: np.ndarray, labels: np.ndarray, size: int, cores: int,
                   out: dict) -> tuple[ImageDataset, ImageDataset | None]:  # fmt: skip
    """The PIL worker path, image by image and in a DataLoader; for JPEGs decoding alone and the workers'
    decode + crop share. Returns the worker path's dataset and, for the 224 recipes, the crops' dataset."""
    transform = train_transform(cfg.augment, two_views=True, size=cfg.image_size, normalize=cfg.normalize)
    dataset = ImageDataset(source, ids, labels, transform, seed=0)
    per_image = one_thread(lambda: median_seconds(lambda: [dataset[i] for i in range(len(dataset))], 3,
                                                  lambda: None) / len(dataset))  # fmt: skip
    out["worker_images_per_s_per_core"] = 1 / per_image
    loader = DataLoader(dataset, batch_size=cfg.batch_size, num_workers=cores, persistent_workers=True)
    out["worker_images_per_s_total"] = len(ids) / median_seconds(lambda: [b for b in loader], 2, lambda: None)
    if source.files:  # decoding alone: PIL's (what the workers use) and torchvision's
        from torchvision.io import decode_jpeg, read_file

        decoders = {"pil": source.load, "torchvision": lambda i: decode_jpeg(read_file(str(source.files[i])))}
        for name, decode in decoders.items():
            out[f"decode_{name}_images_per_s_per_core"] = 1 / one_thread(
                lambda decode=decode: median_seconds(lambda: [decode(i) for i in ids], 3, lambda: None) / len(ids)
            )
    # the features and evaluate stages' input: the deterministic transform, in the stage's process
    # (num_workers 0) and in one DataLoader worker per core
    evaluation = ImageDataset(source, ids, labels, eval_transform(cfg.augment, cfg.image_size, cfg.normalize))
    for workers in (0, cores):
        loader = DataLoader(evaluation, batch_size=cfg.batch_size, num_workers=workers,
                            persistent_workers=workers > 0)  # fmt: skip
        out[f"eval_input_images_per_s_{workers}_workers"] = len(ids) / median_seconds(
            lambda loader=loader: [b for b in loader], 2, lambda: None
        )
    crop = None
    if cfg.augment in CROP_RECIPES:  # the workers' share when the rest runs on the device
        crop = ImageDataset(source, ids, labels, decode_crop_transform(cfg.augment, size=size), seed=0)
        out["decode_crop_images_per_s_per_core"] = 1 / one_thread(
            lambda: median_seconds(lambda: [crop[i] for i in range(len(crop))], 3, lambda: None) / len(crop)
        )
    return dataset, crop


def device_figures(cfg: TrainConfig, source, ids: np.ndarray, crop: ImageDataset | None, device: torch.device,
                   sync: Callable[[], None], compile: bool, out: dict) -> dict[str, BatchRecipe]:  # fmt: skip
    """The batched recipe (on the workers' crops for the 224 recipes), its bound and, with ``compile``, the
    compiled recipe. Returns the recipes timed, by path ("device", "compiled"); none without a device path."""
    recipes = {}
    if cfg.augment not in DEVICE_RECIPES + CROP_RECIPES:
        return recipes
    recipe = recipes["device"] = BatchRecipe(cfg.augment, True, size=cfg.image_size, normalize=cfg.normalize)
    if cfg.augment in DEVICE_RECIPES:
        batch = torch.from_numpy(source.pixels(ids[: cfg.batch_size])).permute(0, 3, 1, 2).contiguous()
    else:
        batch = tuple(torch.stack(c) for c in zip(*(crop[i][0] for i in range(cfg.batch_size))))
    batch = tuple(b.to(device) for b in batch) if isinstance(batch, tuple) else batch.to(device)
    generator = torch.Generator(device).manual_seed(0)
    seconds = lambda r=recipe: median_seconds(lambda: r(batch, generator), 15, sync)  # noqa: E731
    if device.type == "cpu":
        out["device_images_per_s_per_core"] = cfg.batch_size / one_thread(seconds)
    out["device_images_per_s_total"] = cfg.batch_size / seconds()
    # the bound, against the batch time measured above (one thread on a CPU)
    bounds = lambda: bound_figures(recipe, batch, generator, device, sync)  # noqa: E731
    out.update(one_thread(bounds) if device.type == "cpu" else bounds())
    rate = out.get("device_images_per_s_per_core", out["device_images_per_s_total"])
    out["device_batch_ms"] = cfg.batch_size / rate * 1e3
    if compile:
        compiled = recipes["compiled"] = BatchRecipe(cfg.augment, True, size=cfg.image_size,
                                                     normalize=cfg.normalize, compile=True)  # fmt: skip
        tic = time.perf_counter()
        compiled(batch, generator)
        sync()
        out["device_compile_s"] = time.perf_counter() - tic
        out["device_compiled_images_per_s_total"] = cfg.batch_size / seconds(compiled)
    return recipes


class StepBench:
    """What the bench trains (PaCo's model, objective and SGD on ``device``) and its two steps: ours
    (:func:`lpa.training.step.train_step`, nothing read back) and the reference loop's (PaCo's)."""

    def __init__(self, cfg: TrainConfig, device: torch.device, channels: int, classes: int, size: int) -> None:
        torch.manual_seed(0)
        self.model = LongTailNet(cfg.model_config(channels), classes).to(device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            self.model = self.model.to(memory_format=torch.channels_last)
        self.objective = PaCoObjective([1] * classes, cfg.paco_alpha, cfg.paco_beta, cfg.paco_gamma,
                                       cfg.paco_temperature).to(device)  # fmt: skip
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        self.layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        self.views = tuple(torch.randn(cfg.batch_size, channels, size, size, device=device)
                           .contiguous(memory_format=self.layout) for _ in range(2))  # fmt: skip
        self.y = torch.randint(classes, (cfg.batch_size,), device=device)
        self.sums = torch.zeros(len(LOSS_NAMES) + 2, dtype=torch.float64, device=device)
        self.first_bad = torch.full((1,), -1, dtype=torch.long, device=device)

    def ours(self, views=None, y=None, step=train_step) -> None:
        views, y = (self.views, self.y) if views is None else (views, y)
        step(self.model, self.objective, self.optimizer, views, y, self.sums, self.first_bad, 0)

    def reference(self, views=None, y=None) -> None:
        """As PaCo's loop: ``losses.update(loss.item())``, the accuracy read every step."""
        views, y = (self.views, self.y) if views is None else (views, y)
        losses, logits = self.objective(self.model, views, y)
        self.optimizer.zero_grad()
        losses["loss"].backward()
        self.optimizer.step()
        float(losses["loss"].item()), int((logits.argmax(1) == y).sum())


def training_figures(cfg: TrainConfig, stepper: StepBench, dataset: ImageDataset, crop: ImageDataset | None,
                     recipes: dict[str, BatchRecipe], source, ids: np.ndarray, labels: np.ndarray, cores: int,
                     device: torch.device, sync: Callable[[], None], out: dict) -> None:  # fmt: skip
    """Training images/s, input and step together: each path's loop, and the reference loop (PIL
    workers and a read-back every step, as PaCo's scripts train)."""
    sampler = GlobalBatchSampler(len(ids), cfg.batch_size, 0, Context(), True)
    paths = {"worker": DataLoader(dataset, batch_sampler=sampler, num_workers=cores, persistent_workers=True)}
    for name, augment in recipes.items():
        if cfg.augment in DEVICE_RECIPES:
            paths[name] = DeviceLoader.from_source(source, ids, labels, sampler, augment, 0, device)
        else:
            crops = DataLoader(crop, batch_sampler=sampler, num_workers=cores, persistent_workers=True)
            paths[name] = DeviceFinisher(crops, augment, device, seed=0)
    loops = {name: (batches, train_step) for name, batches in paths.items()}
    if "compiled" in loops:
        loops["compiled"] = (paths["compiled"], torch.compile(train_step))
    loops["reference"] = (paths["worker"], None)
    for name, (batches, step) in loops.items():

        def epoch(batches=batches, step=step):
            for (q, k), labels_ in batches:
                q, k = (v.to(device, memory_format=stepper.layout) for v in (q, k))
                if step is None:
                    stepper.reference((q, k), labels_.to(device))
                else:
                    stepper.ours((q, k), labels_.to(device), step)

        out[f"{name}_training_images_per_s"] = len(sampler) * cfg.batch_size / median_seconds(epoch, 2, sync)


def bench(config_path: str, device: torch.device, steps: int, images: int, compile: bool = False) -> dict:
    """Every figure of the module's docstring for the config's first dataset, by name."""
    cfg, source_kind, classes = load_settings(config_path)
    size = cfg.image_size or RECIPES[cfg.augment][0]
    channels = 1 if source_kind == "digits" else 3
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    cores = len(os.sched_getaffinity(0))
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    out: dict = {"config": config_path, "recipe": cfg.augment, "arch": cfg.arch, "batch": cfg.batch_size,
                 "device": card, "cores": cores}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        source = SyntheticSource(images, size, channels, Path(tmp) if source_kind == "listfile" else None)
        ids, labels = np.arange(images), np.arange(images) % classes
        dataset, crop = worker_figures(cfg, source, ids, labels, size, cores, out)
        recipes = device_figures(cfg, source, ids, crop, device, sync, compile, out)
        if steps == 0:  # input figures only (a 224 model's step on a CPU takes long)
            return out
        stepper = StepBench(cfg, device, channels, classes, size)
        out["step_s"], out["reference_step_s"] = alternating_medians((stepper.ours, stepper.reference), steps, sync)
        training_figures(cfg, stepper, dataset, crop, recipes, source, ids, labels, cores, device, sync, out)
    return out


def ratio_lines(r: dict) -> list[str]:
    lines = []

    def ratio(label: str, a: str, b: str) -> None:
        if a in r and b in r:
            lines.append(f"{label}: {r[a] / r[b]:.2f}")

    ratio("device / worker images/s per core", "device_images_per_s_per_core", "worker_images_per_s_per_core")
    ratio("device / worker images/s in total", "device_images_per_s_total", "worker_images_per_s_total")
    ratio("device path time per batch, measured / bound (traffic, bmm, operations)", "device_batch_ms",
          "device_bound_ms")  # fmt: skip
    ratio("decode + crop / whole worker recipe, per core", "decode_crop_images_per_s_per_core",
          "worker_images_per_s_per_core")  # fmt: skip
    if "decode_crop_images_per_s_per_core" in r and "device_images_per_s_per_core" in r:
        both = 1 / (1 / r["decode_crop_images_per_s_per_core"] + 1 / r["device_images_per_s_per_core"])
        lines.append(f"decode + crop, then the device's finish / whole worker recipe, per core: "
                     f"{both / r['worker_images_per_s_per_core']:.2f}")  # fmt: skip
    ratio("features and evaluate input, one worker per core / in the stage's process",
          f"eval_input_images_per_s_{r['cores']}_workers", "eval_input_images_per_s_0_workers")  # fmt: skip
    ratio("step time, ours / reference loop's (<= 1: not slower)", "step_s", "reference_step_s")
    ratio("training images/s, device / worker path", "device_training_images_per_s", "worker_training_images_per_s")
    ratio("training images/s, device path / reference loop (workers, a read-back each step)",
          "device_training_images_per_s", "reference_training_images_per_s")  # fmt: skip
    ratio("device path images/s in total, compiled / eager", "device_compiled_images_per_s_total",
          "device_images_per_s_total")  # fmt: skip
    ratio("training images/s, compiled device path / reference loop", "compiled_training_images_per_s",
          "reference_training_images_per_s")  # fmt: skip
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="a workflow config (config/*.yaml): its first dataset's recipe, model, batch")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (0: time the input only)")
    parser.add_argument("--images", type=int, default=512, help="synthetic images")
    parser.add_argument("--compile", action="store_true", help="also time the compiled recipe and step")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    result = bench(args.config, torch.device(args.device), args.steps, args.images, args.compile)
    for key, value in result.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    print("\n".join(ratio_lines(result)))
    if args.json:
        Path(args.json).write_text(json.dumps({**result, "ratios": ratio_lines(result)}, indent=1))


if __name__ == "__main__":
    run_main(main)
