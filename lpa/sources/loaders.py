"""Loaders of training and evaluation batches: images by id through PIL transforms, or augmented on the device.

:class:`ImageDataset` serves DataLoader workers (one image at a time, seeded per image);
:class:`DeviceLoader` augments whole batches on the device from a training set held there;
:class:`DeviceFinisher` ends on the device an augmentation the workers began.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


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
