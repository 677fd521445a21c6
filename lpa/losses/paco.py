"""Parametric contrastive loss (PaCo)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class PaCoLoss(nn.Module):
    r"""Parametric contrastive loss of Cui et al., "Parametric Contrastive Learning", ICCV 2021.

    The classifier's weights act as learnable class centres that join the
    contrast set, with logit adjustment by the class prior :math:`\pi_c = n_c / N`.
    For query :math:`i` with label :math:`y_i`, classifier logits :math:`s_i \in R^C` and
    contrast features :math:`F` (queries, keys, queue; L2-normalised rows with labels :math:`L_j`):

    .. math::

        u_{ic} = s_{ic} + \log (\pi_c + 10^{-9}), \qquad v_{ij} = q_i \cdot F_j / \tau \quad (j \ne i)

        \log Z_i = \log\Big(\sum_c e^{u_{ic}} + \gamma \sum_{j \ne i} e^{v_{ij}}\Big)

        \ell_i = -\frac{\beta (u_{i y_i} - \log Z_i)
                 + \alpha \sum_{j \in P_i} (v_{ij} - \log Z_i)}{\beta + \alpha |P_i|},
        \qquad P_i = \{j \ne i : L_j = y_i\}

    and the loss is the mean of :math:`\ell_i` over the queries. With :math:`\alpha = 0`
    it is the logit-adjusted cross-entropy of Menon et al. (2021). The :math:`10^{-9}` is
    PaCo's own (``PaCo/LT/losses.py``); it moves a rare class's logit by up to 2e-4 on
    iNaturalist, so it is kept for the step-for-step match.

    Args:
        class_counts: training images per class, length C (sequence or 1-D tensor).
        alpha: weight of the contrastive positives.
        beta: weight of the class-centre positive.
        gamma: weight of the contrastive terms in the partition function.
        temperature: :math:`\tau` of the feature similarities.

    Shapes:
        features: (2B + K_q, d), L2-normalised; the first B rows are the queries.
        labels: (2B + K_q,) integer labels of the feature rows.
        logits: (B, C) raw classifier logits of the queries (B is taken from here).
        Returns a scalar.
    """

    def __init__(
        self,
        class_counts: Sequence[int] | torch.Tensor,
        alpha: float,
        beta: float = 1.0,
        gamma: float = 1.0,
        temperature: float = 0.05,
    ) -> None:
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float64)
        if counts.ndim != 1 or counts.numel() == 0:
            raise ValueError(f"class_counts must be a non-empty 1-D sequence, got shape {tuple(counts.shape)}")
        if (counts <= 0).any():
            bad = torch.nonzero(counts <= 0).flatten().tolist()
            raise ValueError(f"class_counts must be positive; classes {bad} have no training images")
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if alpha == 0 and beta == 0:
            raise ValueError("alpha and beta cannot both be 0: the loss would have no positives")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.alpha, self.beta, self.gamma, self.temperature = alpha, beta, gamma, temperature
        # float64; cast to the logits in forward
        self.register_buffer("log_prior", torch.log(counts / counts.sum() + 1e-9))

    def forward(self, features: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        batch, num_classes = logits.shape
        if num_classes != self.log_prior.numel():
            raise ValueError(f"logits have {num_classes} classes but class_counts has {self.log_prior.numel()}")
        if features.ndim != 2 or labels.shape != features.shape[:1] or features.shape[0] < batch:
            raise ValueError(
                f"features {tuple(features.shape)} and labels {tuple(labels.shape)} must be (N, d) and (N,) "
                f"with N >= B = {batch}"
            )
        query_labels = labels[:batch]
        u = logits + self.log_prior.to(logits)
        v = features[:batch] @ features.T / self.temperature  # (B, N)
        not_self = torch.ones_like(v, dtype=torch.bool)
        not_self[torch.arange(batch), torch.arange(batch)] = False

        # log(gamma * exp(v)) keeps the partition function a single logsumexp.
        log_gamma = torch.log(torch.tensor(self.gamma, dtype=v.dtype, device=v.device))
        contrast_terms = (v + log_gamma).masked_fill(~not_self, float("-inf"))
        log_z = torch.logsumexp(torch.cat([u, contrast_terms], dim=1), dim=1, keepdim=True)

        positives = (query_labels[:, None] == labels[None, :]) & not_self  # (B, N)
        centre_term = self.beta * (u.gather(1, query_labels[:, None]) - log_z).squeeze(1)
        # masked_fill before the product so that -inf never meets a zero weight.
        contrast_log_prob = (v - log_z).masked_fill(~positives, 0.0)
        contrast_term = self.alpha * contrast_log_prob.sum(1)
        normaliser = self.beta + self.alpha * positives.sum(1).to(v.dtype)
        return -((centre_term + contrast_term) / normaliser).mean()
