"""How well any weighting of positions could recover part sharing with the prototypes K-means found.

For a planted source (:mod:`lpa.sources.planted`), a diagnostic, never an input to LPA: it
reads the ground truth. Each training image's histogram counts only the positions of the map
that its own class's planted parts cover (the best a reading that weights positions, as
``cam`` or ``foreground`` do, could hope to find), and the class-sharing AUCs of the resulting
a(y) are reported beside those of the plain histogram. It also reports how pure the prototypes
are: for each prototype nearest to enough part positions, the share of them that its most
common part takes (1: a prototype per part) and the share its most common look takes, where the
source has looks. When even the oracle weighting stays low, the prototypes, not the reading,
limit the recovery. A second oracle tells whether better prototypes could be found in these
features at all: K-means with the same K clustered on the own-part positions alone (``clustered
on own parts``, the best any choice of the positions K-means samples could do); when it stays
low too, the local features themselves do not group by part.

    python -m lpa.tools.reading_ceiling --features seed0/features/shard-*.parquet \\
        --centroids seed0/kmeans/K16/centroids.npy --kmeans-stats seed0/kmeans/K16/stats.json \\
        --split data/split.parquet
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from lpa.clustering.torch_kmeans import torch_kmeans
from lpa.io.artifacts import feature_shape, iter_local_features, read_shard_schema
from lpa.io.cli import run_main, setup_logging
from lpa.io.files import read_json, write_json
from lpa.metrics.recovery import sharing_recovery
from lpa.sources.parts import positions_of
from lpa.sources.planted import source_of_split
from lpa.targets.readings import assign_and_cosines, image_scores
from lpa.targets.similarity import class_similarity

MIN_POSITIONS = 20  # a prototype nearest to fewer part positions is left out of the purity
MAX_PART_POINTS = 200_000  # own-part positions the second oracle clusters, a seeded draw above it


def prototype_purity(nearest: np.ndarray, part: np.ndarray, look: np.ndarray | None, k: int) -> dict:
    """Over the part positions (``part`` >= 0): per prototype with at least :data:`MIN_POSITIONS`,
    the share of its positions its most common part holds, and its most common look."""
    held = part >= 0
    parts, looks = [], []
    for proto in range(k):
        mine = held & (nearest == proto)
        if mine.sum() < MIN_POSITIONS:
            continue
        parts.append(np.bincount(part[mine]).max() / mine.sum())
        if look is not None:
            looks.append(np.bincount(look[mine]).max() / mine.sum())
    return {
        "prototypes": len(parts),
        "part_purity": float(np.mean(parts)) if parts else None,
        "look_purity": float(np.mean(looks)) if looks else None,
        "part_positions_share": float(held.mean()),
    }


def clustered_on_parts(points: np.ndarray, labels: np.ndarray, weights: np.ndarray, k: int, normalize: bool,
                       classes: int) -> np.ndarray:  # fmt: skip
    """(classes, K) sums of the own-part-positions histograms, with K prototypes clustered on those
    positions' ``points`` (n, D) alone (:data:`MAX_PART_POINTS` of them at most, seeded)."""
    points = points.astype(np.float32)
    if normalize:
        points /= np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    fit = points
    if len(points) > MAX_PART_POINTS:
        fit = points[np.random.default_rng(0).choice(len(points), MAX_PART_POINTS, replace=False)]
    centroids, _, _, _ = torch_kmeans(fit, min(k, len(fit)), spherical=normalize, device="cpu")
    nearest, _ = assign_and_cosines(points[:, None], centroids, normalize)
    sums = np.zeros((classes, k))
    np.add.at(sums, (labels, nearest[:, 0]), weights)
    return sums


def reading_ceiling(feature_paths: Sequence[str], centroids: np.ndarray, normalize: bool, split: str) -> dict:
    source = source_of_split(split)
    if source is None:
        raise ValueError(f"{split}: not a planted source's split; the ceiling needs the ground truth")
    height, width, _ = feature_shape(read_shard_schema(feature_paths[0]), str(feature_paths[0]))
    k, classes = len(centroids), source.num_classes
    sums = {"histogram": np.zeros((classes, k)), "own parts only": np.zeros((classes, k))}
    counts = np.zeros(classes)
    nearest_all, part_all, label_all, own_points = [], [], [], []
    for ids, labels, local in iter_local_features(feature_paths):
        nearest, _ = assign_and_cosines(local, centroids, normalize)
        part = np.stack([positions_of(m, height, width).ravel() for m in source.part_masks(ids)])
        own = np.stack([np.isin(p, source.parts[y]) for p, y in zip(part, labels)]).astype(np.float64)
        weights = own / np.maximum(own.sum(1, keepdims=True), 1e-30)
        np.add.at(sums["histogram"], labels, image_scores(nearest, k))
        np.add.at(sums["own parts only"], labels, image_scores(nearest, k, weights))
        counts += np.bincount(labels, minlength=classes)
        held = own > 0
        own_points.append((local[held], np.broadcast_to(labels[:, None], held.shape)[held], weights[held]))
        nearest_all.append(nearest.ravel())
        part_all.append(part.ravel())
        label_all.append(np.repeat(labels, height * width))
    sums["clustered on own parts"] = clustered_on_parts(*(np.concatenate(x) for x in zip(*own_points)), k,
                                                        normalize, classes)  # fmt: skip
    shares_part, shares_look = source.shares_part(), source.shares_look()
    rows = {}
    for name, total in sums.items():
        similarity = class_similarity((total / np.maximum(counts, 1)[:, None]).astype(np.float32), "cosine")
        rows[name] = {"part_sharing": sharing_recovery(similarity, shares_part)}
        if shares_look is not None:
            rows[name]["look_sharing"] = sharing_recovery(similarity, shares_look)
    look = source.groups[np.concatenate(label_all)] if shares_look is not None else None
    purity = prototype_purity(np.concatenate(nearest_all), np.concatenate(part_all), look, k)
    return {"K": k, "cosine": rows, **purity}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", nargs="+", required=True)
    parser.add_argument("--centroids", required=True)
    parser.add_argument("--kmeans-stats", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--out", help="the figures as JSON")
    args = parser.parse_args(argv)
    setup_logging()
    normalize = bool(read_json(args.kmeans_stats)["config"]["normalize"])
    result = reading_ceiling(args.features, np.load(args.centroids).astype(np.float32), normalize, args.split)
    if args.out:
        write_json(args.out, result)
    for name, row in result["cosine"].items():
        print(f"{name:>16}: " + ", ".join(f"{key} AUC {auc:.3f}" for key, auc in row.items()))
    def share(value):
        return "-" if value is None else f"{value:.2f}"

    print(f"prototypes on part positions: {result['prototypes']} of {result['K']}, part purity "
          f"{share(result['part_purity'])}, look purity {share(result['look_purity'])}; part positions "
          f"{result['part_positions_share']:.2f} of all")  # fmt: skip


if __name__ == "__main__":
    run_main(main)
