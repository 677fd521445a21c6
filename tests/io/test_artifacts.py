"""The feature shards as the stages read them: bounded batches, errors that name the shard and the image."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakedata import write_shard

from lpa.io.artifacts import (
    COMPRESSIONS,
    image_scores_writer,
    iter_shard_batches,
    open_features,
    read_image_scores,
    shard_writer,
)
from lpa.targets.kinds import READINGS


def shard(tmp_path, name="a.parquet", n=10, values=None):
    values = np.arange(n * 4 * 3, dtype=np.float32).reshape(n, 4, 3) if values is None else values
    write_shard(tmp_path / name, list(range(n)), [i % 2 for i in range(n)], values)
    return tmp_path / name


def test_batches_are_bounded_and_stream_shard_by_shard(tmp_path):
    a, b = shard(tmp_path, "a.parquet", 10), shard(tmp_path, "b.parquet", 5)
    seen = [(path.name, len(ids)) for path, ids, _, _ in iter_shard_batches([a, b], batch_rows=4)]
    assert seen == [("a.parquet", 4), ("a.parquet", 4), ("a.parquet", 2), ("b.parquet", 4), ("b.parquet", 1)]


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_gives_back_the_same_values(tmp_path, compression):
    values = np.random.default_rng(0).random((6, 2 * 2 * 3)).astype(np.float16)
    with shard_writer(tmp_path / "s.parquet", pa.float16(), 2, 2, 3, compression) as write:
        write(np.arange(6), np.zeros(6, np.int64), values)
    (_, _, _, local), = iter_shard_batches([tmp_path / "s.parquet"])
    np.testing.assert_array_equal(local.reshape(6, -1), values)
    column = pq.ParquetFile(tmp_path / "s.parquet").metadata.row_group(0).column(2)
    assert column.compression.lower() == ("uncompressed" if compression == "none" else compression)
    assert "RLE_DICTIONARY" not in column.encodings and "PLAIN_DICTIONARY" not in column.encodings
    with pytest.raises(ValueError, match="compression must be one of"):
        with shard_writer(tmp_path / "t.parquet", pa.float16(), 2, 2, 3, "gzip9"):
            pass


def test_a_non_finite_feature_names_the_shard_and_the_image(tmp_path):
    values = np.ones((6, 4, 3), np.float32)
    values[4, 2, 1] = np.nan
    path = shard(tmp_path, "bad.parquet", 6, values)
    with pytest.raises(ValueError, match=r"bad.parquet: image 4 has non-finite features"):
        list(iter_shard_batches([path]))


def test_truncated_empty_or_foreign_files_are_named(tmp_path):
    good = shard(tmp_path)
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "cut.parquet").write_bytes(good.read_bytes()[:-30])
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "foreign.parquet")
    with pytest.raises(ValueError, match=r"empty.parquet is not a readable Parquet feature shard"):
        open_features([tmp_path / "empty.parquet"])
    with pytest.raises(ValueError, match=r"cut.parquet is not a readable Parquet feature shard"):
        open_features([tmp_path / "cut.parquet"])
    with pytest.raises(ValueError, match=r"foreign.parquet has no 'lpa' schema metadata"):
        open_features([tmp_path / "foreign.parquet"])
    meta = pq.read_schema(good).metadata
    pq.write_table(pa.table({"image_id": [1], "label": [0], "features": [[1.0]]}).replace_schema_metadata(meta),
                   tmp_path / "wrong.parquet")  # fmt: skip
    with pytest.raises(ValueError, match=r"wrong.parquet: columns .* are not a feature shard of 1x4x3"):
        open_features([tmp_path / "wrong.parquet"])
    with pytest.raises(FileNotFoundError, match="missing feature shard .*gone.parquet"):
        open_features([good, tmp_path / "gone.parquet"])


def test_image_scores_read_back_in_the_asked_order_and_name_a_missing_image(tmp_path):
    path = tmp_path / "image_scores.parquet"
    scores = np.arange(12, dtype=np.float32).reshape(4, 3)
    with image_scores_writer(path, 3) as write:
        write(np.array([10, 11]), np.array([0, 1]), {r: scores[:2] * (i + 1) for i, r in enumerate(READINGS)})
        write(np.array([12, 13]), np.array([1, 0]), {r: scores[2:] * (i + 1) for i, r in enumerate(READINGS)})
    np.testing.assert_array_equal(read_image_scores(path, [13, 10]), scores[[3, 0]])
    np.testing.assert_array_equal(read_image_scores(path, [11], "maxcos"), scores[[1]] * 2)
    with pytest.raises(ValueError, match="no scores for 1 of the images, e.g. image 99"):
        read_image_scores(path, [10, 99])
