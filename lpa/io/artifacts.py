"""The files the stages hand one another, read and written here only, without importing torch.

- the split (``split.parquet``: ``image_id``, ``label``, ``split``; its schema metadata names the
  image source, :mod:`lpa.sources.images`, and ``num_classes``), from the data stage;
- the class counts (``class_counts.csv``: ``label``, ``train_count``, ``group`` in :data:`GROUPS`);
- the dense-feature shards (Parquet: ``image_id``, ``label``, ``features`` as a flat H*W*D list,
  its (H, W, D) in the schema metadata, and ``cam``, the classifier's evidence for the image's
  own class at each of the H*W positions), from the features stage;
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
# Parquet's dictionary encoding suits the ids and labels, not float features: on 7x7x512 float16
# shards it made reading 4x slower (34 against 133 MB/s of features, snappy, 2 cores) for a file
# 2% smaller. The features column is written plain; its compression is a setting.
COMPRESSIONS = ("snappy", "zstd", "lz4", "none")
# Row groups of at most this many bytes of feature values: a reader holds one decoded row group,
# and decoding a list column takes several times its values (levels, buffers).
ROW_GROUP_BYTES = 32 << 20
SHARD_COLUMNS = ("image_id", "label", "features")
# The class activation map: w_y . z_p at each position p of the image's map, w_y the classifier's
# row of the image's own class (its logit is their mean plus the bias, the classifier reading GAP(Z)).
CAM_COLUMN = "cam"


def feature_schema(length: int, value_type: pa.DataType, height: int, width: int, dim: int,
                   extra: Mapping | None = None, cam: bool = False) -> pa.Schema:  # fmt: skip
    meta = {"height": height, "width": width, "dim": dim, **(extra or {})}
    fields = [("image_id", pa.int64()), ("label", pa.int64()), ("features", pa.list_(value_type, length))]
    fields += [(CAM_COLUMN, pa.list_(pa.float32(), height * width))] if cam else []
    return pa.schema(fields, metadata={b"lpa": json.dumps(meta).encode()})


def feature_shape(schema: pa.Schema, where: str = "features") -> tuple[int, int, int]:
    meta = (schema.metadata or {}).get(b"lpa")
    if meta is None:
        raise ValueError(f"{where} has no 'lpa' schema metadata: not written by lpa.features")
    meta = json.loads(meta)
    height, width, dim = meta["height"], meta["width"], meta["dim"]
    names = schema.names
    features = schema.field("features").type if "features" in names else None
    if names[:3] != list(SHARD_COLUMNS) or not pa.types.is_fixed_size_list(features) \
            or features.list_size != height * width * dim:  # fmt: skip
        raise ValueError(f"{where}: columns {names} ({features}) are not a feature shard of "
                         f"{height}x{width}x{dim} (image_id, label, features of H*W*D values)")  # fmt: skip
    return height, width, dim


def read_shard_schema(path: str | Path) -> pa.Schema:
    """A shard's schema; a missing, empty or truncated file is an error naming it."""
    if not Path(path).exists():
        raise FileNotFoundError(f"missing feature shard {path}")
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"{path} is not a readable Parquet feature shard ({err}); rerun the features stage") from None


def open_features(paths: Sequence[str | Path]) -> tuple[list[Path], tuple[int, int, int]]:
    """The feature shards, checked, and their common (H, W, D)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no feature shards given")
    shapes = {feature_shape(read_shard_schema(p), str(p)) for p in paths}
    if len(shapes) != 1:
        raise ValueError(f"feature shards disagree on (H, W, D): {sorted(shapes)}")
    return paths, shapes.pop()


def iter_shard_batches(
    paths: Sequence[str | Path], batch_rows: int = 128, cam: bool = False
) -> Iterator[tuple[Path, np.ndarray, np.ndarray, np.ndarray]]:
    """Stream (shard, image_ids (n,), labels (n,), local features (n, H*W, D) as stored), batch by batch;
    with ``cam``, each tuple ends with the class activation maps (n, H*W) float32 too.

    One shard at a time, one row group at a time: memory holds one decoded row group (at most
    :data:`ROW_GROUP_BYTES` of values, as :func:`shard_writer` writes them) and one batch,
    whatever the number of shards and images. (pyarrow's ``iter_batches`` over a whole file let
    the resident memory grow over a shard: 297 to 580 MiB across a 294 MB one.) A non-finite
    value is an error naming the shard and the image.
    """
    paths, (height, width, dim) = open_features(paths)
    columns = list(SHARD_COLUMNS) + ([CAM_COLUMN] if cam else [])
    for path in paths:
        if cam and CAM_COLUMN not in read_shard_schema(path).names:
            raise ValueError(f"{path} has no '{CAM_COLUMN}' column (the class activation maps): written by an "
                             "older features stage; rerun it")  # fmt: skip
        try:
            shard = pq.ParquetFile(path)
            for group in range(shard.metadata.num_row_groups):
                table = shard.read_row_group(group, columns=columns)
                for batch in table.to_batches(max_chunksize=batch_rows):
                    checked = _checked_batch(path, batch, height * width, dim)
                    if cam:
                        maps = batch.column(CAM_COLUMN).flatten().to_numpy(zero_copy_only=False)
                        checked += (maps.reshape(batch.num_rows, height * width),)
                    yield path, *checked
        except (pa.ArrowException, OSError) as err:
            raise ValueError(f"{path}: cannot read the feature shard ({err})") from None


def _checked_batch(path: Path, batch: pa.RecordBatch, positions: int, dim: int) -> tuple[np.ndarray, ...]:
    ids = batch.column("image_id").to_numpy()
    local = batch.column("features").flatten().to_numpy(zero_copy_only=False).reshape(batch.num_rows, positions, dim)
    bad = ~np.isfinite(local).all(axis=(1, 2))
    if bad.any():
        raise ValueError(f"{path}: image {ids[bad][0]} has non-finite features (NaN or inf), "
                         f"{int(bad.sum())} such in its batch: rerun the features stage")  # fmt: skip
    return ids, batch.column("label").to_numpy(), local


def iter_local_features(
    paths: Sequence[str | Path], batch_rows: int = 128, cam: bool = False
) -> Iterator[tuple[np.ndarray, ...]]:
    """Stream (image_ids (n,), labels (n,), local features (n, H*W, D) float32), batch by batch; with
    ``cam``, also the class activation maps (n, H*W)."""
    for _, ids, labels, local, *maps in iter_shard_batches(paths, batch_rows, cam):
        yield ids, labels, local.astype(np.float32), *maps


@contextlib.contextmanager
def shard_writer(
    path: str | Path, value_type: pa.DataType, height: int, width: int, dim: int, compression: str = "snappy",
    extra: Mapping | None = None, cam: bool = False,
) -> Iterator[Callable[..., None]]:
    """Write a feature shard atomically: yields ``write(image_ids (n,), labels (n,), values (n, H*W*D))``,
    with ``cam`` ``write(ids, labels, values, cams (n, H*W))``.

    Each call writes row groups of at most :data:`ROW_GROUP_BYTES` of values; the features are
    plain-encoded with ``compression`` (:data:`COMPRESSIONS`), the ids and labels dictionary-encoded.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {list(COMPRESSIONS)}, got {compression!r}")
    schema = feature_schema(height * width * dim, value_type, height, width, dim, extra, cam)
    options = dict(compression=compression, use_dictionary=["image_id", "label"],
                   write_statistics=["image_id", "label"])  # fmt: skip

    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, **options) as writer:

        def write(ids: np.ndarray, labels: np.ndarray, values: np.ndarray, *cams: np.ndarray) -> None:
            if len(cams) != int(cam):
                raise ValueError(f"{path}: the shard {'holds' if cam else 'has no'} class activation maps")
            flat = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel(), type=value_type), values.shape[1])
            columns = [pa.array(ids), pa.array(labels), flat]
            if cam:
                maps = pa.array(cams[0].ravel(), pa.float32())
                columns.append(pa.FixedSizeListArray.from_arrays(maps, height * width))
            table = pa.Table.from_arrays(columns, schema=schema)
            writer.write_table(table, row_group_size=max(1, ROW_GROUP_BYTES // max(1, values[:1].nbytes)))

        yield write


# ---- the K-means sample ------------------------------------------------------------------
# The local features K-means clusters, written by the features stage beside each shard: one row
# per chosen local feature, in the shard format with a 1 x 1 map (so every shard reader reads
# it), the schema metadata recording how it was drawn (``sample``).
SAMPLE_KEYS = ("max_points", "seed", "feature_map", "images", "local_features")


def sample_writer(path: str | Path, value_type: pa.DataType, dim: int, compression: str, sample: Mapping):
    """Write a K-means sample atomically: yields ``write(image_ids (m,), labels (m,), values (m, D))``;
    ``sample`` holds :data:`SAMPLE_KEYS` (the draw's budget and seed, the map's (H, W, D), and the
    images and local features of its shard)."""
    missing = set(SAMPLE_KEYS) - set(sample)
    if missing:
        raise ValueError(f"a K-means sample records {sorted(missing)} too")
    return shard_writer(path, value_type, 1, 1, dim, compression, extra={"sample": dict(sample)})


def read_sample_meta(path: str | Path) -> dict:
    """How a K-means sample was drawn (:data:`SAMPLE_KEYS`); a shard without it is an error naming it."""
    schema = read_shard_schema(path)
    feature_shape(schema, str(path))
    meta = json.loads(schema.metadata[b"lpa"]).get("sample")
    if meta is None:
        raise ValueError(f"{path} is a feature shard, not a K-means sample (sample-*.parquet of the features stage)")
    return meta


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


def write_class_attributes(path: str | Path, vectors: Mapping[str, np.ndarray], images: np.ndarray,
                           unit_means: Mapping[str, np.ndarray] | None = None) -> None:  # fmt: skip
    """class_attributes.parquet: ``label``, ``images`` (training images per class) and a(y) (C, K) per
    reading; with ``unit_means``, also each reading's class mean of the unit-length s(x) (``<column>_unit``)."""
    num_classes, k = vectors[READINGS[0]].shape
    columns = [(CLASS_COLUMNS.get(r, r), pa.list_(pa.float32(), k)) for r in READINGS]
    arrays = [pa.array(np.arange(num_classes)), pa.array(images), *(_list_array(vectors[r]) for r in READINGS)]
    if unit_means is not None:
        columns += [(f"{CLASS_COLUMNS.get(r, r)}_unit", pa.list_(pa.float32(), k)) for r in READINGS]
        arrays += [_list_array(unit_means[r]) for r in READINGS]
    schema = pa.schema([("label", pa.int64()), ("images", pa.int64()), *columns])
    write_parquet(path, pa.Table.from_arrays(arrays, schema=schema))


def read_class_attributes(path: str | Path, num_classes: int, reading: str = "histogram", unit: bool = False
                          ) -> np.ndarray:  # fmt: skip
    """The (C, K) matrix of class attribute vectors a(y) of one reading (:data:`~lpa.targets.kinds.READINGS`);
    ``unit``: the class means of the unit-length s(x) instead."""
    if reading not in READINGS:
        raise ValueError(f"unknown reading {reading!r}; choose one of {list(READINGS)}")
    table = pq.read_table(path).to_pandas().sort_values("label")
    if list(table["label"]) != list(range(num_classes)):
        raise ValueError(f"{path} must hold one row per class 0..{num_classes - 1}")
    column = CLASS_COLUMNS.get(reading, reading) + ("_unit" if unit else "")
    if column not in table:
        raise ValueError(f"{path} has no column {column!r} (reading {reading}): rerun the attributes stage")
    return np.stack(table[column].to_numpy()).astype(np.float32)



def read_image_scores(path: str | Path, image_ids: Sequence[int], reading: str = "histogram") -> np.ndarray:
    """(N, K) float32 s(x) of one reading for ``image_ids``, in their order (image_scores.parquet)."""
    if reading not in READINGS:
        raise ValueError(f"unknown reading {reading!r}; choose one of {list(READINGS)}")
    column = SCORE_COLUMNS.get(reading, reading)
    table = pq.read_table(path, columns=["image_id", column])
    ids = table.column("image_id").to_numpy()
    values = table.column(column).combine_chunks()
    scores = values.values.to_numpy(zero_copy_only=False).reshape(len(ids), -1)
    order = pd.Index(ids).get_indexer(np.asarray(image_ids))
    if (order < 0).any():
        missing = np.asarray(image_ids)[order < 0]
        raise ValueError(f"{path} has no scores for {len(missing)} of the images, e.g. image {int(missing[0])}")
    return scores[order].astype(np.float32)
