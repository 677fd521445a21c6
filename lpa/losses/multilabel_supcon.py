"""Supervised contrastive loss with several labels per sample, one SupCon per label."""

from __future__ import annotations

import torch
from torch import nn

from lpa.losses.supcon import contrast_log_prob


class MultiLabelSupConLoss(nn.Module):
    r"""SupCon (Khosla et al., NeurIPS 2020) once per label, averaged over the labels.

    Each sample holds a set of labels (LPA: the pseudo-attributes its class holds). For label
    :math:`k`, the anchors are the samples holding it and the positives of anchor :math:`i`
    are the other samples holding it, :math:`P_k(i)`:

    .. math::

        L_k = \frac{1}{|A_k|} \sum_{i \in A_k} \frac{-1}{|P_k(i)|} \sum_{j \in P_k(i)}
              \log \frac{\exp(z_i \cdot z_j / \tau)}{\sum_{m \ne i} \exp(z_i \cdot z_m / \tau)},
        \qquad L = \frac{1}{|K'|} \sum_{k \in K'} L_k

    with :math:`A_k` the anchors holding :math:`k` that have a positive, and :math:`K'` the
    labels with at least one such anchor (0 if there are none). Every label counts the same,
    however many samples hold it, so a rare pseudo-attribute pulls its few holders together as
    strongly as a common one pulls its many. ``anchors`` (N,) bool, if given, restricts the
    anchors (LPA: this process's rows of a gathered batch); every row stays a positive.

    Shapes:
        features: (N, d), L2-normalised.
        held: (N, K), 1 where the sample holds the label, else 0.
        Returns a scalar.
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, features: torch.Tensor, held: torch.Tensor, anchors: torch.Tensor | None = None) -> torch.Tensor:
        n = features.shape[0]
        if held.ndim != 2 or held.shape[0] != n:
            raise ValueError(f"held must be (N, K) for {n} features, got {tuple(held.shape)}")
        log_prob, _ = contrast_log_prob(features, self.temperature)
        h = held.to(log_prob)
        # sum over j != i holding k of log p_ij (the diagonal of log_prob is 0), and their number
        pulled = log_prob @ h
        positives = h.sum(0, keepdim=True) - h
        valid = h * (positives > 0)
        if anchors is not None:
            valid = valid * anchors.to(valid)[:, None]
        per_anchor = -pulled / positives.clamp_min(1.0)
        per_label = (per_anchor * valid).sum(0) / valid.sum(0).clamp_min(1.0)
        labels = (valid.sum(0) > 0).to(valid)
        return (per_label * labels).sum() / labels.sum().clamp_min(1.0)
