"""Stage 1, data: image sources, the long-tailed split and the shot groups.

The split is a Parquet table (``image_id``, ``label``, ``split``) whose schema metadata
names the image source, so later stages load pixels with :func:`open_source`.
Class counts are a CSV (``label``, ``train_count``, ``group``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image
from torch.utils.data import Dataset

from lpa.cli import add_dataclass_arguments, dataclass_from_args
from lpa.io import run_main, setup_logging, write_json, write_parquet, write_text
from lpa.parts import PartsSource

log = logging.getLogger("lpa.data")

GROUPS = ("many", "medium", "few")


@dataclass(frozen=True)
class DataConfig:
    source: str = "digits"  # digits | cifar100 | listfile | parts
    root: str = ""  # folder of the source's files (cifar100, listfile)
    download: bool = False  # cifar100: download into root when the files are missing (needs the internet)
    train_list: str = ""  # listfile: "relative/path label" lines, relative to root (or absolute)
    val_list: str = ""
    test_list: str = ""
    n_max: int = 140  # digits, cifar100, parts: training images of the largest class
    imbalance_factor: float = 14.0  # digits, cifar100, parts: n_max / n_min
    test_per_class: int = 30  # digits, parts: balanced held-out test images per class
    val_per_class: int = 10  # parts: balanced validation images per class
    num_classes: int = 40  # parts: classes generated
    split_seed: int = 0
    many: int = 100  # "many" classes have more than this many training images
    few: int = 20  # "few" classes have fewer than this many

    def source_meta(self) -> dict:
        """What a later stage needs to open the source (stored in the split's metadata)."""
        meta = {"source": self.source, "root": self.root}
        if self.source == "listfile":
            meta["lists"] = {k: v for k, v in (("train", self.train_list), ("val", self.val_list),
                                               ("test", self.test_list)) if v}  # fmt: skip
        if self.source == "parts":  # everything the generator needs, with its seed
            counts = long_tailed_counts(self.n_max, self.imbalance_factor, self.num_classes)
            meta.update(train_counts=counts, val_per_class=self.val_per_class, test_per_class=self.test_per_class,
                        seed=self.split_seed)  # fmt: skip
        return meta


def _frame(ids, labels, splits) -> pd.DataFrame:
    return pd.DataFrame(
        {"image_id": np.asarray(ids, np.int64), "label": np.asarray(labels, np.int64), "split": list(splits)}
    )


class DigitsSource:
    """scikit-learn's bundled handwritten digits: 1,797 real 8x8 grey images in 10 classes, no download."""

    in_channels = 1

    def __init__(self) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Pixel values are counts 0..16 of an 4x4-downsampled 32x32 bitmap.
        self.images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        self.targets = digits.target.astype(np.int64)
        self.num_classes = 10

    def load(self, image_id: int) -> Image.Image:
        return Image.fromarray(self.images[image_id], mode="L")

    def pixels(self, image_ids: Sequence[int]) -> np.ndarray:
        """(N, H, W, C) uint8 pixels of ``image_ids``: what device augmentation starts from."""
        return self.images[np.asarray(image_ids)][..., None]

    def make_split(self, cfg: DataConfig) -> pd.DataFrame:
        """Balanced seeded test set, long-tailed training set from the rest."""
        targets = self.targets
        rng = np.random.RandomState(cfg.split_seed)
        test = []
        for c in range(self.num_classes):
            idx = np.where(targets == c)[0]
            if len(idx) <= cfg.test_per_class:
                raise ValueError(f"class {c} has {len(idx)} images, not more than test_per_class={cfg.test_per_class}")
            test.append(rng.choice(idx, cfg.test_per_class, replace=False))
        test_ids = np.sort(np.concatenate(test))
        pool = np.setdiff1d(np.arange(len(targets)), test_ids)
        train_ids = np.sort(pool[long_tailed_indices(targets[pool], cfg.imbalance_factor, cfg.split_seed, cfg.n_max)])
        ids = np.concatenate([train_ids, test_ids])
        return _frame(ids, targets[ids], ["train"] * len(train_ids) + ["test"] * len(test_ids))


class Cifar100Source:
    """CIFAR-100 in its python pickle layout under ``root/cifar-100-python/{train,test}``.

    Image ids 0..49,999 are the training images, 50,000..59,999 the test images.
    """

    in_channels = 3
    FILES = ("train", "test")
    TEST_OFFSET = 50_000

    def __init__(self, root: str, download: bool = False) -> None:
        folder = Path(root) / "cifar-100-python"
        missing = [str(folder / f) for f in self.FILES if not (folder / f).exists()]
        if missing and download:
            from torchvision.datasets import CIFAR100

            for train in (True, False):  # torchvision fetches and checks the archive's MD5
                CIFAR100(root, train=train, download=True)
            missing = []
        if missing:
            raise FileNotFoundError(
                f"CIFAR-100 not found: expected {missing} (python version of CIFAR-100, extracted from "
                f"cifar-100-python.tar.gz); set download: true on a machine with internet access"
            )
        self.data, self.targets = {}, {}
        for name in self.FILES:
            self.data[name], self.targets[name] = _read_cifar_pickle(folder / name)
        self.num_classes = 100

    def load(self, image_id: int) -> Image.Image:
        part, i = ("test", image_id - self.TEST_OFFSET) if image_id >= self.TEST_OFFSET else ("train", image_id)
        return Image.fromarray(self.data[part][i])

    def pixels(self, image_ids: Sequence[int]) -> np.ndarray:
        """(N, 32, 32, 3) uint8 pixels of ``image_ids``: what device augmentation starts from."""
        ids = np.asarray(image_ids)
        out = np.empty((len(ids), 32, 32, 3), np.uint8)
        test = ids >= self.TEST_OFFSET
        out[~test] = self.data["train"][ids[~test]]
        out[test] = self.data["test"][ids[test] - self.TEST_OFFSET]
        return out

    def make_split(self, cfg: DataConfig) -> pd.DataFrame:
        """The LDAM-DRW / PaCo long-tailed training subset and the full balanced test set."""
        train = np.sort(long_tailed_indices(self.targets["train"], cfg.imbalance_factor, cfg.split_seed, cfg.n_max))
        test = np.arange(len(self.targets["test"]))
        ids = np.concatenate([train, test + self.TEST_OFFSET])
        labels = np.concatenate([self.targets["train"][train], self.targets["test"]])
        return _frame(ids, labels, ["train"] * len(train) + ["test"] * len(test))


def _read_cifar_pickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) uint8 images and (N,) fine labels of one CIFAR-100 pickle file."""
    import pickle

    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(entry["fine_labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as err:
        raise ValueError(f"{path} is not a CIFAR-100 python pickle: {err!r}") from None
    if len(data) != len(labels):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    return np.ascontiguousarray(data), labels


def read_list_file(path: str | Path) -> pd.DataFrame:
    """``relative/path label`` lines -> DataFrame(path, label); errors name the file and line."""
    paths, labels = [], []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"missing list file {path}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or int(parts[1]) < 0:
            raise ValueError(f"{path}:{number}: expected 'relative/path label', got {line!r}")
        paths.append(parts[0])
        labels.append(int(parts[1]))
    return pd.DataFrame({"path": paths, "label": np.asarray(labels, np.int64)})


class ListFileSource:
    """Images listed as ``relative/path label`` lines (ImageNet-LT, iNaturalist 2018), under ``root``.

    Image ids number the lines of the train, val and test lists, in that order.
    """

    in_channels = 3

    def __init__(self, root: str, lists: dict[str, str]) -> None:
        if "train" not in lists:
            raise ValueError("a listfile source needs train_list")
        self.root = Path(root)
        frames = []
        for split, name in lists.items():
            frame = read_list_file(self.list_path(name))
            frame["split"] = split
            frames.append(frame)
        self.table = pd.concat(frames, ignore_index=True)
        self.num_classes = int(self.table["label"].max()) + 1

    def list_path(self, name: str) -> Path:
        return Path(name) if Path(name).is_absolute() else self.root / name

    def load(self, image_id: int) -> Image.Image:
        path = self.root / self.table.at[image_id, "path"]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except FileNotFoundError:
            raise FileNotFoundError(f"missing image {path}") from None
        except OSError as err:
            raise ValueError(f"cannot read image {path}: {err}") from None

    def make_split(self, cfg: DataConfig) -> pd.DataFrame:
        """The lists as given: they are long-tailed already."""
        return _frame(self.table.index, self.table["label"], self.table["split"])


def open_source(meta: dict):
    """The image source described by a split's metadata (see :meth:`DataConfig.source_meta`)."""
    name = meta.get("source")
    if name == "digits":
        return DigitsSource()
    if name == "cifar100":
        return Cifar100Source(meta["root"], meta.get("download", False))
    if name == "listfile":
        return ListFileSource(meta["root"], meta["lists"])
    if name == "parts":
        return PartsSource.from_meta(meta)
    raise ValueError(f"unknown data source {name!r}; choose digits, cifar100, listfile or parts")


class ImageDataset(Dataset):
    """Images of ``source`` by id, with their labels, through ``transform``.

    With ``seed`` set, each image's augmentation is drawn from generators (torch, numpy and
    Python's ``random``, which PaCo's and timm's PIL transforms use) seeded by (seed, epoch,
    position): the same views whatever the number of processes or workers.
    """

    def __init__(self, source, image_ids: Sequence[int], labels: Sequence[int], transform, seed: int | None = None):
        self.source, self.transform, self.seed = source, transform, seed
        self.image_ids = np.asarray(image_ids)
        self.labels = np.asarray(labels)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int):
        image_id = int(self.image_ids[i])
        try:
            image = self.source.load(image_id)
        except Exception as err:  # a corrupt image is an error naming it, never a silent skip
            raise ValueError(f"cannot load image {image_id} of {type(self.source).__name__}: {err}") from err
        if self.seed is not None:
            value = (self.seed * 1_000_003 + self.epoch) * 10_000_019 + i
            torch.random.default_generator.manual_seed(value)
            np.random.seed(value % 2**32)
            random.seed(value)
        return self.transform(image), int(self.labels[i])


class DeviceLoader:
    """Batches of (views, labels) augmented on the device from the whole training set held there.

    ``pixels`` (N, C, H, W) uint8 and ``labels`` (N,) live on the training device. Each global
    batch of ``sampler`` (:class:`lpa.distributed.GlobalBatchSampler`) goes through
    ``augment(images, generator)`` (:class:`lpa.augment.recipes.BatchRecipe`) whole, and the
    process keeps its share: every process draws the same numbers, so the views do not depend
    on the number of processes (each augments the global batch, cheap next to the step). The
    generator lives on the device and is seeded from (seed, epoch), so a resumed epoch replays
    exactly; an epoch's positions go to the device at once, and no step reads anything back.
    """

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor, sampler, augment, seed: int):
        self.pixels, self.labels, self.sampler, self.augment = pixels, labels, sampler, augment
        self.seed, self.epoch = seed, 0
        self.generator = torch.Generator(pixels.device)

    @classmethod
    def from_source(cls, source, image_ids, labels, sampler, augment, seed: int, device: torch.device):
        """The images ``image_ids`` of an in-memory source (one with ``pixels``) moved to ``device``."""
        pixels = torch.from_numpy(source.pixels(image_ids)).permute(0, 3, 1, 2).contiguous().to(device)
        return cls(pixels, torch.tensor(np.asarray(labels), device=device), sampler, augment, seed)

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator.manual_seed(self.seed * 1_000_003 + self.epoch * 1_009)
        batches = list(self.sampler.global_batches())
        positions = torch.as_tensor(np.concatenate([b for b, _ in batches]), dtype=torch.long)
        positions = positions.to(self.pixels.device)
        start = 0
        for batch, mine in batches:
            index = positions[start : start + len(batch)]
            start += len(batch)
            views = self.augment(self.pixels[index], self.generator)
            views = tuple(v[mine] for v in views) if isinstance(views, tuple) else views[mine]
            yield views, self.labels[index][mine]


class DeviceFinisher:
    """Batches whose augmentation began in DataLoader workers (decode + crops) and ends on the device.

    ``loader`` yields (uint8 crops, labels) (:class:`lpa.augment.recipes.DecodedCrops`); each batch
    moves to ``device`` and goes through ``finish(crops, generator)`` (a
    :class:`lpa.augment.recipes.BatchRecipe`). The workers' draws are seeded per image as
    in the worker path; the device's from (seed, epoch, rank), so these depend on the number
    of processes (unlike :class:`DeviceLoader`'s).
    """

    def __init__(self, loader, finish, device: torch.device, seed: int, rank: int = 0):
        self.loader, self.finish, self.device = loader, finish, device
        self.seed, self.rank, self.epoch = seed, rank, 0
        self.generator = torch.Generator(device)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = self.loader.dataset.epoch = epoch

    def __iter__(self):
        self.generator.manual_seed(self.seed * 1_000_003 + self.epoch * 1_009 + self.rank)
        for crops, labels in self.loader:
            if isinstance(crops, (list, tuple)):
                crops = tuple(c.to(self.device, non_blocking=True) for c in crops)
            else:
                crops = crops.to(self.device, non_blocking=True)
            yield self.finish(crops, self.generator), labels


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
    meta = {**cfg.source_meta(), "num_classes": num_classes}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"lpa": json.dumps(meta).encode()})
    write_parquet(path, table)


def read_split(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """The split table and its source description (:meth:`DataConfig.source_meta` plus ``num_classes``)."""
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
    write_split(args.out_split, split, cfg, source.num_classes)
    write_text(args.out_counts, counts.to_csv(index=False))
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
