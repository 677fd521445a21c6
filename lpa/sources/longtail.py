"""The long-tailed profile of LDAM-DRW and PaCo: how many images each class keeps, and which."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
