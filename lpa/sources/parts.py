"""The ``parts`` source: long-tailed images composed of planted local parts, with their ground truth.

A benchmark with a known answer for LPA's premise. A vocabulary of parts (shape x colour,
so some parts differ only in colour) is shared by the classes: each class is a set of
:data:`PARTS_PER_CLASS` parts, so every class shares parts with others. Every image places its
class's parts, each in its own quadrant with position, scale and colour jitter, over a cluttered
background (a colour gradient, pixel noise and strokes in random colours), some strokes crossing
the parts; every image (:data:`DISTRACTOR`) also holds a distractor, a part of the vocabulary that
is not their class's, in the free quadrant.
Every image carries its ground truth: which part, where (:meth:`PartsSource.part_masks`).

Generated in-process from a seed (``split_seed``), with numpy and PIL only (no torch, so the
attributes stage can read the ground truth in its own environment). Image ids number the
images class by class: train, then val, then test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from PIL import Image

SIZE = 32  # pixels
SHAPES = ("disc", "ring", "square", "triangle", "cross", "stripes", "diamond", "bar")
# RGB of the part colours, two per shape: the parts of a shape differ only in colour
COLOURS = {"red": (210, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 60), "yellow": (225, 200, 40)}
PART_COLOURS = (("red", "blue"), ("green", "yellow"), ("red", "green"), ("blue", "yellow"),
                ("yellow", "red"), ("blue", "green"), ("green", "red"), ("yellow", "blue"))  # fmt: skip
PARTS = tuple(f"{colour} {shape}" for shape, pair in zip(SHAPES, PART_COLOURS) for colour in pair)
PARTS_PER_CLASS = 3
# the quadrants' centres; each image puts its parts in three of the four
QUADRANTS = ((8, 8), (8, 24), (24, 8), (24, 24))
BACKGROUND = -1  # part index of a pixel no part covers
DISTRACTOR = 1.0  # probability that an image holds a part of another class in its free quadrant


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v) in a part's own frame ([-1, 1]^2 is its box) lie on ``shape``."""
    r = np.hypot(u, v)
    box = np.maximum(np.abs(u), np.abs(v))
    if shape == "disc":
        return r <= 1.0
    if shape == "ring":
        return (r <= 1.0) & (r >= 0.55)
    if shape == "square":
        return box <= 0.8
    if shape == "triangle":
        return (v <= 0.85) & (v >= -0.95 + 2.0 * np.abs(u))
    if shape == "cross":
        return (box <= 1.0) & ((np.abs(u) <= 0.3) | (np.abs(v) <= 0.3))
    if shape == "stripes":
        return (box <= 0.9) & (np.cos(v * np.pi * 2.2) > 0)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if shape == "bar":
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 0.35)
    raise ValueError(f"unknown shape {shape!r}")


@dataclass(frozen=True)
class Placement:
    """One planted part of one image: its index in :data:`PARTS`, centre (row, col) and radius in pixels."""

    part: int
    row: float
    col: float
    radius: float


def class_parts(num_classes: int, seed: int) -> np.ndarray:
    """(C, PARTS_PER_CLASS) part indices of each class: distinct sets, every part in some class.

    Drawn from ``seed``; each class's parts are sorted, and no two classes have the same set.
    """
    if num_classes < 2:
        raise ValueError(f"the parts source needs at least 2 classes, got {num_classes}")
    rng = np.random.default_rng([seed, 1])
    n = len(PARTS)
    # a cyclic cover first (every part used), then distinct random sets
    sets: list[tuple[int, ...]] = []
    order = rng.permutation(n)
    for start in range(0, n, PARTS_PER_CLASS):
        chosen = tuple(sorted(int(order[(start + i) % n]) for i in range(PARTS_PER_CLASS)))
        if len(sets) < num_classes and chosen not in sets:
            sets.append(chosen)
    while len(sets) < num_classes:
        chosen = tuple(sorted(int(p) for p in rng.choice(n, PARTS_PER_CLASS, replace=False)))
        if chosen not in sets:
            sets.append(chosen)
    return np.asarray(sets, np.int64)


def sharing(parts: np.ndarray) -> np.ndarray:
    """(C, C) bool: whether classes i and j share at least one part (the diagonal is True)."""
    onehot = np.zeros((len(parts), len(PARTS)), bool)
    np.put_along_axis(onehot, parts, True, axis=1)
    return (onehot.astype(np.int64) @ onehot.T.astype(np.int64)) > 0


def strokes(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, count: int, rng: np.random.Generator):
    """``image`` with ``count`` thin straight strokes of random colour, length and direction drawn over it."""
    for _ in range(count):
        r0, c0 = rng.uniform(0, SIZE, 2)
        angle, length = rng.uniform(0, np.pi), rng.uniform(6, 16)
        along = (rows - r0) * np.sin(angle) + (cols - c0) * np.cos(angle)
        across = -(rows - r0) * np.cos(angle) + (cols - c0) * np.sin(angle)
        image[(np.abs(along) <= length / 2) & (np.abs(across) <= 0.7)] = rng.uniform(30, 230, size=3)
    return image


def clutter(rng: np.random.Generator) -> np.ndarray:
    """(32, 32, 3) float background: a random low-saturation gradient with pixel noise and strokes."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    corner = rng.uniform(70, 170, size=(2, 3))
    t = (rows * np.cos(a := rng.uniform(0, 2 * np.pi)) + cols * np.sin(a)) / SIZE
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    image = corner[0] * (1 - t[..., None]) + corner[1] * t[..., None]
    image += rng.normal(0, 12, size=image.shape)
    return strokes(image, rows, cols, rng.integers(3, 7), rng)  # clutter behind the parts


def place_parts(image: np.ndarray, parts: Sequence[int], rng: np.random.Generator,
                distractor: float = DISTRACTOR) -> tuple[np.ndarray, np.ndarray, list[Placement]]:  # fmt: skip
    """Draw ``parts`` on the float ``image`` (32, 32, 3), each in its own quadrant, and thin occluders
    in front; with probability ``distractor`` also a part of the vocabulary not in ``parts``.

    Returns the uint8 pixels, the (32, 32) part map (per pixel, the index in :data:`PARTS` of the
    part drawn there, the last drawn winning, or :data:`BACKGROUND`) and the placements (the
    given parts, then the distractor if any).
    """
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    part_map = np.full((SIZE, SIZE), BACKGROUND, np.int64)
    placements = []
    parts = list(parts)
    if rng.random() < distractor:
        parts.append(int(rng.choice(np.setdiff1d(np.arange(len(PARTS)), parts))))
    for part, quadrant in zip(parts, rng.permutation(len(QUADRANTS))):
        centre = np.asarray(QUADRANTS[quadrant]) + rng.uniform(-2.5, 2.5, 2)
        radius = rng.uniform(3.75, 6.25)
        angle = rng.uniform(-0.35, 0.35)  # a slight rotation
        du, dv = (cols - centre[1]) / radius, (rows - centre[0]) / radius
        u, v = du * np.cos(angle) + dv * np.sin(angle), -du * np.sin(angle) + dv * np.cos(angle)
        mask = _shape_mask(SHAPES[part // 2], u, v)
        colour = np.asarray(COLOURS[PARTS[part].split()[0]], np.float64)
        colour = np.clip(colour * rng.uniform(0.7, 1.15) + rng.normal(0, 18, 3), 0, 255)  # colour jitter
        image[mask] = colour + rng.normal(0, 6, size=(int(mask.sum()), 3))
        part_map[mask] = part
        placements.append(Placement(int(part), float(centre[0]), float(centre[1]), float(radius)))
    image = strokes(image, rows, cols, rng.integers(1, 3), rng)  # and thin occluders in front (the map keeps the part)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), part_map, placements


def render(label_parts: Sequence[int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[Placement]]:
    """One image of a class made of ``label_parts`` over clutter (see :func:`place_parts`)."""
    return place_parts(clutter(rng), label_parts, rng)


def positions_of(part_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) part index of each dense-map position: the part covering most of its cell, if over half.

    The cell of position (i, j) is the block of the 32 x 32 image it summarises (``32 / H`` rows
    by ``32 / W`` columns); a cell whose largest part covers half or less is :data:`BACKGROUND`.
    """
    if SIZE % height or SIZE % width:
        raise ValueError(f"a {height}x{width} dense map does not tile the {SIZE}x{SIZE} image")
    cells = part_map.reshape(height, SIZE // height, width, SIZE // width).transpose(0, 2, 1, 3)
    cells = cells.reshape(height, width, -1)
    out = np.full((height, width), BACKGROUND, np.int64)
    for part in np.unique(part_map[part_map >= 0]):
        share = (cells == part).mean(-1)
        out[share > 0.5] = part
    return out


class PartsSource:
    """Planted-part images (see the module docstring), made once at start from ``seed``."""

    in_channels = 3

    def __init__(self, train_counts: Sequence[int], val_per_class: int, test_per_class: int, seed: int) -> None:
        counts = np.asarray(train_counts, np.int64)
        if counts.ndim != 1 or len(counts) < 2 or counts.min() < 1:
            raise ValueError(f"parts source: train_counts must give every class (at least 2) an image, got {counts}")
        if test_per_class < 1 or val_per_class < 0:
            raise ValueError(f"parts source: test_per_class must be >= 1 and val_per_class >= 0, got "
                             f"{test_per_class} and {val_per_class}")  # fmt: skip
        self.num_classes, self.seed, self.train_counts = len(counts), seed, counts
        self.parts = self.class_parts()
        rows = []
        for label in range(self.num_classes):
            for split, n in (("train", self.train_counts[label]), ("val", val_per_class), ("test", test_per_class)):
                rows += [(label, split)] * int(n)
        self.table = pd.DataFrame(rows, columns=["label", "split"])
        self.table.insert(0, "image_id", np.arange(len(rows), dtype=np.int64))

    source = "parts"  # its name in the config and in a split's metadata

    def class_parts(self) -> np.ndarray:
        """(C, parts per class) part indices of each class."""
        return class_parts(self.num_classes, self.seed)

    def render(self, label: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[Placement]]:
        """One image of class ``label``: pixels, part map, placements (:func:`place_parts`)."""
        return render(self.parts[label], rng)

    def shares_part(self) -> np.ndarray:
        """(C, C) bool: whether two classes share a planted part (the diagonal is True)."""
        return sharing(self.parts)

    def shares_look(self) -> np.ndarray | None:
        """(C, C) bool: whether two classes share their global appearance; None: no class has one."""
        return None

    @cached_property
    def _rendered(self) -> tuple[np.ndarray, np.ndarray, list[list[Placement]]]:
        images = np.empty((len(self.table), SIZE, SIZE, 3), np.uint8)
        maps = np.empty((len(self.table), SIZE, SIZE), np.int8)
        placements = []
        for image_id, label in zip(self.table["image_id"], self.table["label"]):
            rng = np.random.default_rng([self.seed, 2, int(image_id)])  # each image from its own stream
            images[image_id], maps[image_id], placed = self.render(int(label), rng)
            placements.append(placed)
        return images, maps, placements

    def load(self, image_id: int) -> Image.Image:
        return Image.fromarray(self._rendered[0][image_id])

    def pixels(self, image_ids: Sequence[int]) -> np.ndarray:
        """(N, 32, 32, 3) uint8 pixels of ``image_ids``: what device augmentation starts from."""
        return self._rendered[0][np.asarray(image_ids)]

    def part_masks(self, image_ids: Sequence[int]) -> np.ndarray:
        """(N, 32, 32) int8 ground truth: the part index of :data:`PARTS` drawn at each pixel, or -1."""
        return self._rendered[1][np.asarray(image_ids)]

    def holds(self, image_ids: Sequence[int]) -> np.ndarray:
        """(N, len(PARTS)) bool: which parts each image holds (its class's, and its distractor if any)."""
        out = np.zeros((len(image_ids), len(PARTS)), bool)
        for row, image_id in enumerate(image_ids):
            out[row, [p.part for p in self._rendered[2][image_id]]] = True
        return out

    def placements(self, image_id: int) -> list[Placement]:
        """Which parts image ``image_id`` holds, and where (centre and radius, in pixels)."""
        return self._rendered[2][image_id]

    @classmethod
    def from_meta(cls, meta: dict) -> PartsSource:
        """The source a split's metadata describes (:meth:`lpa.data.DataConfig.source_meta`)."""
        return cls(meta["train_counts"], meta["val_per_class"], meta["test_per_class"], meta["seed"])

    def make_split(self, cfg) -> pd.DataFrame:
        """The generated split: long-tailed train, balanced val and test."""
        return self.table[["image_id", "label", "split"]].copy()
