import numpy as np
import pytest
import torch

from lpa.augment.recipes import eval_transform
from lpa.features import extract_shard, parse_shard
from lpa.io.artifacts import iter_local_features, iter_shard_batches, open_features, read_split
from lpa.models.checkpoints import load_checkpoint
from lpa.sources.images import DigitsSource
from lpa.train import train
from lpa.training.config import TrainConfig


def test_parse_shard():
    assert parse_shard("2-of-4") == (2, 4)
    with pytest.raises(ValueError, match="2-of-4"):
        parse_shard("two")
    with pytest.raises(ValueError, match="outside"):
        parse_shard("5-of-4")


def test_sharded_parquet_round_trip(digits_split, tmp_path):
    """Shards together hold every training image once, with the model's dense map in (H, W, D) order."""
    split, counts = digits_split
    cfg = TrainConfig(objective="ce", depth=8, widths=(4, 8, 8), strides=(1, 1, 2), augment="digits", epochs=1)
    train(cfg, split, counts, tmp_path / "m")
    paths = [tmp_path / f"shard-{i}-of-3.parquet" for i in (1, 2, 3)]
    for i, path in enumerate(paths, 1):
        extract_shard(tmp_path / "m" / "model.pt", split, path, f"{i}-of-3", batch_size=16, dtype="float16")

    checked, shape = open_features(paths)
    assert shape == (4, 4, 8) and checked == paths
    frame, _ = read_split(split)
    train_ids = frame.loc[frame["split"] == "train", "image_id"]
    ids, labels, local = (np.concatenate(x) for x in zip(*iter_local_features(paths, batch_rows=7)))
    assert sorted(ids.tolist()) == sorted(train_ids.tolist())
    assert local.shape == (len(train_ids), 16, 8)

    model, _ = load_checkpoint(tmp_path / "m" / "model.pt")
    model.eval()
    source, tf = DigitsSource(), eval_transform("digits")
    with torch.no_grad():
        dense = model(torch.stack([tf(source.load(int(i))) for i in ids[:5]])).dense
    expected = dense.permute(0, 2, 3, 1).reshape(5, 16, 8).numpy()
    np.testing.assert_allclose(local[:5], expected, rtol=2e-3, atol=2e-3)  # float16 storage
    np.testing.assert_array_equal(labels, source.targets[ids])


def test_missing_shard_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="shard-9"):
        open_features([tmp_path / "shard-9.parquet"])


@pytest.fixture
def tiny_model(digits_split, tmp_path):
    split, counts = digits_split
    cfg = TrainConfig(objective="ce", depth=8, widths=(4, 8, 8), strides=(1, 1, 2), augment="digits", epochs=1)
    train(cfg, split, counts, tmp_path / "m")
    return tmp_path / "m" / "model.pt", split


def test_a_model_that_gives_non_finite_features_is_named_and_nothing_is_written(tiny_model, tmp_path):
    checkpoint, split = tiny_model
    saved = torch.load(checkpoint, weights_only=True)
    first = next(k for k in saved["model"] if k.endswith("conv1.weight"))
    saved["model"][first] = torch.full_like(saved["model"][first], float("nan"))
    torch.save(saved, tmp_path / "nan.pt")
    out = tmp_path / "shard-1-of-1.parquet"
    with pytest.raises(ValueError, match=r"image \d+ of shard 1-of-1 has non-finite features"):
        extract_shard(tmp_path / "nan.pt", split, out, "1-of-1", batch_size=16)
    assert not out.exists() and not list(tmp_path.glob(".shard-1-of-1*"))


def test_a_file_system_without_room_fails_before_any_work(tiny_model, tmp_path, monkeypatch):
    import shutil

    import lpa.features as features

    checkpoint, split = tiny_model
    monkeypatch.setattr(features.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10 << 30, 10 << 30, 1024))
    out = tmp_path / "full" / "shard-1-of-2.parquet"
    with pytest.raises(ValueError, match=r"full has 0.00 GiB free, the shard shard-1-of-2.parquet needs up to"):
        extract_shard(checkpoint, split, out, "1-of-2", batch_size=16)
    assert not out.exists()


def test_decoding_workers_give_the_same_shard(tiny_model, tmp_path):
    checkpoint, split = tiny_model
    for workers in (0, 2):
        extract_shard(checkpoint, split, tmp_path / f"w{workers}.parquet", "1-of-2", batch_size=16,
                      compression="zstd", num_workers=workers)  # fmt: skip
    (a, b) = (np.concatenate([x[3] for x in iter_shard_batches([tmp_path / f"w{w}.parquet"])]) for w in (0, 2))
    np.testing.assert_array_equal(a, b)


def test_the_shards_samples_are_the_draw_over_every_training_image(tiny_model, tmp_path):
    """Each shard writes its part of K-means' sample: together, the class-balanced draw over all
    training images in image-id order, as K-means reads its points; with the draw recorded."""
    from lpa.clustering.sampling import sample_mask
    from lpa.io.artifacts import read_sample_meta
    from lpa.kmeans import KMeansConfig, load_points

    model, split = tiny_model
    shards = [tmp_path / f"shard-{i}-of-3.parquet" for i in (1, 2, 3)]
    samples = [tmp_path / f"sample-{i}-of-3.parquet" for i in (1, 2, 3)]
    for i in (1, 2, 3):
        extract_shard(model, split, shards[i - 1], f"{i}-of-3", batch_size=16, out_sample=samples[i - 1],
                      sample_points=500, sample_seed=4)  # fmt: skip
    ids, labels, local = (np.concatenate(x) for x in zip(*iter_local_features(shards)))
    assert (np.diff(ids) > 0).all()  # the shards hold the images in id order
    expected = local[sample_mask(labels, 16, 500, 4)]
    points, summary = load_points(samples, KMeansConfig(k=2, max_points=500, seed=4))
    np.testing.assert_array_equal(points, expected)
    assert summary["images"] == len(ids) and summary["local_features"] == 16 * len(ids) and len(points) == 500
    assert read_sample_meta(samples[0])["feature_map"] == [4, 4, 8]


def test_an_evidence_share_draws_the_sample_from_each_images_top_evidence_positions(tiny_model, tmp_path):
    """With evidence_share 0.25 the sample is the draw over each image's 4 (of 16) positions of
    highest class evidence, in the order of that evidence, and records the share it was drawn for."""
    from lpa.clustering.sampling import sample_mask
    from lpa.io.artifacts import read_sample_meta
    from lpa.kmeans import KMeansConfig, load_points

    checkpoint, split = tiny_model
    shard, sample = tmp_path / "shard.parquet", tmp_path / "sample.parquet"
    extract_shard(checkpoint, split, shard, "1-of-1", batch_size=16, dtype="float32", out_sample=sample,
                  sample_points=100, sample_seed=2, evidence_share=0.25)  # fmt: skip
    ids, labels, local, cams = (np.concatenate(x) for x in zip(*iter_local_features([shard], cam=True)))
    top = np.argsort(-cams, axis=1, kind="stable")[:, :4]
    expected = np.take_along_axis(local, top[..., None], axis=1)[sample_mask(labels, 4, 100, 2)]
    points, summary = load_points([sample], KMeansConfig(k=2, max_points=100, seed=2, evidence_share=0.25))
    np.testing.assert_array_equal(points, expected)
    assert summary["local_features"] == 4 * len(ids) and summary["evidence_share"] == 0.25
    assert read_sample_meta(sample)["evidence_share"] == 0.25


def test_the_shards_hold_the_class_activation_maps_and_centre_on_request(tiny_model, tmp_path):
    """cam is w_y . z_p: its mean over the map plus the bias is the image's logit for its own class;
    --centre stores each image's local features less their mean, the maps unchanged."""
    checkpoint, split = tiny_model
    plain, centred = tmp_path / "plain.parquet", tmp_path / "centred.parquet"
    extract_shard(checkpoint, split, plain, "1-of-1", batch_size=16, dtype="float32")
    extract_shard(checkpoint, split, centred, "1-of-1", batch_size=16, dtype="float32", centre=True)
    ids, labels, local, cams = (np.concatenate(x) for x in zip(*iter_local_features([plain], cam=True)))
    _, _, residual, cams_c = (np.concatenate(x) for x in zip(*iter_local_features([centred], cam=True)))
    model, _ = load_checkpoint(checkpoint)
    weight, bias = model.classifier.weight.detach().numpy(), model.classifier.bias.detach().numpy()
    logits = local.mean(1) @ weight.T + bias
    np.testing.assert_allclose(cams.mean(1) + bias[labels], logits[np.arange(len(ids)), labels], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(residual, local - local.mean(1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(cams_c, cams, atol=1e-6)
