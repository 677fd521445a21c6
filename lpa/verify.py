"""Check list-file datasets (ImageNet-LT, iNaturalist 2018) before any training starts.

Each list is read (a malformed line, a non-UTF-8 byte, a path listed twice or an empty list is
named by file and line), checked against its known size and class profile and its labels
against the training classes (:meth:`lpa.sources.images.ListFileSource.label_problems`), and its
SHA-256 recorded. With ``--check-images`` every image is decoded in full and its mode and size
checked against what the ``--augment`` recipe takes: missing, truncated, 16-bit or float, and
wrongly sized images are reported by name, all at once, instead of failing hours into training.
On any problem the report is written to the log and the command fails without writing ``--out``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageFile
from tqdm import tqdm

from lpa.augment.sizes import DEFAULT_SIDES, RESIZING_RECIPES
from lpa.io.cli import add_dataclass_arguments, dataclass_from_args, run_main, setup_logging
from lpa.io.files import sha256, write_json
from lpa.sources.images import ListFileSource, read_list_file

log = logging.getLogger("lpa.verify")

# The 224 recipes resize any image (RandomResizedCrop; evaluation: Resize, CenterCrop); a side
# below this is refused all the same, as a placeholder rather than a photograph.
MIN_SIDE = 8


@dataclass(frozen=True)
class Expected:
    train: int | None = None
    val: int | None = None
    test: int | None = None
    classes: int | None = None  # C: the training labels are 0..C-1, each present
    max_per_class: int | None = None
    min_per_class: int | None = None


@dataclass(frozen=True)
class Recipe:
    """The augment recipe the images go through (None: not named) and its crop size (None: the recipe's)."""

    augment: str | None = None
    image_size: int | None = None

    def side(self) -> int | None:
        """The side every image must have where the recipe takes images as they are (digits, cifar100:
        no resize), or None where it resizes them (the 224 recipes) or is not named."""
        if self.augment is None or self.augment in RESIZING_RECIPES:
            return None
        if self.augment not in DEFAULT_SIDES:
            raise ValueError(f"unknown augment recipe {self.augment!r}; choose one of {sorted(DEFAULT_SIDES)}")
        return self.image_size or DEFAULT_SIDES[self.augment]


def _image_problem(path: Path, side: int | None) -> str | None:
    """Why ``path`` cannot be trained on, or None: decoded in full (``Image.verify`` passes a JPEG cut
    short), mode and size checked (``side`` x ``side``, or at least :data:`MIN_SIDE` a side)."""
    if not path.exists():
        return "missing"
    try:
        with Image.open(path) as image:
            image.load()
            mode, (width, height) = image.mode, image.size
    except Exception as err:  # PIL raises many types for a damaged file
        return f"unreadable ({type(err).__name__}: {err})"
    if mode not in ListFileSource.RGB_MODES:
        return f"mode {mode}: convert('RGB') would clip it to 8 bits; save it as 8-bit L or RGB"
    if side is not None and (width, height) != (side, side):
        return f"{width}x{height} pixels; the recipe takes {side}x{side} images as they are (no resize)"
    if min(width, height) < MIN_SIDE:
        return f"{width}x{height} pixels, a side under {MIN_SIDE}"
    return None


def verify(
    root: str | Path,
    lists: dict[str, str],
    expected: Expected,
    check_images: bool,
    workers: int = 8,
    recipe: Recipe = Recipe(),
):
    """Return (report, problems): per-list statistics and a list of human-readable problems."""
    if check_images and ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: truncated images would pass")
    root = Path(root)
    report: dict = {"root": str(root), "lists": {}, "expected": asdict(expected)}
    problems: list[str] = []
    frames = {}
    for split, name in lists.items():
        path = Path(name) if Path(name).is_absolute() else root / name
        try:
            frame = read_list_file(path)
        except (ValueError, FileNotFoundError) as err:
            problems.append(str(err))
            continue
        frames[split] = (path, frame)
        counts = frame["label"].value_counts()
        report["lists"][split] = {
            "path": str(path),
            "sha256": sha256(path),
            "images": len(frame),
            "classes": int(counts.size),
            "max_per_class": int(counts.max()),
            "min_per_class": int(counts.min()),
        }
        want = getattr(expected, split, None)
        if want is not None and want != len(frame):
            problems.append(f"{path}: {len(frame)} images, expected {want}")
    train = report["lists"].get("train")
    if train:
        problems += ListFileSource.label_problems(frames, expected.classes)  # names classes not 0..C-1
        for key in ("max_per_class", "min_per_class"):
            want = getattr(expected, key)
            if want is not None and train[key] != want:
                problems.append(f"{train['path']}: {key} is {train[key]}, expected {want}")
    if check_images:
        side = recipe.side()
        paths = sorted({root / p for _, frame in frames.values() for p in frame["path"]})
        with ThreadPoolExecutor(workers) as pool:
            checks = pool.map(_image_problem, paths, [side] * len(paths))
            found = list(tqdm(checks, total=len(paths), desc="images", mininterval=10))
        bad = {str(p): why for p, why in zip(paths, found) if why}
        report["images_checked"] = len(paths)
        problems += [f"{p}: {why}" for p, why in bad.items()]
    return report, problems


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    for split in ("train", "val", "test"):
        parser.add_argument(f"--{split}-list", default="")
    group = parser.add_argument_group("expected sizes (omit to skip a check)")
    add_dataclass_arguments(group, Expected)
    parser.add_argument("--check-images", action=argparse.BooleanOptionalAction, default=True)
    add_dataclass_arguments(parser.add_argument_group("the recipe the images go through (omit: any size)"), Recipe)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--note", default="", help="free text recorded in the report")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    lists = {s: getattr(args, f"{s}_list") for s in ("train", "val", "test") if getattr(args, f"{s}_list")}
    expected = dataclass_from_args(Expected, args)
    recipe = dataclass_from_args(Recipe, args)
    report, problems = verify(args.root, lists, expected, args.check_images, args.workers, recipe)
    for split, stats in report["lists"].items():
        log.info("%s: %s", split, stats)
    if problems:
        for problem in problems:
            log.error("%s", problem)
        raise ValueError(f"{len(problems)} problem(s) in the dataset under {args.root}; each is listed above")
    write_json(args.out, {**report, "note": args.note})


if __name__ == "__main__":
    run_main(main)
