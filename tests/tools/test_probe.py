"""lpa.probe: a class-balanced linear probe beside the model's own classifier."""

import json

from lpa.tools import probe
from lpa.train import train
from lpa.training.config import TrainConfig


def test_the_probe_scores_the_encoder_beside_the_classifier(digits_split, tmp_path):
    split, counts = digits_split
    cfg = TrainConfig(objective="ce", depth=8, widths=(8, 16, 16), strides=(1, 1, 2), augment="digits", batch_size=16,
                      lr=0.05, warmup_epochs=0, epochs=8, schedule="cosine")  # fmt: skip
    train(cfg, split, counts, tmp_path / "ce")
    probe.main(["--checkpoint", str(tmp_path / "ce" / "model.pt"), "--split", str(split), "--out",
                str(tmp_path / "probe.json")])  # fmt: skip
    result = json.loads((tmp_path / "probe.json").read_text())
    assert result["split"] == "test"
    # both well above the 10% of chance on digits
    assert 25 < result["classifier_balanced_top1"] <= 100 and 25 < result["probe_balanced_top1"] <= 100
