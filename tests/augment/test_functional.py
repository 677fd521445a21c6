"""The pixel operations of the device path against PIL's and torchvision's, for fixed parameters."""

import numpy as np
import pytest
import torch
from fakedata import photo_like
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from torchvision import transforms as T
from torchvision.transforms import functional as TF

import lpa.augment.batch as B
import lpa.augment.colour as C
import lpa.augment.geometry as G


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
        (C.brightness, lambda p, f: ImageEnhance.Brightness(p).enhance(f)),
        (C.contrast, lambda p, f: ImageEnhance.Contrast(p).enhance(f)),
        (C.saturation, lambda p, f: ImageEnhance.Color(p).enhance(f)),
        (C.sharpness, lambda p, f: ImageEnhance.Sharpness(p).enhance(f)),
    ],
    ids=["brightness", "contrast", "color", "sharpness"],
)
def test_enhancements_equal_pils(ours, theirs):
    assert_same(ours(BATCH, FACTORS), [theirs(p, float(f)) for p, f in zip(PILS, FACTORS)])


def test_lookup_operations_equal_pils():
    bits = torch.tensor(RNG.randint(1, 9, N))
    assert_same(C.posterize(BATCH, bits), [ImageOps.posterize(p, int(b)) for p, b in zip(PILS, bits)])
    thresholds = torch.tensor(RNG.uniform(0, 256, N))
    assert_same(C.solarize(BATCH, thresholds), [ImageOps.solarize(p, float(t)) for p, t in zip(PILS, thresholds)])
    assert_same(C.invert(BATCH), [ImageOps.invert(p) for p in PILS])
    assert_same(C.equalize(BATCH), [ImageOps.equalize(p) for p in PILS])
    # autocontrast: also narrow ranges (the stretch is large, rounding is tested hardest)
    narrow = (IMAGES // 3 + 40).astype(np.uint8)
    assert_same(C.autocontrast(as_batch(narrow)), [ImageOps.autocontrast(Image.fromarray(a)) for a in narrow])
    assert_same(C.autocontrast(BATCH), [ImageOps.autocontrast(p) for p in PILS])
    flat = np.full((2, 8, 8, 3), 77, np.uint8)  # one level: both leave the image alone
    assert_same(C.equalize(as_batch(flat)), [ImageOps.equalize(Image.fromarray(a)) for a in flat])
    assert_same(C.autocontrast(as_batch(flat)), [ImageOps.autocontrast(Image.fromarray(a)) for a in flat])


def test_colour_conversions_equal_torchvisions_pil_path():
    hues = torch.tensor(RNG.uniform(-0.5, 0.5, N), dtype=torch.float32)
    assert_same(C.hue(BATCH, hues), [TF.adjust_hue(p, float(h)) for p, h in zip(PILS, hues)])
    assert_same(C.grayscale(BATCH), [TF.rgb_to_grayscale(p, 3) for p in PILS])


def test_hsv_conversions_equal_pils_for_every_colour():
    """Hue adjustment is PIL's RGB -> HSV, a shift of H, HSV -> RGB: both conversions, on all 2^24 inputs."""
    codes = np.arange(1 << 24, dtype=np.uint32)
    triples = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    pils = {"RGB": Image.fromarray(triples, "RGB"), "HSV": Image.frombytes("HSV", (4096, 4096), triples.tobytes())}
    theirs = {"RGB": np.asarray(pils["RGB"].convert("HSV")), "HSV": np.asarray(pils["HSV"].convert("RGB"))}
    ours = {"RGB": C._rgb_to_hsv, "HSV": lambda x: C._hsv_to_rgb(x.double())}
    levels = torch.from_numpy(triples).permute(2, 0, 1)[None]
    for mode, convert in ours.items():
        for rows in range(0, 4096, 512):  # a few MB at a time
            out = convert(levels[..., rows : rows + 512, :].float())[0].permute(1, 2, 0).numpy()
            np.testing.assert_array_equal(out.astype(np.uint8), theirs[mode][rows : rows + 512], err_msg=mode)


def test_gaussian_blur_equals_pils_box_blur_approximation():
    sigmas = torch.tensor(RNG.uniform(0.1, 2.0, N))
    ours = C.gaussian_blur(BATCH, sigmas, max_sigma=2.0)
    assert_same(ours, [p.filter(ImageFilter.GaussianBlur(radius=float(s))) for p, s in zip(PILS, sigmas)])
    assert not torch.equal(ours, BATCH)


def test_affine_transforms_equal_pils():
    v = torch.tensor(RNG.uniform(-0.3, 0.3, N), dtype=torch.float64)
    one, zero = torch.ones(N, dtype=torch.float64), torch.zeros(N, dtype=torch.float64)
    fill = torch.tensor(GREY, dtype=torch.float32)
    shear = torch.stack([one, v, zero, zero, one, zero], 1)
    assert_same(G.affine_bicubic(BATCH, shear, fill),
                [p.transform(p.size, Image.AFFINE, tuple(m.tolist()), Image.BICUBIC, fillcolor=GREY)
                 for p, m in zip(PILS, shear)])  # fmt: skip
    shift = torch.stack([one, zero, v * 48, zero, one, -v * 20], 1)
    assert_same(G.affine_nearest(BATCH, shift, fill),
                [p.transform(p.size, Image.AFFINE, tuple(m.tolist()), fillcolor=GREY)
                 for p, m in zip(PILS, shift)])  # fmt: skip
    degrees = torch.tensor(RNG.uniform(-30, 30, N))
    assert_same(G.affine_nearest(BATCH, G.rotation_matrix(degrees, 32, 32), fill),
                [p.rotate(float(d), fillcolor=GREY) for p, d in zip(PILS, degrees)])  # fmt: skip
    # torchvision's RandomAffine matrix (rotation, integer shift, scale) on a grey image
    grey = [p.convert("L") for p in PILS]
    angle, tx, ty = degrees / 3, torch.tensor(RNG.randint(-1, 2, N)), torch.tensor(RNG.randint(-1, 2, N))
    scale = torch.tensor(RNG.uniform(0.9, 1.1, N))
    matrix = G.affine_matrix(angle, tx.double(), ty.double(), scale, 32, 32)
    assert_same(G.affine_nearest(as_batch(as_levels(grey).astype(np.uint8)), matrix, torch.zeros(1)),
                [TF.affine(g, float(a), [int(x), int(y)], float(s), [0.0]) for g, a, x, y, s in
                 zip(grey, angle, tx, ty, scale)])  # fmt: skip


def test_crops_equal_torchvisions():
    torch.manual_seed(0)
    boxes = [T.RandomResizedCrop.get_params(p, (0.08, 1.0), (3 / 4, 4 / 3)) for p in PILS]
    top, left, height, width = (torch.tensor(v) for v in zip(*boxes))
    # enlarged to the image size, as every device recipe does: exact
    assert_same(G.resized_crop(BATCH, top, left, height, width, 32), [TF.resized_crop(p, *b, [32, 32]) for p, b in
                                                                      zip(PILS, boxes)])  # fmt: skip
    # shrunk (no device recipe does): PIL >= 12 runs the vertical pass first for some shapes,
    # we always horizontal first, so a pixel may differ by one level
    shrunk = G.resized_crop(BATCH, top, left, height, width, 12).permute(0, 2, 3, 1).numpy().astype(np.int64)
    theirs = as_levels([TF.resized_crop(p, *b, [12, 12]) for p, b in zip(PILS, boxes)])
    assert np.abs(shrunk - theirs).max() <= 1 and np.mean(shrunk != theirs) < 0.05
    top, left = torch.tensor(RNG.randint(0, 9, N)), torch.tensor(RNG.randint(0, 9, N))
    assert_same(G.pad_crop(BATCH, top, left, 32, 4), [TF.crop(TF.pad(p, 4), int(i), int(j), 32, 32) for p, i, j in
                                                      zip(PILS, top, left)])  # fmt: skip


def test_apply_where_changes_only_the_masked_images_on_both_paths(monkeypatch):
    mask = torch.tensor([True, False] * (N // 2))
    subset = B.apply_where(mask, C.brightness, BATCH, FACTORS)
    monkeypatch.setattr(B, "SUBSET_ON_CPU", False)  # the GPU path: compute all, keep the masked
    assert torch.equal(B.apply_where(mask, C.brightness, BATCH, FACTORS), subset)
    assert torch.equal(subset[~mask], BATCH[~mask]) and not torch.equal(subset[mask], BATCH[mask])
