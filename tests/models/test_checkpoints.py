"""Our checkpoints, and PaCo's layout: export -> a file as PaCo's scripts save it -> import_paco."""

import re
import subprocess
import sys

import pytest
import torch
from hostile import WritesMarker, hostile_checkpoint

from lpa import evaluate, features, train
from lpa.models.checkpoints import export_paco, import_paco, load_checkpoint, paco_key, save_checkpoint
from lpa.models.networks import LongTailNet, ModelConfig
from lpa.training.objectives import PaCoObjective

PACO_RESNET32 = ModelConfig(arch="resnet_cifar", depth=32, proj_dims=(64, 32), queue_size=1024, key_momentum=0.999)
SMALL = ModelConfig(depth=8, widths=(4, 8, 8), proj_dims=(8, 4), queue_size=16)
COUNTS = [40, 20, 10, 5, 2]


def save_as_paco(model: LongTailNet, path, **extra) -> None:
    """What paco_cifar.py / paco_lt.py write: the DDP-wrapped MoCo's state_dict, epoch, arch, optimizer."""
    torch.save({"epoch": 400, "arch": "resnet32", "state_dict": export_paco(model), "optimizer": {}, **extra}, path)


def steps(model, batches, objective, lr=0.05):
    """SGD steps as PaCo's loop makes them; returns each step's loss and gradients."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr, momentum=0.9, weight_decay=5e-4)
    record = []
    model.train()
    for q, k, y in batches:
        losses, _ = objective(model, (q, k), y)
        optimizer.zero_grad()
        losses["loss"].backward()
        record.append(
            (losses["loss"].detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        )
        optimizer.step()
    return record


def test_pacos_key_layout():
    keys = set(export_paco(LongTailNet(PACO_RESNET32, 100)))
    # PaCo's MoCo(resnet32, 32, 1024, mlp=True, feat_dim=64, num_classes=100) has 397 entries
    assert len(keys) == 397
    expected = {
        "encoder_q.conv1.weight", "encoder_q.layer3.4.bn2.running_var", "encoder_q.fc.0.weight",
        "encoder_q.fc.1.num_batches_tracked", "encoder_q.fc.3.bias", "encoder_k.fc.3.weight",
        "encoder_k.layer1.0.conv1.weight", "linear.weight", "linear_k.bias", "queue", "queue_l", "queue_ptr",
    }  # fmt: skip
    assert {f"module.{k}" for k in expected} <= keys
    assert paco_key("key_projector.1.running_mean") == "encoder_k.fc.1.running_mean"
    assert paco_key("queue_labels") == "queue_l"


def test_round_trip_through_pacos_layout_gives_the_same_model(tmp_path):
    torch.manual_seed(0)
    original = LongTailNet(SMALL, len(COUNTS))
    objective = PaCoObjective(COUNTS, alpha=0.05, beta=1.0, gamma=1.0, temperature=0.07)
    warm = [(torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16), torch.randint(0, 5, (8,))) for _ in range(3)]
    steps(original, warm, objective)  # trained weights, moved BN statistics, a queue_ptr of 24 % 16 = 8
    assert int(original.queue_ptr) == 8
    save_as_paco(original, tmp_path / "moco_ckpt.pth.tar")
    imported = import_paco(tmp_path / "moco_ckpt.pth.tar", SMALL, len(COUNTS))
    for (name, a), b in zip(original.state_dict().items(), imported.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)

    x = torch.randn(4, 3, 16, 16)
    original.eval(), imported.eval()
    with torch.no_grad():
        for a, b in zip(original(x), imported(x)):  # dense map, pooled, logits, embedding
            torch.testing.assert_close(a, b, rtol=0, atol=0)

    batches = [(torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16), torch.randint(0, 5, (8,))) for _ in range(3)]
    for (loss_a, grads_a), (loss_b, grads_b) in zip(
        steps(original, batches, objective), steps(imported, batches, objective)
    ):
        torch.testing.assert_close(loss_a, loss_b, rtol=0, atol=0)
        assert grads_a.keys() == grads_b.keys() and len(grads_a) > 0
        for name in grads_a:
            torch.testing.assert_close(grads_a[name], grads_b[name], rtol=0, atol=0, msg=name)
    # the queue continued from PaCo's queue_ptr: 24 more keys, so slot (8 + 24) % 16 = 0 is next
    assert int(imported.queue_ptr) == 0
    torch.testing.assert_close(original.queue, imported.queue, rtol=0, atol=0)


def test_import_accepts_a_bare_state_dict_without_the_ddp_prefix(tmp_path):
    model = LongTailNet(SMALL, len(COUNTS))
    torch.save({k.removeprefix("module."): v for k, v in export_paco(model).items()}, tmp_path / "bare.pth")
    imported = import_paco(tmp_path / "bare.pth", SMALL, len(COUNTS))
    torch.testing.assert_close(imported.classifier.weight, model.classifier.weight)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda s: s.pop("module.encoder_k.fc.3.weight"), "missing keys: encoder_k.fc.3.weight"),
        (
            lambda s: s.update({"module.encoder_q.extra.weight": torch.zeros(1)}),
            "unexpected keys: encoder_q.extra.weight",
        ),
        (lambda s: s.update({"module.linear.weight": torch.zeros(7, 8)}), r"linear.weight has shape \(7, 8\)"),
    ],
)
def test_import_names_a_missing_unexpected_or_misshaped_key(tmp_path, edit, message):
    state = export_paco(LongTailNet(SMALL, len(COUNTS)))
    edit(state)
    torch.save({"state_dict": state}, tmp_path / "bad.pth.tar")
    with pytest.raises(ValueError, match=message):
        import_paco(tmp_path / "bad.pth.tar", SMALL, len(COUNTS))


def test_import_of_another_architecture_or_a_missing_file_is_named(tmp_path):
    save_as_paco(LongTailNet(SMALL, len(COUNTS)), tmp_path / "small.pth.tar")
    with pytest.raises(ValueError, match="layer3.0.conv1.weight has shape"):
        import_paco(
            tmp_path / "small.pth.tar", ModelConfig(depth=8, widths=(4, 8, 16), proj_dims=(16, 4), queue_size=16), 5
        )
    with pytest.raises(FileNotFoundError, match="missing PaCo checkpoint"):
        import_paco(tmp_path / "nope.pth.tar", SMALL, 5)
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth is not a PaCo checkpoint"):
        import_paco(tmp_path / "junk.pth", SMALL, 5)


def _stage_argv(stage: str, checkpoint, split, counts, out) -> list[str]:
    if stage == "train":
        return ["--split", str(split), "--counts", str(counts), "--out-dir", str(out), "--init-from", str(checkpoint),
                "--objective", "ce", "--depth", "8", "--augment", "digits", "--epochs", "1"]  # fmt: skip
    argv = ["--checkpoint", str(checkpoint), "--split", str(split)]
    if stage == "evaluate":
        return argv + ["--counts", str(counts), "--out-summary", str(out / "s.json"), "--out-per-class", str(out / "c")]
    return argv + (["--shard", "1-of-1", "--out", str(out / "f.parquet")] if stage == "features" else [])


@pytest.mark.parametrize("stage", ["evaluate", "features", "probe", "train"])
def test_every_stage_refuses_a_checkpoint_that_runs_code(digits_split, tmp_path, stage):
    from lpa.tools import probe

    split, counts = digits_split
    marker = tmp_path / "marker"
    checkpoint = hostile_checkpoint(tmp_path / "model.pt", marker)
    main = {"evaluate": evaluate.main, "features": features.main, "probe": probe.main, "train": train.main}[stage]
    message = re.escape(f"{checkpoint} is not an LPA checkpoint readable without running code: ") + ".*io.open"
    with pytest.raises(ValueError, match=message):
        main(_stage_argv(stage, checkpoint, split, counts, tmp_path / "out"))
    assert not marker.exists()


def test_the_refusal_is_one_line_naming_the_file(tmp_path):
    marker = tmp_path / "marker"
    checkpoint = hostile_checkpoint(tmp_path / "model.pt", marker)
    argv = _stage_argv("evaluate", checkpoint, tmp_path / "split.parquet", tmp_path / "counts.csv", tmp_path)
    done = subprocess.run([sys.executable, "-m", "lpa.evaluate", *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ERROR ValueError" in lines[0] and str(checkpoint) in lines[0], done.stderr
    assert not marker.exists()
    torch.load(checkpoint, weights_only=False)  # the file does run code, unless refused
    assert marker.exists()


def test_a_paco_checkpoint_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "marker"
    torch.save({"state_dict": {"module.queue": WritesMarker(marker)}}, tmp_path / "moco.pth.tar")
    with pytest.raises(ValueError, match="moco.pth.tar is not a PaCo checkpoint readable without running code"):
        import_paco(tmp_path / "moco.pth.tar", SMALL, len(COUNTS))
    assert not marker.exists()


def test_a_checkpoint_without_a_model_names_the_missing_keys(tmp_path):
    save_checkpoint(tmp_path / "model.pt", config={}, epoch=1, num_classes=5)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'model.pt'} is not a model checkpoint: missing keys "
                                                   "model_config, model")):  # fmt: skip
        load_checkpoint(tmp_path / "model.pt")


def test_an_empty_or_truncated_checkpoint_is_named(tmp_path):
    save_checkpoint(tmp_path / "model.pt", model=LongTailNet(SMALL, len(COUNTS)).state_dict())
    data = (tmp_path / "model.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("truncated.pt", "empty.pt"):
        with pytest.raises(ValueError, match=re.escape(f"{tmp_path / name} is not an LPA checkpoint")):
            load_checkpoint(tmp_path / name)
