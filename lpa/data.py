"""Stage 1, data: image sources, the long-tailed split and the shot groups.

The split is a Parquet table (``image_id``, ``label``, ``split``) whose schema metadata
names the image source, so later stages load pixels with :func:`open_source`.
Class counts are a CSV (``label``, ``train_count``, ``group``).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from lpa.cli import add_dataclass_arguments, dataclass_from_args
from lpa.io import run_main, setup_logging, write_parquet, write_text

log = logging.getLogger("lpa.data")

GROUPS = ("many", "medium", "few")


@dataclass(frozen=True)
class DataConfig:
    source: str = "digits"  # digits (scikit-learn's bundled handwritten digits)
    root: str = ""  # folder of the source's files, for sources that have them
    n_max: int = 140  # training images of the largest class
    imbalance_factor: float = 14.0  # n_max / n_min
    test_per_class: int = 30  # balanced held-out test images per class
    split_seed: int = 0
    many: int = 100  # "many" classes have more than this many training images
    few: int = 20  # "few" classes have fewer than this many


class DigitsSource:
    """scikit-learn's bundled handwritten digits: 1,797 real 8x8 grey images in 10 classes, no download."""

    num_classes = 10
    in_channels = 1

    def __init__(self) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Pixel values are counts 0..16 of an 4x4-downsampled 32x32 bitmap.
        self.images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        self.targets = digits.target.astype(np.int64)

    def load(self, image_id: int) -> Image.Image:
        return Image.fromarray(self.images[image_id], mode="L")


SOURCES = {"digits": DigitsSource}


def open_source(name: str, root: str = "") -> DigitsSource:
    if name not in SOURCES:
        raise ValueError(f"unknown data source {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name]()


def long_tailed_counts(n_max: int, imbalance_factor: float, num_classes: int) -> list[int]:
    """Exponential profile ``int(n_max * IF^(-c / (C - 1)))``, computed as LDAM-DRW does."""
    if imbalance_factor < 1:
        raise ValueError(f"imbalance_factor must be >= 1, got {imbalance_factor}")
    if num_classes < 2:
        return [n_max] * num_classes
    return [int(n_max * (1.0 / imbalance_factor) ** (c / (num_classes - 1.0))) for c in range(num_classes)]


def long_tailed_indices(
    targets: Sequence[int] | np.ndarray, imbalance_factor: float, seed: int = 0, n_max: int | None = None
) -> np.ndarray:
    """Indices of the long-tailed subset that LDAM-DRW and PaCo trained on.

    Class by class in class order, the class's indices are shuffled with numpy's legacy
    generator seeded once with ``seed`` and the first ``n_c`` kept. ``n_max`` defaults to the
    size of the smallest class (500 for CIFAR).
    """
    targets = np.asarray(targets)
    classes = np.unique(targets)
    sizes = np.array([(targets == c).sum() for c in classes])
    n_max = int(sizes.min()) if n_max is None else n_max
    counts = long_tailed_counts(n_max, imbalance_factor, len(classes))
    short = [(int(c), int(s), n) for c, s, n in zip(classes, sizes, counts) if s < n]
    if short:
        c, s, n = short[0]
        raise ValueError(f"class {c} has {s} images but the long-tailed profile asks for {n} (n_max={n_max})")
    rng = np.random.RandomState(seed)
    kept = []
    for c, n in zip(classes, counts):
        idx = np.where(targets == c)[0]
        rng.shuffle(idx)
        kept.append(idx[:n])
    return np.concatenate(kept)


def shot_group(count: int, many: int = 100, few: int = 20) -> str:
    if count > many:
        return "many"
    return "few" if count < few else "medium"


def make_split(cfg: DataConfig, source: DigitsSource) -> pd.DataFrame:
    """Balanced seeded test set, long-tailed training set from the rest."""
    targets = source.targets
    rng = np.random.RandomState(cfg.split_seed)
    test = []
    for c in range(source.num_classes):
        idx = np.where(targets == c)[0]
        if len(idx) <= cfg.test_per_class:
            raise ValueError(f"class {c} has {len(idx)} images, not more than test_per_class={cfg.test_per_class}")
        test.append(rng.choice(idx, cfg.test_per_class, replace=False))
    test_ids = np.sort(np.concatenate(test))
    pool = np.setdiff1d(np.arange(len(targets)), test_ids)
    train_ids = np.sort(pool[long_tailed_indices(targets[pool], cfg.imbalance_factor, cfg.split_seed, cfg.n_max)])
    frame = pd.DataFrame(
        {
            "image_id": np.concatenate([train_ids, test_ids]).astype(np.int64),
            "label": targets[np.concatenate([train_ids, test_ids])].astype(np.int64),
            "split": ["train"] * len(train_ids) + ["test"] * len(test_ids),
        }
    )
    return frame


def class_counts(split: pd.DataFrame, num_classes: int, many: int, few: int) -> pd.DataFrame:
    train = split[split["split"] == "train"]
    counts = train["label"].value_counts().reindex(range(num_classes), fill_value=0)
    return pd.DataFrame(
        {
            "label": np.arange(num_classes),
            "train_count": counts.to_numpy(),
            "group": [shot_group(int(n), many, few) for n in counts],
        }
    )


def write_split(path: str | Path, split: pd.DataFrame, cfg: DataConfig, num_classes: int) -> None:
    table = pa.Table.from_pandas(split, preserve_index=False)
    meta = {"source": cfg.source, "root": cfg.root, "num_classes": num_classes}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"lpa": json.dumps(meta).encode()})
    write_parquet(path, table)


def read_split(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """The split table and its source description ``{"source", "root", "num_classes"}``."""
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"missing split table {path}; run the data stage first") from None
    meta = (table.schema.metadata or {}).get(b"lpa")
    if meta is None:
        raise ValueError(f"{path} has no 'lpa' schema metadata: it was not written by lpa.data")
    return table.to_pandas(), json.loads(meta)


def read_class_counts(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = {"label", "train_count", "group"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    return frame.sort_values("label").reset_index(drop=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_dataclass_arguments(parser, DataConfig)
    parser.add_argument("--out-split", required=True)
    parser.add_argument("--out-counts", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    cfg = dataclass_from_args(DataConfig, args)
    if cfg.few > cfg.many:
        raise ValueError(f"few threshold ({cfg.few}) must not exceed the many threshold ({cfg.many})")
    source = open_source(cfg.source, cfg.root)
    split = make_split(cfg, source)
    counts = class_counts(split, source.num_classes, cfg.many, cfg.few)
    write_split(args.out_split, split, cfg, source.num_classes)
    write_text(args.out_counts, counts.to_csv(index=False))
    log.info("config %s", asdict(cfg))
    log.info("split sizes %s", split["split"].value_counts().to_dict())
    log.info("shot groups %s", counts["group"].value_counts().reindex(list(GROUPS), fill_value=0).to_dict())


if __name__ == "__main__":
    run_main(main)
