"""One training step and what it needs: the learning-rate schedule, the objective, the seeds, the device.

Shared by the training stage (:mod:`lpa.train`) and the throughput tool (:mod:`lpa.tools.throughput`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np
import torch

from lpa.training.config import TrainConfig
from lpa.training.objectives import CrossEntropyObjective, LPAObjective, PaCoObjective

LOSS_NAMES = ("loss", "ce", "paco", "supcon")  # what an objective may report


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate of the 0-based ``epoch``, held for the whole epoch, as PaCo's scripts set it.

    ``step`` is ``adjust_learning_rate`` of ``paco_cifar.py``: ``lr * (e + 1) / W`` while
    ``e <= W`` (so epoch W runs at 1.1 lr, as there), then ``lr_decay`` once per milestone
    that ``e`` has passed (``e > m``: 320 and 360 give epochs 322-361 at 0.1 lr).
    ``cosine`` is ``paco_lt.py``'s: ``lr * (e + 1) / W`` while ``e < W``, then
    ``lr * (1 + cos(pi * (e - W + 1) / (E - W + 1))) / 2``.
    """
    warmup = cfg.warmup_epochs
    if cfg.schedule == "step":
        if warmup and epoch <= warmup:
            return cfg.lr * (epoch + 1) / warmup
        return cfg.lr * cfg.lr_decay ** sum(epoch > m for m in cfg.milestones)
    if epoch < warmup:
        return cfg.lr * (epoch + 1) / warmup
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (epoch - warmup + 1) / (cfg.epochs - warmup + 1)))


def build_objective(cfg: TrainConfig, counts: Sequence[int], attributes: np.ndarray | None,
                    image_scores: np.ndarray | None = None) -> torch.nn.Module:  # fmt: skip
    """The objective of ``cfg``; LPA reads the class attribute vectors a(y) (C, K) and, for a
    per-image target, s(x) of every training image (N, K, in the training set's order)."""
    paco = dict(alpha=cfg.paco_alpha, beta=cfg.paco_beta, gamma=cfg.paco_gamma, temperature=cfg.paco_temperature)
    if cfg.objective == "ce":
        return CrossEntropyObjective()
    if cfg.objective == "paco":
        return PaCoObjective(counts, **paco)
    if attributes is None:
        raise ValueError("objective lpa needs --attributes (the class attribute vectors)")
    return LPAObjective(
        counts,
        attributes,
        **paco,
        lpa_alpha=cfg.lpa_alpha,
        supcon_temperature=cfg.supcon_temperature,
        similarity=cfg.similarity,
        site=cfg.site,
        image_scores=image_scores,
    )


def seed_everything(seed: int, epoch: int, rank: int) -> None:
    """Augmentation randomness from (seed, epoch, rank) alone, so a resumed epoch replays exactly."""
    value = seed * 1_000_003 + epoch * 1_009 + rank
    torch.manual_seed(value)
    np.random.seed(value % 2**32)
    random.seed(value)


def train_step(
    net: torch.nn.Module,
    objective: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    views,
    labels: torch.Tensor,
    sums: torch.Tensor,
    first_bad: torch.Tensor,
    step: int,
    amp: bool = False,
    per_class: torch.Tensor | None = None,
    rows: torch.Tensor | None = None,
) -> tuple[str, ...]:
    """One SGD step that reads nothing back from the device (no host sync); returns the loss names.

    ``sums`` (len(LOSS_NAMES) + 2,) float64 on the device accumulates each loss times the batch,
    the correct predictions and the images seen; ``first_bad`` (1,) long holds the first step
    whose loss was not finite (-1: none); ``per_class`` (2, C) float64, if given, the correct
    predictions and the images seen of each class. All are read once per epoch. ``rows`` (B,)
    long: the images' positions in the training set (a per-image target reads them).
    """
    device_type = labels.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
        losses, logits = objective(net, views, labels, rows)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    optimizer.step()
    with torch.no_grad():
        batch = labels.shape[0]
        zero = sums.new_zeros(())
        terms = torch.stack([losses[n].detach().to(sums.dtype) if n in losses else zero for n in LOSS_NAMES])
        sums[: len(LOSS_NAMES)] += terms * batch
        hits = logits.argmax(1) == labels
        sums[-2] += hits.sum()
        sums[-1] += batch
        if per_class is not None:
            per_class[0].index_add_(0, labels, hits.to(per_class.dtype))
            per_class[1].index_add_(0, labels, torch.ones_like(labels, dtype=per_class.dtype))
        bad = ~torch.isfinite(losses["loss"].detach())
        first_bad.copy_(torch.where(bad & (first_bad < 0), step, first_bad))
    return tuple(losses)


def to_device(views, device):
    """Views on ``device``; on CUDA in channels_last, the layout its convolutions run fastest in."""
    layout = torch.channels_last if device.type == "cuda" else torch.preserve_format
    move = lambda v: v.to(device, non_blocking=True, memory_format=layout)  # noqa: E731
    return tuple(move(v) for v in views) if isinstance(views, (list, tuple)) else move(views)
