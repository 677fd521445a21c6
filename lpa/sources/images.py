"""Image sources: where the pixels come from, and the long-tailed subset each source keeps.

A source (digits, CIFAR-100, list files, and the planted sources of :mod:`lpa.sources.planted`) loads an
image by id (``load``: a PIL image; the in-memory ones also ``pixels``: uint8 arrays for the
device path) and makes its split (``make_split(cfg)``, ``cfg`` the data stage's
:class:`lpa.data.DataConfig`): a table (``image_id``, ``label``, ``split``). :func:`open_source`
opens the source a split's metadata describes. No torch here (torchvision only to download
CIFAR-100).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from lpa.sources.longtail import long_tailed_indices
from lpa.sources.planted import PLANTED, open_planted


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

    def make_split(self, cfg) -> pd.DataFrame:
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

    def make_split(self, cfg) -> pd.DataFrame:
        """The LDAM-DRW / PaCo long-tailed training subset, a val split from the training images
        that subset leaves unused, and the full balanced test set.

        Val takes ``cfg.val_per_class`` images of each class from its unused CIFAR-100 training
        images (drawn with a generator of its own, seeded by ``split_seed``, so the training
        subset is LDAM-DRW's whatever val holds), or all of them where fewer are left: the
        largest class keeps all 500 of its images for training and gets none (at imbalance 100
        class 1 keeps 477 and gets 20 of its 23). Never from the test set.
        """
        targets = self.targets["train"]
        train = np.sort(long_tailed_indices(targets, cfg.imbalance_factor, cfg.split_seed, cfg.n_max))
        unused = np.setdiff1d(np.arange(len(targets)), train)
        rng = np.random.default_rng([cfg.split_seed, 1])
        val = [rng.permutation(unused[targets[unused] == c])[: cfg.val_per_class] for c in range(self.num_classes)]
        val = np.sort(np.concatenate(val)).astype(np.int64)
        test = np.arange(len(self.targets["test"]))
        ids = np.concatenate([train, val, test + self.TEST_OFFSET])
        labels = np.concatenate([targets[train], targets[val], self.targets["test"]])
        return _frame(ids, labels, ["train"] * len(train) + ["val"] * len(val) + ["test"] * len(test))


def _read_cifar_pickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) uint8 images and (N,) fine labels of one CIFAR-100 pickle file.

    Unpickled with no global but those a pickled ndarray names (``_reconstruct``, or
    ``_frombuffer`` from pickle protocol 5, under ``numpy.core`` or ``numpy._core``, ``ndarray``
    and ``dtype``) and ``_codecs.encode`` (bytes in protocol 2), so no code in the file runs.
    """
    import codecs
    import pickle

    core = np._core if hasattr(np, "_core") else np.core
    spellings = ("numpy.core", "numpy._core")
    allowed = {
        **{(f"{name}.multiarray", "_reconstruct"): core.multiarray._reconstruct for name in spellings},
        **{(f"{name}.numeric", "_frombuffer"): core.numeric._frombuffer for name in spellings},
        ("_codecs", "encode"): codecs.encode,  # how Python 3's protocol 2 stores bytes
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    class ArraysOnly(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            if (module, name) not in allowed:
                raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-100 pickle")
            return allowed[module, name]

    try:
        with open(path, "rb") as fh:
            entry = ArraysOnly(fh, encoding="latin1").load()
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(entry["fine_labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as err:
        raise ValueError(f"{path} is not a CIFAR-100 python pickle: {err!r}") from None
    if len(data) != len(labels):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    return np.ascontiguousarray(data), labels


def read_list_file(path: str | Path) -> pd.DataFrame:
    """``relative/path label`` lines (UTF-8) -> DataFrame(path, label, line); errors name the file and line.

    A label that is not a non-negative integer, a byte that is not UTF-8, a path listed twice and
    a list without lines are errors.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"missing list file {path}") from None
    paths, labels, numbers, first = [], [], [], {}
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            byte = f"byte {raw[err.start]:#04x} (byte {err.start + 1} of the line)"
            raise ValueError(f"{path}:{number}: {byte} is not UTF-8") from None
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not (parts[1].isascii() and parts[1].isdigit()):
            raise ValueError(f"{path}:{number}: expected 'relative/path label' (label 0, 1, ...), got {line!r}")
        if parts[0] in first:
            raise ValueError(f"{path}:{number}: {parts[0]} is listed twice, on lines {first[parts[0]]} and {number}")
        first[parts[0]] = number
        paths.append(parts[0])
        labels.append(int(parts[1]))
        numbers.append(number)
    if not paths:
        raise ValueError(f"{path}: empty list, no 'relative/path label' line")
    return pd.DataFrame({"path": paths, "label": np.asarray(labels, np.int64), "line": np.asarray(numbers, np.int64)})


class ListFileSource:
    """Images listed as ``relative/path label`` lines (ImageNet-LT, iNaturalist 2018), under ``root``.

    Image ids number the lines of the train, val and test lists, in that order. The training
    labels must be 0..C-1 with every class present, the other lists' labels training classes.
    """

    in_channels = 3
    # Modes that convert("RGB") maps in full; it clips 16-bit and float ones ("I;16", "I", "F") to 0..255.
    RGB_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"})

    def __init__(self, root: str, lists: dict[str, str]) -> None:
        if "train" not in lists:
            raise ValueError("a listfile source needs train_list")
        self.root = Path(root)
        read = {split: (self.list_path(name), read_list_file(self.list_path(name))) for split, name in lists.items()}
        problems = self.label_problems(read)
        if problems:
            raise ValueError("labels of the lists under {}:\n{}".format(root, "\n".join(problems)))
        self.table = pd.concat([frame.assign(split=split) for split, (_, frame) in read.items()], ignore_index=True)
        self.num_classes = int(self.table["label"].max()) + 1

    @staticmethod
    def label_problems(lists: dict[str, tuple[Path, pd.DataFrame]], classes: int | None = None, limit: int = 10):
        """Problems with the labels of ``lists`` (split -> (list file, :func:`read_list_file` frame), train
        among them), each naming the file: training labels must be 0..C-1 with every class present
        (C = ``classes``, else the largest training label + 1), every other label a training class.
        At most ``limit`` lines are named per list."""

        def lines(path, rows, why):
            named = [f"{path}:{row.line}: label {row.label} {why}" for row in rows.head(limit).itertuples()]
            return named + ([f"{path}: {len(rows) - limit} more such lines"] if len(rows) > limit else [])

        path, train = lists["train"]
        present = np.unique(train["label"].to_numpy())
        count = int(present[-1]) + 1 if classes is None else classes
        problems = lines(path, train[train["label"] >= count], f"is not below the {count} declared classes")
        absent = np.setdiff1d(np.arange(count), present)
        if len(absent):
            runs = np.split(absent, np.flatnonzero(np.diff(absent) > 1) + 1)
            names = [f"{r[0]}" if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs]
            names = names[:20] + (["..."] if len(names) > 20 else [])
            top = train.loc[train["label"].idxmax()]
            hint = f"; the largest label, {top['label']}, is on line {top['line']}" if classes is None else ""
            problems.append(
                f"{path}: labels must be 0..{count - 1} with every class in the training list; no image of "
                f"class {', '.join(names)} ({len(absent)} of {count}{hint})"
            )
        for split, (other, frame) in lists.items():
            if split != "train":
                known = frame["label"].isin(present) & (frame["label"] < count)
                problems += lines(other, frame[~known], f"is not a class of {path}")
        return problems

    def list_path(self, name: str) -> Path:
        return Path(name) if Path(name).is_absolute() else self.root / name

    def load(self, image_id: int) -> Image.Image:
        path = self.root / self.table.at[image_id, "path"]
        try:
            with Image.open(path) as image:
                if image.mode not in self.RGB_MODES:
                    raise ValueError(f"image {path} has mode {image.mode}, which convert('RGB') clips to 8 bits")
                return image.convert("RGB")
        except FileNotFoundError:
            raise FileNotFoundError(f"missing image {path}") from None
        except OSError as err:
            raise ValueError(f"cannot read image {path}: {err}") from None

    def make_split(self, cfg) -> pd.DataFrame:
        """The lists as given: they are long-tailed already."""
        return _frame(self.table.index, self.table["label"], self.table["split"])


def open_source(meta: dict):
    """The image source described by a split's metadata (see :meth:`lpa.data.DataConfig.source_meta`)."""
    name = meta.get("source")
    if name == "digits":
        return DigitsSource()
    if name == "cifar100":
        return Cifar100Source(meta["root"], meta.get("download", False))
    if name == "listfile":
        return ListFileSource(meta["root"], meta["lists"])
    if name in PLANTED:
        return open_planted(meta)
    raise ValueError(f"unknown data source {name!r}; choose digits, cifar100, listfile, {', '.join(PLANTED)}")
