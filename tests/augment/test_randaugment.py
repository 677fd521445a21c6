"""The batched RandAugment against timm's: each operation for fixed parameters, whole calls replayed
through timm's own ``RandAugment`` from the recorded draws, and the draws' distributions."""

import random
from collections import Counter
from types import SimpleNamespace

import fakedata
import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from timm.data import auto_augment as AA

import lpa.augment.batch as B
import lpa.augment.geometry as G
import lpa.augment.randaugment as R
from lpa.augment.batch import IMAGENET_MEAN_RGB
from lpa.augment.randaugment import rand_augment
from lpa.augment.steps import Draw

SIZE = 32
HPARAMS = {"translate_const": int(SIZE * 0.45), "img_mean": IMAGENET_MEAN_RGB}  # PaCo's, as rand_augment(SIZE)


def photo_like(n, size=SIZE, seed=0):
    return fakedata.photo_like(n, size, seed=seed)


def as_batch(images):
    return torch.from_numpy(images).permute(0, 3, 1, 2).float()


def assert_same(ours, pils):
    theirs = np.stack([np.asarray(p) for p in pils]).astype(np.int64)
    np.testing.assert_array_equal(ours.permute(0, 2, 3, 1).numpy().astype(np.int64), theirs)


IMAGES = photo_like(64)[:, 4:28]  # 24 x 32: not square, so that a width taken for a height shows
PILS = [Image.fromarray(a) for a in IMAGES]
BATCH = as_batch(IMAGES)
N = len(PILS)
FILL = torch.tensor(IMAGENET_MEAN_RGB, dtype=torch.float32)


# --- each operation for fixed parameters -----------------------------------------------------------


@pytest.mark.parametrize("resample", [Image.BILINEAR, Image.BICUBIC], ids=["bilinear", "bicubic"])
def test_affine_transform_equals_pils_for_any_matrix(resample):
    """Rotation, shear, scale and sub-pixel shifts at once, fill on every border."""
    rng = np.random.RandomState(0)
    matrix = torch.tensor(rng.uniform(-1, 1, (N, 6)) * [0.5, 0.5, 12, 0.5, 0.5, 12] + [1, 0, 0, 0, 1, 0])
    ours = (G.affine_bilinear if resample == Image.BILINEAR else G.affine_bicubic)(BATCH, matrix, FILL)
    assert_same(ours, [p.transform(p.size, Image.AFFINE, tuple(m.tolist()), resample, fillcolor=IMAGENET_MEAN_RGB)
                       for p, m in zip(PILS, matrix)])  # fmt: skip
    assert (ours == FILL.view(1, 3, 1, 1)).all(1).any() and not torch.equal(ours, BATCH)


def test_solarize_add_equals_timms():
    rng = np.random.RandomState(1)
    add, threshold = rng.randint(0, 129, N), 100
    ours = R.solarize_add(BATCH, torch.tensor(add), threshold)
    assert_same(ours, [AA.solarize_add(p, int(a), threshold) for p, a in zip(PILS, add)])
    assert not torch.equal(ours, BATCH)


def timm_op(name, image, magnitude, negate, resample):
    """timm's operation ``name`` at ``magnitude`` with the given sign and resampling, as its AugmentOp calls it."""
    level_fn = AA.LEVEL_TO_ARG[name]
    original = AA._randomly_negate
    AA._randomly_negate = lambda v: -v if negate else v
    try:
        args = level_fn(magnitude, HPARAMS) if level_fn else ()
    finally:
        AA._randomly_negate = original
    return AA.NAME_TO_OP[name](image, *args, fillcolor=IMAGENET_MEAN_RGB, resample=resample)


@pytest.mark.parametrize("name", R.NAMES)
def test_each_operation_equals_timms(name):
    """Magnitudes over [0, 10] and exactly 10 (the clipped half), both signs, both resampling filters."""
    rng = np.random.RandomState(R.NAMES.index(name))
    magnitude = np.where(rng.rand(N) < 0.25, 10.0, rng.uniform(0, 10, N))
    if name == "Posterize":
        magnitude = np.maximum(magnitude, 2.5)  # Pillow 13 refuses 0 bits, timm's level for m < 2.5 (p ~ 1e-50)
    negate, bicubic = rng.rand(N) < 0.5, rng.rand(N) < 0.5
    resample = np.where(bicubic, R.BICUBIC, R.BILINEAR)
    op = torch.full((N,), R.NAMES.index(name))
    ours = R.RandAugmentBatch(SIZE).step(BATCH, op, torch.tensor(magnitude), torch.tensor(negate),
                                         torch.tensor(resample))  # fmt: skip
    assert_same(ours, [timm_op(name, p, m, s, int(r)) for p, m, s, r in zip(PILS, magnitude, negate, resample)])
    assert not torch.equal(ours, BATCH)


def test_no_operation_leaves_the_image():
    op = torch.full((N,), -1)
    ones = torch.ones(N, dtype=torch.float64)
    assert torch.equal(R.RandAugmentBatch(SIZE).step(BATCH, op, 10 * ones, ones > 0, torch.full((N,), 2)), BATCH)


# --- whole calls: replay the recorded draws through timm's RandAugment ----------------------------------


class ScriptedRandom:
    """Stands in for timm's ``random`` module: answers each draw with the recorded one, in the order queued.

    A draw timm makes that was not queued, or a queued one it does not make, fails the replay.
    """

    def __init__(self):
        self.uniforms, self.gaussians, self.choices = [], [], []

    def random(self):
        return self.uniforms.pop(0)

    def gauss(self, mu, sigma):
        assert (mu, sigma) == (R.MAGNITUDE, R.MAGNITUDE_STD)
        return self.gaussians.pop(0)

    def choice(self, seq):
        assert tuple(seq) == (Image.BILINEAR, Image.BICUBIC)
        return self.choices.pop(0)


def record_call(images, seed):
    record = {}
    draw = Draw(torch.Generator().manual_seed(seed), len(images), images.device, record)
    return R.RandAugmentBatch(images.shape[-1]).run(images, draw), record


def test_whole_calls_replay_through_timms_randaugment(monkeypatch):
    images = photo_like(128, seed=5)[:, :, 8:]  # 32 x 24
    ours, record = record_call(as_batch(images), seed=0)
    transform = rand_augment(SIZE)  # PaCo's timm RandAugment itself
    assert tuple(op.name for op in transform.ops) == R.NAMES
    scripted = ScriptedRandom()
    monkeypatch.setattr(AA, "random", scripted)
    for n, image in enumerate(images):
        chosen = [int(record[f"randaug_op{k}"][n]) for k in range(R.NUM_LAYERS)]

        def choose(ops, size, replace, p, chosen=chosen):
            assert size == R.NUM_LAYERS and replace and p is None
            return [ops[i] for i in chosen]

        monkeypatch.setattr(AA, "np", SimpleNamespace(random=SimpleNamespace(choice=choose)))
        for k in range(R.NUM_LAYERS):
            applied = bool(record[f"randaug_applied{k}"][n])
            scripted.uniforms.append(0.25 if applied else 0.75)  # timm skips when random() > 0.5
            if applied:
                scripted.gaussians.append(float(record[f"randaug_magnitude{k}"][n]))
                if R.NAMES[chosen[k]] in R.SIGNED:
                    scripted.uniforms.append(0.75 if record[f"randaug_negate{k}"][n] else 0.25)  # negates if > 0.5
                if R.NAMES[chosen[k]] in R.GEOMETRIC:
                    scripted.choices.append(int(record[f"randaug_resample{k}"][n]))
        theirs = transform(Image.fromarray(image))
        assert not (scripted.uniforms or scripted.gaussians or scripted.choices), f"image {n}: draws timm did not make"
        np.testing.assert_array_equal(ours[n].permute(1, 2, 0).numpy(), np.asarray(theirs), err_msg=f"image {n}")
    # the replay covered every operation, and each geometric one with both filters
    ran = Counter((R.NAMES[int(record[f"randaug_op{k}"][n])], int(record[f"randaug_resample{k}"][n]))
                  for k in range(R.NUM_LAYERS) for n in range(len(images))
                  if record[f"randaug_applied{k}"][n])  # fmt: skip
    assert {name for name, _ in ran} == set(R.NAMES)
    assert all(ran[name, r] for name in R.GEOMETRIC for r in (R.BILINEAR, R.BICUBIC))


def test_computing_all_images_as_on_a_gpu_gives_the_same_batch(monkeypatch):
    subset, _ = record_call(BATCH, seed=3)
    monkeypatch.setattr(B, "SUBSET_ON_CPU", False)
    whole, _ = record_call(BATCH, seed=3)
    assert torch.equal(subset, whole) and not torch.equal(subset, BATCH)


def test_nothing_is_read_back_to_the_host_off_the_cpu():
    """On the meta device (shapes, no data) any read-back (.item(), int(), bool(), nonzero()) raises."""
    draw = Draw(None, N, torch.device("meta"), {})
    out = R.RandAugmentBatch(SIZE).run(BATCH.to("meta"), draw)
    assert out.shape == BATCH.shape and out.device.type == "meta" and len(draw.record) == 5 * R.NUM_LAYERS


# --- distributions of the draws: ours against timm's own ----------------------------------------------

DRAWS = 4000


def same_distribution(ours, theirs):
    return stats.ks_2samp(np.asarray(ours, float), np.asarray(theirs, float)).pvalue > 1e-4


def same_frequencies(ours: Counter, theirs: Counter):
    keys = sorted(set(ours) | set(theirs))
    return stats.chi2_contingency(np.array([[ours[k] for k in keys], [theirs[k] for k in keys]])).pvalue > 1e-4


def binomial_ok(hits, n, p):
    return stats.binomtest(int(hits), n, p).pvalue > 1e-4


@pytest.fixture(scope="module")
def our_draws():
    _, record = record_call(torch.zeros(DRAWS, 3, 8, 8), seed=11)
    rows = []  # (name, applied, magnitude, negate, resample) per layer and image
    for k in range(R.NUM_LAYERS):
        columns = [record[f"randaug_{c}{k}"].tolist() for c in ("op", "applied", "magnitude", "negate", "resample")]
        rows += [(R.NAMES[o], a, m, s, r) for o, a, m, s, r in zip(*columns)]
    return rows


@pytest.fixture(scope="module")
def timm_draws():
    """timm's RandAugment run DRAWS times, each draw it makes recorded (by wrapping its own functions)."""
    transform = rand_augment(8)
    seen = {"chosen": [], "applied": [], "magnitude": [], "negate": [], "resample": []}
    current = []

    class Chosen:  # counts each op np.random.choice draws, then runs it
        def __init__(self, op):
            self.op = op

        def __call__(self, img):
            seen["chosen"].append(self.op.name)
            current[:] = [self.op.name]
            return self.op(img)

    def recording(op, level_fn, aug_fn):
        def level(magnitude, hparams):
            seen["magnitude"].append(magnitude)
            return level_fn(magnitude, hparams)

        def apply(img, *args, **kwargs):
            seen["applied"].append(op.name)
            return aug_fn(img, *args, **kwargs)

        op.aug_fn = apply
        if level_fn is not None:
            op.level_fn = level

    for op in transform.ops:
        recording(op, op.level_fn, op.aug_fn)
    transform.ops = [Chosen(op) for op in transform.ops]
    negate, interpolation = AA._randomly_negate, AA._interpolation

    def recorded_negate(v):
        out = negate(v)
        seen["negate"].append((current[0], bool(np.signbit(out) != np.signbit(v))))
        return out

    def recorded_interpolation(kwargs):
        out = interpolation(kwargs)
        seen["resample"].append((current[0], int(out)))
        return out

    AA._randomly_negate, AA._interpolation = recorded_negate, recorded_interpolation
    try:
        random.seed(0)
        np.random.seed(0)
        image = Image.fromarray(np.full((8, 8, 3), 90, np.uint8))
        for _ in range(DRAWS):
            transform(image)
    finally:
        AA._randomly_negate, AA._interpolation = negate, interpolation
    return seen


def test_operations_are_chosen_and_applied_as_timms(our_draws, timm_draws):
    assert same_frequencies(Counter(name for name, *_ in our_draws), Counter(timm_draws["chosen"]))
    assert same_frequencies(Counter(name for name, applied, *_ in our_draws if applied),
                            Counter(timm_draws["applied"]))  # fmt: skip
    applied = sum(row[1] for row in our_draws)
    assert binomial_ok(applied, len(our_draws), R.PROB)
    assert same_frequencies(Counter(applied=applied, skipped=len(our_draws) - applied),
                            Counter(applied=len(timm_draws["applied"]),
                                    skipped=len(timm_draws["chosen"]) - len(timm_draws["applied"])))  # fmt: skip


def test_magnitudes_are_distributed_as_timms(our_draws, timm_draws):
    ours = [m for _, applied, m, _, _ in our_draws if applied]
    assert same_distribution(ours, timm_draws["magnitude"])
    assert max(ours) == 10.0 and binomial_ok(sum(m == 10.0 for m in ours), len(ours), 0.5)  # the clipped half


def test_signs_and_filters_are_drawn_as_timms(our_draws, timm_draws):
    # timm draws a sign only for the signed operations and a filter only for the geometric ones
    assert {name for name, _ in timm_draws["negate"]} == set(R.SIGNED)
    assert {name for name, _ in timm_draws["resample"]} == set(R.GEOMETRIC)
    signs = [s for name, applied, _, s, _ in our_draws if applied and name in R.SIGNED]
    assert binomial_ok(sum(signs), len(signs), 0.5)
    assert same_frequencies(Counter(signs), Counter(s for _, s in timm_draws["negate"]))
    filters = [r for name, applied, _, _, r in our_draws if applied and name in R.GEOMETRIC]
    assert set(filters) == {R.BILINEAR, R.BICUBIC} and binomial_ok(filters.count(R.BICUBIC), len(filters), 0.5)
    assert same_frequencies(Counter(filters), Counter(r for _, r in timm_draws["resample"]))


def test_a_wrong_distribution_is_caught(timm_draws):
    """The checks above can fail: unclipped or wider magnitudes, a dropped operation, a 0.55 rate are rejected."""
    gen = np.random.RandomState(0)
    n = len(timm_draws["magnitude"])
    assert not same_distribution(10 + 0.5 * gen.randn(n), timm_draws["magnitude"])
    assert not same_distribution(np.clip(10 + 1.0 * gen.randn(n), 0, 10), timm_draws["magnitude"])
    assert not same_frequencies(Counter(gen.choice(R.NAMES[1:], 2 * DRAWS)), Counter(timm_draws["chosen"]))
    assert not binomial_ok((gen.rand(2 * DRAWS) < 0.55).sum(), 2 * DRAWS, R.PROB)
