"""Each loss against a naive reference written here, and its degenerate cases."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lpa.losses import MultiLabelSupConLoss, PaCoLoss, SupConLoss


def naive_paco(features, labels, logits, counts, alpha, beta, gamma, tau):
    """Term by term transcription of PaCo's per-query loss, in Python loops."""
    batch, num_classes = logits.shape
    prior = [c / sum(counts) + 1e-9 for c in counts]  # PaCo's epsilon
    total = 0.0
    for i in range(batch):
        u = [logits[i, c].item() + math.log(prior[c]) for c in range(num_classes)]
        v = {j: (features[i] @ features[j]).item() / tau for j in range(len(features)) if j != i}
        z = sum(math.exp(x) for x in u) + gamma * sum(math.exp(x) for x in v.values())
        positives = [j for j in v if labels[j] == labels[i]]
        numerator = beta * (u[labels[i]] - math.log(z)) + alpha * sum(v[j] - math.log(z) for j in positives)
        total += -numerator / (beta + alpha * len(positives))
    return total / batch


def paco_inputs(batch=6, queue=5, dim=8, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    features = F.normalize(torch.randn(2 * batch + queue, dim, generator=g, dtype=torch.float64), dim=1)
    labels = torch.randint(classes, (2 * batch + queue,), generator=g)
    labels[batch : 2 * batch] = labels[:batch]  # keys share their query's label
    logits = torch.randn(batch, classes, generator=g, dtype=torch.float64)
    return features, labels, logits


@pytest.mark.parametrize("alpha,beta,gamma,tau", [(0.05, 1.0, 1.0, 0.07), (1.0, 0.5, 2.0, 0.2), (0.3, 0.0, 1.0, 0.5)])
def test_paco_matches_naive_reference(alpha, beta, gamma, tau):
    features, labels, logits = paco_inputs()
    counts = [50, 20, 5, 2]
    loss = PaCoLoss(counts, alpha=alpha, beta=beta, gamma=gamma, temperature=tau)(features, labels, logits)
    expected = naive_paco(features, labels.tolist(), logits, counts, alpha, beta, gamma, tau)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_paco_without_contrast_is_logit_adjusted_cross_entropy():
    features, labels, logits = paco_inputs()
    counts = torch.tensor([50, 20, 5, 2], dtype=torch.float64)
    loss = PaCoLoss(counts, alpha=0.0, gamma=0.0)(features, labels, logits)
    prior = counts / counts.sum()
    expected = F.cross_entropy(logits + torch.log(prior + 1e-9), labels[: logits.shape[0]])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)


def test_paco_alpha_zero_keeps_contrast_in_partition_function():
    features, labels, logits = paco_inputs()
    with_contrast = PaCoLoss([5, 4, 3, 2], alpha=0.0, gamma=1.0)(features, labels, logits)
    without = PaCoLoss([5, 4, 3, 2], alpha=0.0, gamma=0.0)(features, labels, logits)
    assert with_contrast > without  # a larger partition function, a larger loss


def test_paco_gradients_reach_features_and_logits():
    features, labels, logits = paco_inputs()
    features.requires_grad_(True)
    logits.requires_grad_(True)
    PaCoLoss([5, 4, 3, 2], alpha=0.5)(features, labels, logits).backward()
    assert features.grad[: logits.shape[0]].abs().sum() > 0
    assert logits.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"class_counts": [3, 0], "alpha": 0.1}, "classes \\[1\\]"),
        ({"class_counts": [3, 2], "alpha": -1}, "alpha"),
        ({"class_counts": [3, 2], "alpha": 0.1, "temperature": 0}, "temperature"),
        ({"class_counts": [], "alpha": 0.1}, "non-empty"),
    ],
)
def test_paco_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PaCoLoss(**kwargs)


def test_paco_rejects_class_count_mismatch():
    features, labels, logits = paco_inputs(classes=4)
    with pytest.raises(ValueError, match="4 classes"):
        PaCoLoss([1, 2, 3], alpha=0.1)(features, labels, logits)


def naive_supcon(features, weights, tau):
    n = len(features)
    losses = []
    for i in range(n):
        denom = sum(math.exp((features[i] @ features[k]).item() / tau) for k in range(n) if k != i)
        wsum = sum(weights[i][j] for j in range(n) if j != i)
        if wsum == 0:
            continue
        terms = sum(
            weights[i][j] * math.log(math.exp((features[i] @ features[j]).item() / tau) / denom)
            for j in range(n)
            if j != i
        )
        losses.append(-terms / wsum)
    return sum(losses) / len(losses)


def test_supcon_matches_naive_reference_with_soft_weights():
    g = torch.Generator().manual_seed(1)
    z = F.normalize(torch.randn(7, 5, generator=g, dtype=torch.float64), dim=1)
    w = torch.rand(7, 7, generator=g, dtype=torch.float64)
    w[3] = 0  # an anchor without positives is left out of the mean
    loss = SupConLoss(temperature=0.3)(z, w)
    assert loss.item() == pytest.approx(naive_supcon(z, w.tolist(), 0.3), rel=1e-10)


def test_supcon_with_label_weights_is_supcon():
    """One-hot label agreement as weights gives Khosla et al.'s L_out, written here from labels."""
    g = torch.Generator().manual_seed(2)
    z = F.normalize(torch.randn(8, 4, generator=g, dtype=torch.float64), dim=1)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3])
    tau = 0.1
    sim = z @ z.T / tau
    expected = []
    for i in range(8):
        others = [k for k in range(8) if k != i]
        positives = [p for p in others if y[p] == y[i]]
        if not positives:
            continue
        log_denom = torch.logsumexp(sim[i, others], 0)
        expected.append(-sum(sim[i, p] - log_denom for p in positives) / len(positives))
    loss = SupConLoss(tau)(z, (y[:, None] == y[None, :]).double())
    assert loss.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-10)


def test_supcon_with_view_pairs_is_nt_xent():
    """Weights that pair each sample only with its other view reduce SupCon to SimCLR's NT-Xent."""
    g = torch.Generator().manual_seed(3)
    n = 5
    z = F.normalize(torch.randn(2 * n, 6, generator=g, dtype=torch.float64), dim=1)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    w = F.one_hot(partner, 2 * n).double()
    tau = 0.2
    logits = (z @ z.T / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    nt_xent = F.cross_entropy(logits, partner)
    assert SupConLoss(tau)(z, w).item() == pytest.approx(nt_xent.item(), rel=1e-10)


def test_supcon_without_positives_is_zero_and_differentiable():
    z = F.normalize(torch.randn(4, 3), dim=1).requires_grad_(True)
    loss = SupConLoss()(z, torch.zeros(4, 4))
    loss.backward()
    assert loss.item() == 0.0


def test_supcon_rejects_negative_weights_and_bad_shapes():
    z = F.normalize(torch.randn(4, 3), dim=1)
    with pytest.raises(ValueError, match="non-negative"):
        SupConLoss()(z, -torch.ones(4, 4))
    with pytest.raises(ValueError, match="weights"):
        SupConLoss()(z, torch.ones(3, 3))
    with pytest.raises(ValueError, match="temperature"):
        SupConLoss(temperature=0.0)


def test_multilabel_supcon_matches_a_hand_computed_case():
    z = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.2]], dtype=torch.float64), dim=1)
    # prototype 0: samples 0 and 1; prototype 1: samples 1 and 2; prototype 2: sample 3 alone (no pair)
    held = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]])
    tau = 0.5
    sim = (z @ z.T / tau).numpy()

    def log_p(i, j):
        others = [k for k in range(4) if k != i]
        return sim[i, j] - np.log(np.exp(sim[i, others]).sum())

    first = (-log_p(0, 1) - log_p(1, 0)) / 2
    second = (-log_p(1, 2) - log_p(2, 1)) / 2
    loss = MultiLabelSupConLoss(tau)(z, held)
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-10)
    # anchors restricted to sample 0: only prototype 0 has an anchor left
    only = torch.tensor([True, False, False, False])
    assert MultiLabelSupConLoss(tau)(z, held, only).item() == pytest.approx(-log_p(0, 1), rel=1e-10)


def test_multilabel_supcon_with_one_label_each_and_balanced_classes_is_supcon():
    torch.manual_seed(0)
    z = F.normalize(torch.randn(12, 5, dtype=torch.float64), dim=1)
    y = torch.arange(4).repeat(3)
    held = F.one_hot(y, 4)
    supcon = SupConLoss(0.2)(z, (y[:, None] == y[None, :]).double())
    assert MultiLabelSupConLoss(0.2)(z, held).item() == pytest.approx(supcon.item(), rel=1e-10)
    nobody = MultiLabelSupConLoss(0.2)(z, torch.eye(12))  # no label held twice: no positives
    assert nobody.item() == 0.0
