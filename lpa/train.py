"""Stages 2 and 6, baseline and finetune: one training loop for CE, PaCo and LPA.

Writes into ``--out-dir``: ``last.pt`` and ``metrics.jsonl`` (one line per epoch) after every
epoch (atomically; ``last.pt`` is resumed by itself when the same run is started again and
removed when training completes), ``slices.jsonl`` (where each attempt started, to stop a
retry that made no progress), and at the end ``model.pt`` (final epoch's weights, resolved
config, format version) and ``config.json``. Fine-tuning is ``--init-from`` a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from lpa.augment.recipes import CROP_RECIPES, DEVICE_RECIPES, BatchRecipe, decode_crop_transform, train_transform
from lpa.io.artifacts import read_class_attributes, read_class_counts, read_image_scores, read_split
from lpa.io.cli import add_dataclass_arguments, dataclass_from_args, run_main, setup_logging, speed_default
from lpa.io.files import write_json, write_text
from lpa.models.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from lpa.models.networks import LongTailNet
from lpa.sources.images import open_source
from lpa.sources.loaders import DeviceFinisher, DeviceLoader, ImageDataset
from lpa.training import distributed, monitor
from lpa.training.config import TrainConfig
from lpa.training.step import LOSS_NAMES, build_objective, learning_rate, seed_everything, to_device, train_step

log = logging.getLogger("lpa.train")

SPEED_FIELDS = ("device", "num_workers", "compile")  # may differ between the slices of one run


def same_run(saved: dict | None, resolved: dict) -> bool:
    """Whether a last.pt was written by this run: the same config, speed settings aside."""
    if saved is None:
        return False
    return {k: v for k, v in saved.items() if k not in SPEED_FIELDS} == {
        k: v for k, v in resolved.items() if k not in SPEED_FIELDS
    }


def build_loader(cfg: TrainConfig, source, train_rows, sampler, device: torch.device, rank: int):
    """Batches of augmented views. With ``cfg.augment_on`` device: made on ``device`` from the
    training set held there (digits, CIFAR: :class:`lpa.loaders.DeviceLoader`), or, on a GPU,
    finished there from the workers' decoded crops (the 224 recipes: :class:`lpa.loaders.DeviceFinisher`;
    on a CPU the workers' PIL is faster at 224); otherwise by PIL in DataLoader workers."""
    two_views = cfg.objective != "ce"
    # the loaders carry each image's position in train_rows; the loop reads its label from there
    # (and a per-image target, lpa.training.objectives.LPAObjective, its row)
    ids, labels = train_rows["image_id"].to_numpy(), np.arange(len(train_rows))
    pin = device.type == "cuda"
    # compiled, a batch's hundreds of small augmentation operations become a few GPU kernels; on a
    # CPU the eager path, which computes each operation only for the images it applies to, is faster
    recipe = partial(BatchRecipe, cfg.augment, two_views, size=cfg.image_size, normalize=cfg.normalize,
                     compile=cfg.compile and device.type == "cuda")  # fmt: skip
    if cfg.augment_on == "device":
        if cfg.augment in DEVICE_RECIPES and hasattr(source, "pixels"):
            return DeviceLoader.from_source(source, ids, labels, sampler, recipe(), cfg.seed, device)
        if cfg.augment in CROP_RECIPES and device.type != "cpu":  # on a CPU the workers run it faster
            crops = ImageDataset(source, ids, labels, decode_crop_transform(cfg.augment, two_views, cfg.image_size),
                                 seed=cfg.seed)  # fmt: skip
            # not persistent_workers: a worker's copy of the dataset would keep the first epoch's seed
            loader = DataLoader(crops, batch_sampler=sampler, num_workers=cfg.num_workers, pin_memory=pin)
            return DeviceFinisher(loader, recipe(), device, cfg.seed, rank)
        log.info("recipe %s from a %s on %s has no device path: augmenting in workers", cfg.augment,
                 type(source).__name__, device)  # fmt: skip
    transform = train_transform(cfg.augment, two_views, size=cfg.image_size, normalize=cfg.normalize)
    dataset = ImageDataset(source, ids, labels, transform, seed=cfg.seed)
    return DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers, pin_memory=pin)


def set_epoch(loader, epoch: int) -> None:
    """Tell a loader which epoch's draws to make (a DataLoader's dataset seeds its images by epoch)."""
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    else:
        loader.dataset.epoch = epoch


def record_slice(out_dir: Path, attempt: int, start_epoch: int) -> None:
    """Note where this attempt of the job starts (``slices.jsonl``); stop if the last one made no progress.

    Attempt 1 starts the record afresh. A retry (attempt > 1, a new wall-time slice) that starts
    at the epoch where the attempt before it started finished no epoch in between: an epoch
    takes longer than the slice, or the job fails the same way each time, and retrying again
    would loop, so it is an error.
    """
    path = out_dir / "slices.jsonl"
    slices = []
    if attempt > 1 and path.exists():
        slices = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if slices and slices[-1]["start_epoch"] == start_epoch:
            raise RuntimeError(
                f"no progress: attempt {slices[-1]['attempt']} of this job started at epoch {start_epoch} and "
                f"attempt {attempt} starts there again, so no epoch was finished in between. Either one epoch "
                "takes longer than a slice (raise execution.runtime) or the job fails the same way every "
                f"time (see the log). Record of the slices: {path}"
            )
    slices.append({"attempt": attempt, "start_epoch": start_epoch})
    write_text(path, "".join(json.dumps(s) + "\n" for s in slices))


@dataclass
class Run:
    """What one training run holds from its set-up to its end: inputs, model, optimiser, outputs."""

    cfg: TrainConfig
    out_dir: Path
    ctx: distributed.Context
    device: torch.device
    source: object  # an image source of lpa.sources.open_source
    train_rows: pd.DataFrame
    num_classes: int
    model: LongTailNet
    objective: torch.nn.Module
    optimizer: torch.optim.Optimizer
    resolved: dict  # the config written with the outputs, and compared with a last.pt's

    @property
    def last(self) -> Path:
        return self.out_dir / "last.pt"


def set_up(cfg: TrainConfig, split_path, counts_path, out_dir, attributes_path, init_from, image_scores_path=None
           ) -> Run:  # fmt: skip
    """The split and class counts read, the processes joined, the model, objective and optimiser built."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split, meta = read_split(split_path)
    counts = read_class_counts(counts_path)["train_count"].tolist()
    num_classes = meta["num_classes"]
    if len(counts) != num_classes:
        raise ValueError(f"{counts_path} has {len(counts)} classes, {split_path} {num_classes}")
    source = open_source(meta)
    train_rows = split[split["split"] == "train"]
    if len(train_rows) == 0:
        raise ValueError(f"{split_path} has no training images")

    ctx, device = distributed.setup(cfg.device)
    seed_everything(cfg.seed, -1, 0)  # the same initial weights in every process
    model = LongTailNet(cfg.model_config(source.in_channels), num_classes).to(device)
    attributes = read_class_attributes(attributes_path, num_classes, cfg.reading) if attributes_path else None
    image_scores = None
    if cfg.objective == "lpa" and cfg.similarity == "image_cosine":
        if not image_scores_path:
            raise ValueError("similarity image_cosine needs --image-scores (the image_scores.parquet of its K)")
        image_scores = read_image_scores(image_scores_path, train_rows["image_id"], cfg.reading)
    objective = build_objective(cfg, counts, attributes, image_scores).to(device)
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
    )
    resolved = {**asdict(cfg), "init_from": str(init_from) if init_from else None}
    return Run(cfg, out_dir, ctx, device, source, train_rows, num_classes, model, objective, optimizer, resolved)


def resume(run: Run, init_from: str | Path | None) -> tuple[int, list[dict]]:
    """The epoch to start at and the history so far: from ``last.pt`` when it holds this run, else
    from scratch, the model initialised from ``init_from`` when given."""
    if run.last.exists():
        try:
            ckpt = read_checkpoint(run.last, run.device)
        except ValueError as err:  # another format version, or not a checkpoint: start afresh
            log.warning("ignoring %s: %s", run.last, err)
            ckpt = None
        if ckpt is not None and same_run(ckpt.get("config"), run.resolved):
            run.model.load_state_dict(ckpt["model"], strict=True)
            run.optimizer.load_state_dict(ckpt["optimizer"])
            log.info("resumed %s at epoch %d", run.last, ckpt["epoch"])
            return ckpt["epoch"], ckpt["history"]
        if ckpt is not None:
            log.warning("ignoring %s: it was written with another config", run.last)
    elif init_from:
        init_model, _ = load_checkpoint(init_from, run.device)
        try:
            run.model.load_state_dict(init_model.state_dict(), strict=True)
        except RuntimeError as err:
            raise ValueError(f"cannot initialise from {init_from}: architectures differ: {err}") from None
        log.info("initialised from %s", init_from)
    return 0, []


def set_up_input(run: Run) -> tuple[distributed.GlobalBatchSampler, object, torch.nn.Module]:
    """The global batches, their loader and the network that trains on them (on CUDA in
    channels_last; across processes SyncBatchNorm and DistributedDataParallel)."""
    cfg, ctx, device, rows = run.cfg, run.ctx, run.device, run.train_rows
    # never a batch of one through BatchNorm: drop the last partial batch when there are full ones
    sampler = distributed.GlobalBatchSampler(len(rows), cfg.batch_size, cfg.seed, ctx, len(rows) >= cfg.batch_size)
    loader = build_loader(cfg, run.source, rows, sampler, device, ctx.rank)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels once
        run.model = run.model.to(memory_format=torch.channels_last)
    net = run.model
    if ctx.world_size > 1:
        if device.type == "cuda":  # batch statistics over the global batch, as in one process
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(run.model)
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
    workers = f"{cfg.num_workers} worker(s)"
    where = {DeviceLoader: "the device", DeviceFinisher: f"{workers} (decode, crop) and the device"}
    log.info("%s: %d training images, %d classes, %d steps/epoch, %d process(es), device %s, %d parameters, "
             "augmentation on %s", cfg.objective, len(rows), run.num_classes, len(sampler), ctx.world_size, device,
             sum(p.numel() for p in run.model.parameters()), where.get(type(loader), workers))  # fmt: skip
    return sampler, loader, net


def run_epoch(run: Run, net: torch.nn.Module, sampler, loader, step_fn, epoch: int) -> dict:
    """One epoch's steps, read back once at its end: its record (lr, mean losses, train top-1, time)."""
    cfg, ctx, device = run.cfg, run.ctx, run.device
    seed_everything(cfg.seed, epoch, ctx.rank)
    sampler.set_epoch(epoch)
    set_epoch(loader, epoch)
    net.train()
    tic = time.perf_counter()
    bar = tqdm(
        loader, desc=f"{cfg.objective} epoch {epoch + 1}/{cfg.epochs}", mininterval=10, leave=False,
        disable=not ctx.is_main,
    )  # fmt: skip
    lr = learning_rate(cfg, epoch)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    sums = torch.zeros(len(LOSS_NAMES) + 2, dtype=torch.float64, device=device)
    per_class = torch.zeros(2, run.num_classes, dtype=torch.float64, device=device)
    first_bad = torch.full((1,), -1, dtype=torch.long, device=device)
    amp = cfg.amp and device.type == "cuda"
    train_labels = torch.tensor(run.train_rows["label"].to_numpy(), device=device)
    for step, (views, positions) in enumerate(bar):
        views, positions = to_device(views, device), positions.to(device, non_blocking=True)
        reported = step_fn(net, run.objective, run.optimizer, views, train_labels[positions], sums, first_bad, step,
                           amp, per_class, positions)  # fmt: skip
    # the epoch's one read-back: before any checkpoint of it is written
    if int(first_bad) >= 0:
        raise ValueError(f"the loss became non-finite at epoch {epoch + 1}, step {int(first_bad)}")
    totals = distributed.all_sum(sums) if ctx.world_size > 1 else sums.cpu()
    class_totals = (distributed.all_sum(per_class) if ctx.world_size > 1 else per_class.cpu()).numpy()
    seconds = time.perf_counter() - tic
    seen = float(totals[-1])
    return {
        "epoch": epoch + 1,
        "lr": lr,
        **{name: float(totals[i]) / seen for i, name in enumerate(LOSS_NAMES) if name in reported},
        "train_top1": 100.0 * float(totals[-2]) / seen,  # raw-logit argmax, as PaCo logs it
        "train_balanced_top1": monitor.balanced_top1(*class_totals),  # not biased by the class prior
        "seconds": seconds,
        "images_per_second": seen / seconds,
    }


def end_epoch(run: Run, history: list[dict], record: dict) -> None:
    """The epoch's record checked for a stall and added to ``history``; process 0 logs it and writes
    ``last.pt`` and ``metrics.jsonl``."""
    reason = monitor.stall_reason([*history, record], run.num_classes, monitor.first_checked_epoch(run.cfg.epochs))
    record["stalled"] = reason is not None
    history.append(record)
    if run.ctx.is_main:
        log.info("epoch %s", json.dumps(record))
        if reason:
            log.warning("epoch %d: stalled: %s", record["epoch"], reason)
        save_checkpoint(
            run.last,
            config=run.resolved,
            model_config=asdict(run.model.cfg),
            num_classes=run.num_classes,
            model=run.model.state_dict(),
            optimizer=run.optimizer.state_dict(),
            epoch=record["epoch"],
            history=history,
        )
        # followable while the run goes on: rewritten (atomically) after every epoch
        write_text(run.out_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    distributed.barrier()


def finish(run: Run, history: list[dict]) -> None:
    """Process 0 writes ``model.pt`` (without the optimiser), ``config.json`` and ``metrics.jsonl``,
    and removes ``last.pt`` and ``slices.jsonl``."""
    if run.ctx.is_main:
        # again here: a slice that resumes after the last epoch runs no epoch, and Snakemake
        # removed the outputs (metrics.jsonl among them) of the attempt before
        write_text(run.out_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        write_json(run.out_dir / "config.json", run.resolved)
        (run.out_dir / "slices.jsonl").unlink(missing_ok=True)
        final = read_checkpoint(run.last)
        final.pop("optimizer")
        final.pop("format_version")
        save_checkpoint(run.out_dir / "model.pt", **final)
        run.last.unlink()  # training is complete: a forced rerun starts afresh
    distributed.barrier()


def train(
    cfg: TrainConfig,
    split_path: str | Path,
    counts_path: str | Path,
    out_dir: str | Path,
    attributes_path: str | Path | None = None,
    init_from: str | Path | None = None,
    attempt: int = 1,
    image_scores_path: str | Path | None = None,
) -> dict:
    """Train to ``cfg.epochs`` (resuming ``out_dir/last.pt`` if it holds this config); returns the last metrics.

    Under torchrun (WORLD_SIZE > 1) each process trains on its share of every global batch of
    ``cfg.batch_size`` with DistributedDataParallel; process 0 writes the files.
    """
    run = set_up(cfg, split_path, counts_path, out_dir, attributes_path, init_from, image_scores_path)
    start_epoch, history = resume(run, init_from)
    if run.ctx.is_main:
        record_slice(run.out_dir, attempt, start_epoch)
    sampler, loader, net = set_up_input(run)
    step_fn = torch.compile(train_step) if cfg.compile else train_step
    for epoch in range(start_epoch, cfg.epochs):
        end_epoch(run, history, run_epoch(run, net, sampler, loader, step_fn, epoch))
    finish(run, history)
    return history[-1] if history else {}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_dataclass_arguments(parser, TrainConfig)
    parser.set_defaults(device=speed_default("device", "auto"), num_workers=speed_default("num_workers", 0),
                        compile=speed_default("compile", False))  # fmt: skip
    parser.add_argument("--split", required=True, help="split.parquet from the data stage")
    parser.add_argument("--counts", required=True, help="class_counts.csv from the data stage")
    parser.add_argument("--attributes", help="class_attributes.parquet (objective lpa)")
    parser.add_argument("--image-scores", help="image_scores.parquet (similarity image_cosine: s(x) per image)")
    parser.add_argument("--init-from", help="checkpoint to fine-tune from (model.pt)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    parser.add_argument("--attempt", type=int, default=1, help="Snakemake's attempt: >1 is a retry (another slice)")
    args = parser.parse_args(argv)
    setup_logging()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = dataclass_from_args(TrainConfig, args)
    try:
        train(cfg, args.split, args.counts, args.out_dir, args.attributes, args.init_from, args.attempt,
              args.image_scores)  # fmt: skip
    finally:
        distributed.teardown()


if __name__ == "__main__":
    run_main(main)
