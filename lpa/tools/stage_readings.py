"""Which stage of the backbone has local features whose pseudo-attributes find the parts.

For a planted source (:mod:`lpa.sources.planted`), a diagnostic, never an input to LPA: it
reads the ground truth. The workflow clusters the last stage's map; finer maps of earlier
stages see less of the image around each position, so a part's features might carry less of
the look. For every stage's map of the training images (optionally with each image's mean local
feature removed, as ``features.centre``), it clusters K prototypes (spherical K-means on a
seeded draw of the positions) and reports the part- and look-sharing AUCs of a(y) read three
ways: the plain histogram, ``cam`` (the last stage's class activation map brought to the
stage's grid by nearest-neighbour upsampling) and the class's own part positions only (the
ground-truth ceiling of :mod:`lpa.tools.reading_ceiling`).

    python -m lpa.tools.stage_readings --checkpoint seed0/baseline/paco/model.pt \\
        --split data/split.parquet --k 16 64 --centre
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lpa.augment.recipes import eval_transform
from lpa.clustering.torch_kmeans import torch_kmeans
from lpa.io.artifacts import read_split
from lpa.io.cli import run_main, setup_logging
from lpa.io.files import write_json
from lpa.metrics.recovery import sharing_recovery
from lpa.models.checkpoints import load_checkpoint
from lpa.sources.images import open_source
from lpa.sources.loaders import ImageDataset
from lpa.sources.parts import positions_of
from lpa.sources.planted import source_of_split
from lpa.targets.readings import assign_and_cosines, cam_weights, image_scores
from lpa.targets.similarity import class_similarity

MAX_POINTS = 200_000  # positions K-means clusters per stage, a seeded draw above it


def stage_names(backbone: torch.nn.Module) -> list[str]:
    """The backbone's stages, ``layer1`` ... ``layerN``, in order (PaCo's and torchvision's names)."""
    names = [name for name, _ in backbone.named_children() if name.startswith("layer")]
    return sorted(names, key=lambda name: int(name[len("layer") :]))


@torch.no_grad()
def stage_maps(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Every stage's (B, D, H, W) output for ``images``, and the last stage's class activation
    maps of ``labels`` (B, H, W), w_y . z_p."""
    maps, hooks = {}, []
    for name in stage_names(model.backbone):
        module = getattr(model.backbone, name)
        hooks.append(module.register_forward_hook(lambda _m, _i, out, name=name: maps.__setitem__(name, out)))
    try:
        dense = model(images).dense
    finally:
        for hook in hooks:
            hook.remove()
    return maps, torch.einsum("bdhw,bd->bhw", dense, model.classifier.weight[labels])


def class_attributes(nearest: np.ndarray, weights: np.ndarray | None, labels: np.ndarray, k: int,
                     classes: int) -> np.ndarray:  # fmt: skip
    """(classes, K) a(y): the mean over each class's images of their (weighted) histograms."""
    sums = np.zeros((classes, k))
    np.add.at(sums, labels, image_scores(nearest, k, weights))
    return (sums / np.maximum(np.bincount(labels, minlength=classes), 1)[:, None]).astype(np.float32)


def stage_readings(checkpoint: str, split_path: str, ks: Sequence[int], centre: bool = False, seed: int = 0,
                   batch_size: int = 256) -> list[dict]:  # fmt: skip
    source = source_of_split(split_path)
    if source is None:
        raise ValueError(f"{split_path}: not a planted source's split; the readings need the ground truth")
    model, ckpt = load_checkpoint(checkpoint, "cpu")
    model.eval()
    split, meta = read_split(split_path)
    train = split[split["split"] == "train"]
    cfg = ckpt["config"]
    dataset = ImageDataset(open_source(meta), train["image_id"].to_numpy(), train["label"].to_numpy(),
                           eval_transform(cfg["augment"], cfg["image_size"], cfg["normalize"]))  # fmt: skip
    per_stage, cams = {}, []
    for images, labels in torch.utils.data.DataLoader(dataset, batch_size=batch_size):
        maps, cam = stage_maps(model, images, labels)
        cams.append(cam)
        for name, dense in maps.items():
            per_stage.setdefault(name, []).append(dense)
    cam = torch.cat(cams)[:, None]
    ids, labels = dataset.image_ids, np.asarray(dataset.labels)
    shares = {"part_sharing": source.shares_part(), "look_sharing": source.shares_look()}
    rows = []
    for name, dense in per_stage.items():
        dense = torch.cat(dense)
        n, dim, height, width = dense.shape
        local = dense.permute(0, 2, 3, 1).reshape(n, height * width, dim)
        if centre:
            local = local - local.mean(1, keepdim=True)
        local = local.numpy()
        part = np.stack([positions_of(m, height, width).ravel() for m in source.part_masks(ids)])
        own = np.stack([np.isin(p, source.parts[y]) for p, y in zip(part, labels)]).astype(np.float64)
        weights = {"histogram": None, "cam": cam_weights(F.interpolate(cam, size=(height, width)).flatten(1).numpy()),
                   "own parts only": own / np.maximum(own.sum(1, keepdims=True), 1e-30)}  # fmt: skip
        points = local.reshape(-1, dim)
        points = points[np.random.default_rng(seed).choice(len(points), min(len(points), MAX_POINTS), replace=False)]
        for k in ks:
            centroids, _, _, _ = torch_kmeans(points, k, seed=seed, device="cpu")
            nearest, _ = assign_and_cosines(local, centroids, True)
            row = {"stage": name, "map": [height, width, dim], "K": k}
            for reading, weight in weights.items():
                similarity = class_similarity(class_attributes(nearest, weight, labels, k, source.num_classes),
                                              "cosine")  # fmt: skip
                row[reading] = {kind: sharing_recovery(similarity, truth) for kind, truth in shares.items()
                                if truth is not None}  # fmt: skip
            rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--k", type=int, nargs="+", default=[16])
    parser.add_argument("--centre", action="store_true", help="remove each image's mean local feature")
    parser.add_argument("--seed", type=int, default=0, help="of the positions' draw and K-means")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", help="the figures as JSON")
    args = parser.parse_args(argv)
    setup_logging()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = stage_readings(args.checkpoint, args.split, args.k, args.centre, args.seed)
    if args.out:
        write_json(args.out, rows)
    for row in rows:
        readings = "; ".join(f"{reading} " + "/".join(f"{auc:.3f}" for auc in row[reading].values())
                             for reading in ("histogram", "cam", "own parts only"))  # fmt: skip
        kinds = "/".join(kind.split("_")[0] for kind in row["histogram"])
        print(f"{row['stage']} {'x'.join(map(str, row['map']))} K {row['K']}: {readings} ({kinds} sharing AUC)")


if __name__ == "__main__":
    run_main(main)
