import torch


def pytest_configure(config):
    torch.set_num_threads(1)


import pytest  # noqa: E402

from lpa import data  # noqa: E402


@pytest.fixture
def digits_split(tmp_path):
    """A small long-tailed digits split (40 .. 8 training images per class): (split.parquet, class_counts.csv)."""
    split, counts = tmp_path / "split.parquet", tmp_path / "class_counts.csv"
    data.main(
        ["--n-max", "40", "--imbalance-factor", "5", "--test-per-class", "5", "--many", "30", "--few", "10"]
        + ["--out-split", str(split), "--out-counts", str(counts)]
    )
    return split, counts
