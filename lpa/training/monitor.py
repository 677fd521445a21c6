"""Whether a training run learns: balanced training accuracy and the stall warning.

``train_top1`` is the argmax of the raw logits against the long-tailed training labels, as
PaCo logs it. A logit-adjusted model (PaCo, LPA, any loss with the class prior inside) is
trained so that its raw logits suit a *balanced* label distribution, so on long-tailed training
data that figure is biased against the head classes and can sit near zero while the model
works. The balanced accuracy, the mean over classes of each class's accuracy, is what the
balanced test set measures and is not biased by the class prior; a run is *stalled* when it
stays near chance while the loss falls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# near chance: within this fraction of the way from chance (100 / C %) to 100%
NEAR_CHANCE = 0.1
# the loss has fallen: below this fraction of its first epoch's value
LOSS_FELL = 0.9
# the warning is raised from this share of the run's epochs on, and never before MIN_EPOCHS
# (a warm-up and the first epochs keep any model near chance)
AFTER = 0.2
MIN_EPOCHS = 5


def first_checked_epoch(epochs: int) -> int:
    """The first epoch (1-based) at which a run of ``epochs`` epochs may be flagged."""
    return min(epochs, max(MIN_EPOCHS, math.ceil(AFTER * epochs)))


def balanced_top1(correct: Sequence[float], seen: Sequence[float]) -> float:
    """Mean over the classes seen of each class's top-1 (%): (C,) correct and (C,) seen counts."""
    correct, seen = np.asarray(correct, np.float64), np.asarray(seen, np.float64)
    present = seen > 0
    if not present.any():
        return float("nan")
    return float(100.0 * np.mean(correct[present] / seen[present]))


def near_chance(num_classes: int) -> float:
    """The balanced top-1 (%) under which a classifier counts as near chance."""
    chance = 100.0 / num_classes
    return chance + NEAR_CHANCE * (100.0 - chance)


def stall_reason(history: Sequence[dict], num_classes: int, min_epochs: int = MIN_EPOCHS) -> str | None:
    """Why the run looks stalled after the last epoch of ``history``, or None when it learns.

    Stalled: at least ``min_epochs`` epochs done (:func:`first_checked_epoch` in training), the
    loss below ``LOSS_FELL`` of the first epoch's, and the balanced training top-1 still under
    :func:`near_chance`. A loss that falls while the classifier learns nothing is being lowered
    by something else (for a contrastive loss, e.g. the embedding alone), not by classifying.
    """
    if len(history) < min_epochs:
        return None
    first, last = history[0], history[-1]
    top1 = last.get("train_balanced_top1")
    if top1 is None or not np.isfinite(top1):
        return None
    threshold = near_chance(num_classes)
    if last["loss"] < LOSS_FELL * first["loss"] and top1 < threshold:
        return (
            f"the loss fell from {first['loss']:.3g} to {last['loss']:.3g} over {len(history)} epochs, but the "
            f"balanced training top-1 is {top1:.1f}%, under {threshold:.1f}% (chance {100 / num_classes:.1f}%): "
            "the classifier is not learning (docs/diagnostics.md, 'The stall warning')"
        )
    return None
