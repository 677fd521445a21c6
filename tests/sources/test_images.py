"""The image sources (lpa.sources): the long-tailed profile, and each dataset path on small data in the real
formats: CIFAR-100 pickles, list files over JPEGs."""

import io
import json
import pickle
import re
import struct

import numpy as np
import pandas as pd
import pytest
from fakedata import write_cifar100, write_jpeg_lists
from hostile import WritesMarker
from PIL import Image

from lpa import data, verify
from lpa.data import DataConfig
from lpa.io.artifacts import read_split
from lpa.sources.images import Cifar100Source, ListFileSource, open_source, read_list_file
from lpa.sources.longtail import long_tailed_counts, long_tailed_indices


@pytest.mark.parametrize("imbalance,total", [(100, 10847), (50, 12608), (10, 19573)])
def test_cifar100_lt_profile_sizes(imbalance, total):
    counts = long_tailed_counts(500, imbalance, 100)
    assert sum(counts) == total
    assert counts[0] == 500 and counts[-1] == 500 // imbalance


def test_long_tailed_indices_follow_ldam_recipe():
    """Class by class, in class order, one legacy generator seeded once: shuffle, keep the first n_c."""
    targets = np.repeat(np.arange(5), 40)[np.random.RandomState(7).permutation(200)]
    kept = long_tailed_indices(targets, imbalance_factor=8, seed=0)
    np.random.seed(0)
    expected = []
    for c, n in enumerate(long_tailed_counts(40, 8, 5)):
        idx = np.where(targets == c)[0]
        np.random.shuffle(idx)
        expected.extend(idx[:n])
    np.testing.assert_array_equal(kept, expected)


def test_long_tailed_indices_name_the_short_class():
    targets = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ValueError, match="class 0 has 10 images"):
        long_tailed_indices(targets, imbalance_factor=2, n_max=20)


def test_cifar100_split_is_the_ldam_subset_and_the_full_test_set(tmp_path):
    arrays = write_cifar100(tmp_path, train_per_class=12, test_per_class=2)
    out = tmp_path / "out"
    data.main(
        ["--source", "cifar100", "--root", str(tmp_path), "--n-max", "12", "--imbalance-factor", "6"]
        + ["--out-split", str(out / "split.parquet"), "--out-counts", str(out / "counts.csv")]
        + ["--out-train-ids", str(out / "ids.txt"), "--out-provenance", str(out / "provenance.json")]
    )
    split, meta = read_split(out / "split.parquet")
    train = split[split["split"] == "train"]
    expected = np.sort(long_tailed_indices(arrays["train"][1], 6, seed=0, n_max=12))
    np.testing.assert_array_equal(train["image_id"], expected)
    assert (split["split"] == "test").sum() == 200
    # val: up to val_per_class (10) of each class's unused training images, never a training or test image
    val = split[split["split"] == "val"]
    counts = np.array(long_tailed_counts(12, 6, 100))
    np.testing.assert_array_equal(val["label"].value_counts().reindex(range(100), fill_value=0),
                                  np.minimum(10, 12 - counts))  # fmt: skip
    assert (val["image_id"] < 50_000).all() and not set(val["image_id"]) & set(train["image_id"])
    np.testing.assert_array_equal(arrays["train"][1][val["image_id"]], val["label"])
    ids = [int(x) for x in (out / "ids.txt").read_text().split()]
    assert ids == expected.tolist()
    provenance = json.loads((out / "provenance.json").read_text())
    assert len(provenance["train_ids_sha256"]) == 64 and provenance["split_sizes"]["test"] == 200

    source = open_source(meta)
    image_id = int(train["image_id"].iloc[3])
    pixels = arrays["train"][0][image_id].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(np.asarray(source.load(image_id)), pixels)
    test_id = int(split.loc[split["split"] == "test", "image_id"].iloc[5])
    np.testing.assert_array_equal(
        np.asarray(source.load(test_id)), arrays["test"][0][test_id - 50_000].reshape(3, 32, 32).transpose(1, 2, 0)
    )


def test_cifar100_offline_error_names_the_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-100-python/train"):
        Cifar100Source(str(tmp_path), download=False)


def test_corrupt_cifar_pickle_is_named(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(b"not a pickle")
    (folder / "test").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="cifar-100-python/train is not a CIFAR-100 python pickle"):
        Cifar100Source(str(tmp_path))


def test_a_cifar_pickle_that_runs_code_is_refused(tmp_path):
    write_cifar100(tmp_path, train_per_class=1, test_per_class=1)
    marker, train = tmp_path / "marker", tmp_path / "cifar-100-python" / "train"
    hostile = pickle.dumps({"data": WritesMarker(marker), "fine_labels": [0]}, protocol=2)
    train.write_bytes(hostile)
    message = re.escape(f"{train} is not a CIFAR-100 python pickle: ") + ".*io.open is not allowed"
    with pytest.raises(ValueError, match=message):
        Cifar100Source(str(tmp_path))
    assert not marker.exists()
    pickle.loads(hostile)  # the file does run code, unless refused
    assert marker.exists()


class Python2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2 pickled its ``str`` (SHORT_BINSTRING / BINSTRING), as in CIFAR-100's files."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_str8(self, obj: bytes) -> None:
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_str8


def test_cifar_pickles_as_python_2_wrote_them_are_read(tmp_path):
    arrays = write_cifar100(tmp_path, train_per_class=1, test_per_class=1)
    data, labels = arrays["train"]
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump({"data": data, "fine_labels": labels.tolist()})
    # the spelling of numpy < 2, which pickled the real files
    py2 = buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"cnumpy.core.multiarray\n_reconstruct" in py2
    (tmp_path / "cifar-100-python" / "train").write_bytes(py2)
    source = Cifar100Source(str(tmp_path))
    np.testing.assert_array_equal(source.data["train"], data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(source.targets["train"], labels)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cifar_pickles_that_python_3_wrote_are_read_at_every_protocol(tmp_path, protocol):
    arrays = write_cifar100(tmp_path, train_per_class=1, test_per_class=1)
    data, labels = arrays["train"]
    entry = {"data": data, "fine_labels": labels.tolist()}
    (tmp_path / "cifar-100-python" / "train").write_bytes(pickle.dumps(entry, protocol=protocol))
    source = Cifar100Source(str(tmp_path))
    np.testing.assert_array_equal(source.targets["train"], labels)


@pytest.fixture
def jpeg_dataset(tmp_path):
    lists = write_jpeg_lists(tmp_path, {"train.txt": [6, 3, 1], "val.txt": [1, 1, 1], "test.txt": [2, 2, 2]})
    return tmp_path, lists


def test_list_file_source_reads_the_lists_and_images(jpeg_dataset):
    root, _ = jpeg_dataset
    source = ListFileSource(str(root), {"train": "train.txt", "val": "val.txt", "test": "test.txt"})
    split = source.make_split(DataConfig(source="listfile"))
    assert split["split"].value_counts().to_dict() == {"train": 10, "test": 6, "val": 3}
    assert source.num_classes == 3
    image = source.load(0)
    assert image.mode == "RGB" and image.size == (40, 40)


def test_list_file_errors_name_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_text("a.jpg 0\nb.jpg cat\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        read_list_file(tmp_path / "bad.txt")


@pytest.mark.parametrize(
    "content,error",
    [
        (b"a.jpg 0\nb.jpg 1\n\na.jpg 2\n", "bad.txt:4: a.jpg is listed twice, on lines 1 and 4"),
        (b"\n \n", "bad.txt: empty list"),
        (b"a.jpg 0\nb\xe9.jpg 1\n", "bad.txt:2: byte 0xe9 .* is not UTF-8"),
        (b"a.jpg -1\n", "bad.txt:1: expected 'relative/path label'"),
    ],
)
def test_unreadable_list_files_name_file_and_line(tmp_path, content, error):
    (tmp_path / "bad.txt").write_bytes(content)
    with pytest.raises(ValueError, match=error):
        read_list_file(tmp_path / "bad.txt")


@pytest.mark.parametrize(
    "split,line,error",
    [
        ("train", "train/0000/00000.jpg.copy 999", "no image of class 3-998 .*largest label, 999, is on line 11"),
        ("val", "val/0000/00000.jpg.copy 3", "val.txt:4: label 3 is not a class of .*train.txt"),
        ("test", "test/0000/00000.jpg.copy 7", "test.txt:7: label 7 is not a class of .*train.txt"),
    ],
)
def test_list_file_source_refuses_labels_outside_the_training_classes(jpeg_dataset, split, line, error):
    root, lists = jpeg_dataset
    path = lists[f"{split}.txt"]
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(ValueError, match=error):
        ListFileSource(str(root), {"train": "train.txt", "val": "val.txt", "test": "test.txt"})


def test_list_file_source_refuses_a_16_bit_image_by_name(jpeg_dataset):
    root, _ = jpeg_dataset
    Image.fromarray(np.full((40, 40), 60000, np.uint16)).save(root / "deep.png")
    (root / "deep.txt").write_text("deep.png 0\n")
    source = ListFileSource(str(root), {"train": "deep.txt"})
    with pytest.raises(ValueError, match="deep.png has mode I;16"):
        source.load(0)


def test_missing_and_corrupt_images_are_named(jpeg_dataset):
    root, _ = jpeg_dataset
    (root / "train/0000/00002.jpg").unlink()
    (root / "train/0001/00000.jpg").write_bytes(b"\xff\xd8 truncated")
    _, problems = verify.verify(root, {"train": "train.txt"}, verify.Expected(), check_images=True)
    assert any("train/0000/00002.jpg: missing" in p for p in problems)
    assert any("train/0001/00000.jpg: unreadable" in p for p in problems)
    assert len(problems) == 2
    source = ListFileSource(str(root), {"train": "train.txt"})
    table = source.table.reset_index()
    corrupt = int(table.loc[table["path"] == "train/0001/00000.jpg", "index"].iloc[0])
    with pytest.raises(ValueError, match="cannot read image .*train/0001/00000.jpg"):
        source.load(corrupt)


def test_verify_catches_wrong_counts_and_records_hashes(jpeg_dataset, tmp_path):
    root, lists = jpeg_dataset
    out = tmp_path / "verify.json"
    args = ["--root", str(root), "--train-list", "train.txt", "--test-list", "test.txt", "--out", str(out)]
    with pytest.raises(ValueError, match="1 problem"):
        verify.main(args + ["--train", "11", "--classes", "3"])
    assert not out.exists()  # a failed check leaves nothing for the next stage
    with pytest.raises(ValueError, match="2 problem"):
        verify.main(args + ["--max-per-class", "1280", "--min-per-class", "5"])
    verify.main(
        args + ["--train", "10", "--test", "6", "--classes", "3", "--max-per-class", "6", "--min-per-class", "1"]
    )
    report = json.loads(out.read_text())
    assert report["lists"]["train"]["sha256"] == verify.sha256(lists["train.txt"])
    assert report["images_checked"] == 16


def test_training_on_a_corrupt_image_names_the_file(jpeg_dataset, tmp_path):
    from lpa.train import train
    from lpa.training.config import TrainConfig

    root, _ = jpeg_dataset
    (root / "train/0002/00000.jpg").write_bytes(b"garbage")
    out = tmp_path / "d"
    data.main(
        ["--source", "listfile", "--root", str(root), "--train-list", "train.txt", "--test-list", "test.txt"]
        + ["--out-split", str(out / "split.parquet"), "--out-counts", str(out / "counts.csv")]
    )
    cfg = TrainConfig(objective="ce", depth=8, widths=(4, 4, 4), augment="cifar100", epochs=1, batch_size=5)
    with pytest.raises(ValueError, match="train/0002/00000.jpg"):
        train(cfg, out / "split.parquet", out / "counts.csv", tmp_path / "m")
    assert pd.read_csv(out / "counts.csv")["train_count"].tolist() == [6, 3, 1]
