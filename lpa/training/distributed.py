"""Multi-process training with torch.distributed, launched by torchrun; one process needs none of it.

The training loop asks three things of this module: which process this is (:func:`setup`),
each process's share of a global batch (:class:`GlobalBatchSampler`), and the global batch's
embeddings for the contrast set (:func:`gather`, differentiable, so that every query's
gradient flows back to the process that owns it). With equal local batches, DDP's gradient
averaging then gives the gradient of the loss averaged over the global batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def setup(device_name: str) -> tuple[Context, torch.device]:
    """Join the process group torchrun set up (WORLD_SIZE > 1), else a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Context(), resolve_device(device_name)
    local_rank = int(os.environ["LOCAL_RANK"])
    cuda = torch.cuda.is_available() and device_name in ("auto", "cuda") or device_name.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return Context(dist.get_rank(), dist.get_world_size(), local_rank), device


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if _active():
        dist.barrier()


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` over processes (on the process group's device, returned on the CPU)."""
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else tensor.device
    out = tensor.to(device)
    dist.all_reduce(out)
    return out.cpu()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's ``tensor`` along dim 0, in rank order; gradients flow back."""
    if not _active():
        return tensor
    if tensor.requires_grad:
        import torch.distributed.nn.functional as dist_nn

        return torch.cat(dist_nn.all_gather(tensor))
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def local_first(gathered: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """Reorder a rank-ordered gather so that this process's rows come first (they are the anchors)."""
    if not _active():
        return gathered
    n, rank = local.shape[0], dist.get_rank()
    return torch.cat([local, gathered[: rank * n], gathered[(rank + 1) * n :]])


class GlobalBatchSampler(Sampler[list[int]]):
    """Seeded global batches of ``batch_size`` images; process ``rank`` takes its contiguous slice.

    Every epoch has its own permutation (``seed``, ``epoch``), so a resumed run sees the same
    batches, and the union of the processes' slices is the single-process batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, ctx: Context, drop_last: bool = True) -> None:
        if batch_size % ctx.world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {ctx.world_size} processes")
        self.n, self.batch_size, self.seed, self.ctx, self.drop_last = n, batch_size, seed, ctx, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def global_batches(self) -> Iterator[tuple[list[int], slice]]:
        """Each global batch and the positions of this process's share in it."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        rank, world = self.ctx.rank, self.ctx.world_size
        share = self.batch_size // world
        for b in range(len(self)):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size]
            if len(batch) < self.batch_size:  # a lone partial batch (fewer images than one batch)
                yield batch, slice(rank, None, world)
            else:
                yield batch, slice(rank * share, (rank + 1) * share)

    def __iter__(self) -> Iterator[list[int]]:
        for batch, mine in self.global_batches():
            yield batch[mine]
