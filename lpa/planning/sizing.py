"""How big each job's request is (memory, run time), from measured per-item costs."""

from __future__ import annotations

from lpa.augment.sizes import DEFAULT_SIDES
from lpa.models.dims import feature_dim, feature_positions
from lpa.sources import PLANTED_SOURCES
from lpa.sources.longtail import long_tailed_counts

SOURCE_CLASSES = {"digits": 10, "cifar100": 100}  # the planted sources say their own (num_classes)


def doubled(value: float, attempt: int) -> int:
    """A resource doubled on every retry (Snakemake's attempt counts from 1)."""
    return int(value) * 2 ** (attempt - 1)


def kmeans_request_mb(points_mb: float) -> float:
    """Memory K-means needs for ``points_mb`` of float32 points: it holds them once (normalised in
    place) plus the libraries and one batch. Measured peaks (lpa.tools.scale, D = 2048) grow as
    430 + 0.999 x points MiB; the request keeps a margin above that law."""
    return 1.25 * points_mb + 2000


def kmeans_mem_mb(config: dict, attempt: int) -> int:
    """The K-means job's memory for ``kmeans.max_points`` x D float32 points; doubled on every retry."""
    model = config["model"]
    points_mb = config["kmeans"]["max_points"] * feature_dim(model["arch"], model["widths"]) * 4 / 2**20
    return doubled(max(config["execution"]["mem_mb"], kmeans_request_mb(points_mb)), attempt)


# The attributes stage streams its shards, so its memory does not grow with the dataset
# (measured peaks 375 to 431 MiB at 7x7x2048, K 128, for 2,000 to 16,000 images), except the recovery
# metrics of a source with planted parts, which hold every training image's cosines (float16,
# converted to float32 once).
ATTRIBUTES_BASE_MB = 2000
# Measured (lpa.tools.scale, 2 cores): 1.4 s + 2.27 ms per image at 7 x 7 x 2048 and K 128 (a
# later run: 1.0 s + 2.21 ms).
ATTRIBUTES_MS_PER_IMAGE = 2.27
ATTRIBUTES_REFERENCE = (49 * 2048, 128)  # positions x channels, K of that measurement


def attributes_mem_mb(config: dict, dataset: dict, k: int, attempt: int) -> int:
    """The attributes job's memory: the streaming base, plus the recovery metrics' cosines
    (training images x positions x K, 8 bytes each) where the source has planted parts."""
    request = ATTRIBUTES_BASE_MB
    if dataset["source"] in PLANTED_SOURCES:
        request += train_images(dataset) * _positions(config, dataset) * k * 8 / 2**20
    return doubled(request, attempt)


def attributes_runtime(config: dict, dataset: dict, k: int, attempt: int) -> int:
    """Minutes for the attributes job: 10 + three times the measured per-image cost, scaled by
    the feature map's size (positions x D) and by K above the measured 128."""
    images = train_images(dataset)
    if images is None:  # a list-file dataset that does not declare its size: the configured runtime
        return doubled(config["execution"]["runtime"], attempt)
    model = config["model"]
    values, k_ref = ATTRIBUTES_REFERENCE
    scale = _positions(config, dataset) * feature_dim(model["arch"], model["widths"]) / values * max(1.0, k / k_ref)
    return doubled(10 + 3 * images * ATTRIBUTES_MS_PER_IMAGE * scale / 60_000, attempt)


def _positions(config: dict, dataset: dict) -> int:
    """Positions of the dense map the features stage writes (evaluation crops are the training crop)."""
    side = dataset.get("image_size") or DEFAULT_SIDES[dataset["augment"]]
    return feature_positions(config["model"]["arch"], config["model"]["strides"], side)


def verify_runtime(expected: dict, threads: int, attempt: int) -> int:
    """Minutes to decode every listed image in full: 10 + the listed images at 25 images/s per thread.

    Measured (lpa.verify on 400 cached JPEGs, 2 cores): 500 x 375, 330-560 images/s on one thread and
    310 per thread on two; 800 x 600, 170-250 on one and 80-110 per thread on two. 25 leaves room for
    a cold network filesystem."""
    images = sum(expected.get(k) or 0 for k in ("train", "val", "test"))
    return doubled(10 + images / (25 * threads * 60), attempt)


def train_images(dataset: dict) -> int | None:
    """Training images of a dataset's config, as the data stage will make them; None where unknown
    before it runs (a list-file dataset without ``expected.train``)."""
    if dataset["source"] == "listfile":
        return dataset["expected"].get("train")
    classes = dataset["num_classes"] if dataset["source"] in PLANTED_SOURCES else SOURCE_CLASSES[dataset["source"]]
    return sum(long_tailed_counts(dataset["n_max"], dataset["imbalance_factor"], classes))
