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
  positions (a set of parts; a(y) is then how often each part is present in the class).

Also a balance summary that compares how evenly the pseudo-attributes and the class labels
are spread, a diagnostic of the positive weights that LPA's SupCon term derives from a(y)
(:func:`weight_diagnostic`) and, where the source knows which part lies where (``parts``), the
recovery metrics of :mod:`lpa.recovery`.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from lpa import recovery
from lpa.io import atomic_path, read_json, run_main, setup_logging, write_json, write_parquet
from lpa.shards import feature_shape, iter_local_features

READINGS = ("histogram", "maxcos", "softmax", "presence")
COLUMNS = {"histogram": "attributes"}  # the column of each reading in class_attributes.parquet (else its name)
SOFTMAX_TEMPERATURE = 0.1
PRESENCE_SHARE = 0.05  # of the image's positions: 4 of an 8x8 map, about one 8x8-pixel part of a 32x32 image

log = logging.getLogger("lpa.attributes")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def assign_and_cosines(local: np.ndarray, centroids: np.ndarray, normalize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Nearest prototype of each local feature (n, P) int, and the cosine of each to every prototype (n, P, K).

    Nearest by cosine similarity when ``normalize`` (as the spherical K-means that made the
    centroids), else by squared L2 distance. One product of the features with the prototypes
    serves both.
    """
    n, p, _ = local.shape
    flat = local.reshape(n * p, -1)
    if normalize:
        flat = _unit_rows(flat)
    dots = flat @ centroids.T
    if normalize:
        nearest = np.argmax(dots, axis=1)
        cos = dots / np.maximum(np.linalg.norm(centroids, axis=1), 1e-12)
    else:
        nearest = np.argmin((centroids**2).sum(1)[None, :] - 2.0 * dots, axis=1)
        cos = _unit_rows(flat) @ _unit_rows(centroids).T
    return nearest.reshape(n, p), cos.astype(np.float32).reshape(n, p, -1)


def assign(local: np.ndarray, centroids: np.ndarray, normalize: bool) -> np.ndarray:
    """Nearest prototype of each local feature: (n, P, D) -> (n, P) int (see :func:`assign_and_cosines`)."""
    return assign_and_cosines(local, centroids, normalize)[0]


def reading_scores(assignments: np.ndarray, cos: np.ndarray) -> dict[str, np.ndarray]:
    """Every reading of s(x) (:data:`READINGS`): (n, P) nearest prototypes, (n, P, K) cosines -> (n, K) each."""
    k = cos.shape[-1]
    histogram = image_scores(assignments, k)
    logits = cos / SOFTMAX_TEMPERATURE
    soft = np.exp(logits - logits.max(-1, keepdims=True))
    return {
        "histogram": histogram,
        "maxcos": np.clip(cos.max(1), 0.0, None),
        "softmax": (soft / soft.sum(-1, keepdims=True)).mean(1).astype(np.float32),
        "presence": (histogram >= PRESENCE_SHARE).astype(np.float32),
    }


def image_scores(assignments: np.ndarray, k: int) -> np.ndarray:
    """(n, P) prototype indices -> (n, K) normalised histograms s(x)."""
    n, p = assignments.shape
    offsets = (np.arange(n)[:, None] * k + assignments).ravel()
    return np.bincount(offsets, minlength=n * k).reshape(n, k).astype(np.float32) / p


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


def read_class_attributes(path: str | Path, num_classes: int, reading: str = "histogram") -> np.ndarray:
    """The (C, K) matrix of class attribute vectors a(y) of one reading (:data:`READINGS`)."""
    if reading not in READINGS:
        raise ValueError(f"unknown reading {reading!r}; choose one of {list(READINGS)}")
    table = pq.read_table(path).to_pandas().sort_values("label")
    if list(table["label"]) != list(range(num_classes)):
        raise ValueError(f"{path} must hold one row per class 0..{num_classes - 1}")
    column = COLUMNS.get(reading, reading)
    if column not in table:
        raise ValueError(f"{path} has no column {column!r} (reading {reading}): rerun the attributes stage")
    return np.stack(table[column].to_numpy()).astype(np.float32)


SIMILARITY_PATTERN = r"cosine|cosine_pow[0-9]+|top[0-9]+|dominant|jaccard|label|none"
# a fine-tuning run's similarity wildcard: another reading than the histogram prefixes the similarity
RUN_SIMILARITY_PATTERN = (
    rf"(({'|'.join(r for r in READINGS if r != 'histogram')})-)?"
    rf"({SIMILARITY_PATTERN.removesuffix('|label|none')})|label|none"
)


def class_similarity(attributes: np.ndarray, kind: str) -> np.ndarray:
    """(C, C) non-negative positive weights between classes from their attribute vectors a(y) (C, K).

    ``cosine``: cos(a(y_i), a(y_j)), in [0, 1] since a(y) is a histogram; ``cosine_pow<p>``:
    the cosine to the power p (sharper: small similarities fade); ``top<k>``: the cosine kept
    for each class's k most similar other classes and itself, zero elsewhere; ``dominant``: 1
    where the classes share their most frequent pseudo-attribute; ``jaccard``: the Jaccard
    overlap |A_i & A_j| / |A_i | A_j| of the sets of prototypes each class holds, A_i those
    above the midpoint of a(y_i)'s smallest and largest entries; ``label``: the identity
    (plain SupCon, the control without attributes); ``none``: all zero (no SupCon positives).
    """
    a = np.asarray(attributes, dtype=np.float64)
    if a.ndim != 2 or (a < 0).any():
        raise ValueError(f"class attributes must be a non-negative (C, K) matrix, got shape {a.shape}")
    if not re.fullmatch(SIMILARITY_PATTERN, kind):
        raise ValueError(
            f"unknown similarity {kind!r}; choose cosine, cosine_pow<p>, top<k>, dominant, jaccard, label or none"
        )
    c = len(a)
    if kind == "label":
        return np.eye(c, dtype=np.float32)
    if kind == "none":
        return np.zeros((c, c), np.float32)
    if kind == "dominant":
        top = a.argmax(1)
        return (top[:, None] == top[None, :]).astype(np.float32)
    if kind == "jaccard":
        held = (a > (a.min(1, keepdims=True) + a.max(1, keepdims=True)) / 2).astype(np.float64)
        union = held.sum(1)[:, None] + held.sum(1)[None, :] - held @ held.T
        return np.where(union > 0, held @ held.T / np.maximum(union, 1), 0.0).astype(np.float32)
    unit = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    cos = np.clip(unit @ unit.T, 0.0, 1.0)
    if kind.startswith("cosine_pow"):
        return (cos ** int(kind.removeprefix("cosine_pow"))).astype(np.float32)
    if kind.startswith("top"):
        k = int(kind.removeprefix("top"))
        others = np.where(np.eye(c, dtype=bool), -np.inf, cos)
        keep = np.argsort(-others, axis=1, kind="stable")[:, :k]
        mask = np.eye(c, dtype=bool)
        mask[np.arange(c)[:, None], keep] = True
        return np.where(mask, cos, 0.0).astype(np.float32)
    return cos.astype(np.float32)


# The similarities balance.json diagnoses, whatever the config runs (so that adding a run does
# not redo this stage); the ablation report diagnoses the configured ones itself.
DIAGNOSED = ("label", "cosine", "cosine_pow2", "cosine_pow4", "top1", "top3")


def weight_diagnostic(similarity: np.ndarray, train_counts: np.ndarray, batch_size: int) -> pd.DataFrame:
    """Per anchor class: how LPA's SupCon term spreads its positive weight within a batch.

    The contrast set of a step is the batch's 2B query and key embeddings. For an anchor of
    class y, its own key has weight w(y, y) and each of the other B - 1 images enters twice,
    of class c with probability p(c) = n_c / N (sampling as in training). With the expected
    composition (the ratio of expected weights, close to the expected ratio at B >= 32):

    - ``other_share``: the share of the anchor's positive weight on other classes,
      sum_{c != y} m_c w(y, c) / sum_c m_c w(y, c), with m_y = 1 + 2(B - 1) p(y) and
      m_c = 2(B - 1) p(c);
    - ``effective_positives``: Kish's effective number (sum w)^2 / sum w^2 over the 2B - 1
      other rows, from 1 + 2(B - 1) p(y) for plain SupCon up to 2B - 1 for a uniform target.
    """
    p = np.asarray(train_counts, np.float64) / np.sum(train_counts)
    w = np.asarray(similarity, np.float64)
    m = 2.0 * (batch_size - 1) * np.broadcast_to(p, w.shape)
    m = m + np.eye(len(p))  # the anchor's own key
    mass, square = (m * w).sum(1), (m * w**2).sum(1)
    same = np.diag(m * w)
    with np.errstate(invalid="ignore", divide="ignore"):
        other = np.where(mass > 0, (mass - same) / mass, np.nan)
        effective = np.where(square > 0, mass**2 / square, np.nan)
    return pd.DataFrame({"label": np.arange(len(p)), "other_share": other, "effective_positives": effective})


def diagnostic_summary(attributes: np.ndarray, counts: pd.DataFrame, batch_size: int, kinds: Sequence[str]) -> dict:
    """:func:`weight_diagnostic` per similarity, averaged over the classes of each shot group."""
    out: dict = {"batch_size": batch_size, "rows": 2 * batch_size - 1, "similarities": {}}
    for kind in kinds:
        per_class = weight_diagnostic(class_similarity(attributes, kind), counts["train_count"].to_numpy(), batch_size)
        per_class["group"] = counts["group"].to_numpy()
        groups = per_class.groupby("group", sort=False)[["other_share", "effective_positives"]].mean()
        out["similarities"][kind] = {
            group: {"other_share": float(row["other_share"]), "effective_positives": float(row["effective_positives"])}
            for group, row in groups.iterrows()
        }
    return out


def _list_array(matrix: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel(), type=pa.float32()), matrix.shape[1])


class GroundTruth:
    """What :func:`compute` keeps of every image when the source knows its parts (for :mod:`lpa.recovery`)."""

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
        """The recovery metrics against ``source``'s planted parts (:class:`lpa.parts.PartsSource`)."""
        from lpa.parts import PARTS, positions_of, sharing

        ids = np.concatenate(self.ids)
        masks = source.part_masks(ids)
        holds = source.holds(ids)
        positions = np.stack([positions_of(m, height, width) for m in masks]).reshape(-1)
        cos = np.concatenate(self.cosines).reshape(len(positions), -1).astype(np.float32)
        at_positions = positions[:, None] == np.arange(len(PARTS))[None, :]
        shares = sharing(source.parts)
        return {
            "chance": 0.5,
            "parts": list(PARTS),
            "part_images": {r: recovery.part_recovery(np.concatenate(v), holds) for r, v in self.scores.items()},
            "part_positions": recovery.part_recovery(cos, at_positions),
            "class_sharing": {
                r: {kind: recovery.sharing_recovery(class_similarity(a, kind), shares) for kind in similarities}
                for r, a in vectors.items()
            },
            "classes_sharing_a_part": float(shares[np.triu_indices(len(shares), k=1)].mean()),
        }


def compute(
    feature_paths: Sequence[str],
    centroids: np.ndarray,
    normalize: bool,
    num_classes: int,
    out_scores: str,
    truth: GroundTruth | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Stream the shards, writing every reading of s(x) to ``out_scores`` (``scores``: the histogram).

    Returns the class vectors a(y) (C, K) of each reading, training images per class (C,) and
    how many local features each pseudo-attribute holds (K,); fills ``truth`` if given.
    """
    k = len(centroids)
    sums = {r: np.zeros((num_classes, k), np.float64) for r in READINGS}
    counts = np.zeros(num_classes, np.int64)
    frequency = np.zeros(k, np.int64)
    columns = [("scores" if r == "histogram" else r, pa.list_(pa.float32(), k)) for r in READINGS]
    schema = pa.schema([("image_id", pa.int64()), ("label", pa.int64()), *columns])
    with atomic_path(out_scores) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for ids, labels, local in tqdm(iter_local_features(feature_paths), desc="attributes", mininterval=10):
            bad = labels[(labels < 0) | (labels >= num_classes)]
            if len(bad):
                raise ValueError(f"feature label {bad[0]} outside 0..{num_classes - 1} (class_counts.csv)")
            nearest, cos = assign_and_cosines(local, centroids, normalize)
            scores = reading_scores(nearest, cos)
            frequency += np.bincount(nearest.ravel(), minlength=k)
            for reading, values in scores.items():
                np.add.at(sums[reading], labels, values)
            counts += np.bincount(labels, minlength=num_classes)
            if truth is not None:
                truth.add(ids, scores, cos)
            arrays = [pa.array(ids), pa.array(labels), *(_list_array(scores[r]) for r in READINGS)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    return {r: class_vectors(v, counts) for r, v in sums.items()}, counts, frequency


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
    parser.add_argument("--split", help="split.parquet of the data stage: its source's ground truth, if any")
    parser.add_argument("--out-recovery", help="recovery.json: the recovery metrics (where the source has parts)")
    args = parser.parse_args(argv)
    setup_logging()
    centroids = np.load(args.centroids).astype(np.float32)
    normalize = bool(read_json(args.kmeans_stats)["config"]["normalize"])
    class_counts = pd.read_csv(args.counts).sort_values("label")
    num_classes = len(class_counts)
    from lpa.parts import source_of_split  # numpy and PIL only, like this stage

    source = source_of_split(args.split) if args.split else None
    truth = GroundTruth() if source is not None and args.out_recovery else None
    vectors, images, frequency = compute(args.features, centroids, normalize, num_classes, args.out_scores, truth)
    empty = np.flatnonzero(images == 0).tolist()
    if empty:
        log.warning("classes %s have no training images: their a(y) is all zeros", empty)
    columns = [(COLUMNS.get(r, r), pa.list_(pa.float32(), len(centroids))) for r in READINGS]
    schema = pa.schema([("label", pa.int64()), ("images", pa.int64()), *columns])
    arrays = [pa.array(np.arange(num_classes)), pa.array(images), *(_list_array(vectors[r]) for r in READINGS)]
    write_parquet(args.out_classes, pa.Table.from_arrays(arrays, schema=schema))
    if args.out_recovery:
        if truth is None:
            metrics = {"ground_truth": False, "reason": "the source does not know which part lies where"}
        else:
            height, width, _ = feature_shape(pq.read_schema(args.features[0]), args.features[0])
            metrics = {"ground_truth": True, **truth.metrics(source, vectors, height, width, RECOVERED)}
            log.info("part recovery (images): %s; positions %.3f", {r: round(m["mean"], 3) for r, m in
                     metrics["part_images"].items()}, metrics["part_positions"]["mean"])  # fmt: skip
            log.info("class-sharing recovery: %s", metrics["class_sharing"])
        write_json(args.out_recovery, metrics)
    vectors = vectors["histogram"]
    summary = {
        "pseudo_attributes": {**balance(frequency), "frequencies": frequency.tolist()},
        "classes": {**balance(class_counts["train_count"]), "frequencies": class_counts["train_count"].tolist()},
    }
    pseudo, classes = summary["pseudo_attributes"], summary["classes"]
    summary["pseudo_attributes_more_balanced"] = bool(pseudo["gini"] < classes["gini"])
    summary["positive_weights"] = diagnostic_summary(vectors, class_counts, args.batch_size, DIAGNOSED)
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
