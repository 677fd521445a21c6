"""Reading and writing the dense-feature shards, without importing torch.

Kept apart from :mod:`lpa.features` so that the faiss stages (K-means, attributes) never
load torch in the same process (their OpenMP runtimes can clash).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def feature_schema(length: int, value_type: pa.DataType, height: int, width: int, dim: int) -> pa.Schema:
    meta = {"height": height, "width": width, "dim": dim}
    return pa.schema(
        [("image_id", pa.int64()), ("label", pa.int64()), ("features", pa.list_(value_type, length))],
        metadata={b"lpa": json.dumps(meta).encode()},
    )


def feature_shape(schema: pa.Schema, where: str = "features") -> tuple[int, int, int]:
    meta = (schema.metadata or {}).get(b"lpa")
    if meta is None:
        raise ValueError(f"{where} has no 'lpa' schema metadata: not written by lpa.features")
    meta = json.loads(meta)
    return meta["height"], meta["width"], meta["dim"]


def open_features(paths: Sequence[str | Path]) -> tuple[ds.Dataset, tuple[int, int, int]]:
    """The feature shards as one ``pyarrow.dataset`` and their (H, W, D)."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"missing feature shards: {missing}")
    shapes = {feature_shape(pq.read_schema(p), str(p)) for p in paths}
    if len(shapes) != 1:
        raise ValueError(f"feature shards disagree on (H, W, D): {sorted(shapes)}")
    return ds.dataset([str(p) for p in paths], format="parquet"), shapes.pop()


def iter_local_features(
    paths: Sequence[str | Path], batch_rows: int = 1024, columns: Sequence[str] = ("image_id", "label", "features")
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Stream (image_ids (n,), labels (n,), local features (n, H*W, D) float32), batch by batch."""
    dataset, (height, width, dim) = open_features(paths)
    for batch in dataset.to_batches(columns=list(columns), batch_size=batch_rows):
        values = batch.column("features").flatten().to_numpy(zero_copy_only=False)
        yield (
            batch.column("image_id").to_numpy(),
            batch.column("label").to_numpy(),
            values.astype(np.float32).reshape(batch.num_rows, height * width, dim),
        )
