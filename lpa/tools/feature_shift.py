"""How far fine-tuning moved the pooled features the classifier reads, and towards what.

For each ``--checkpoint NAME=PATH``, on the images of ``--eval-split``: the linear CKA of its
pooled features GAP(Z) to those of ``--reference`` (the PaCo model it was fine-tuned from;
1 = the same representation up to rotation and scale), the mean cosine between its class
centroids, and the correlation of those centroid cosines with the class similarity of a(y)
(``--attributes``, :func:`lpa.targets.similarity.class_similarity`): whether the classes
came to sit as their pseudo-attributes say.

    python -m lpa.tools.feature_shift --reference seed0/baseline/paco/model.pt \
        --checkpoint alpha0=seed0/finetune/K16_none_alpha0.0_e10_lr0.01/model.pt \
        --split data/split.parquet --attributes seed0/attributes/K16/class_attributes.parquet
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lpa.augment.recipes import eval_transform
from lpa.io.artifacts import read_class_attributes, read_split
from lpa.io.cli import name_path_pairs, run_main, setup_logging
from lpa.io.files import write_json
from lpa.models.checkpoints import load_checkpoint
from lpa.sources.images import open_source
from lpa.sources.loaders import ImageDataset
from lpa.targets.similarity import class_similarity
from lpa.tools.probe import pooled_and_logits

log = logging.getLogger("lpa.tools.feature_shift")


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al., ICML 2019) of (N, D1) and (N, D2) features of the same images."""
    x = np.asarray(x, np.float64) - np.mean(x, 0)
    y = np.asarray(y, np.float64) - np.mean(y, 0)
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def centroid_cosines(features: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) cosines between the class means of the L2-normalised features."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    means = np.stack([unit[labels == c].mean(0) for c in range(num_classes)])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    return means @ means.T


def off_diagonal_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two (C, C) matrices over their off-diagonal entries."""
    mask = ~np.eye(len(a), dtype=bool)
    return float(np.corrcoef(a[mask], b[mask])[0, 1])


def feature_shift(reference: str, checkpoints: Sequence[tuple[str, str]], split_path: str, attributes_path: str,
                  eval_split: str = "val") -> pd.DataFrame:  # fmt: skip
    """One row per model (the reference first): CKA to it, mean centroid cosine, its correlation with a(y)."""
    split, meta = read_split(split_path)
    rows = split[split["split"] == eval_split]
    if rows.empty:
        raise ValueError(f"{split_path} has no images in split {eval_split!r}")
    classes = meta["num_classes"]
    target = class_similarity(read_class_attributes(attributes_path, classes), "cosine")
    source, labels = open_source(meta), rows["label"].to_numpy()
    pooled = {}
    for name, path in [("reference", reference), *checkpoints]:
        model, ckpt = load_checkpoint(path)
        cfg = ckpt["config"]
        dataset = ImageDataset(source, rows["image_id"], labels, eval_transform(cfg["augment"], cfg["image_size"],
                                                                                 cfg["normalize"]))  # fmt: skip
        pooled[name] = pooled_and_logits(model, dataset)[0]
    out = []
    for name, x in pooled.items():
        cos = centroid_cosines(x, labels, classes)
        out.append({"model": name, "cka_to_reference": linear_cka(pooled["reference"], x),
                    "centroid_cosine": float(cos[~np.eye(classes, dtype=bool)].mean()),
                    "centroid_corr_with_a": off_diagonal_correlation(cos, target)})  # fmt: skip
    return pd.DataFrame(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", required=True, help="the model the others were fine-tuned from")
    parser.add_argument("--checkpoint", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--split", required=True)
    parser.add_argument("--attributes", required=True, help="class_attributes.parquet (its cosine is the target)")
    parser.add_argument("--eval-split", default="val")
    parser.add_argument("--out", help="the rows as JSON")
    args = parser.parse_args(argv)
    setup_logging()
    table = feature_shift(args.reference, name_path_pairs(args.checkpoint, "--checkpoint"), args.split,
                          args.attributes, args.eval_split)  # fmt: skip
    if args.out:
        write_json(args.out, table.to_dict(orient="records"))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    run_main(main)
