"""The verify stage (lpa.verify): labels against the training classes, list files that cannot be read,
and images decoded in full against what the recipe takes."""

import numpy as np
import pytest
from fakedata import write_jpeg_lists
from PIL import Image

from lpa import verify
from lpa.verify import Expected, Recipe


@pytest.fixture
def lists(tmp_path):
    """Three classes of 40 x 40 JPEGs: train 3/2/1, val 1/1/1."""
    return tmp_path, write_jpeg_lists(tmp_path, {"train.txt": [3, 2, 1], "val.txt": [1, 1, 1]})


def problems(root, expected=None, recipe=None, check_images=False, splits=("train", "val")):
    lists = {s: f"{s}.txt" for s in splits}
    return verify.verify(root, lists, expected or Expected(), check_images, 2, recipe or Recipe())[1]


def append(path, line):
    path.write_text(path.read_text() + line + "\n")


def test_stray_label_is_an_error_not_a_thousand_classes(lists):
    root, files = lists
    append(files["train.txt"], "train/0000/00000.jpg.copy 999")
    (found,) = problems(root)
    assert "no image of class 3-998 (996 of 1000" in found and "largest label, 999, is on line 7" in found


def test_val_label_not_in_train_names_file_line_and_label(lists):
    root, files = lists
    append(files["val.txt"], "val/0000/00000.jpg.copy 3")
    assert problems(root) == [f"{files['val.txt']}:4: label 3 is not a class of {files['train.txt']}"]


def test_declared_classes_absent_from_train_are_named(lists):
    root, files = lists
    (found,) = problems(root, Expected(classes=5))
    assert found.startswith(f"{files['train.txt']}: labels must be 0..4") and "no image of class 3-4 (2 of 5)" in found
    assert problems(root, Expected(classes=2)) == [
        f"{files['train.txt']}:6: label 2 is not below the 2 declared classes",
        f"{files['val.txt']}:3: label 2 is not a class of {files['train.txt']}",
    ]
    assert problems(root, Expected(classes=3)) == []


def test_class_missing_inside_the_range_is_named(tmp_path):
    write_jpeg_lists(tmp_path, {"train.txt": [2, 0, 1]})
    (found,) = problems(tmp_path, splits=("train",))
    assert "no image of class 1 (1 of 3" in found


def test_unreadable_lists_are_reported_together(lists):
    root, files = lists
    append(files["train.txt"], "train/0000/00001.jpg 0")
    files["val.txt"].write_bytes(b"val/0000/00000.jpg 0\nval/caf\xe9.jpg 1\n")
    (root / "test.txt").write_text("\n\n")
    found = problems(root, splits=("train", "val", "test"))
    assert found == [
        f"{files['train.txt']}:7: train/0000/00001.jpg is listed twice, on lines 2 and 7",
        f"{files['val.txt']}:2: byte 0xe9 (byte 8 of the line) is not UTF-8",
        f"{root / 'test.txt'}: empty list, no 'relative/path label' line",
    ]


def cut_short(path, nbytes=30):
    path.write_bytes(path.read_bytes()[:-nbytes])


def test_truncated_jpeg_is_named(lists):
    root, _ = lists
    path = root / "train/0001/00000.jpg"
    cut_short(path)
    with Image.open(path) as image:
        image.verify()  # what the check used to do: it passes
    (found,) = problems(root, check_images=True)
    assert found.startswith(f"{path}: unreadable (OSError: image file is truncated")


def test_truncated_images_allowed_process_wide_is_refused(lists, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        problems(lists[0], check_images=True)


def test_fixed_size_recipe_names_an_image_of_another_size(lists):
    root, _ = lists
    assert problems(root, recipe=Recipe("randcls_sim", 64), check_images=True) == []  # resized: any size
    found = problems(root, recipe=Recipe("cifar100"), check_images=True)
    assert len(found) == 9 and found[0].endswith("40x40 pixels; the recipe takes 32x32 images as they are (no resize)")
    assert problems(root, recipe=Recipe("cifar100", 40), check_images=True) == []
    Image.new("RGB", (40, 36)).save(root / "val/0002/00000.jpg")
    assert problems(root, recipe=Recipe("cifar100", 40), check_images=True) == [
        f"{root / 'val/0002/00000.jpg'}: 40x36 pixels; the recipe takes 40x40 images as they are (no resize)"
    ]
    Image.new("RGB", (300, 5)).save(root / "val/0002/00000.jpg")
    assert problems(root, recipe=Recipe("randcls_sim"), check_images=True) == [
        f"{root / 'val/0002/00000.jpg'}: 300x5 pixels, a side under {verify.MIN_SIDE}"
    ]


def test_16_bit_and_float_images_are_refused_by_name(tmp_path):
    ramp = np.arange(16 * 16).reshape(16, 16)
    Image.fromarray((ramp * 200).astype(np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray((ramp / 255).astype(np.float32)).save(tmp_path / "float.tif")
    (tmp_path / "train.txt").write_text("deep.png 0\nfloat.tif 1\n")
    found = problems(tmp_path, check_images=True, splits=("train",))
    assert found == [
        f"{tmp_path / 'deep.png'}: mode I;16: convert('RGB') would clip it to 8 bits; save it as 8-bit L or RGB",
        f"{tmp_path / 'float.tif'}: mode F: convert('RGB') would clip it to 8 bits; save it as 8-bit L or RGB",
    ]


def test_modes_that_convert_in_full_pass(tmp_path):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    names = []
    for mode, ext in (("P", "png"), ("L", "png"), ("RGBA", "png"), ("CMYK", "jpg"), ("1", "png")):
        image.convert(mode).save(tmp_path / f"{mode}.{ext}")
        names.append(f"{mode}.{ext} {len(names)}")
    (tmp_path / "train.txt").write_text("\n".join(names) + "\n")
    assert problems(tmp_path, check_images=True, splits=("train",)) == []


def test_main_takes_the_recipe(lists, tmp_path):
    root, _ = lists
    args = ["--root", str(root), "--train-list", "train.txt", "--out", str(tmp_path / "v.json"), "--augment"]
    with pytest.raises(ValueError, match="6 problem"):
        verify.main(args + ["cifar100"])
    verify.main(args + ["cifar100", "--image-size", "40"])
    verify.main(args + ["randclsstack_sim", "--image-size", "none"])
    assert (tmp_path / "v.json").exists()
