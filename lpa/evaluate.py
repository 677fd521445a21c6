"""Stage 7, evaluate: top-1 accuracy on the test split, overall and per shot group.

Uses the classifier's raw logits (no logit adjustment at test time) of the final model.
Writes ``summary.json`` (top-1 % for many / medium / few / all) and ``per_class.csv``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from lpa.augment.recipes import eval_transform
from lpa.io.artifacts import GROUPS, read_class_counts, read_split
from lpa.io.cli import run_main, setup_logging, speed_default
from lpa.io.files import write_json, write_text
from lpa.models.checkpoints import load_checkpoint
from lpa.sources.images import open_source
from lpa.sources.loaders import ImageDataset
from lpa.training.distributed import resolve_device

log = logging.getLogger("lpa.evaluate")


@torch.no_grad()
def predict(model: torch.nn.Module, loader: DataLoader, device: torch.device) -> np.ndarray:
    model.eval()
    out = [
        model(images.to(device)).logits.argmax(1).cpu() for images, _ in tqdm(loader, desc="evaluate", mininterval=10)
    ]
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


def per_class_accuracy(labels: np.ndarray, predictions: np.ndarray, counts: pd.DataFrame) -> pd.DataFrame:
    """One row per class: training count, shot group, test images, correct, top-1 %."""
    num_classes = len(counts)
    total = np.bincount(labels, minlength=num_classes)
    correct = np.bincount(labels[predictions == labels], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        top1 = np.where(total > 0, 100.0 * correct / total, np.nan)
    return pd.DataFrame(
        {
            "label": counts["label"],
            "train_count": counts["train_count"],
            "group": counts["group"],
            "test_images": total,
            "correct": correct,
            "top1": top1,
        }
    )


def summarize(per_class: pd.DataFrame) -> dict:
    """Top-1 % over the test images of each shot group and of all classes (None for an empty group),
    and ``balanced``, the mean per-class top-1 %."""
    summary = {}
    for name in (*GROUPS, "all"):
        rows = per_class if name == "all" else per_class[per_class["group"] == name]
        images = int(rows["test_images"].sum())
        summary[name] = 100.0 * float(rows["correct"].sum()) / images if images else None
        summary[f"{name}_classes"] = int(len(rows))
    # the mean of the per-class top-1 over the classes the split holds: what settings are chosen on
    scored = per_class[per_class["test_images"] > 0]
    summary["balanced"] = float(scored["top1"].mean()) if len(scored) else None
    return summary


def training_health(history: list[dict] | None) -> dict:
    """The last epoch's balanced training top-1 and stall flag (:mod:`lpa.training.monitor`).

    None for an imported model.
    """
    last = history[-1] if history else {}
    return {"train_balanced_top1": last.get("train_balanced_top1"), "stalled": last.get("stalled")}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--counts", required=True)
    parser.add_argument("--eval-split", default="test", help="which split to score (test, or val where one exists)")
    parser.add_argument("--batch-size", type=int, default=speed_default("eval_batch_size", 256))
    parser.add_argument("--device", default=speed_default("device", "auto"))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out-summary", required=True)
    parser.add_argument("--out-per-class", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    model, ckpt = load_checkpoint(args.checkpoint, device)
    split, meta = read_split(args.split)
    rows = split[split["split"] == args.eval_split]
    if rows.empty:
        raise ValueError(f"{args.split} has no images in split {args.eval_split!r}")
    counts = read_class_counts(args.counts)
    transform = eval_transform(ckpt["config"]["augment"], ckpt["config"]["image_size"], ckpt["config"]["normalize"])
    dataset = ImageDataset(open_source(meta), rows["image_id"], rows["label"], transform)
    predictions = predict(model, DataLoader(dataset, batch_size=args.batch_size), device)
    table = per_class_accuracy(rows["label"].to_numpy(), predictions, counts)
    summary = {
        **summarize(table),
        "split": args.eval_split,
        "checkpoint": args.checkpoint,
        "epochs": ckpt["epoch"],
        "objective": ckpt["config"]["objective"],
        "seed": ckpt["config"]["seed"],  # pairs this run with other methods' runs of the same seed
        **training_health(ckpt.get("history")),
    }
    write_text(args.out_per_class, table.to_csv(index=False))
    write_json(args.out_summary, summary)
    log.info("top-1 %%: %s", {k: summary[k] for k in (*GROUPS, "all")})


if __name__ == "__main__":
    run_main(main)
