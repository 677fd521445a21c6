"""The device path against the PIL recipes: whole views replayed from the recorded draws, and the
distributions of the draws (each operation for fixed parameters: ``test_augment_functional.py``)."""

import random
from collections import Counter

import numpy as np
import pytest
import torch
from fakedata import photo_like
from PIL import Image, ImageFilter
from scipy import stats
from torch.utils._python_dispatch import TorchDispatchMode
from torchvision import transforms as T
from torchvision.transforms import functional as TF

import lpa.augment.autoaugment as autoaugment
import lpa.augment.batch as batch
from lpa.augment.autoaugment import CIFAR10Policy
from lpa.augment.batch import NORMALIZE
from lpa.augment.pil import Cutout
from lpa.augment.recipes import BatchRecipe, decode_crop_transform
from lpa.augment.steps import Cutout as CutoutStep
from lpa.augment.steps import Draw


def as_batch(images):
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()


IMAGES = photo_like(48)
PILS = [Image.fromarray(a) for a in IMAGES]
GREY = (128, 128, 128)


def test_the_recipes_give_the_same_views_computing_all_images_as_on_a_gpu(monkeypatch):
    images = torch.from_numpy(IMAGES).permute(0, 3, 1, 2)
    recipe = BatchRecipe("cifar100", two_views=True)
    subset = recipe(images, torch.Generator().manual_seed(3))
    monkeypatch.setattr(batch, "SUBSET_ON_CPU", False)
    whole = recipe(images, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(subset, whole))


@pytest.mark.slow  # torch.compile of each recipe: about a minute each on 2 cores
@pytest.mark.parametrize("recipe", ["digits", "cifar100", "randclsstack_sim"])
def test_the_compiled_recipe_gives_the_eager_views(recipe):
    """``compile=True`` (as ``execution.compile`` on a GPU): the draws are made first, then the image
    work runs as one torch.compile graph computing every operation for every image. The CPU's eager
    path, which computes each operation for its images only, gives the same views to the bit."""
    images = torch.from_numpy(IMAGES).permute(0, 3, 1, 2)[:16]
    inputs = {"digits": images[:, :1, :8, :8], "cifar100": images, "randclsstack_sim": (images, images.flip(-1))}
    size = {"randclsstack_sim": 32}.get(recipe)
    compiled = BatchRecipe(recipe, True, size=size, compile=True)
    eager = BatchRecipe(recipe, True, size=size)
    graphs = []
    for seed in (0, 1):
        ours, theirs = (r(inputs[recipe], torch.Generator().manual_seed(seed)) for r in (compiled, eager))
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
        graphs.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    assert graphs[1] == graphs[0]  # the next batch reuses the graph: no guard (a constant's cache) fails
    assert not torch.equal(ours[0], eager(inputs[recipe], torch.Generator().manual_seed(0))[0])  # the seed counts


# --- whole views: replay the recorded draws through the PIL recipe's own operations ----------------


def replay_policy(image, chosen, applied, signs, monkeypatch):
    for stage, (name, _, m) in enumerate(CIFAR10Policy().policies[chosen]):
        if applied[stage]:
            monkeypatch.setattr(autoaugment, "_sign", lambda s=signs[stage]: s)
            value = None if m is None else CIFAR10Policy.BINS[name][m]
            image = CIFAR10Policy.OPS[name](image, value, GREY)
    return image


def normalised(pil, mean, std):
    return TF.normalize(TF.to_tensor(pil), mean, std)


def test_cifar100_views_replay_through_the_pil_operations(monkeypatch):
    images = torch.from_numpy(IMAGES).permute(0, 3, 1, 2)
    record = {}
    query, key = BatchRecipe("cifar100", two_views=True)(images, torch.Generator().manual_seed(0), record)
    q, k = record["query"], record["key"]
    mean, std = NORMALIZE["cifar100"]
    jitter_ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for n, pil in enumerate(PILS):
        view = TF.crop(TF.pad(pil, 4), int(q["crop_top"][n]), int(q["crop_left"][n]), 32, 32)
        view = TF.hflip(view) if q["flip"][n] else view
        applied = [bool(q[f"policy_applied{s}"][n]) for s in range(2)]
        signs = [-1 if q[f"policy_sign{s}"][n] else 1 for s in range(2)]
        view = TF.to_tensor(replay_policy(view, int(q["policy"][n]), applied, signs, monkeypatch))
        y, x = int(q["cutout_y"][n]), int(q["cutout_x"][n])
        view[:, max(0, y - 8) : y + 8, max(0, x - 8) : x + 8] = 0
        assert torch.equal(query[n], TF.normalize(view, mean, std)), f"query view of image {n}"

        view = TF.resized_crop(pil, *(int(k[f"box_{s}"][n]) for s in ("top", "left", "height", "width")), [32, 32])
        view = TF.hflip(view) if k["key_flip"][n] else view
        if k["jitter"][n]:
            factors = [float(k[f"jitter_{s}"][n]) for s in "bcsh"]
            for index in k["jitter_order"][n].tolist():
                view = jitter_ops[index](view, factors[index])
        view = TF.rgb_to_grayscale(view, 3) if k["grayscale"][n] else view
        if k["blur"][n]:
            view = view.filter(ImageFilter.GaussianBlur(radius=float(k["blur_sigma"][n])))
        assert torch.equal(key[n], normalised(view, mean, std)), f"key view of image {n}"
    # the replay covered every operation of the policy and every step of the key view
    ran = {CIFAR10Policy().policies[int(c)][s][0] for s in range(2)
           for c, a in zip(q["policy"], q[f"policy_applied{s}"]) if a}  # fmt: skip
    assert len(ran) >= 10 and k["jitter"].any() and k["grayscale"].any() and k["blur"].any()


def test_digits_views_replay_through_torchvisions_operations():
    digits = photo_like(32, size=8, channels=1)
    record = {}
    query, key = BatchRecipe("digits", True)(torch.from_numpy(digits).permute(0, 3, 1, 2),
                                               torch.Generator().manual_seed(0), record)  # fmt: skip
    q, k = record["query"], record["key"]
    mean, std = NORMALIZE["digits"]
    for n, array in enumerate(digits):
        pil = Image.fromarray(array[..., 0], mode="L")
        shift = [int(q["affine_tx"][n].round()), int(q["affine_ty"][n].round())]
        view = TF.affine(pil, float(q["affine_angle"][n]), shift, float(q["affine_scale"][n]), [0.0])
        assert torch.equal(query[n], normalised(view, mean, std))
        view = TF.resized_crop(pil, *(int(k[f"box_{s}"][n]) for s in ("top", "left", "height", "width")), [8, 8])
        view = TF.affine(view, float(k["affine_angle"][n]), [0, 0], 1.0, [0.0])
        assert torch.equal(key[n], normalised(view, mean, std))


# --- distributions of the draws: the device's against the PIL recipes' own --------------------------

DRAWS = 3000


@pytest.fixture(scope="module")
def device_draws():
    images = torch.from_numpy(np.repeat(IMAGES[:1], DRAWS, 0)).permute(0, 3, 1, 2)
    record = {}
    BatchRecipe("cifar100", two_views=True)(images, torch.Generator().manual_seed(11), record)
    return record


def same_distribution(ours, theirs):
    return stats.ks_2samp(np.asarray(ours, float), np.asarray(theirs, float)).pvalue > 1e-4


def same_frequencies(ours: Counter, theirs: Counter):
    keys = sorted(set(ours) | set(theirs))
    table = np.array([[ours[k] for k in keys], [theirs[k] for k in keys]])
    return stats.chi2_contingency(table).pvalue > 1e-4


def binomial_ok(hits, n, p):
    return stats.binomtest(int(hits), n, p).pvalue > 1e-4


def test_crop_and_flip_draws_match_torchvisions(device_draws):
    q, k = device_draws["query"], device_draws["key"]
    torch.manual_seed(0)
    image = PILS[0]
    crops = [T.RandomCrop.get_params(TF.pad(image, 4), (32, 32)) for _ in range(DRAWS)]
    assert same_frequencies(Counter(q["crop_top"].tolist()), Counter(i for i, _, _, _ in crops))
    assert same_frequencies(Counter(q["crop_left"].tolist()), Counter(j for _, j, _, _ in crops))
    boxes = np.array([T.RandomResizedCrop.get_params(image, (0.2, 1.0), (3 / 4, 4 / 3)) for _ in range(DRAWS)])
    ours = np.stack([k[f"box_{s}"].numpy() for s in ("top", "left", "height", "width")], 1)
    for name, column in (("area", lambda b: b[:, 2] * b[:, 3]), ("aspect", lambda b: b[:, 3] / b[:, 2]),
                         ("top", lambda b: b[:, 0]), ("left", lambda b: b[:, 1])):  # fmt: skip
        assert same_distribution(column(ours), column(boxes)), name
    assert binomial_ok(q["flip"].sum(), DRAWS, 0.5) and binomial_ok(k["key_flip"].sum(), DRAWS, 0.5)


def test_policy_frequencies_match_pacos_policy(device_draws, monkeypatch):
    q = device_draws["query"]
    policies = CIFAR10Policy().policies
    ours = Counter(policies[int(c)][s][0] for s in range(2) for c, a in zip(q["policy"], q[f"policy_applied{s}"])
                   if a)  # fmt: skip
    seen = Counter()
    recording = {name: (lambda im, v, fill, name=name: seen.update([name]) or im) for name in CIFAR10Policy.OPS}
    monkeypatch.setattr(CIFAR10Policy, "OPS", recording)
    random.seed(0)
    policy = CIFAR10Policy()
    for _ in range(DRAWS):
        policy(PILS[0])
    assert same_frequencies(ours, seen)
    assert same_frequencies(Counter(q["policy"].tolist()), Counter(random.randint(0, 24) for _ in range(DRAWS)))
    assert binomial_ok(q["policy_sign0"].sum(), DRAWS, 0.5)


def test_cutout_erases_the_same_area_as_pacos(device_draws):
    np.random.seed(0)
    theirs = [int((Cutout(16)(torch.ones(1, 32, 32)) == 0).sum()) for _ in range(DRAWS)]
    ours = CutoutStep(16).run(torch.ones(DRAWS, 1, 32, 32), Draw(torch.Generator().manual_seed(5), DRAWS, "cpu"))
    assert same_distribution((ours == 0).sum((1, 2, 3)).numpy(), theirs)


def test_key_view_colour_draws_match_torchvisions(device_draws):
    k = device_draws["key"]
    torch.manual_seed(0)
    jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
    theirs = [T.ColorJitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue)
              for _ in range(DRAWS)]  # fmt: skip
    for index, name in enumerate("bcsh", start=1):
        assert same_distribution(k[f"jitter_{name}"].numpy(), [t[index] for t in theirs]), name
    assert same_frequencies(Counter(tuple(o) for o in k["jitter_order"].tolist()),
                            Counter(tuple(t[0].tolist()) for t in theirs))  # fmt: skip
    assert binomial_ok(k["jitter"].sum(), DRAWS, 0.8)
    assert binomial_ok(k["grayscale"].sum(), DRAWS, 0.2) and binomial_ok(k["blur"].sum(), DRAWS, 0.5)
    random.seed(0)
    assert same_distribution(k["blur_sigma"].numpy(), [random.uniform(0.1, 2.0) for _ in range(DRAWS)])


def test_digits_affine_draws_match_torchvisions():
    record = {}
    images = torch.zeros(DRAWS, 1, 8, 8, dtype=torch.uint8)
    BatchRecipe("digits", True)(images, torch.Generator().manual_seed(2), record)
    torch.manual_seed(0)
    theirs = [T.RandomAffine.get_params([-10.0, 10.0], [0.125, 0.125], [0.9, 1.1], None, [8, 8])
              for _ in range(DRAWS)]  # fmt: skip
    q = record["query"]
    assert same_distribution(q["affine_angle"].numpy(), [t[0] for t in theirs])
    assert same_frequencies(Counter(q["affine_tx"].round().tolist()), Counter(float(t[1][0]) for t in theirs))
    assert same_distribution(q["affine_scale"].numpy(), [t[2] for t in theirs])


def test_a_wrong_distribution_is_caught():
    """The checks above can fail: a flip rate of 0.6 or a crop range one pixel short is rejected."""
    gen = torch.Generator().manual_seed(0)
    assert not binomial_ok((torch.rand(DRAWS, generator=gen) < 0.6).sum(), DRAWS, 0.5)
    short = Counter(torch.randint(0, 8, (DRAWS,), generator=gen).tolist())
    assert not same_frequencies(short, Counter(torch.randint(0, 9, (DRAWS,), generator=gen).tolist()))


def test_recipes_without_a_device_path_are_refused():
    with pytest.raises(ValueError, match="'nope' has no device path"):
        BatchRecipe("nope", True)
    with pytest.raises(ValueError, match="unknown normalisation 'nope'"):
        BatchRecipe("cifar100", True, normalize="nope")


# --- the 224 recipes: the workers decode and crop, the device finishes ----------------------------------


@pytest.mark.parametrize("recipe", ["randclsstack_sim", "randcls_sim"])
def test_224_recipes_finish_the_workers_crops_as_the_pil_recipe_would(recipe):
    import lpa.augment.randaugment as R

    size = 32  # the recipes' operations do not depend on the crop size; small keeps the test quick
    torch.manual_seed(0)
    workers = decode_crop_transform(recipe, two_views=True, size=size)
    pairs = [workers(Image.fromarray(a)) for a in photo_like(24, size=48, seed=4)]
    query_crops, key_crops = (torch.stack(c) for c in zip(*pairs))
    assert query_crops.dtype == torch.uint8 and query_crops.shape == (24, 3, size, size)
    record = {}
    query, key = BatchRecipe(recipe, True, size=size)(
        (query_crops, key_crops), torch.Generator().manual_seed(1), record
    )
    q, k = record["query"], record["key"]
    mean, std = NORMALIZE["imagenet"]
    jitter_ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation]

    def replay_colour(view, draws, n, grey_and_blur):
        factors = [float(draws[f"jitter_{s}"][n]) for s in "bcs"]
        for index in draws["jitter_order"][n].tolist():
            if index < 3:  # hue 0: torchvision skips it
                view = jitter_ops[index](view, factors[index])
        if grey_and_blur:
            view = TF.rgb_to_grayscale(view, 3) if draws["grayscale"][n] else view
            if draws["blur"][n]:
                view = view.filter(ImageFilter.GaussianBlur(radius=float(draws["blur_sigma"][n])))
        return view

    before_randaugment = []
    for n in range(24):
        view = replay_colour(TF.to_pil_image(key_crops[n]), k, n, True)
        assert torch.equal(key[n], normalised(view, mean, std)), f"key view of image {n}"
        view = replay_colour(TF.to_pil_image(query_crops[n]), q, n, recipe == "randclsstack_sim")
        before_randaugment.append(np.asarray(view))
    # RandAugment itself is checked against timm in tests/test_augment_randaugment.py: apply it here
    # with the recorded draws to the PIL-replayed images
    levels = as_batch(np.stack(before_randaugment))
    rand_augment = R.RandAugmentBatch(size)
    for layer in range(R.NUM_LAYERS):
        op = torch.where(q[f"randaug_applied{layer}"], q[f"randaug_op{layer}"], -1)
        levels = rand_augment.step(levels, op, q[f"randaug_magnitude{layer}"], q[f"randaug_negate{layer}"],
                                   q[f"randaug_resample{layer}"])  # fmt: skip
    expected = (levels / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.equal(query, expected)
    assert k["grayscale"].any() and k["blur"].any() and ("grayscale" in q) == (recipe == "randclsstack_sim")


def test_the_key_views_flip_commutes_with_the_steps_it_moved_before():
    """PaCo's sim view flips last; the workers flip right after the crop. Equal for PIL's blur,
    greyscale and jitter, so the move changes no pixel."""
    rng = np.random.RandomState(7)
    for pil in PILS[:16]:
        radius, factor = float(rng.uniform(0.1, 2.0)), float(rng.uniform(0.6, 1.4))
        steps = [lambda im, r=radius: im.filter(ImageFilter.GaussianBlur(radius=r)),
                 lambda im: TF.rgb_to_grayscale(im, 3), lambda im, f=factor: TF.adjust_contrast(im, f),
                 lambda im, f=factor: TF.adjust_saturation(im, f)]  # fmt: skip
        for step in steps:
            np.testing.assert_array_equal(np.asarray(step(TF.hflip(pil))), np.asarray(TF.hflip(step(pil))))


class HostToDeviceCopies(TorchDispatchMode):
    """Records every operation that copies a host tensor to another device (each waits for that device)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        outputs = out if isinstance(out, (tuple, list)) else [out]
        if any(isinstance(o, torch.Tensor) and o.device.type != "cpu" for o in outputs) and any(
            t.device.type == "cpu" for t in inputs
        ):
            self.seen.append(str(func))
        return out


@pytest.mark.parametrize("recipe, images", [
    ("cifar100", torch.zeros(8, 3, 32, 32, dtype=torch.uint8)),
    ("digits", torch.zeros(8, 1, 8, 8, dtype=torch.uint8)),
    ("randclsstack_sim", (torch.zeros(8, 3, 32, 32, dtype=torch.uint8),) * 2),
])  # fmt: skip
def test_off_the_cpu_a_batch_reads_nothing_back_and_copies_nothing_from_the_host(recipe, images):
    """On the meta device (shapes, no data) a read-back (.item(), int(), nonzero()) raises; after the
    first batch (which places the constants) no host tensor is copied to the device."""
    on_meta = tuple(i.to("meta") for i in images) if isinstance(images, tuple) else images.to("meta")
    recipe = BatchRecipe(recipe, True, size=None if recipe == "digits" else 32)
    recipe(on_meta, None)
    with HostToDeviceCopies() as copies:
        query, key = recipe(on_meta, None)
    assert copies.seen == [] and query.device.type == key.device.type == "meta"
    with HostToDeviceCopies() as copies:  # the check sees a copy when there is one
        torch.ones(3).to("meta")
    assert copies.seen == ["aten._to_copy.default"]
