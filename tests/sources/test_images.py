"""The image sources (lpa.sources): the long-tailed profile, and each dataset path on small data in the real
formats: CIFAR-100 pickles, list files over JPEGs."""

import json

import numpy as np
import pandas as pd
import pytest
from fakedata import write_cifar100, write_jpeg_lists

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
