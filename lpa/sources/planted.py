"""The planted sources, whose images carry their ground truth: ``parts`` and ``looks``.

numpy and PIL only, so the attributes stage reads the ground truth in its own environment.
"""

from __future__ import annotations

from lpa.sources.looks import LooksSource
from lpa.sources.parts import PartsSource

PLANTED = {cls.source: cls for cls in (PartsSource, LooksSource)}  # in the order of PLANTED_SOURCES


def open_planted(meta: dict) -> PartsSource:
    """The planted source a split's metadata describes (:meth:`lpa.data.DataConfig.source_meta`)."""
    return PLANTED[meta["source"]].from_meta(meta)


def source_of_split(path: str) -> PartsSource | None:
    """The planted source a split table (lpa.data's split.parquet) was made from, or None for another source.

    Read from the table's schema metadata alone.
    """
    import json

    import pyarrow.parquet as pq

    meta = json.loads((pq.read_schema(path).metadata or {}).get(b"lpa", b"{}"))
    return open_planted(meta) if meta.get("source") in PLANTED else None
