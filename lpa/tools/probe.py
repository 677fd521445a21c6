"""A linear probe that tells a failing encoder from a failing classifier.

Fits a class-balanced logistic regression on a trained model's pooled features of the training
images and scores it on another split, beside the model's own classifier on the same images.
When the probe does well and the model's classifier does not, the encoder has learnt the
classes and the classifier has not; when both fail, the features themselves lack the cue
(e.g. an augmentation recipe that made the model invariant to it).

    python -m lpa.tools.probe --checkpoint model.pt --split split.parquet --eval-split val
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from lpa.augment.recipes import eval_transform
from lpa.io.artifacts import read_split
from lpa.io.cli import run_main, setup_logging
from lpa.io.files import write_json
from lpa.models.checkpoints import load_checkpoint
from lpa.sources.images import open_source
from lpa.sources.loaders import ImageDataset
from lpa.training.monitor import balanced_top1

log = logging.getLogger("lpa.tools.probe")


@torch.no_grad()
def pooled_and_logits(model, dataset: ImageDataset, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) pooled features and (N, C) classifier logits of ``dataset``'s images, in eval mode."""
    model.eval()
    pooled, logits = [], []
    for images, _ in DataLoader(dataset, batch_size=batch_size):
        out = model(images)
        pooled.append(out.pooled.numpy())
        logits.append(out.logits.numpy())
    return np.concatenate(pooled), np.concatenate(logits)


def balanced(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> float:
    hits = np.bincount(labels, weights=predictions == labels, minlength=num_classes)
    return balanced_top1(hits, np.bincount(labels, minlength=num_classes))


def probe(checkpoint: str, split_path: str, eval_split: str = "test") -> dict:
    """Balanced top-1 (%) of the linear probe and of the model's classifier on ``eval_split``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    model, ckpt = load_checkpoint(checkpoint)
    split, meta = read_split(split_path)
    source, cfg = open_source(meta), ckpt["config"]
    transform = eval_transform(cfg["augment"], cfg["image_size"], cfg["normalize"])
    sets = {}
    for name in ("train", eval_split):
        rows = split[split["split"] == name]
        if rows.empty:
            raise ValueError(f"{split_path} has no images in split {name!r}")
        dataset = ImageDataset(source, rows["image_id"], rows["label"], transform)
        sets[name] = (*pooled_and_logits(model, dataset), rows["label"].to_numpy())
    (train_x, _, train_y), (test_x, test_logits, test_y) = sets["train"], sets[eval_split]
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(class_weight="balanced", max_iter=2000).fit(scaler.transform(train_x), train_y)
    classes = meta["num_classes"]
    return {
        "checkpoint": str(checkpoint),
        "split": eval_split,
        "probe_balanced_top1": balanced(test_y, clf.predict(scaler.transform(test_x)), classes),
        "classifier_balanced_top1": balanced(test_y, test_logits.argmax(1), classes),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--split", required=True, help="split.parquet of the data stage")
    parser.add_argument("--eval-split", default="test", help="where to score (test, or val where one exists)")
    parser.add_argument("--out", help="the result as JSON")
    args = parser.parse_args(argv)
    setup_logging()
    result = probe(args.checkpoint, args.split, args.eval_split)
    log.info("balanced top-1 on %s: linear probe %.1f%%, the model's classifier %.1f%%", args.eval_split,
             result["probe_balanced_top1"], result["classifier_balanced_top1"])  # fmt: skip
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    run_main(main)
