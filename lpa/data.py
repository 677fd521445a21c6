"""Stage 1, data: the long-tailed split and the shot groups.

The split is a Parquet table (``image_id``, ``label``, ``split``) whose schema metadata
names the image source (:mod:`lpa.sources.images`), so later stages load pixels with
:func:`lpa.sources.images.open_source`. Class counts are a CSV (``label``, ``train_count``, ``group``);
both are read and written by :mod:`lpa.io.artifacts`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from lpa.io.artifacts import GROUPS, write_class_counts, write_split
from lpa.io.cli import add_dataclass_arguments, dataclass_from_args, run_main, setup_logging
from lpa.io.files import write_json, write_text
from lpa.sources.images import open_source
from lpa.sources.longtail import long_tailed_counts
from lpa.sources.planted import PLANTED

log = logging.getLogger("lpa.data")

@dataclass(frozen=True)
class DataConfig:
    source: str = "digits"  # digits | cifar100 | listfile | parts | looks
    root: str = ""  # folder of the source's files (cifar100, listfile)
    download: bool = False  # cifar100: download into root when the files are missing (needs the internet)
    train_list: str = ""  # listfile: "relative/path label" lines, relative to root (or absolute)
    val_list: str = ""
    test_list: str = ""
    n_max: int = 140  # digits, cifar100, planted: training images of the largest class
    imbalance_factor: float = 14.0  # digits, cifar100, planted: n_max / n_min
    test_per_class: int = 30  # digits, planted: balanced held-out test images per class
    val_per_class: int = 10  # planted, cifar100: validation images per class (cifar100: from the unused train images)
    num_classes: int = 40  # planted (parts, looks): classes generated
    split_seed: int = 0
    many: int = 100  # "many" classes have more than this many training images
    few: int = 20  # "few" classes have fewer than this many

    def source_meta(self) -> dict:
        """What a later stage needs to open the source (stored in the split's metadata)."""
        meta = {"source": self.source, "root": self.root}
        if self.source == "listfile":
            meta["lists"] = {k: v for k, v in (("train", self.train_list), ("val", self.val_list),
                                               ("test", self.test_list)) if v}  # fmt: skip
        if self.source in PLANTED:  # everything the generator needs, with its seed
            counts = long_tailed_counts(self.n_max, self.imbalance_factor, self.num_classes)
            meta.update(train_counts=counts, val_per_class=self.val_per_class, test_per_class=self.test_per_class,
                        seed=self.split_seed)  # fmt: skip
        return meta


def shot_group(count: int, many: int = 100, few: int = 20) -> str:
    if count > many:
        return "many"
    return "few" if count < few else "medium"


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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_dataclass_arguments(parser, DataConfig)
    parser.add_argument("--out-split", required=True)
    parser.add_argument("--out-counts", required=True)
    parser.add_argument("--out-train-ids", help="the training image ids, one per line")
    parser.add_argument("--out-provenance", help="JSON: source, split sizes and the SHA-256 of the training ids")
    args = parser.parse_args(argv)
    setup_logging()
    cfg = dataclass_from_args(DataConfig, args)
    if cfg.few > cfg.many:
        raise ValueError(f"few threshold ({cfg.few}) must not exceed the many threshold ({cfg.many})")
    source = open_source({**cfg.source_meta(), "download": cfg.download})
    split = source.make_split(cfg)
    counts = class_counts(split, source.num_classes, cfg.many, cfg.few)
    write_split(args.out_split, split, {**cfg.source_meta(), "num_classes": source.num_classes})
    write_class_counts(args.out_counts, counts)
    train_ids = "".join(f"{i}\n" for i in split.loc[split["split"] == "train", "image_id"])
    if args.out_train_ids:
        write_text(args.out_train_ids, train_ids)
    if args.out_provenance:
        provenance = {
            **cfg.source_meta(),
            "config": asdict(cfg),
            "num_classes": source.num_classes,
            "split_sizes": split["split"].value_counts().to_dict(),
            "train_ids_sha256": hashlib.sha256(train_ids.encode()).hexdigest(),
        }
        write_json(args.out_provenance, provenance)
    log.info("config %s", asdict(cfg))
    log.info("split sizes %s", split["split"].value_counts().to_dict())
    log.info("shot groups %s", counts["group"].value_counts().reindex(list(GROUPS), fill_value=0).to_dict())


if __name__ == "__main__":
    run_main(main)
