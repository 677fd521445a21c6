"""How one pixel operation runs on a batch, the bottom of :mod:`lpa.augment`.

Images travel as float32 (N, C, H, W) tensors holding integer levels 0..255, and every
operation of :mod:`lpa.augment.geometry` and :mod:`lpa.augment.colour` takes per-image
parameters. :func:`apply_where` runs one on the images of a per-image mask: on CUDA it is
computed for the whole batch and kept where the mask is set, which reads nothing back to the
host; on the CPU only the masked images are computed, where a read-back costs nothing.
:func:`constant` puts a small table on the device once per process, and :func:`normalize` is
ToTensor + Normalize by the datasets' means and deviations (:data:`NORMALIZE`, PaCo's).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Tensor = torch.Tensor
SUBSET_ON_CPU = True  # on the CPU compute only the masked images (False: as on a GPU; for the tests)

# mean, std per dataset, as PaCo's scripts normalise
NORMALIZE = {
    "digits": ((0.30,), (0.38,)),
    "cifar100": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),  # paco_cifar.py
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # paco_lt.py
    "inat": ((0.466, 0.471, 0.380), (0.195, 0.194, 0.192)),  # paco_lt.py --dataset inat
}
IMAGENET_MEAN_RGB = tuple(min(255, round(255 * x)) for x in NORMALIZE["imagenet"][0])  # (124, 116, 104)


def apply_where(mask: Tensor, op: Callable[..., Tensor], images: Tensor, *params: Tensor) -> Tensor:
    """``op(images, *params)`` for the images where ``mask`` (N,) is set, the others unchanged.

    ``params`` are per-image tensors whose first dimension is N.
    """
    subset = SUBSET_ON_CPU and images.device.type == "cpu" and not torch.compiler.is_compiling()
    if not subset:  # no read-back, static shapes: compute all, keep what is asked
        return torch.where(mask.view(-1, *([1] * (images.dim() - 1))), op(images, *params), images)
    index = mask.nonzero().squeeze(1)
    if len(index) == 0:
        return images
    out = images.clone()
    out[index] = op(images[index], *(p[index] for p in params))
    return out


_CONSTANTS: dict = {}


def constant(values, device: torch.device, dtype: torch.dtype = torch.float32) -> Tensor:
    """A small constant (nested tuples of numbers) on ``device``, copied there once per process:
    a copy from the host at every step would make the host wait for the device. Under
    ``torch.compile`` it is a constant of the graph (a lookup in the cache would make the next
    batch, which finds it filled, compile again)."""
    if torch.compiler.is_compiling():
        return torch.tensor(values, dtype=dtype, device=device)
    key = (values, str(device), dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, dtype=dtype).to(device)
    return _CONSTANTS[key]


def normalize(levels: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """ToTensor + Normalize: levels / 255, minus the mean, over the std (float32, as torchvision)."""
    mean, std = constant(mean, levels.device), constant(std, levels.device)
    return (levels.float() / 255 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
