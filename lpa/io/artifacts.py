"""The files the stages hand one another, read and written here only, without importing torch.

- the split (``split.parquet``: ``image_id``, ``label``, ``split``; its schema metadata names the
  image source, :mod:`lpa.sources.images`, and ``num_classes``), from the data stage;
- the class counts (``class_counts.csv``: ``label``, ``train_count``, ``group`` in :data:`GROUPS`);
- the dense-feature shards (Parquet: ``image_id``, ``label``, ``features`` as a flat H*W*D list,
  its (H, W, D) in the schema metadata), from the features stage;
- the image scores s(x) and class attribute vectors a(y), one column per reading, from the
  attributes stage.

Torch-free so that the faiss stages (K-means, attributes) never load torch in the same process
(their OpenMP runtimes can clash).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lpa.io.files import atomic_path, write_parquet, write_text
from lpa.targets.kinds import READINGS

GROUPS = ("many", "medium", "few")  # the shot groups of class_counts.csv, in table order


# ---- the split ----------------------------------------------------------------------
def write_split(path: str | Path, split: pd.DataFrame, meta: dict) -> None:
    """Write the split table with ``meta`` (the source description and ``num_classes``) in its schema."""
    table = pa.Table.from_pandas(split, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"lpa": json.dumps(meta).encode()})
    write_parquet(path, table)


def read_split(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """The split table and its source description (``DataConfig.source_meta`` plus ``num_classes``)."""
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"missing split table {path}; run the data stage first") from None
    meta = (table.schema.metadata or {}).get(b"lpa")
    if meta is None:
        raise ValueError(f"{path} has no 'lpa' schema metadata: it was not written by lpa.data")
    return table.to_pandas(), json.loads(meta)


# ---- the class counts ---------------------------------------------------------------
def write_class_counts(path: str | Path, counts: pd.DataFrame) -> None:
    write_text(path, counts.to_csv(index=False))


def read_class_counts(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = {"label", "train_count", "group"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    return frame.sort_values("label").reset_index(drop=True)


# ---- the feature shards -------------------------------------------------------------
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


@contextlib.contextmanager
def shard_writer(
    path: str | Path, value_type: pa.DataType, height: int, width: int, dim: int
) -> Iterator[Callable[[np.ndarray, np.ndarray, np.ndarray], None]]:
    """Write a feature shard atomically: yields ``write(image_ids (n,), labels (n,), values (n, H*W*D))``."""
    schema = feature_schema(height * width * dim, value_type, height, width, dim)

    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:

        def write(ids: np.ndarray, labels: np.ndarray, values: np.ndarray) -> None:
            flat = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), type=value_type), values.shape[1])
            writer.write_table(pa.Table.from_arrays([pa.array(ids), pa.array(labels), flat], schema=schema))

        yield write


# ---- image scores s(x) and class attributes a(y) ------------------------------------
SCORE_COLUMNS = {"histogram": "scores"}  # the column of each reading in image_scores.parquet (else its name)
CLASS_COLUMNS = {"histogram": "attributes"}  # the column of each reading in class_attributes.parquet (else its name)


def _list_array(matrix: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel(), type=pa.float32()), matrix.shape[1])


@contextlib.contextmanager
def image_scores_writer(path: str | Path, k: int) -> Iterator[Callable[[np.ndarray, np.ndarray, Mapping], None]]:
    """Write image_scores.parquet atomically: yields ``write(image_ids, labels, {reading: (n, K) scores})``."""
    columns = [(SCORE_COLUMNS.get(r, r), pa.list_(pa.float32(), k)) for r in READINGS]
    schema = pa.schema([("image_id", pa.int64()), ("label", pa.int64()), *columns])
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:

        def write(ids: np.ndarray, labels: np.ndarray, scores: Mapping[str, np.ndarray]) -> None:
            arrays = [pa.array(ids), pa.array(labels), *(_list_array(scores[r]) for r in READINGS)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))

        yield write


def write_class_attributes(path: str | Path, vectors: Mapping[str, np.ndarray], images: np.ndarray) -> None:
    """class_attributes.parquet: ``label``, ``images`` (training images per class) and a(y) (C, K) per reading."""
    num_classes, k = vectors[READINGS[0]].shape
    columns = [(CLASS_COLUMNS.get(r, r), pa.list_(pa.float32(), k)) for r in READINGS]
    schema = pa.schema([("label", pa.int64()), ("images", pa.int64()), *columns])
    arrays = [pa.array(np.arange(num_classes)), pa.array(images), *(_list_array(vectors[r]) for r in READINGS)]
    write_parquet(path, pa.Table.from_arrays(arrays, schema=schema))


def read_class_attributes(path: str | Path, num_classes: int, reading: str = "histogram") -> np.ndarray:
    """The (C, K) matrix of class attribute vectors a(y) of one reading (:data:`~lpa.targets.kinds.READINGS`)."""
    if reading not in READINGS:
        raise ValueError(f"unknown reading {reading!r}; choose one of {list(READINGS)}")
    table = pq.read_table(path).to_pandas().sort_values("label")
    if list(table["label"]) != list(range(num_classes)):
        raise ValueError(f"{path} must hold one row per class 0..{num_classes - 1}")
    column = CLASS_COLUMNS.get(reading, reading)
    if column not in table:
        raise ValueError(f"{path} has no column {column!r} (reading {reading}): rerun the attributes stage")
    return np.stack(table[column].to_numpy()).astype(np.float32)

