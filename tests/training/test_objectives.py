"""Where LPA's SupCon term acts: its gradient reaches the features the classifier reads."""

import copy

import numpy as np
import pytest
import torch

from lpa.models.networks import LongTailNet, ModelConfig
from lpa.training.objectives import LPAObjective, PaCoObjective

PACO = dict(alpha=0.05, beta=1.0, gamma=1.0, temperature=0.1)
COUNTS = [9, 5, 3, 2, 1]


def term_gradients(site: str, similarity: str = "cosine") -> dict[str, float]:
    """The SupCon term's gradient norm on each part of the network: the gradient of
    L_PaCo + L_SupCon less that of L_PaCo, from the same weights, queue and batch."""
    torch.manual_seed(0)
    model = LongTailNet(ModelConfig(depth=8, widths=(4, 8, 8), in_channels=1, proj_dims=(8, 4), queue_size=16), 5)
    attributes = np.random.default_rng(0).dirichlet(np.ones(4), size=5)
    views = (torch.randn(12, 1, 8, 8), torch.randn(12, 1, 8, 8))
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 4, 0, 1, 2, 3])
    grads = {}
    for alpha in (1.0, 0.0):
        net = copy.deepcopy(model)
        objective = LPAObjective(COUNTS, attributes, **PACO, lpa_alpha=alpha, supcon_temperature=0.1,
                                 similarity=similarity, site=site)  # fmt: skip
        objective(net, views, labels)[0]["loss"].backward()
        grads[alpha] = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    parts = {"backbone": "backbone.", "projector": "projector.", "classifier": "classifier."}
    return {
        part: sum(float((grads[1.0][n] - grads[0.0][n]).norm()) ** 2 for n in grads[1.0] if n.startswith(prefix))
        ** 0.5
        for part, prefix in parts.items()
    }


@pytest.mark.parametrize(
    "site, reaches, spares",
    [
        ("projection", {"backbone", "projector"}, {"classifier"}),
        ("pooled", {"backbone"}, {"projector", "classifier"}),
        ("logits", {"backbone", "classifier"}, {"projector"}),
    ],
)
@pytest.mark.parametrize("similarity", ["cosine", "multilabel"])
def test_the_term_reaches_what_its_site_reads(site, reaches, spares, similarity):
    norms = term_gradients(site, similarity)
    for part in reaches:
        assert norms[part] > 1e-4, (part, norms)
    for part in spares:
        assert norms[part] == 0.0, (part, norms)


def test_alpha_zero_is_paco_whatever_the_site():
    torch.manual_seed(1)
    model = LongTailNet(ModelConfig(depth=8, widths=(4, 8, 8), in_channels=1, proj_dims=(8, 4), queue_size=16), 5)
    views = (torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8))
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    paco = PaCoObjective(COUNTS, **PACO)(copy.deepcopy(model), views, labels)[0]["loss"]
    for site in ("projection", "pooled", "logits"):
        lpa = LPAObjective(COUNTS, np.ones((5, 3)), **PACO, lpa_alpha=0.0, supcon_temperature=0.1, site=site)
        assert lpa(copy.deepcopy(model), views, labels)[0]["loss"].item() == pytest.approx(paco.item(), rel=1e-6)


def test_an_unknown_site_is_named():
    with pytest.raises(ValueError, match="site 'head'"):
        LPAObjective(COUNTS, np.ones((5, 3)), **PACO, lpa_alpha=0.5, supcon_temperature=0.1, site="head")


def test_a_per_image_target_of_one_hot_scores_is_plain_supcon():
    torch.manual_seed(2)
    model = LongTailNet(ModelConfig(depth=8, widths=(4, 8, 8), in_channels=1, proj_dims=(8, 4), queue_size=16), 5)
    train_labels = np.array([0, 1, 2, 3, 4, 0, 1, 2, 0, 0])
    scores = np.eye(5)[train_labels] * 0.3  # each image's s(x) points at its class alone
    rows = torch.tensor([0, 5, 8, 1, 6, 2, 3, 4])
    labels = torch.as_tensor(train_labels)[rows]
    views = (torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8))
    common = dict(lpa_alpha=1.0, supcon_temperature=0.1, site="pooled")
    image = LPAObjective(COUNTS, np.ones((5, 3)), **PACO, **common, similarity="image_cosine", image_scores=scores)
    label = LPAObjective(COUNTS, np.ones((5, 3)), **PACO, **common, similarity="label")
    a = image(copy.deepcopy(model), views, labels, rows)[0]["supcon"]
    b = label(copy.deepcopy(model), views, labels)[0]["supcon"]
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    with pytest.raises(ValueError, match="row in the training set"):
        image(copy.deepcopy(model), views, labels)
    with pytest.raises(ValueError, match="needs the training images' scores"):
        LPAObjective(COUNTS, np.ones((5, 3)), **PACO, **common, similarity="image_cosine")
