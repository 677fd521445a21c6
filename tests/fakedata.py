"""Small datasets in the real on-disk formats, generated for the tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def write_cifar100(root: Path, train_per_class: int, test_per_class: int, seed: int = 0) -> dict:
    """CIFAR-100's python layout: root/cifar-100-python/{train,test,meta}, (N, 3072) uint8 rows, fine labels."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = np.tile(np.arange(100), per_class)
        # class-dependent colour so a model can learn something, plus noise
        base = (np.arange(100)[:, None] * np.array([37, 91, 53])[None, :]) % 256
        pixels = base[labels][:, :, None, None] + rng.integers(-20, 20, size=(len(labels), 3, 32, 32))
        data = np.clip(pixels, 0, 255).astype(np.uint8).reshape(len(labels), 3072)
        entry = {
            "filenames": [f"img_{i}.png" for i in range(len(labels))],
            "batch_label": f"{name} batch",
            "fine_labels": labels.tolist(),
            "coarse_labels": (labels // 5).tolist(),
            "data": data,
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)
        arrays[name] = (data, labels)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": [f"class_{c}" for c in range(100)]}, fh)
    return arrays


def write_jpeg_lists(root: Path, lists: dict[str, list[int]], size: int = 40, seed: int = 0) -> dict[str, Path]:
    """JPEG folders and ``relative/path label`` lists; ``lists`` maps a list file name to per-class counts."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    written = {}
    for list_name, per_class in lists.items():
        lines = []
        for label, count in enumerate(per_class):
            for i in range(count):
                rel = f"{Path(list_name).stem}/{label:04d}/{i:05d}.jpg"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                colour = np.array([label * 47 % 256, label * 97 % 256, label * 29 % 256])
                pixels = np.clip(colour + rng.integers(-30, 30, size=(size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / rel, quality=90)
                lines.append(f"{rel} {label}")
        (root / list_name).write_text("\n".join(lines) + "\n")
        written[list_name] = root / list_name
    return written


def photo_like(n: int, size: int = 32, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth images with noise (every level and flat areas occur, as in photographs), (n, size, size, C) uint8."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        small = Image.fromarray(rng.randint(0, 256, (size // 4, size // 4, 3), dtype=np.uint8))
        smooth = np.asarray(small.resize((size, size), Image.BICUBIC)).astype(int)
        out.append(np.clip(smooth + rng.randint(-20, 21, smooth.shape), 0, 255).astype(np.uint8))
    images = np.stack(out)
    return images[..., :1] if channels == 1 else images


def write_shard(path, ids, labels, local, cams=None, height=1):
    """A float32 feature shard in the features stage's format: local (n, P, D) as a ``height`` x P/height
    map of D-vectors, with its class activation maps (n, P) (zeros unless given: every position counts alike)."""
    import pyarrow as pa

    from lpa.io.artifacts import shard_writer

    local = np.asarray(local, np.float32)
    n, p, d = local.shape
    cams = np.zeros((n, p), np.float32) if cams is None else np.asarray(cams, np.float32)
    with shard_writer(path, pa.float32(), height, p // height, d, cam=True) as write:
        write(np.asarray(ids, np.int64), np.asarray(labels, np.int64), local.reshape(n, p * d), cams)


def write_samples(folder, ids, labels, local, shard_sizes, max_points, seed):
    """K-means samples as the features stage writes them, for shards of ``shard_sizes`` consecutive images
    of ``local`` (n, P, D), drawn over all of them; returns their paths."""
    import pyarrow as pa

    from lpa.clustering.sampling import chosen_rows, sample_mask
    from lpa.io.artifacts import sample_writer

    local = np.asarray(local, np.float32)
    n, p, d = local.shape
    mask = sample_mask(np.asarray(labels), p, max_points, seed)
    paths, start = [], 0
    for i, size in enumerate(shard_sizes, 1):
        rows = slice(start, start + size)
        path = Path(folder) / f"sample-{i}-of-{len(shard_sizes)}.parquet"
        meta = {"max_points": max_points, "seed": seed, "feature_map": [1, p, d], "images": size,
                "local_features": size * p}  # fmt: skip
        with sample_writer(path, pa.float32(), d, "snappy", meta) as write:
            write(*chosen_rows(np.asarray(ids)[rows], np.asarray(labels)[rows], local[rows], mask[rows]))
        paths.append(path)
        start += size
    return paths
