import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hostile import hostile_checkpoint
from torch.utils._python_dispatch import TorchDispatchMode

from lpa.models.checkpoints import load_checkpoint
from lpa.train import train
from lpa.training.config import TrainConfig
from lpa.training.objectives import PaCoObjective
from lpa.training.step import learning_rate

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

    real = PaCoObjective.forward
    calls = []

    def killed_in_epoch_three(self, *args):
        calls.append(1)
        if len(calls) > 2 * 6 + 3:  # 6 steps per epoch: the fourth step of epoch three
            raise KeyboardInterrupt("wall-time limit")
        return real(self, *args)

    monkeypatch.setattr(PaCoObjective, "forward", killed_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, split, counts, tmp_path / "resumed")
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["epoch"] == 2
    assert not (tmp_path / "resumed" / "model.pt").exists()
    # the metrics of the finished epochs are there while the run goes on
    assert [json.loads(x)["epoch"] for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    monkeypatch.setattr(PaCoObjective, "forward", real)
    train(cfg, split, counts, tmp_path / "resumed")

    straight, _ = load_checkpoint(tmp_path / "straight" / "model.pt")
    resumed, _ = load_checkpoint(tmp_path / "resumed" / "model.pt")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert not (tmp_path / "resumed" / "last.pt").exists()


def test_a_last_pt_that_runs_code_is_not_resumed_from(digits_split, tmp_path, caplog):
    split, counts = digits_split
    marker, out = tmp_path / "marker", tmp_path / "run"
    out.mkdir()
    hostile_checkpoint(out / "last.pt", marker)
    with caplog.at_level("WARNING", logger="lpa.train"):
        train(tiny("ce", epochs=1), split, counts, out)
    assert not marker.exists()
    last = out / "last.pt"
    assert f"ignoring {last}: {last} is not an LPA checkpoint readable without running code" in caplog.text
    assert (out / "model.pt").exists() and not (out / "last.pt").exists()


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


def paco_cifar_lr(epoch, lr=0.05, warmup_epochs=10):
    """adjust_learning_rate of PaCo's paco_cifar.py, transcribed (its milestones 320, 360 are hard-coded)."""
    if epoch <= warmup_epochs:
        return lr / warmup_epochs * (epoch + 1)
    if epoch > 360:
        return lr * 0.01
    if epoch > 320:
        return lr * 0.1
    return lr


def paco_lt_lr(epoch, lr=0.02, warmup_epochs=10, epochs=400):
    """adjust_learning_rate of PaCo's paco_lt.py with --cos, transcribed."""
    if epoch < warmup_epochs:
        return lr / warmup_epochs * (epoch + 1)
    return lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs + 1) / (epochs - warmup_epochs + 1)))


def test_learning_rate_is_pacos_per_epoch_schedule():
    step = TrainConfig(lr=0.05, warmup_epochs=10, epochs=400, schedule="step", milestones=(320, 360))
    assert [learning_rate(step, e) for e in range(400)] == pytest.approx([paco_cifar_lr(e) for e in range(400)])
    assert learning_rate(step, 10) == pytest.approx(0.055)  # PaCo's warm-up ends one epoch late, at 1.1 lr
    cosine = TrainConfig(lr=0.02, warmup_epochs=10, epochs=400, schedule="cosine")
    assert [learning_rate(cosine, e) for e in range(400)] == pytest.approx([paco_lt_lr(e) for e in range(400)])
    no_warmup = TrainConfig(lr=1.0, warmup_epochs=0, epochs=10, schedule="step", milestones=(5,))
    assert [learning_rate(no_warmup, e) for e in (0, 5, 6)] == pytest.approx([1.0, 1.0, 0.1])


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="moco")
    with pytest.raises(ValueError, match="proj_dims"):
        TrainConfig(objective="paco", proj_dims=())


def test_missing_split_is_a_clear_error(tmp_path):
    pd.DataFrame({"label": [0]}).to_csv(tmp_path / "c.csv")
    with pytest.raises(FileNotFoundError, match="missing split table"):
        train(tiny("ce"), tmp_path / "nope.parquet", tmp_path / "c.csv", tmp_path / "out")


def test_a_retry_that_made_no_progress_stops_instead_of_looping(tmp_path):
    from lpa.train import record_slice

    record_slice(tmp_path, attempt=1, start_epoch=0)
    record_slice(tmp_path, attempt=2, start_epoch=5)  # the first slice finished five epochs
    with pytest.raises(RuntimeError, match="no progress: attempt 2 of this job started at epoch 5"):
        record_slice(tmp_path, attempt=3, start_epoch=5)
    record_slice(tmp_path, attempt=1, start_epoch=5)  # a new invocation (attempt 1) starts the record afresh
    assert (tmp_path / "slices.jsonl").read_text().count("attempt") == 1


class ScalarReads(TorchDispatchMode):
    """Counts aten._local_scalar_dense: what .item(), float() and int() of a tensor call."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.calls += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("objective", ["paco", "lpa"])
def test_a_training_step_reads_nothing_back_from_the_device(objective):
    from lpa.models.networks import LongTailNet, ModelConfig
    from lpa.training.objectives import LPAObjective
    from lpa.training.step import LOSS_NAMES, train_step

    torch.manual_seed(0)
    model = LongTailNet(ModelConfig(depth=8, widths=(4, 8, 8), in_channels=1, proj_dims=(8, 4), queue_size=16), 5)
    paco = dict(alpha=0.05, beta=1.0, gamma=1.0, temperature=0.1)
    attributes = np.random.default_rng(0).dirichlet(np.ones(3), size=5)
    loss = PaCoObjective([9, 5, 3, 2, 1], **paco) if objective == "paco" else LPAObjective(
        [9, 5, 3, 2, 1], attributes, **paco, lpa_alpha=0.5, supcon_temperature=0.1
    )  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    sums = torch.zeros(len(LOSS_NAMES) + 2, dtype=torch.float64)
    first_bad = torch.full((1,), -1)
    batches = [((torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8)), torch.randint(0, 5, (8,))) for _ in range(3)]
    train_step(model, loss, optimizer, *batches[0], sums, first_bad, 0)  # the first step creates the momenta
    reads = ScalarReads()
    with reads:
        for step, (views, labels) in enumerate(batches[1:], 1):
            names = train_step(model, loss, optimizer, views, labels, sums, first_bad, step)
    assert reads.calls == 0
    control = ScalarReads()
    with control:
        float(sums[0])  # a read-back, which the mode must see
    assert control.calls == 1
    assert sums[-1] == 24 and int(first_bad) == -1 and sums[0] > 0
    assert ("supcon" in names) == (objective == "lpa")


def test_a_non_finite_loss_names_its_epoch_and_first_step(digits_split, tmp_path, monkeypatch):
    split, counts = digits_split
    real = PaCoObjective.forward
    calls = []

    def nan_from_the_third_step(self, *args):
        calls.append(1)
        losses, logits = real(self, *args)
        if len(calls) >= 3:
            losses["loss"] = losses["loss"] * float("nan")
        return losses, logits

    monkeypatch.setattr(PaCoObjective, "forward", nan_from_the_third_step)
    with pytest.raises(ValueError, match="non-finite at epoch 1, step 2"):
        train(tiny("paco"), split, counts, tmp_path / "nan")
    assert not (tmp_path / "nan" / "last.pt").exists()  # no checkpoint of the bad epoch


@pytest.mark.parametrize("augment_on", ["device", "workers"])
def test_both_augmentation_paths_train_and_replay_an_epoch(digits_split, tmp_path, augment_on, caplog):
    """Each path is deterministic given the seed; they are the same recipe but different random streams."""
    split, counts = digits_split
    cfg = tiny("paco", epochs=1, augment_on=augment_on)
    with caplog.at_level("INFO", logger="lpa.train"):
        first = train(cfg, split, counts, tmp_path / "a")
    again = train(cfg, split, counts, tmp_path / "b")
    assert first["loss"] == again["loss"] and np.isfinite(first["loss"])
    where = "augmentation on the device" if augment_on == "device" else "augmentation on 0 worker(s)"
    assert where in caplog.text


@pytest.mark.slow  # torch.compile of a training step: minutes
def test_compiled_training_step_matches_the_eager_one(digits_split, tmp_path):
    split, counts = digits_split
    eager = train(tiny("paco", epochs=1), split, counts, tmp_path / "eager")
    compiled = train(tiny("paco", epochs=1, compile=True), split, counts, tmp_path / "compiled")
    assert compiled["loss"] == pytest.approx(eager["loss"], rel=1e-4)
    assert compiled["train_top1"] == pytest.approx(eager["train_top1"], abs=100 / 348 * 2)


def test_device_loader_replays_an_epoch_and_changes_with_the_next():
    from lpa.augment.recipes import BatchRecipe
    from lpa.sources.loaders import DeviceLoader
    from lpa.training.distributed import Context, GlobalBatchSampler

    pixels = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    sampler = GlobalBatchSampler(40, 16, 0, Context(0, 1, 0), True)
    loader = DeviceLoader(pixels, torch.arange(40), sampler, BatchRecipe("digits", True), seed=0)
    first = [(q.clone(), y.clone()) for (q, _), y in loader]
    again = [(q, y) for (q, _), y in loader]
    assert len(first) == len(loader) == 2 and all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    loader.epoch = 1
    sampler.set_epoch(1)
    later = [(q, y) for (q, _), y in loader]
    assert not torch.equal(first[0][1], later[0][1])  # another permutation of the images


@pytest.fixture
def jpeg_split(tmp_path):
    from fakedata import write_jpeg_lists

    from lpa import data

    write_jpeg_lists(tmp_path, {"train.txt": [12, 6, 3], "test.txt": [2, 2, 2]}, size=40)
    split, counts = tmp_path / "split.parquet", tmp_path / "counts.csv"
    data.main(["--source", "listfile", "--root", str(tmp_path), "--train-list", "train.txt", "--test-list",
               "test.txt", "--out-split", str(split), "--out-counts", str(counts)])  # fmt: skip
    return split, counts


def test_a_jpeg_dataset_on_the_cpu_augments_in_workers(jpeg_split, tmp_path):
    """At 224 the device's share (RandAugment and the rest) is slower than PIL on a CPU: workers do it all."""
    import logging

    split, counts = jpeg_split
    cfg = tiny("paco", epochs=1, batch_size=8, augment="randclsstack_sim", image_size=32, augment_on="device")
    said = logging.Handler()
    said.emit = lambda record: messages.append(record.getMessage())
    messages = []
    logging.getLogger("lpa.train").addHandler(said)
    try:
        result = train(cfg, split, counts, tmp_path / "run")
    finally:
        logging.getLogger("lpa.train").removeHandler(said)
    assert np.isfinite(result["loss"]) and result["images_per_second"] > 0
    text = "\n".join(messages)
    assert "has no device path: augmenting in workers" in text and text.count("augmentation on 0 worker(s)") == 1


def test_device_finisher_finishes_the_workers_crops_and_replays_an_epoch(jpeg_split):
    from torch.utils.data import DataLoader

    from lpa.augment.recipes import BatchRecipe, decode_crop_transform
    from lpa.io.artifacts import read_split
    from lpa.sources.images import open_source
    from lpa.sources.loaders import DeviceFinisher, ImageDataset
    from lpa.training.distributed import Context, GlobalBatchSampler

    split, meta = read_split(jpeg_split[0])
    train_rows = split[split["split"] == "train"]
    crops = ImageDataset(open_source(meta), train_rows["image_id"].to_numpy(), train_rows["label"].to_numpy(),
                         decode_crop_transform("randcls_sim", size=32), seed=0)  # fmt: skip
    sampler = GlobalBatchSampler(len(crops), 8, 0, Context(), True)
    loader = DeviceFinisher(DataLoader(crops, batch_sampler=sampler), BatchRecipe("randcls_sim", True, size=32),
                            torch.device("cpu"), seed=0)  # fmt: skip
    first = [(q.clone(), k.clone(), y) for (q, k), y in loader]
    assert len(first) == 2 and first[0][0].shape == first[0][1].shape == (8, 3, 32, 32)
    assert first[0][0].dtype == torch.float32 and not torch.equal(first[0][0], first[0][1])
    again = [(q, k, y) for (q, k), y in loader]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    loader.set_epoch(1)
    assert crops.epoch == 1 and not torch.equal(next(iter(loader))[0][0], first[0][0])
