"""The device path against the PIL recipes: each operation for fixed parameters, whole views replayed
from the recorded draws, and the distributions of the draws."""

import random
from collections import Counter

import numpy as np
import pytest
import torch
from fakedata import photo_like
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from scipy import stats
from torch.utils._python_dispatch import TorchDispatchMode
from torchvision import transforms as T
from torchvision.transforms import functional as TF

import lpa.device_transforms as D
import lpa.transforms as pil_recipes
from lpa.transforms import CIFAR10Policy, Cutout


def as_batch(images):
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()


def as_levels(pils):
    arrays = [np.asarray(p) for p in pils]
    return np.stack([a[..., None] if a.ndim == 2 else a for a in arrays]).astype(np.int64)


def assert_same(ours, pils):
    np.testing.assert_array_equal(ours.permute(0, 2, 3, 1).numpy().astype(np.int64), as_levels(pils))


IMAGES = photo_like(48)
PILS = [Image.fromarray(a) for a in IMAGES]
BATCH = as_batch(IMAGES)
N = len(PILS)
RNG = np.random.RandomState(1)
FACTORS = torch.tensor(RNG.uniform(0.1, 1.9, N), dtype=torch.float32)
GREY = (128, 128, 128)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (D.brightness, lambda p, f: ImageEnhance.Brightness(p).enhance(f)),
        (D.contrast, lambda p, f: ImageEnhance.Contrast(p).enhance(f)),
        (D.saturation, lambda p, f: ImageEnhance.Color(p).enhance(f)),
        (D.sharpness, lambda p, f: ImageEnhance.Sharpness(p).enhance(f)),
    ],
    ids=["brightness", "contrast", "color", "sharpness"],
)
def test_enhancements_equal_pils(ours, theirs):
    assert_same(ours(BATCH, FACTORS), [theirs(p, float(f)) for p, f in zip(PILS, FACTORS)])


def test_lookup_operations_equal_pils():
    bits = torch.tensor(RNG.randint(1, 9, N))
    assert_same(D.posterize(BATCH, bits), [ImageOps.posterize(p, int(b)) for p, b in zip(PILS, bits)])
    thresholds = torch.tensor(RNG.uniform(0, 256, N))
    assert_same(D.solarize(BATCH, thresholds), [ImageOps.solarize(p, float(t)) for p, t in zip(PILS, thresholds)])
    assert_same(D.invert(BATCH), [ImageOps.invert(p) for p in PILS])
    assert_same(D.equalize(BATCH), [ImageOps.equalize(p) for p in PILS])
    # autocontrast: also narrow ranges (the stretch is large, rounding is tested hardest)
    narrow = (IMAGES // 3 + 40).astype(np.uint8)
    assert_same(D.autocontrast(as_batch(narrow)), [ImageOps.autocontrast(Image.fromarray(a)) for a in narrow])
    assert_same(D.autocontrast(BATCH), [ImageOps.autocontrast(p) for p in PILS])
    flat = np.full((2, 8, 8, 3), 77, np.uint8)  # one level: both leave the image alone
    assert_same(D.equalize(as_batch(flat)), [ImageOps.equalize(Image.fromarray(a)) for a in flat])
    assert_same(D.autocontrast(as_batch(flat)), [ImageOps.autocontrast(Image.fromarray(a)) for a in flat])


def test_colour_conversions_equal_torchvisions_pil_path():
    hues = torch.tensor(RNG.uniform(-0.5, 0.5, N), dtype=torch.float32)
    assert_same(D.hue(BATCH, hues), [TF.adjust_hue(p, float(h)) for p, h in zip(PILS, hues)])
    assert_same(D.grayscale(BATCH), [TF.rgb_to_grayscale(p, 3) for p in PILS])


def test_hsv_conversions_equal_pils_for_every_colour():
    """Hue adjustment is PIL's RGB -> HSV, a shift of H, HSV -> RGB: both conversions, on all 2^24 inputs."""
    codes = np.arange(1 << 24, dtype=np.uint32)
    triples = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    pils = {"RGB": Image.fromarray(triples, "RGB"), "HSV": Image.frombytes("HSV", (4096, 4096), triples.tobytes())}
    theirs = {"RGB": np.asarray(pils["RGB"].convert("HSV")), "HSV": np.asarray(pils["HSV"].convert("RGB"))}
    ours = {"RGB": D._rgb_to_hsv, "HSV": lambda x: D._hsv_to_rgb(x.double())}
    levels = torch.from_numpy(triples).permute(2, 0, 1)[None]
    for mode, convert in ours.items():
        for rows in range(0, 4096, 512):  # a few MB at a time
            out = convert(levels[..., rows : rows + 512, :].float())[0].permute(1, 2, 0).numpy()
            np.testing.assert_array_equal(out.astype(np.uint8), theirs[mode][rows : rows + 512], err_msg=mode)


def test_gaussian_blur_equals_pils_box_blur_approximation():
    sigmas = torch.tensor(RNG.uniform(0.1, 2.0, N))
    ours = D.gaussian_blur(BATCH, sigmas, max_sigma=2.0)
    assert_same(ours, [p.filter(ImageFilter.GaussianBlur(radius=float(s))) for p, s in zip(PILS, sigmas)])
    assert not torch.equal(ours, BATCH)


def test_affine_transforms_equal_pils():
    v = torch.tensor(RNG.uniform(-0.3, 0.3, N), dtype=torch.float64)
    one, zero = torch.ones(N, dtype=torch.float64), torch.zeros(N, dtype=torch.float64)
    fill = torch.tensor(GREY, dtype=torch.float32)
    shear = torch.stack([one, v, zero, zero, one, zero], 1)
    assert_same(D.affine_bicubic(BATCH, shear, fill),
                [p.transform(p.size, Image.AFFINE, tuple(m.tolist()), Image.BICUBIC, fillcolor=GREY)
                 for p, m in zip(PILS, shear)])  # fmt: skip
    shift = torch.stack([one, zero, v * 48, zero, one, -v * 20], 1)
    assert_same(D.affine_nearest(BATCH, shift, fill),
                [p.transform(p.size, Image.AFFINE, tuple(m.tolist()), fillcolor=GREY)
                 for p, m in zip(PILS, shift)])  # fmt: skip
    degrees = torch.tensor(RNG.uniform(-30, 30, N))
    assert_same(D.affine_nearest(BATCH, D.rotation_matrix(degrees, 32, 32), fill),
                [p.rotate(float(d), fillcolor=GREY) for p, d in zip(PILS, degrees)])  # fmt: skip
    # torchvision's RandomAffine matrix (rotation, integer shift, scale) on a grey image
    grey = [p.convert("L") for p in PILS]
    angle, tx, ty = degrees / 3, torch.tensor(RNG.randint(-1, 2, N)), torch.tensor(RNG.randint(-1, 2, N))
    scale = torch.tensor(RNG.uniform(0.9, 1.1, N))
    matrix = D.affine_matrix(angle, tx.double(), ty.double(), scale, 32, 32)
    assert_same(D.affine_nearest(as_batch(as_levels(grey).astype(np.uint8)), matrix, torch.zeros(1)),
                [TF.affine(g, float(a), [int(x), int(y)], float(s), [0.0]) for g, a, x, y, s in
                 zip(grey, angle, tx, ty, scale)])  # fmt: skip


def test_crops_equal_torchvisions():
    torch.manual_seed(0)
    boxes = [T.RandomResizedCrop.get_params(p, (0.08, 1.0), (3 / 4, 4 / 3)) for p in PILS]
    top, left, height, width = (torch.tensor(v) for v in zip(*boxes))
    # enlarged to the image size, as every device recipe does: exact
    assert_same(D.resized_crop(BATCH, top, left, height, width, 32), [TF.resized_crop(p, *b, [32, 32]) for p, b in
                                                                      zip(PILS, boxes)])  # fmt: skip
    # shrunk (no device recipe does): PIL >= 12 runs the vertical pass first for some shapes,
    # we always horizontal first, so a pixel may differ by one level
    shrunk = D.resized_crop(BATCH, top, left, height, width, 12).permute(0, 2, 3, 1).numpy().astype(np.int64)
    theirs = as_levels([TF.resized_crop(p, *b, [12, 12]) for p, b in zip(PILS, boxes)])
    assert np.abs(shrunk - theirs).max() <= 1 and np.mean(shrunk != theirs) < 0.05
    top, left = torch.tensor(RNG.randint(0, 9, N)), torch.tensor(RNG.randint(0, 9, N))
    assert_same(D.pad_crop(BATCH, top, left, 32, 4), [TF.crop(TF.pad(p, 4), int(i), int(j), 32, 32) for p, i, j in
                                                      zip(PILS, top, left)])  # fmt: skip


def test_apply_where_changes_only_the_masked_images_on_both_paths(monkeypatch):
    mask = torch.tensor([True, False] * (N // 2))
    subset = D.apply_where(mask, D.brightness, BATCH, FACTORS)
    monkeypatch.setattr(D, "SUBSET_ON_CPU", False)  # the GPU path: compute all, keep the masked
    assert torch.equal(D.apply_where(mask, D.brightness, BATCH, FACTORS), subset)
    assert torch.equal(subset[~mask], BATCH[~mask]) and not torch.equal(subset[mask], BATCH[mask])


def test_the_recipes_give_the_same_views_computing_all_images_as_on_a_gpu(monkeypatch):
    images = torch.from_numpy(IMAGES).permute(0, 3, 1, 2)
    recipe = D.BatchRecipe("cifar100", two_views=True)
    subset = recipe(images, torch.Generator().manual_seed(3))
    monkeypatch.setattr(D, "SUBSET_ON_CPU", False)
    whole = recipe(images, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(subset, whole))


@pytest.mark.parametrize("recipe", ["digits", "cifar100", "randclsstack_sim"])
def test_the_compiled_recipe_gives_the_eager_views(recipe):
    """``compile=True`` (as ``execution.compile`` on a GPU): the draws are made first, then the image
    work runs as one torch.compile graph computing every operation for every image. The CPU's eager
    path, which computes each operation for its images only, gives the same views to the bit."""
    images = torch.from_numpy(IMAGES).permute(0, 3, 1, 2)[:16]
    inputs = {"digits": images[:, :1, :8, :8], "cifar100": images, "randclsstack_sim": (images, images.flip(-1))}
    size = {"randclsstack_sim": 32}.get(recipe)
    compiled = D.BatchRecipe(recipe, True, size=size, compile=True)
    eager = D.BatchRecipe(recipe, True, size=size)
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
            monkeypatch.setattr(pil_recipes, "_sign", lambda s=signs[stage]: s)
            value = None if m is None else CIFAR10Policy.BINS[name][m]
            image = CIFAR10Policy.OPS[name](image, value, GREY)
    return image


def normalised(pil, mean, std):
    return TF.normalize(TF.to_tensor(pil), mean, std)


def test_cifar100_views_replay_through_the_pil_operations(monkeypatch):
    images = torch.from_numpy(IMAGES).permute(0, 3, 1, 2)
    record = {}
    query, key = D.BatchRecipe("cifar100", two_views=True)(images, torch.Generator().manual_seed(0), record)
    q, k = record["query"], record["key"]
    mean, std = pil_recipes.NORMALIZE["cifar100"]
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
    query, key = D.BatchRecipe("digits", True)(torch.from_numpy(digits).permute(0, 3, 1, 2),
                                               torch.Generator().manual_seed(0), record)  # fmt: skip
    q, k = record["query"], record["key"]
    mean, std = pil_recipes.NORMALIZE["digits"]
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
    D.BatchRecipe("cifar100", two_views=True)(images, torch.Generator().manual_seed(11), record)
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
    ours = D.Cutout(16).run(torch.ones(DRAWS, 1, 32, 32), D._Draw(torch.Generator().manual_seed(5), DRAWS, "cpu"))
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
    D.BatchRecipe("digits", True)(images, torch.Generator().manual_seed(2), record)
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
        D.BatchRecipe("nope", True)
    with pytest.raises(ValueError, match="unknown normalisation 'nope'"):
        D.BatchRecipe("cifar100", True, normalize="nope")


# --- the 224 recipes: the workers decode and crop, the device finishes ----------------------------------


@pytest.mark.parametrize("recipe", ["randclsstack_sim", "randcls_sim"])
def test_224_recipes_finish_the_workers_crops_as_the_pil_recipe_would(recipe):
    import lpa.device_randaugment as R

    size = 32  # the recipes' operations do not depend on the crop size; small keeps the test quick
    torch.manual_seed(0)
    workers = pil_recipes.decode_crop_transform(recipe, two_views=True, size=size)
    pairs = [workers(Image.fromarray(a)) for a in photo_like(24, size=48, seed=4)]
    query_crops, key_crops = (torch.stack(c) for c in zip(*pairs))
    assert query_crops.dtype == torch.uint8 and query_crops.shape == (24, 3, size, size)
    record = {}
    query, key = D.BatchRecipe(recipe, True, size=size)(
        (query_crops, key_crops), torch.Generator().manual_seed(1), record
    )
    q, k = record["query"], record["key"]
    mean, std = pil_recipes.NORMALIZE["imagenet"]
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
    # RandAugment itself is checked against timm in tests/test_device_randaugment.py: apply it here
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
    recipe = D.BatchRecipe(recipe, True, size=None if recipe == "digits" else 32)
    recipe(on_meta, None)
    with HostToDeviceCopies() as copies:
        query, key = recipe(on_meta, None)
    assert copies.seen == [] and query.device.type == key.device.type == "meta"
    with HostToDeviceCopies() as copies:  # the check sees a copy when there is one
        torch.ones(3).to("meta")
    assert copies.seen == ["aten._to_copy.default"]
