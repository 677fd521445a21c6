"""Training objectives: CE, PaCo and LPA differ only here, and share one training loop.

An objective is called with the model and a batch ``(views, labels)`` and returns a dict of
scalar losses (``"loss"`` is the one optimised) and the query's classifier logits. Under
several processes the contrast set is the *global* batch (gathered, differentiably) and each
process's own queries are the anchors; one process is the special case of a trivial gather.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lpa.losses import MultiLabelSupConLoss, PaCoLoss, SupConLoss
from lpa.models.networks import KeyOutput, LongTailNet, ModelOutput
from lpa.targets.kinds import SITES
from lpa.targets.similarity import class_similarity, held_prototypes, image_unit_scores
from lpa.training.distributed import gather, local_first


def unwrap(model: nn.Module) -> LongTailNet:
    """The LongTailNet inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


class CrossEntropyObjective(nn.Module):
    def forward(self, model: nn.Module, views: torch.Tensor, labels: torch.Tensor, rows=None):
        logits = model(views).logits
        loss = F.cross_entropy(logits, labels)
        return {"loss": loss, "ce": loss.detach()}, logits


class Contrast(NamedTuple):
    """What PaCo's step computed: its loss, the query's outputs, the key encoder's, the global
    batch's labels and its query+key embeddings (2B_global, d), this process's rows first in each half."""

    loss: torch.Tensor
    out: ModelOutput
    key: KeyOutput
    labels: torch.Tensor
    embeddings: torch.Tensor


def global_rows(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """[queries; keys] of the global batch (2B_global, d), this process's rows first in each half."""
    return torch.cat([local_first(gather(query), query), local_first(gather(key), key)])


class PaCoObjective(nn.Module):
    """PaCo: contrast the queries against [queries, keys, queue] and the class centres."""

    def __init__(self, class_counts: Sequence[int], alpha: float, beta: float, gamma: float, temperature: float):
        super().__init__()
        self.paco = PaCoLoss(class_counts, alpha=alpha, beta=beta, gamma=gamma, temperature=temperature)

    def contrast(self, model: nn.Module, views: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor) -> Contrast:
        """Forward both views and compute PaCo's loss (:class:`Contrast`)."""
        net = unwrap(model)
        if not net.contrastive:
            raise ValueError("PaCo needs a model with a projection head: set model proj_dims")
        query_view, key_view = views
        out = model(query_view)
        key = net.key_encode(key_view)
        both = global_rows(out.embedding, key.embedding)
        y_all = local_first(gather(labels), labels)
        # cat copies the queue, so the enqueue below cannot change this step's contrast set
        features = torch.cat([both, net.queue.to(both.dtype)])
        loss = self.paco(features, torch.cat([y_all, y_all, net.queue_labels]), out.logits)
        net.enqueue(gather(key.embedding), gather(labels))  # rank order: the same queue in every process
        return Contrast(loss, out, key, y_all, both)

    def forward(self, model: nn.Module, views, labels: torch.Tensor, rows=None):
        step = self.contrast(model, views, labels)
        return {"loss": step.loss, "paco": step.loss.detach()}, step.out.logits


class LPAObjective(PaCoObjective):
    r"""LPA: :math:`L_{PaCo}(\hat y, z, y) + \alpha\, L_{SupCon}(z, a(y))`.

    The SupCon term runs over the global batch's queries and keys (2B rows; the keys, from the
    momentum encoder, carry no gradient), in the space ``site`` names:

    - ``projection``: the projection head's embedding, which PaCo's contrast also reads and the
      classifier does not;
    - ``pooled``: the pooled feature GAP(Z), L2-normalised, the paper's z and what the classifier
      reads (directly: a head of its own would again be an embedding that the test never uses);
    - ``logits``: the classifier's logits, L2-normalised, the paper's "predictions" (a cosine
      between logit vectors keeps their geometry, where the dot product of probabilities
      saturates at confident predictions); the keys' logits are the key encoder's pooled
      feature through the current classifier.

    Positive weights :math:`w_{ij} = \mathrm{sim}(a(y_i), a(y_j))` come from the class
    pseudo-attribute vectors (:func:`lpa.targets.similarity.class_similarity`; ``label`` and
    ``none`` are the controls); ``multilabel`` is one SupCon per pseudo-attribute, its
    positives the samples whose class holds it (:class:`lpa.losses.MultiLabelSupConLoss`);
    ``image_cosine`` weighs a pair by the cosine of the two images' own scores s(x)
    (``image_scores`` (N, K), the training set's rows, which ``forward`` reads by ``rows``).
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
        site: str = "projection",
        image_scores: np.ndarray | None = None,
    ):
        super().__init__(class_counts, alpha, beta, gamma, temperature)
        if lpa_alpha < 0:
            raise ValueError(f"lpa_alpha must be >= 0, got {lpa_alpha}")
        if len(attributes) != len(class_counts):
            raise ValueError(f"attributes have {len(attributes)} classes, class counts {len(class_counts)}")
        if site not in SITES:
            raise ValueError(f"unknown site {site!r} of the SupCon term; choose {', '.join(SITES)}")
        self.lpa_alpha, self.site, self.target = lpa_alpha, site, similarity
        if similarity == "multilabel":
            self.supcon = MultiLabelSupConLoss(supcon_temperature)
            self.register_buffer("held", torch.from_numpy(held_prototypes(attributes)))
            return
        self.supcon = SupConLoss(supcon_temperature, check_weights=False)  # the weights are >= 0 by construction
        if similarity == "image_cosine":
            if image_scores is None:
                raise ValueError("similarity image_cosine needs the training images' scores s(x) (--image-scores)")
            self.register_buffer("image_scores", torch.from_numpy(image_unit_scores(image_scores)))
        else:
            self.register_buffer("similarity", torch.from_numpy(class_similarity(attributes, similarity)))

    def embed(self, model: nn.Module, step: Contrast) -> torch.Tensor:
        """The global batch's [queries; keys] in the term's space, L2-normalised (2B_global, d)."""
        if self.site == "projection":
            return step.embeddings
        if self.site == "pooled":
            query, key = step.out.pooled, step.key.pooled
        else:
            query = step.out.logits
            with torch.no_grad():
                key = unwrap(model).classifier(step.key.pooled)
        return global_rows(F.normalize(query, dim=1), F.normalize(key, dim=1))

    def forward(self, model: nn.Module, views, labels: torch.Tensor, rows: torch.Tensor | None = None):
        step = self.contrast(model, views, labels)
        z, y_all = self.embed(model, step), step.labels
        both = torch.cat([y_all, y_all])
        # anchors: this process's queries and keys (the first B rows of each half)
        local = torch.zeros(len(both), dtype=torch.bool, device=z.device)
        local[: len(labels)] = local[len(y_all) : len(y_all) + len(labels)] = True
        if self.target == "multilabel":
            supcon = self.supcon(z, self.held[both], local)
        elif self.target == "image_cosine":
            if rows is None:
                raise ValueError("similarity image_cosine needs each image's row in the training set")
            s = self.image_scores.to(z)[torch.cat([local_first(gather(rows), rows)] * 2)]
            supcon = self.supcon(z, (s @ s.T).clamp_min(0.0) * local[:, None])
        else:
            supcon = self.supcon(z, self.similarity.to(z)[both][:, both] * local[:, None])
        loss = step.loss + self.lpa_alpha * supcon
        return {"loss": loss, "paco": step.loss.detach(), "supcon": supcon.detach()}, step.out.logits
