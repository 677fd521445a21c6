"""Supervised contrastive loss with weighted positives."""

from __future__ import annotations

import torch
from torch import nn


def contrast_log_prob(features: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """log p_ij = log softmax over k != i of z_i . z_k / tau, for (N, d) features; (N, N), its
    diagonal 0, and the (N, N) boolean identity that masks it."""
    n = features.shape[0]
    if features.ndim != 2:
        raise ValueError(f"features must be (N, d), got {tuple(features.shape)}")
    if n < 2:
        raise ValueError(f"a contrastive loss needs at least 2 samples, got {n}")
    eye = torch.eye(n, dtype=torch.bool, device=features.device)
    sim = (features @ features.T / temperature).masked_fill(eye, float("-inf"))
    return (sim - torch.logsumexp(sim, dim=1, keepdim=True)).masked_fill(eye, 0.0), eye


class SupConLoss(nn.Module):
    r"""Supervised contrastive loss (Khosla et al., NeurIPS 2020) with soft positive weights.

    For L2-normalised features :math:`z_1..z_N` and weights :math:`w_{ij} \ge 0`
    (the diagonal is ignored):

    .. math::

        \ell_i = -\frac{\sum_{j \ne i} w_{ij}
                 \log \frac{\exp(z_i \cdot z_j / \tau)}{\sum_{k \ne i} \exp(z_i \cdot z_k / \tau)}}
                 {\sum_{j \ne i} w_{ij}}

    averaged over the anchors whose weights sum to more than zero (0 if there are none).
    With :math:`w_{ij} = 1[y_i = y_j]` it is exactly SupCon; LPA (Kim et al., NeurIPS 2022)
    uses a similarity of the class pseudo-attribute vectors :math:`a(y_i), a(y_j)`.

    Shapes:
        features: (N, d), L2-normalised.
        weights: (N, N), non-negative.
        Returns a scalar.
    """

    def __init__(self, temperature: float = 0.07, check_weights: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        # the check reads a flag back from the device; a caller whose weights are non-negative
        # by construction (LPA's class similarities) turns it off to keep its step sync-free
        self.check_weights = check_weights

    def forward(self, features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        n = features.shape[0]
        if features.ndim != 2 or weights.shape != (n, n):
            raise ValueError(
                f"features must be (N, d) and weights (N, N); got {tuple(features.shape)}, {tuple(weights.shape)}"
            )
        log_prob, eye = contrast_log_prob(features, self.temperature)
        w = weights.to(log_prob).masked_fill(eye, 0.0)
        if self.check_weights and (w < 0).any():
            raise ValueError("SupConLoss weights must be non-negative")
        total = w.sum(1)
        anchors = (total > 0).to(log_prob.dtype)
        # a mean over the anchors with positives, without reading their number back to the host
        per_anchor = -(w * log_prob).sum(1) / total.clamp_min(torch.finfo(log_prob.dtype).tiny)
        return (per_anchor * anchors).sum() / anchors.sum().clamp_min(1.0)
