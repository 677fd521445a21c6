import numpy as np
import pytest

from lpa.kmeans import KMeansConfig, check_collapse, fit


def blobs(k=5, per=200, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 10
    labels = np.repeat(np.arange(k), per)
    return (centres[labels] + rng.normal(size=(k * per, dim))).astype(np.float32), labels


@pytest.mark.parametrize("normalize", [False, True])
def test_kmeans_recovers_separable_blobs(normalize):
    points, truth = blobs()
    _, assign, stats = fit(points, KMeansConfig(k=5, niter=20, nredo=3, normalize=normalize, backend="faiss"))
    # every blob maps to one cluster and every cluster to one blob
    pairs = set(zip(truth.tolist(), assign.tolist()))
    assert len(pairs) == 5 and len({a for _, a in pairs}) == 5
    assert stats["cluster_sizes"] == [200] * 5
    assert stats["empty_clusters"] == 0 and stats["points"] == 1000
    # stats.json says which faiss ran where
    from lpa.kmeans import faiss_gpus

    assert stats["faiss"]["device"] == ("gpu" if faiss_gpus() > 0 else "cpu")
    assert stats["faiss"]["gpus_visible"] == faiss_gpus() and isinstance(stats["faiss"]["gpu_build"], bool)


def test_collapse_is_an_error_naming_the_setting():
    cfg = KMeansConfig(k=4, max_cluster_fraction=0.5, max_empty_fraction=0.1)
    with pytest.raises(ValueError, match="max_cluster_fraction"):
        check_collapse({"largest_cluster_fraction": 0.9, "empty_clusters": 0, "cluster_sizes": [9, 1, 0, 0]}, cfg)
    with pytest.raises(ValueError, match="2 of 4 clusters are empty"):
        check_collapse({"largest_cluster_fraction": 0.5, "empty_clusters": 2, "cluster_sizes": [5, 5, 0, 0]}, cfg)
    check_collapse({"largest_cluster_fraction": 0.4, "empty_clusters": 0, "cluster_sizes": [4, 3, 2, 1]}, cfg)


def test_too_few_points_for_k():
    with pytest.raises(ValueError, match="at least 8 points"):
        fit(np.zeros((3, 2), np.float32), KMeansConfig(k=8, backend="faiss"))


@pytest.mark.parametrize("normalize", [False, True])
def test_torch_and_faiss_backends_agree(normalize):
    """Same points and seed: the same partition, objectives within 0.1% (the random inits differ,
    so enough restarts that both reach the global optimum of these blobs)."""
    points, truth = blobs(k=6, per=150, dim=8, seed=1)
    results = {}
    for backend in ("faiss", "torch"):
        cfg = KMeansConfig(k=6, niter=20, nredo=10, seed=0, normalize=normalize, backend=backend)
        results[backend] = fit(points, cfg)
    (_, a_faiss, s_faiss), (_, a_torch, s_torch) = results["faiss"], results["torch"]
    assert s_torch["backend"] == "torch" and s_faiss["backend"] == "faiss"
    assert s_torch["faiss"] is None and s_faiss["faiss"]["device"] in ("cpu", "gpu")
    assert abs(s_torch["objective"] - s_faiss["objective"]) <= 1e-3 * abs(s_faiss["objective"])
    pairs = set(zip(a_faiss.tolist(), a_torch.tolist()))
    assert len(pairs) == 6  # one-to-one correspondence of clusters


def test_torch_backend_reseeds_empty_clusters():
    from lpa.clustering.torch_kmeans import torch_kmeans

    points = np.concatenate([np.zeros((50, 2)), np.ones((50, 2)) * 10, [[100.0, 100.0]]]).astype(np.float32)
    _, assign, trace, _ = torch_kmeans(points, k=3, niter=10, seed=0, spherical=False, device="cpu")
    assert sorted(np.bincount(assign, minlength=3).tolist()) == [1, 50, 50]
    assert trace[-1] == pytest.approx(0.0, abs=1e-6)


def test_auto_backend_on_a_machine_without_gpus(monkeypatch):
    import lpa.kmeans as km

    monkeypatch.setattr(km, "faiss_gpus", lambda: 0)
    monkeypatch.setattr(km, "torch_cuda_available", lambda: False)
    assert km.choose_backend("auto") == "faiss"
    monkeypatch.setattr(km, "torch_cuda_available", lambda: True)
    assert km.choose_backend("auto") == "torch"
    monkeypatch.setattr(km, "faiss_gpus", lambda: 2)
    assert km.choose_backend("auto") == "faiss"
    assert km.choose_backend("torch") == "torch"


def test_load_points_reads_the_samples_within_budget_and_balanced(tmp_path):
    from fakedata import write_samples

    from lpa.kmeans import load_points

    rng = np.random.default_rng(0)
    # class 0: 20 images, class 1: 2 images; 4 local features of dimension 3 each, in two shards
    labels, local = np.array([0] * 20 + [1] * 2), rng.normal(size=(22, 4, 3))
    paths = write_samples(tmp_path, np.arange(22), labels, local, [12, 10], max_points=20, seed=1)
    points, summary = load_points(paths, KMeansConfig(k=2, max_points=20, seed=1))
    assert points.shape == (20, 3) and summary["subsampled"]
    assert summary["images"] == 22 and summary["local_features"] == 88 and summary["points_used"] == 20
    assert (summary["points_per_class_min"], summary["points_per_class_max"]) == (8, 12)  # the tail gives all 8
    # the points are the drawn local features, image by image and position by position
    from lpa.clustering.sampling import sample_mask

    np.testing.assert_array_equal(points, local[sample_mask(labels, 4, 20, 1)].astype(np.float32))
    everything = write_samples(tmp_path / "all", np.arange(22), labels, local, [12, 10], max_points=1000, seed=0)
    points, summary = load_points(everything, KMeansConfig(k=2, max_points=1000))
    assert points.shape == (88, 3) and not summary["subsampled"]


def test_a_sample_drawn_for_other_settings_is_refused_by_name(tmp_path):
    from fakedata import write_samples, write_shard

    from lpa.kmeans import load_points

    local = np.ones((4, 2, 3))
    paths = write_samples(tmp_path, np.arange(4), np.array([0, 0, 1, 1]), local, [4], max_points=8, seed=0)
    drawn = r"sample-1-of-1.parquet was drawn for max_points, seed, evidence_share \(8, 0, 1.0\), K-means is "
    with pytest.raises(ValueError, match=drawn + r"set to \(8, 1, 1.0\): rerun the features stage"):
        load_points(paths, KMeansConfig(k=2, max_points=8, seed=1))
    with pytest.raises(ValueError, match=r"evidence_share \(8, 0, 1.0\), K-means is set to \(8, 0, 0.25\)"):
        load_points(paths, KMeansConfig(k=2, max_points=8, evidence_share=0.25))
    write_shard(tmp_path / "shard.parquet", [0, 1], [0, 1], local[:2])
    with pytest.raises(ValueError, match=r"shard.parquet is a feature shard, not a K-means sample"):
        load_points([tmp_path / "shard.parquet"], KMeansConfig(k=2))


def test_normalize_rows_in_blocks_equals_the_whole_array_at_once():
    from lpa.kmeans import normalize_rows

    x = np.random.default_rng(0).normal(size=(1000, 7)).astype(np.float32)
    x[3] = 0.0  # a zero row stays zero
    expected = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    normalize_rows(x, block=64)
    np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-7)


def test_points_are_held_once_with_no_full_size_temporary(tmp_path):
    """numpy's allocations (traced by tracemalloc) while loading and normalising: the points once,
    plus one shard batch, never a second array as large as the points."""
    import tracemalloc

    from fakedata import write_samples

    from lpa.kmeans import load_points, normalize_rows

    rng = np.random.default_rng(0)
    n, positions, dim = 2400, 16, 64
    local, ids = rng.random((n, positions, dim)), np.arange(n)
    paths = write_samples(tmp_path, ids, ids % 7, local, [800, 800, 800], max_points=n * positions, seed=0)
    del local
    tracemalloc.start()
    points, _ = load_points(paths, KMeansConfig(k=4, max_points=n * positions))
    normalize_rows(points)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    batch_bytes = 128 * positions * dim * 4  # one float32 batch of iter_shard_batches
    assert points.nbytes == n * positions * dim * 4
    assert peak < 1.1 * points.nbytes + 3 * batch_bytes, (peak, points.nbytes)


def test_a_non_finite_feature_stops_kmeans_naming_shard_and_image(tmp_path):
    from fakedata import write_samples

    from lpa.kmeans import load_points

    values = np.ones((5, 4, 3), np.float32)
    values[2, 0, 0] = np.inf
    paths = write_samples(tmp_path, np.array([10, 11, 12, 13, 14]), np.array([0, 0, 1, 1, 1]), values, [5],
                          max_points=1000, seed=0)  # fmt: skip
    with pytest.raises(ValueError, match=r"sample-1-of-1.parquet: image 12 has non-finite features"):
        load_points(paths, KMeansConfig(k=2, max_points=1000))
