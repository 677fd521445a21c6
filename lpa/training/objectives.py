"""Training objectives: CE, PaCo and LPA differ only here, and share one training loop.

An objective is called with the model and a batch ``(views, labels)`` and returns a dict of
scalar losses (``"loss"`` is the one optimised) and the query's classifier logits. Under
several processes the contrast set is the *global* batch (gathered, differentiably) and each
process's own queries are the anchors; one process is the special case of a trivial gather.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lpa.losses import PaCoLoss, SupConLoss
from lpa.models.networks import LongTailNet
from lpa.targets.similarity import class_similarity
from lpa.training.distributed import gather, local_first


def unwrap(model: nn.Module) -> LongTailNet:
    """The LongTailNet inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


class CrossEntropyObjective(nn.Module):
    def forward(self, model: nn.Module, views: torch.Tensor, labels: torch.Tensor):
        logits = model(views).logits
        loss = F.cross_entropy(logits, labels)
        return {"loss": loss, "ce": loss.detach()}, logits


class PaCoObjective(nn.Module):
    """PaCo: contrast the queries against [queries, keys, queue] and the class centres."""

    def __init__(self, class_counts: Sequence[int], alpha: float, beta: float, gamma: float, temperature: float):
        super().__init__()
        self.paco = PaCoLoss(class_counts, alpha=alpha, beta=beta, gamma=gamma, temperature=temperature)

    def contrast(self, model: nn.Module, views: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor):
        """Forward both views; returns PaCo's loss, the query logits, the global batch's query+key
        embeddings (2B_global, d) with this process's rows first in each half, and their labels."""
        net = unwrap(model)
        if not net.contrastive:
            raise ValueError("PaCo needs a model with a projection head: set model proj_dims")
        query_view, key_view = views
        out = model(query_view)
        k = net.key_embed(key_view)
        q_all = local_first(gather(out.embedding), out.embedding)
        k_all = local_first(gather(k), k)
        y_all = local_first(gather(labels), labels)
        # cat copies the queue, so the enqueue below cannot change this step's contrast set
        features = torch.cat([q_all, k_all, net.queue.to(q_all.dtype)])
        loss = self.paco(features, torch.cat([y_all, y_all, net.queue_labels]), out.logits)
        net.enqueue(gather(k), gather(labels))  # rank order: the same queue in every process
        return loss, out.logits, torch.cat([q_all, k_all]), y_all

    def forward(self, model: nn.Module, views, labels: torch.Tensor):
        loss, logits, _, _ = self.contrast(model, views, labels)
        return {"loss": loss, "paco": loss.detach()}, logits


class LPAObjective(PaCoObjective):
    r"""LPA: :math:`L_{PaCo}(\hat y, z, y) + \alpha\, L_{SupCon}(z, a(y))`.

    The SupCon term runs over the batch's query and key embeddings, with positive weights
    :math:`w_{ij} = \mathrm{sim}(a(y_i), a(y_j))` from the class pseudo-attribute vectors
    (:func:`lpa.targets.similarity.class_similarity`; ``label`` and ``none`` are the controls).
    """

    def __init__(
        self,
        class_counts: Sequence[int],
        attributes: np.ndarray,
        alpha: float,
        beta: float,
        gamma: float,
        temperature: float,
        lpa_alpha: float,
        supcon_temperature: float,
        similarity: str = "cosine",
    ):
        super().__init__(class_counts, alpha, beta, gamma, temperature)
        if lpa_alpha < 0:
            raise ValueError(f"lpa_alpha must be >= 0, got {lpa_alpha}")
        if len(attributes) != len(class_counts):
            raise ValueError(f"attributes have {len(attributes)} classes, class counts {len(class_counts)}")
        self.lpa_alpha = lpa_alpha
        self.supcon = SupConLoss(supcon_temperature, check_weights=False)  # similarities are >= 0 by construction
        self.register_buffer("similarity", torch.from_numpy(class_similarity(attributes, similarity)))

    def forward(self, model: nn.Module, views, labels: torch.Tensor):
        paco, logits, z, y_all = self.contrast(model, views, labels)
        both = torch.cat([y_all, y_all])
        weights = self.similarity.to(z)[both][:, both]
        # anchors: this process's queries and keys (the first B rows of each half)
        local = torch.zeros(len(both), dtype=torch.bool, device=z.device)
        local[: len(labels)] = local[len(y_all) : len(y_all) + len(labels)] = True
        supcon = self.supcon(z, weights * local[:, None])
        loss = paco + self.lpa_alpha * supcon
        return {"loss": loss, "paco": paco.detach(), "supcon": supcon.detach()}, logits
