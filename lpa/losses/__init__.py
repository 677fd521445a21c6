"""Losses of PaCo and LPA, one small module each."""

from lpa.losses.multilabel_supcon import MultiLabelSupConLoss
from lpa.losses.paco import PaCoLoss
from lpa.losses.supcon import SupConLoss

__all__ = ["MultiLabelSupConLoss", "PaCoLoss", "SupConLoss"]
