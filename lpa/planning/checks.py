"""Config settings that are only wrong together, checked before anything is planned; errors name the keys.

What one key alone may hold is the schema's (``workflow/schemas/config.schema.yaml``).
"""

from __future__ import annotations

import re

from lpa.planning.sizing import train_images
from lpa.targets.kinds import READINGS, SIMILARITY_PATTERN

# Keys whose values name paths or counts: 4.0 passes the schema's "integer" and then names a
# K4.0 folder no rule makes, so each must be a Python int.
WHOLE_NUMBERS = (("seeds",), ("kmeans", "K"), ("finetune", "epochs"), ("baseline", "epochs"),
                 ("features", "shards"), ("baseline", "batch_size"), ("finetune", "batch_size"))  # fmt: skip
NO_REPEATS = (("seeds",), ("kmeans", "K"))


def check_config(config: dict) -> None:
    check_whole_numbers(config)
    check_names(config)
    check_batches(config)
    check_against_data(config)


def _get(config: dict, keys: tuple[str, ...]):
    for key in keys:
        config = config[key]
    return config


def check_whole_numbers(config: dict) -> None:
    for keys in WHOLE_NUMBERS:
        value = _get(config, keys)
        values = value if isinstance(value, list) else [value]
        wrong = [v for v in values if isinstance(v, bool) or not isinstance(v, int)]
        if wrong:
            raise ValueError(f"{'.'.join(keys)}={value!r}: {wrong[0]!r} must be a whole number (write 4, not 4.0)")
    for keys in NO_REPEATS:
        values = _get(config, keys)
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"{'.'.join(keys)}={values!r} repeats {repeated}: each value is one run, "
                             "a repeat would be counted twice in the tables")  # fmt: skip


def check_names(config: dict) -> None:
    """The readings and similarities of ``finetune`` name ones the code has (``none`` is alpha 0's own)."""
    ft = config["finetune"]
    for i, reading in enumerate(ft["reading"]):
        if reading not in READINGS:
            raise ValueError(f"finetune.reading[{i}]={reading!r} is not a reading; choose from {list(READINGS)}")
    for i, similarity in enumerate(ft["similarity"]):
        if similarity == "none" or not re.fullmatch(SIMILARITY_PATTERN, similarity):
            raise ValueError(
                f"finetune.similarity[{i}]={similarity!r} is not a similarity; choose cosine, cosine_pow<p>, "
                "centred_cosine, idf_cosine, top<k>, dominant, jaccard, multilabel or label"
            )


def check_batches(config: dict) -> None:
    """The batch splits over the GPUs, and the queue refreshes a whole batch at a time."""
    gpus = config["execution"]["gpus"]
    queue = config["paco"]["queue_size"]
    for stage in ("baseline", "finetune"):
        batch = config[stage]["batch_size"]
        if gpus > 1 and batch % gpus:
            raise ValueError(
                f"{stage}.batch_size={batch} (the global batch) must be divisible by execution.gpus={gpus}"
            )
        if queue % batch:
            raise ValueError(
                f"paco.queue_size={queue} must be a multiple of {stage}.batch_size={batch} "
                "(the queue is refreshed a whole batch at a time, as in PaCo's code)"
            )


def check_against_data(config: dict) -> None:
    """Settings no dataset of the config can meet: more feature shards or a larger batch than training images."""
    shards = config["features"]["shards"]
    for name, dataset in config["datasets"].items():
        images = train_images(dataset)
        if images is None:
            continue
        if shards > images:
            raise ValueError(f"features.shards={shards} exceeds the {images} training images of dataset {name}: "
                             "a shard would be empty")  # fmt: skip
        for stage in ("baseline", "finetune"):
            batch = config[stage]["batch_size"]
            if batch > images:
                raise ValueError(f"{stage}.batch_size={batch} exceeds the {images} training images of dataset "
                                 f"{name}: an epoch would have no full batch")  # fmt: skip
