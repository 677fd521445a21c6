"""Stage 5, attributes: per-image pseudo-attribute scores s(x) and class vectors a(y).

Streaming shard by shard (never all features in memory), every image is scored against the
prototypes, s(x) in R^K, and a(y) is the mean of s(x) over class y's training images. The
paper says only "aggregate the pseudo-attribute scores of the samples with the same class", so
s(x) has several readings (:data:`READINGS`), each written as a column:

- ``histogram``: the share of the image's local features nearest to each prototype (hard
  assignment; the default, the ``attributes`` column);
- ``maxcos``: the largest cosine, over the image's positions, of a local feature to the prototype
  (soft: how strongly the part appears anywhere), clipped at 0;
- ``softmax``: the mean over positions of a softmax over the prototypes of the cosines at
  temperature :data:`SOFTMAX_TEMPERATURE` (soft assignment);
- ``presence``: 1 where the prototype holds at least :data:`PRESENCE_SHARE` of the image's
  positions (a set of parts; a(y) is then how often each part is present in the class);
- ``cam``: the histogram with each position weighted by the classifier's evidence for the
  image's own class above the image's mean, relu(w_y . z_p - mean_p w_y . z_p) (the shards'
  class activation maps), so that the positions the classifier does not read, the background
  and what every position shares, count little;
- ``foreground``: the histogram without the prototypes nearest to more than ``background_share``
  of the image's positions (its background, or a global look), renormalised.

Also a balance summary that compares how evenly the pseudo-attributes and the class labels
are spread, a diagnostic of the positive weights that LPA's SupCon term derives from a(y)
(:func:`weight_diagnostic`) and, where the source knows which part lies where (``parts``), the
recovery metrics of :mod:`lpa.metrics.recovery`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import numpy as np
import pyarrow.parquet as pq
from tqdm import tqdm

from lpa.io.artifacts import (
    feature_shape,
    image_scores_writer,
    iter_local_features,
    read_class_counts,
    write_class_attributes,
)
from lpa.io.cli import run_main, setup_logging
from lpa.io.files import read_json, write_json
from lpa.metrics import recovery
from lpa.targets.kinds import READINGS
from lpa.targets.readings import BACKGROUND_SHARE, assign_and_cosines, reading_scores
from lpa.targets.similarity import class_similarity, image_unit_scores
from lpa.targets.weights import DIAGNOSED, diagnostic_summary

log = logging.getLogger("lpa.attributes")


def class_vectors(scores_sum: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-class means a(y) from summed scores (C, K) and image counts (C,); zero rows for empty classes."""
    return (scores_sum / np.maximum(counts, 1)[:, None]).astype(np.float32)


def gini(values: Sequence[float]) -> float:
    """Gini coefficient of non-negative frequencies: 0 for a uniform spread, towards 1 for one winner."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(((2 * ranks - n - 1) * x).sum() / (n * x.sum()))


def balance(values: Sequence[float]) -> dict:
    x = np.asarray(values, dtype=np.float64)
    positive = x[x > 0]
    return {
        "count": int(len(x)),
        "empty": int((x == 0).sum()),
        # max/min over the non-empty ones; the number of empty ones is reported beside it
        "imbalance_ratio": float(positive.max() / positive.min()) if len(positive) else None,
        "gini": gini(x),
    }


class GroundTruth:
    """What :func:`compute` keeps of every image when the source knows its parts (for :mod:`lpa.metrics.recovery`)."""

    def __init__(self) -> None:
        self.ids: list[np.ndarray] = []
        self.scores: dict[str, list[np.ndarray]] = {r: [] for r in READINGS}
        self.cosines: list[np.ndarray] = []

    def add(self, ids: np.ndarray, scores: dict[str, np.ndarray], cos: np.ndarray) -> None:
        self.ids.append(ids)
        for reading, values in scores.items():
            self.scores[reading].append(values)
        self.cosines.append(cos.astype(np.float16))

    def metrics(self, source, vectors: dict[str, np.ndarray], height: int, width: int, similarities) -> dict:
        """The recovery metrics against a planted source's ground truth (:mod:`lpa.sources.planted`):
        parts, and where its classes share a global look (``looks``), the look too."""
        from lpa.sources.parts import PARTS, positions_of

        ids = np.concatenate(self.ids)
        masks = source.part_masks(ids)
        holds = source.holds(ids)
        in_use = holds.any(0) & ~holds.all(0)  # a part no image holds (or every image) has no recovery
        positions = np.stack([positions_of(m, height, width) for m in masks]).reshape(-1)
        cos = np.concatenate(self.cosines).reshape(len(positions), -1).astype(np.float32)
        at_positions = positions[:, None] == np.flatnonzero(in_use)[None, :]
        upper = np.triu_indices(source.num_classes, k=1)
        metrics = {
            "chance": 0.5,
            "parts": [p for p, used in zip(PARTS, in_use) if used],
            "part_images": {r: recovery.part_recovery(np.concatenate(v), holds[:, in_use])
                            for r, v in self.scores.items()},  # fmt: skip
            "part_positions": recovery.part_recovery(cos, at_positions),
        }
        kinds = (("class_sharing", "classes_sharing_a_part", source.shares_part()),
                 ("look_sharing", "classes_sharing_a_look", source.shares_look()))  # fmt: skip
        for name, fraction, shares in kinds:
            if shares is None:
                continue
            metrics[name] = {
                r: {kind: recovery.sharing_recovery(class_similarity(a, kind), shares) for kind in similarities}
                for r, a in vectors.items()
            }
            metrics[fraction] = float(shares[upper].mean())
        return metrics


def compute(
    feature_paths: Sequence[str],
    centroids: np.ndarray,
    normalize: bool,
    num_classes: int,
    out_scores: str,
    truth: GroundTruth | None = None,
    background_share: float = BACKGROUND_SHARE,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Stream the shards, writing every reading of s(x) to ``out_scores`` (``scores``: the histogram).

    Returns the class vectors a(y) (C, K) of each reading, the class means of the unit-length
    s(x) (C, K; the per-image target's expected weights), training images per class (C,) and
    how many local features each pseudo-attribute holds (K,); fills ``truth`` if given.
    """
    k = len(centroids)
    sums = {r: np.zeros((num_classes, k), np.float64) for r in READINGS}
    unit_sums = {r: np.zeros((num_classes, k), np.float64) for r in READINGS}
    counts = np.zeros(num_classes, np.int64)
    frequency = np.zeros(k, np.int64)
    with image_scores_writer(out_scores, k) as write:
        for ids, labels, local, cams in tqdm(iter_local_features(feature_paths, cam=True), desc="attributes",
                                             mininterval=10):  # fmt: skip
            bad = labels[(labels < 0) | (labels >= num_classes)]
            if len(bad):
                raise ValueError(f"feature label {bad[0]} outside 0..{num_classes - 1} (class_counts.csv)")
            nearest, cos = assign_and_cosines(local, centroids, normalize)
            scores = reading_scores(nearest, cos, cams, background_share)
            frequency += np.bincount(nearest.ravel(), minlength=k)
            for reading, values in scores.items():
                np.add.at(sums[reading], labels, values)
                np.add.at(unit_sums[reading], labels, image_unit_scores(values))
            counts += np.bincount(labels, minlength=num_classes)
            if truth is not None:
                truth.add(ids, scores, cos)
            write(ids, labels, scores)
    vectors = {r: class_vectors(v, counts) for r, v in sums.items()}
    return vectors, {r: class_vectors(v, counts) for r, v in unit_sums.items()}, counts, frequency


# the similarities whose class-sharing recovery recovery.json reports
RECOVERED = ("cosine", "cosine_pow4", "top3", "dominant", "jaccard")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--features", nargs="+", required=True, help="feature shards (Parquet)")
    parser.add_argument("--centroids", required=True, help="centroids.npy from the kmeans stage")
    parser.add_argument("--kmeans-stats", required=True, help="stats.json from the kmeans stage")
    parser.add_argument("--counts", required=True, help="class_counts.csv from the data stage")
    parser.add_argument("--out-scores", required=True, help="image_scores.parquet: s(x) of every reading")
    parser.add_argument("--out-classes", required=True)
    parser.add_argument("--out-balance", required=True)
    parser.add_argument("--batch-size", type=int, default=128, help="fine-tuning batch (the weight diagnostic)")
    parser.add_argument("--background-share", type=float, default=BACKGROUND_SHARE,
                        help="the foreground reading sets aside prototypes holding more of an image's positions")
    parser.add_argument("--split", help="split.parquet of the data stage: its source's ground truth, if any")
    parser.add_argument("--out-recovery", help="recovery.json: the recovery metrics (where the source has parts)")
    args = parser.parse_args(argv)
    setup_logging()
    centroids = np.load(args.centroids).astype(np.float32)
    normalize = bool(read_json(args.kmeans_stats)["config"]["normalize"])
    class_counts = read_class_counts(args.counts)
    num_classes = len(class_counts)
    from lpa.sources.planted import source_of_split  # numpy and PIL only, like this stage

    source = source_of_split(args.split) if args.split else None
    truth = GroundTruth() if source is not None and args.out_recovery else None
    if not 0 < args.background_share <= 1:
        raise ValueError(f"--background-share must be in (0, 1], got {args.background_share}")
    vectors, unit_means, images, frequency = compute(args.features, centroids, normalize, num_classes,
                                                     args.out_scores, truth, args.background_share)  # fmt: skip
    empty = np.flatnonzero(images == 0).tolist()
    if empty:
        log.warning("classes %s have no training images: their a(y) is all zeros", empty)
    write_class_attributes(args.out_classes, vectors, images, unit_means)
    if args.out_recovery:
        if truth is None:
            metrics = {"ground_truth": False, "reason": "the source does not know which part lies where"}
        else:
            height, width, _ = feature_shape(pq.read_schema(args.features[0]), args.features[0])
            metrics = {"ground_truth": True, "K": len(centroids),
                       **truth.metrics(source, vectors, height, width, RECOVERED)}  # fmt: skip
            log.info("part recovery (images): %s; positions %.3f", {r: round(m["mean"], 3) for r, m in
                     metrics["part_images"].items()}, metrics["part_positions"]["mean"])  # fmt: skip
            log.info("class-sharing recovery: %s", metrics["class_sharing"])
            if "look_sharing" in metrics:
                log.info("look-sharing recovery: %s", metrics["look_sharing"])
        write_json(args.out_recovery, metrics)
    unit_means, vectors = unit_means["histogram"], vectors["histogram"]
    summary = {
        "pseudo_attributes": {**balance(frequency), "frequencies": frequency.tolist()},
        "classes": {**balance(class_counts["train_count"]), "frequencies": class_counts["train_count"].tolist()},
    }
    pseudo, classes = summary["pseudo_attributes"], summary["classes"]
    summary["pseudo_attributes_more_balanced"] = bool(pseudo["gini"] < classes["gini"])
    summary["positive_weights"] = diagnostic_summary(vectors, class_counts, args.batch_size, DIAGNOSED, unit_means)
    write_json(args.out_balance, summary)
    for kind, groups in summary["positive_weights"]["similarities"].items():
        log.info("positive weights (%s, batch %d): %s", kind, args.batch_size, groups)
    log.info(
        "balance: pseudo-attributes gini %.3f ratio %s; classes gini %.3f ratio %s",
        pseudo["gini"],
        pseudo["imbalance_ratio"],
        classes["gini"],
        classes["imbalance_ratio"],
    )


if __name__ == "__main__":
    run_main(main)
