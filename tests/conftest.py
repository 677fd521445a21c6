import pytest
import torch

from lpa import data


def pytest_configure(config):
    torch.set_num_threads(1)


def pytest_collection_modifyitems(items):
    """Everything under tests/end_to_end/ (Snakemake, SLURM, torchrun, the environments) is the slow lane."""
    for item in items:
        if "end_to_end" in item.path.parts:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def digits_split(tmp_path):
    """A small long-tailed digits split (40 .. 8 training images per class): (split.parquet, class_counts.csv)."""
    split, counts = tmp_path / "split.parquet", tmp_path / "class_counts.csv"
    data.main(
        ["--n-max", "40", "--imbalance-factor", "5", "--test-per-class", "5", "--many", "30", "--few", "10"]
        + ["--out-split", str(split), "--out-counts", str(counts)]
    )
    return split, counts
