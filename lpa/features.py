"""Stage 3, features: the dense local features Z of every training image, as sharded Parquet.

One shard holds a contiguous slice of the training images (by image id). Each row is one
image: ``image_id``, ``label``, ``features``, a fixed-size list of H*W*D values in
(H, W, D) order, and ``cam``, the class activation map of the image's own class (H*W values,
w_y . z_p: what each position adds to the class's logit); the schema metadata ``lpa`` records
``height``, ``width``, ``dim`` and ``centred``. With ``--centre`` each image's local features are
stored with their mean over the map removed: what every position of an image shares, its global
look, is gone before K-means and the attributes stage see them.
Beside each shard, its part of the local features K-means clusters (``--out-sample``, drawn
as :mod:`lpa.clustering.sampling` says). Read them back with :mod:`lpa.io.artifacts`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from lpa.augment.recipes import eval_transform
from lpa.clustering.sampling import chosen_rows, evidence_slots, sample_mask, top_evidence
from lpa.io.artifacts import COMPRESSIONS, read_split, sample_writer, shard_writer
from lpa.io.cli import run_main, setup_logging, speed_default
from lpa.models.checkpoints import load_checkpoint
from lpa.sources.images import open_source
from lpa.sources.loaders import ImageDataset
from lpa.training.distributed import resolve_device

log = logging.getLogger("lpa.features")

DTYPES = {"float16": (np.float16, pa.float16()), "float32": (np.float32, pa.float32())}


def parse_shard(item: str) -> tuple[int, int]:
    """``"2-of-4"`` (Snakemake's scatteritem) -> (2, 4), 1-based."""
    try:
        index, total = (int(x) for x in item.split("-of-"))
    except ValueError:
        raise ValueError(f"shard must look like '2-of-4', got {item!r}") from None
    if not 1 <= index <= total:
        raise ValueError(f"shard index {index} outside 1..{total}")
    return index, total


def shard_rows(image_ids: np.ndarray, index: int, total: int) -> np.ndarray:
    """Positions of the images of shard ``index`` of ``total``: contiguous slices of the sorted ids."""
    order = np.argsort(image_ids, kind="stable")
    return np.array_split(order, total)[index - 1]


def dense_rows(dense: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """(B, D, H, W) -> (B, H*W*D), each row in (H, W, D) order."""
    return dense.permute(0, 2, 3, 1).reshape(dense.shape[0], -1).float().cpu().numpy().astype(dtype)


def class_activation_maps(dense: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """(B, D, H, W) dense maps, (C, D) classifier weights, (B,) labels -> (B, H*W) float32 w_y . z_p."""
    return torch.einsum("bdhw,bd->bhw", dense.float(), weight[labels].float()).flatten(1).cpu().numpy()


def centred(dense: torch.Tensor) -> torch.Tensor:
    """(B, D, H, W) with each image's mean local feature (its GAP) removed from every position."""
    return dense - dense.mean(dim=(2, 3), keepdim=True)


@torch.no_grad()
def extract_shard(
    checkpoint: str | Path,
    split_path: str | Path,
    out: str | Path,
    shard: str,
    batch_size: int = 256,
    dtype: str = "float16",
    device: str = "auto",
    compression: str = "snappy",
    num_workers: int = 0,
    out_sample: str | Path | None = None,
    sample_points: int = 1_000_000,
    sample_seed: int = 0,
    centre: bool = False,
    evidence_share: float = 1.0,
) -> int:
    """Write shard ``shard`` of the training images' dense features to ``out``; returns its row count.

    With ``out_sample``, also the shard's part of K-means' sample: the class-balanced, seeded draw
    of ``sample_points`` local features over every training image (:mod:`lpa.clustering.sampling`),
    the chosen ones of this shard's images. ``num_workers`` DataLoader processes decode and
    transform the images, so that a GPU does not wait on PIL. A non-finite feature (a float16
    overflow, or a model that gives NaN) is an error naming the image; so is a file system
    without room for the shard. ``centre`` removes each image's mean local feature first.
    ``evidence_share`` below 1 draws the sample from each image's positions of highest class
    evidence only, the top share of them (:func:`lpa.clustering.sampling.top_evidence`).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    np_dtype, pa_type = DTYPES[dtype]
    index, total = parse_shard(shard)
    dev = resolve_device(device)
    model, ckpt = load_checkpoint(checkpoint, dev)
    model.eval()
    split, meta = read_split(split_path)
    train = split[split["split"] == "train"]
    rows = shard_rows(train["image_id"].to_numpy(), index, total)
    dataset = ImageDataset(
        open_source(meta),
        train["image_id"].to_numpy()[rows],
        train["label"].to_numpy()[rows],
        eval_transform(ckpt["config"]["augment"], ckpt["config"]["image_size"], ckpt["config"]["normalize"]),
    )
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    # Probe one image for the map's shape, so even an empty shard carries a full schema.
    probe, _ = ImageDataset(dataset.source, train["image_id"].to_numpy()[:1], [0], dataset.transform)[0]
    _, dim, height, width = model(probe[None].to(dev)).dense.shape
    values_bytes = len(rows) * height * width * dim * np.dtype(np_dtype).itemsize
    if out_sample:
        chosen = shard_sample(train["image_id"].to_numpy(), train["label"].to_numpy(), rows,
                              evidence_slots(height * width, evidence_share), sample_points, sample_seed)  # fmt: skip
        values_bytes += int(chosen.sum()) * dim * np.dtype(np_dtype).itemsize
    check_free_space(out, values_bytes)
    written = 0
    with contextlib.ExitStack() as outputs:
        write = outputs.enter_context(shard_writer(out, pa_type, height, width, dim, compression,
                                                   extra={"centred": centre}, cam=True))  # fmt: skip
        if out_sample:
            sample = {"max_points": sample_points, "seed": sample_seed, "evidence_share": evidence_share,
                      "feature_map": [height, width, dim], "images": len(rows),
                      "local_features": int(chosen.size)}  # fmt: skip
            write_sample = outputs.enter_context(sample_writer(out_sample, pa_type, dim, compression, sample))
        weight = model.classifier.weight
        for images, labels in tqdm(loader, desc=f"features {shard}", mininterval=10):
            dense = model(images.to(dev)).dense
            cams = class_activation_maps(dense, weight, labels.to(dev))
            flat = dense_rows(centred(dense) if centre else dense, np_dtype)
            ids = dataset.image_ids[written : written + len(labels)]
            bad = ~np.isfinite(flat).all(axis=1)
            if bad.any():
                hint = " (beyond float16's range: use features.dtype float32)" if dtype == "float16" else ""
                raise ValueError(f"image {ids[bad][0]} of shard {shard} has non-finite features{hint}; "
                                 f"{int(bad.sum())} such images in its batch")  # fmt: skip
            write(ids, labels.numpy(), flat, cams)
            if out_sample:
                write_sample(*sampled_rows(ids, labels.numpy(), flat, cams, chosen[written : written + len(ids)]))
            written += len(labels)
    log.info("shard %s: %d images -> %s", shard, written, out)
    return written


def sampled_rows(ids: np.ndarray, labels: np.ndarray, flat: np.ndarray, cams: np.ndarray,
                 chosen: np.ndarray) -> tuple[np.ndarray, ...]:  # fmt: skip
    """A batch's part of the sample: ``chosen`` (n, slots) picks among each image's top ``slots``
    positions by evidence (``cams``, (n, P)), or among all P of them, of its ``flat`` (n, P*D) features."""
    positions, slots = cams.shape[1], chosen.shape[1]
    local = flat.reshape(len(ids), positions, -1)
    if slots < positions:
        local = np.take_along_axis(local, top_evidence(cams, slots)[..., None], axis=1)
    return chosen_rows(ids, labels, local, chosen)


def shard_sample(image_ids: np.ndarray, labels: np.ndarray, rows: np.ndarray, positions: int, budget: int,
                 seed: int) -> np.ndarray:  # fmt: skip
    """(len(rows), positions) bool: which local features of the shard's ``rows`` K-means clusters, from
    the draw over every training image in image-id order (the order K-means reads its points in)."""
    order = np.argsort(image_ids, kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return sample_mask(labels[order], positions, budget, seed)[rank[rows]]


def check_free_space(out: str | Path, values_bytes: int) -> None:
    """Fail before any work when the output's file system cannot hold the shard (its uncompressed size, +1%)."""
    folder = Path(out).parent
    folder.mkdir(parents=True, exist_ok=True)
    need, free = int(values_bytes * 1.01) + (1 << 20), shutil.disk_usage(folder).free
    if free < need:
        raise ValueError(f"{folder} has {free / 2**30:.2f} GiB free, the shard {Path(out).name} needs up to "
                         f"{need / 2**30:.2f} GiB: free space, or write the shards elsewhere")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--shard", required=True, help="which shard, as '2-of-4'")
    parser.add_argument("--out", required=True)
    parser.add_argument("--out-sample", help="also write the shard's part of K-means' sample here")
    parser.add_argument("--sample-points", type=int, default=1_000_000, help="the point budget (kmeans.max_points)")
    parser.add_argument("--sample-seed", type=int, default=0, help="the draw's seed (K-means' seed)")
    parser.add_argument("--batch-size", type=int, default=speed_default("features_batch_size", 256))
    parser.add_argument("--dtype", default="float16", choices=sorted(DTYPES))
    parser.add_argument("--compression", default="snappy", choices=COMPRESSIONS, help="of the features column")
    parser.add_argument("--num-workers", type=int, default=speed_default("num_workers", 0),
                        help="DataLoader processes decoding the images")  # fmt: skip
    parser.add_argument("--device", default=speed_default("device", "auto"))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--centre", action="store_true", help="remove each image's mean local feature")
    parser.add_argument("--evidence-share", type=float, default=1.0,
                        help="draw the sample from each image's top share of positions by class evidence")
    args = parser.parse_args(argv)
    setup_logging()
    if args.threads:
        torch.set_num_threads(args.threads)
    extract_shard(args.checkpoint, args.split, args.out, args.shard, args.batch_size, args.dtype, args.device,
                  args.compression, args.num_workers, args.out_sample, args.sample_points,
                  args.sample_seed, args.centre, args.evidence_share)  # fmt: skip


if __name__ == "__main__":
    run_main(main)
