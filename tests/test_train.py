import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import lpa.train
from lpa.objectives import class_similarity
from lpa.train import TrainConfig, learning_rate, load_checkpoint, train

TINY = dict(
    depth=8, widths=(4, 8, 8), strides=(1, 1, 2), augment="digits", batch_size=32, lr=0.05, warmup_epochs=0,
    proj_dims=(8, 8), queue_size=32, epochs=2, schedule="cosine",
)  # fmt: skip


def tiny(objective, **kw):
    return TrainConfig(objective=objective, **{**TINY, **kw})


@pytest.mark.parametrize("objective", ["ce", "paco"])
def test_training_writes_final_model_metrics_and_config(digits_split, tmp_path, objective):
    split, counts = digits_split
    out = tmp_path / objective
    train(tiny(objective), split, counts, out)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.jsonl", "model.pt"]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2] and all(np.isfinite(m["loss"]) for m in metrics)
    model, ckpt = load_checkpoint(out / "model.pt")
    assert ckpt["epoch"] == 2 and ckpt["config"]["objective"] == objective
    assert model.contrastive == (objective == "paco")


def test_resume_after_a_kill_gives_the_same_final_weights(digits_split, tmp_path, monkeypatch):
    split, counts = digits_split
    cfg = tiny("paco", epochs=3)
    train(cfg, split, counts, tmp_path / "straight")

    real = lpa.train.learning_rate

    def killed_in_epoch_three(cfg, progress):
        if progress >= 2.5:
            raise KeyboardInterrupt("wall-time limit")
        return real(cfg, progress)

    monkeypatch.setattr(lpa.train, "learning_rate", killed_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, split, counts, tmp_path / "resumed")
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["epoch"] == 2
    assert not (tmp_path / "resumed" / "model.pt").exists()
    monkeypatch.setattr(lpa.train, "learning_rate", real)
    train(cfg, split, counts, tmp_path / "resumed")

    straight, _ = load_checkpoint(tmp_path / "straight" / "model.pt")
    resumed, _ = load_checkpoint(tmp_path / "resumed" / "model.pt")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert not (tmp_path / "resumed" / "last.pt").exists()


def test_lpa_finetunes_from_paco_checkpoint(digits_split, tmp_path):
    split, counts = digits_split
    train(tiny("paco", epochs=1), split, counts, tmp_path / "paco")
    attrs = tmp_path / "class_attributes.parquet"
    a = np.random.default_rng(0).dirichlet(np.ones(4), size=10).astype(np.float32)
    values = pa.FixedSizeListArray.from_arrays(pa.array(a.ravel()), 4)
    pq.write_table(pa.table({"label": np.arange(10), "images": np.ones(10, int), "attributes": values}), attrs)
    last = train(tiny("lpa", epochs=1, lr=0.01), split, counts, tmp_path / "lpa", attrs, tmp_path / "paco" / "model.pt")
    assert last["supcon"] > 0 and np.isfinite(last["loss"])
    with pytest.raises(ValueError, match="architectures differ"):
        train(tiny("lpa", widths=(4, 8, 16)), split, counts, tmp_path / "bad", attrs, tmp_path / "paco" / "model.pt")


def test_learning_rate_warmup_then_schedules():
    step = TrainConfig(lr=1.0, warmup_epochs=2, epochs=10, schedule="step", milestones=(6, 8))
    assert learning_rate(step, 1.0) == pytest.approx(0.5, abs=1e-3)
    assert [learning_rate(step, e) for e in (3, 6, 9)] == pytest.approx([1.0, 0.1, 0.01])
    cosine = TrainConfig(lr=1.0, warmup_epochs=0, epochs=10, schedule="cosine")
    assert learning_rate(cosine, 5) == pytest.approx(0.5)


def test_class_similarity_choices():
    a = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    torch.testing.assert_close(class_similarity(a, "cosine")[0], torch.tensor([1.0, 0.6, 0.0]))
    assert class_similarity(a, "dominant").tolist() == [[1, 0, 0], [0, 1, 1], [0, 1, 1]]
    assert class_similarity(a, "label").tolist() == torch.eye(3).tolist()
    with pytest.raises(ValueError, match="unknown similarity"):
        class_similarity(a, "jaccard")


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="moco")
    with pytest.raises(ValueError, match="proj_dims"):
        TrainConfig(objective="paco", proj_dims=())


def test_missing_split_is_a_clear_error(tmp_path):
    pd.DataFrame({"label": [0]}).to_csv(tmp_path / "c.csv")
    with pytest.raises(FileNotFoundError, match="missing split table"):
        train(tiny("ce"), tmp_path / "nope.parquet", tmp_path / "c.csv", tmp_path / "out")
