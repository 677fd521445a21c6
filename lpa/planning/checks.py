"""Config settings that are only wrong together, checked before anything is planned; errors name the keys.

What one key alone may hold is the schema's (``workflow/schemas/config.schema.yaml``).
"""

from __future__ import annotations

import re

from lpa.targets.kinds import READINGS, SIMILARITY_PATTERN


def check_config(config: dict) -> None:
    check_names(config)
    check_batches(config)


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
                "top<k>, dominant, jaccard or label"
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
