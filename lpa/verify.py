"""Check list-file datasets (ImageNet-LT, iNaturalist 2018) before any training starts.

Each list is checked against its known size and class profile, its SHA-256 recorded, and
(with ``--check-images``) every image opened: missing or unreadable files are reported by
name, all at once, instead of failing hours into training. On any problem the report is
written to the log and the command fails without writing ``--out``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from lpa.io.cli import add_dataclass_arguments, dataclass_from_args, run_main, setup_logging
from lpa.io.files import sha256, write_json
from lpa.sources.images import read_list_file

log = logging.getLogger("lpa.verify")


@dataclass(frozen=True)
class Expected:
    train: int | None = None
    val: int | None = None
    test: int | None = None
    classes: int | None = None  # distinct labels in the training list
    max_per_class: int | None = None
    min_per_class: int | None = None


def _image_problem(path: Path) -> str | None:
    if not path.exists():
        return "missing"
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as err:  # PIL raises many types for a damaged file
        return f"unreadable ({type(err).__name__}: {err})"
    return None


def verify(root: str | Path, lists: dict[str, str], expected: Expected, check_images: bool, workers: int = 8):
    """Return (report, problems): per-list statistics and a list of human-readable problems."""
    root = Path(root)
    report: dict = {"root": str(root), "lists": {}, "expected": asdict(expected)}
    problems: list[str] = []
    frames = {}
    for split, name in lists.items():
        path = Path(name) if Path(name).is_absolute() else root / name
        frame = read_list_file(path)
        frames[split] = frame
        counts = frame["label"].value_counts()
        report["lists"][split] = {
            "path": str(path),
            "sha256": sha256(path),
            "images": len(frame),
            "classes": int(counts.size),
            "max_per_class": int(counts.max()) if len(counts) else 0,
            "min_per_class": int(counts.min()) if len(counts) else 0,
        }
        want = getattr(expected, split, None)
        if want is not None and want != len(frame):
            problems.append(f"{path}: {len(frame)} images, expected {want}")
    train = report["lists"].get("train")
    if train:
        for key in ("classes", "max_per_class", "min_per_class"):
            want = getattr(expected, key)
            if want is not None and train[key] != want:
                problems.append(f"{train['path']}: {key} is {train[key]}, expected {want}")
    if check_images:
        paths = sorted({root / p for frame in frames.values() for p in frame["path"]})
        with ThreadPoolExecutor(workers) as pool:
            found = list(tqdm(pool.map(_image_problem, paths), total=len(paths), desc="images", mininterval=10))
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
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--note", default="", help="free text recorded in the report")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    lists = {s: getattr(args, f"{s}_list") for s in ("train", "val", "test") if getattr(args, f"{s}_list")}
    expected = dataclass_from_args(Expected, args)
    report, problems = verify(args.root, lists, expected, args.check_images, args.workers)
    for split, stats in report["lists"].items():
        log.info("%s: %s", split, stats)
    if problems:
        for problem in problems:
            log.error("%s", problem)
        raise ValueError(f"{len(problems)} problem(s) in the dataset under {args.root}; each is listed above")
    write_json(args.out, {**report, "note": args.note})


if __name__ == "__main__":
    run_main(main)
