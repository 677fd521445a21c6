"""lpa.health: the balanced training top-1 and the stall warning, on histories and on toy runs."""

import json
import logging

import pytest

from lpa.train import train
from lpa.training import monitor as health
from lpa.training.config import TrainConfig


def test_balanced_top1_is_the_mean_of_per_class_accuracies():
    # class 0: 90 of 100 right, class 1: 1 of 10, class 2 unseen (left out)
    assert health.balanced_top1([90, 1, 0], [100, 10, 0]) == pytest.approx(50.0)


def _history(losses, balanced):
    pairs = enumerate(zip(losses, balanced))
    return [{"epoch": i + 1, "loss": loss, "train_balanced_top1": b} for i, (loss, b) in pairs]


def test_stall_needs_a_falling_loss_a_near_chance_classifier_and_enough_epochs():
    falling = [5.0, 4.0, 3.5, 3.0, 2.5, 2.0]
    assert health.near_chance(40) == pytest.approx(2.5 + 0.1 * 97.5)
    assert health.stall_reason(_history(falling, [3.0] * 6), 40, min_epochs=5) is not None
    assert health.stall_reason(_history(falling, [3.0] * 6), 40, min_epochs=7) is None  # too early to say
    assert health.stall_reason(_history(falling, [3.0] * 5 + [40.0]), 40, min_epochs=5) is None  # it learns
    assert health.stall_reason(_history([5.0] * 6, [3.0] * 6), 40, min_epochs=5) is None  # nothing moves at all
    assert health.first_checked_epoch(400) == 80 and health.first_checked_epoch(20) == 5
    assert health.first_checked_epoch(3) == 3


TOY = dict(
    depth=8, widths=(8, 16, 16), strides=(1, 1, 2), augment="digits", batch_size=16, lr=0.05, warmup_epochs=0,
    proj_dims=(16, 16), queue_size=64, epochs=10, schedule="cosine", paco_alpha=0.05, paco_temperature=0.1,
)  # fmt: skip


def _epochs(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_classifier_that_gets_no_positive_stalls_and_is_flagged(digits_split, tmp_path, caplog):
    # PaCo with beta = 0: the class centres are never a positive, so the contrastive term lowers
    # the loss while the classifier only ever learns to push every logit down
    split, counts = digits_split
    with caplog.at_level(logging.WARNING, logger="lpa.train"):
        train(TrainConfig(objective="paco", paco_beta=0.0, **TOY), split, counts, tmp_path / "stalled")
    epochs = _epochs(tmp_path / "stalled")
    assert epochs[-1]["loss"] < 0.9 * epochs[0]["loss"]
    assert epochs[-1]["train_balanced_top1"] < health.near_chance(10)
    assert epochs[-1]["stalled"] and not epochs[0]["stalled"]
    assert "stalled" in caplog.text and "not learning" in caplog.text


@pytest.mark.parametrize("objective", ["ce", "paco"])
def test_a_healthy_run_is_not_flagged(digits_split, tmp_path, caplog, objective):
    split, counts = digits_split
    with caplog.at_level(logging.WARNING, logger="lpa.train"):
        # 40 epochs: first checked at epoch 10, well past the toy's first epochs near chance (16-24% at
        # epoch 5, against the 19% line, depending on the machine's arithmetic)
        train(TrainConfig(objective=objective, **{**TOY, "epochs": 40}), split, counts, tmp_path / "healthy")
    epochs = _epochs(tmp_path / "healthy")
    assert epochs[-1]["train_balanced_top1"] > 2 * health.near_chance(10)
    assert not any(e["stalled"] for e in epochs) and "stalled" not in caplog.text
