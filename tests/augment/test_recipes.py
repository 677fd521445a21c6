"""Each augmentation recipe against PaCo's settings (PaCo/LT/paco_cifar.py, paco_lt.py), on fixed seeds."""

import random
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from lpa.augment.autoaugment import CIFAR10Policy
from lpa.augment.pil import Cutout, PILGaussianBlur
from lpa.augment.randaugment import rand_augment
from lpa.augment.recipes import RECIPES, eval_transform, train_transform


def steps(transform):
    return list(transform.transforms)


def find(transform, kind):
    return [t for t in steps(transform) if isinstance(t, kind)]


def applied(random_apply):
    return random_apply.p, type(random_apply.transforms[0])


def noise_image(size, seed=0):
    return Image.fromarray(np.random.RandomState(seed).randint(0, 256, (size, size, 3), dtype=np.uint8))


def test_cifar100_views_are_pacos_regular_and_sim_cifar():
    views = train_transform("cifar100", two_views=True)
    q = steps(views.query)
    assert [type(t).__name__ for t in q] == ["RandomCrop", "RandomHorizontalFlip", "CIFAR10Policy", "ToTensor",
                                             "Cutout", "Normalize"]  # fmt: skip
    assert q[0].size == (32, 32) and q[0].padding == 4 and q[2].fill == (128, 128, 128) and q[4].length == 16
    assert q[5].mean == (0.4914, 0.4822, 0.4465) and q[5].std == (0.2023, 0.1994, 0.2010)
    k = steps(views.key)
    assert type(k[0]) is T.RandomResizedCrop and k[0].size == (32, 32) and k[0].scale == (0.2, 1.0)
    assert type(k[1]) is T.RandomHorizontalFlip
    assert applied(k[2]) == (0.8, T.ColorJitter)
    jitter = k[2].transforms[0]
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == ((0.6, 1.4),) * 3 + ((-0.1, 0.1),)
    assert type(k[3]) is T.RandomGrayscale and k[3].p == 0.2
    assert applied(k[4]) == (0.5, PILGaussianBlur) and k[4].transforms[0].sigma == (0.1, 2.0)
    q_view, k_view = views(noise_image(32))
    assert q_view.shape == k_view.shape == (3, 32, 32)


def test_cutout_centre_is_anywhere_and_the_square_is_clipped():
    np.random.seed(0)
    cut = Cutout(16)
    areas = [int((cut(torch.ones(3, 32, 32))[0] == 0).sum()) for _ in range(4000)]
    # exact mean: the clipped side w(y) = min(32, y + 8) - max(0, y - 8), y uniform on 0..31
    side = np.mean([min(32, y + 8) - max(0, y - 8) for y in range(32)])
    assert np.mean(areas) == pytest.approx(side**2, rel=0.03) and side**2 == pytest.approx(196, abs=1)
    assert max(areas) == 256 and min(areas) == 64  # whole squares and corner quarters both occur
    # zeroed after ToTensor, before Normalize: the erased pixels are the normalised black
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    view = train_transform("cifar100", two_views=False)(Image.new("RGB", (32, 32), (200, 200, 200)))
    black = (0 - torch.tensor([0.4914, 0.4822, 0.4465])) / torch.tensor([0.2023, 0.1994, 0.2010])
    erased = torch.isclose(view, black[:, None, None], atol=1e-5).all(0)
    assert 64 <= int(erased.sum()) <= 256


def test_cifar10_policy_fills_grey_and_draws_sub_policies_uniformly():
    policy = CIFAR10Policy()
    assert len(policy.policies) == 25
    white = Image.new("RGB", (32, 32), (255, 255, 255))
    rotated = np.asarray(CIFAR10Policy.OPS["Rotate"](white, 30.0, policy.fill))
    assert tuple(rotated[0, 0]) == (128, 128, 128) and tuple(rotated[16, 16]) == (255, 255, 255)
    shifted = np.asarray(CIFAR10Policy.OPS["TranslateX"](white, CIFAR10Policy.BINS["TranslateX"][9], policy.fill))
    assert (shifted == 128).all(-1).any() and (shifted == 255).all(-1).any()
    assert CIFAR10Policy.BINS["Posterize"].tolist() == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]
    assert CIFAR10Policy.BINS["Solarize"][0] == 256 and CIFAR10Policy.BINS["Shear" + "X"][9] == pytest.approx(0.3)
    random.seed(0)
    draws = Counter(random.randint(0, 24) for _ in range(25_000))  # the draw __call__ makes
    assert len(draws) == 25 and max(draws.values()) / min(draws.values()) < 1.2
    random.seed(0)
    out = policy(noise_image(32))
    assert out.size == (32, 32) and out.mode == "RGB"


@pytest.mark.parametrize("recipe,stack", [("randclsstack_sim", True), ("randcls_sim", False)])
def test_imagenet_recipes_are_pacos_randcls_views_with_sim_keys(recipe, stack):
    views = train_transform(recipe, two_views=True)
    q = steps(views.query)
    assert type(q[0]) is T.RandomResizedCrop and q[0].size == (224, 224) and q[0].scale == (0.08, 1.0)
    assert type(q[1]) is T.RandomHorizontalFlip
    assert applied(q[2]) == (1.0, T.ColorJitter) and q[2].transforms[0].hue is None  # hue 0: never shifted
    middle = [type(t).__name__ for t in q[3:-3]]
    assert middle == (["RandomGrayscale", "RandomApply"] if stack else [])
    assert type(q[-3]).__name__ == "RandAugment" and [type(t) for t in q[-2:]] == [T.ToTensor, T.Normalize]
    k = steps(views.key)
    assert [type(t).__name__ for t in k] == ["RandomResizedCrop", "RandomApply", "RandomGrayscale", "RandomApply",
                                             "RandomHorizontalFlip", "ToTensor", "Normalize"]  # fmt: skip
    assert k[0].scale == (0.08, 1.0) and applied(k[1]) == (1.0, T.ColorJitter) and k[2].p == 0.2
    assert applied(k[3]) == (0.5, PILGaussianBlur)
    assert k[-1].mean == (0.485, 0.456, 0.406) and RECIPES[recipe] == (224, "imagenet")
    q_view, k_view = views(noise_image(300))
    assert q_view.shape == k_view.shape == (3, 224, 224)


def test_rand_augment_is_timms_with_pacos_hparams():
    ra = rand_augment(224)
    assert ra.num_layers == 2 and ra.choice_weights is None  # two ops, drawn with replacement
    assert sorted(op.name for op in ra.ops) == sorted([
        "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast",
        "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"])  # fmt: skip
    for op in ra.ops:
        assert (op.prob, op.magnitude, op.magnitude_std) == (0.5, 10, 0.5), op.name
        assert op.kwargs["fillcolor"] == (124, 116, 104), op.name  # the ImageNet mean colour
    levels = {op.name: op.level_fn(10, op.hparams) for op in ra.ops if op.level_fn is not None}
    assert levels["Posterize"] == (4,) and levels["Solarize"] == (256,) and abs(levels["Rotate"][0]) == 30
    assert levels["Color"] == pytest.approx((1.9,)) and abs(levels["TranslateXRel"][0]) == pytest.approx(0.45)


def test_blur_radius_is_drawn_uniformly_and_applied_with_pil():
    image = noise_image(64)
    random.seed(3)
    radius = random.uniform(0.1, 2.0)
    random.seed(3)
    from PIL import ImageFilter

    assert np.array_equal(
        np.asarray(PILGaussianBlur()(image)), np.asarray(image.filter(ImageFilter.GaussianBlur(radius)))
    )


def test_normalisation_is_per_dataset_and_eval_crops_the_centre():
    inat = steps(train_transform("randcls_sim", two_views=False, normalize="inat"))[-1]
    assert inat.mean == (0.466, 0.471, 0.380) and inat.std == (0.195, 0.194, 0.192)
    ev = steps(eval_transform("randclsstack_sim"))
    assert ev[0].size == 256 and ev[1].size == (224, 224)
    assert [type(t) for t in steps(eval_transform("cifar100"))] == [T.ToTensor, T.Normalize]
    with pytest.raises(ValueError, match="unknown augment recipe 'imagenet'"):
        train_transform("imagenet", two_views=True)
    with pytest.raises(ValueError, match="unknown normalisation 'places'"):
        eval_transform("cifar100", normalize="places")
