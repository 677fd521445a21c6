"""The ``looks`` source: the paper's own scenario, where rare classes look like a head class globally
but share their local parts with the head classes of other looks.

The paper's Fig. 2: the rare "Robin" looks like the "Hummingbird" as a whole, and shares its
blunt beak and long tail with the frequent "Bulbul". Here the classes fall into groups of
:data:`GROUP_SIZE`; a group shares a *look*, a texture in a palette that fills the whole image
(:data:`LOOKS`), and holds one head class (the group's most frequent) and tail classes. Each class
holds :data:`PARTS_PER_CLASS` local parts of :mod:`lpa.sources.parts`' vocabulary:

- head ``g`` holds two parts of its own, every part of the vocabulary in use held by one head;
- tail ``j`` of group ``g`` takes one part from the head of group ``g + a_j`` and one from the
  head of group ``g + b_j`` (mod the number of groups, :func:`tail_offsets`): never from its
  own group, never a part another class of its group holds, and no two classes share two parts.

So the class pairs that share a look and the pairs that share a part are disjoint: a reading of
a(y) that ranks the look-sharing pairs high finds the look, one that ranks the part-sharing
pairs high finds the parts. Classes are numbered heads first (0 .. G-1, group g's head is class
g), then tail j of group g is class ``G + (j - 1) * G + g``, so the long-tailed profile makes the
heads the frequent classes. Half the images (:data:`DISTRACTOR`) also hold a distractor part.

Every image carries its ground truth: which part lies where (``part_masks``, ``placements``) and
its class's group (``groups``). Generated in-process from a seed, with numpy and PIL only.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from lpa.sources.parts import SIZE, PartsSource, Placement, place_parts, strokes

GROUP_SIZE = 5  # classes per look: one head and four tails
PARTS_PER_CLASS = 2
DISTRACTOR = 0.5
# The looks: a texture over the whole image in two muted colours, away from the parts' saturated
# red, blue, green and yellow, so that a part is told from the look by shape and colour.
LOOKS = (
    ("horizontal stripes", (150, 110, 170), (90, 90, 100)),
    ("vertical stripes", (70, 140, 140), (170, 150, 120)),
    ("diagonal stripes", (180, 120, 80), (100, 70, 60)),
    ("checks", (200, 160, 190), (110, 120, 80)),
    ("dots", (120, 160, 200), (60, 60, 90)),
    ("rings", (190, 190, 190), (130, 100, 140)),
    ("waves", (125, 105, 85), (200, 180, 150)),
    ("crosshatch", (160, 90, 120), (140, 170, 160)),
)


def tail_offsets(groups: int, tails: int) -> list[tuple[int, int]]:
    """The group offsets (a_j, b_j) tail j borrows its two parts from, for ``tails`` tails per group.

    Each a_j and b_j in 1 .. groups-1 (never the tail's own group), the a_j distinct and the b_j
    distinct (no two classes of a group share a part), and the b_j - a_j distinct mod ``groups``
    (no two tails of different groups hold the same pair of parts). The first such list in
    lexicographic order.
    """

    def extend(chosen: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
        if len(chosen) == tails:
            return chosen
        for a in range(1, groups):
            for b in range(1, groups):
                if a == b or any(a == x or b == y or (b - a) % groups == (y - x) % groups for x, y in chosen):
                    continue
                found = extend([*chosen, (a, b)])
                if found:
                    return found
        return None

    found = extend([])
    if found is None:
        raise ValueError(f"looks source: {groups} groups cannot give {tails} tails per group parts from other "
                         "groups' heads without two classes of a group sharing one")  # fmt: skip
    return found


def look_classes(num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each class's group (C,) and its parts (C, 2) (see the module docstring)."""
    groups, rest = divmod(num_classes, GROUP_SIZE)
    if rest or not 5 <= groups <= len(LOOKS):
        raise ValueError(f"the looks source makes {GROUP_SIZE} classes per look and has {len(LOOKS)} looks: "
                         f"num_classes must be a multiple of {GROUP_SIZE} from {5 * GROUP_SIZE} to "
                         f"{GROUP_SIZE * len(LOOKS)}, got {num_classes}")  # fmt: skip

    def first(g: int) -> int:  # head g's first part: shape g in its first colour
        return 2 * (g % groups)

    def second(g: int) -> int:  # and its second: the next shape in its second colour
        return 2 * ((g + 1) % groups) + 1

    group = list(range(groups))
    parts = [(first(g), second(g)) for g in range(groups)]
    for a, b in tail_offsets(groups, GROUP_SIZE - 1):
        group += list(range(groups))
        parts += [(first(g + a), second(g + b)) for g in range(groups)]
    return np.asarray(group, np.int64), np.sort(np.asarray(parts, np.int64), axis=1)


def look(index: int, rng: np.random.Generator) -> np.ndarray:
    """(32, 32, 3) float pixels of look ``index`` (:data:`LOOKS`), its phase, scale and angle jittered."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    texture, low, high = LOOKS[index]
    period = rng.uniform(5.5, 7.5)
    angle = rng.uniform(-0.15, 0.15)
    u = cols * np.cos(angle) + rows * np.sin(angle) + rng.uniform(0, period)
    v = -cols * np.sin(angle) + rows * np.cos(angle) + rng.uniform(0, period)
    centre = rng.uniform(0, SIZE, 2)  # of the rings
    wave = {
        "horizontal stripes": lambda: np.sin(2 * np.pi * v / period),
        "vertical stripes": lambda: np.sin(2 * np.pi * u / period),
        "diagonal stripes": lambda: np.sin(2 * np.pi * (u + v) / (period * np.sqrt(2))),
        "checks": lambda: np.sin(np.pi * u / period) * np.sin(np.pi * v / period),
        "dots": lambda: np.cos(2 * np.pi * u / period) + np.cos(2 * np.pi * v / period) - 1.0,
        "rings": lambda: np.sin(2 * np.pi * np.hypot(rows - centre[0], cols - centre[1]) / period),
        "waves": lambda: np.sin(2 * np.pi * v / period + 2.0 * np.sin(2 * np.pi * u / (2 * period))),
        "crosshatch": lambda: np.maximum(np.sin(2 * np.pi * (u + v) / (period * 1.4)),
                                         np.sin(2 * np.pi * (u - v) / (period * 1.4))),
    }[texture]()  # fmt: skip
    t = 1.0 / (1.0 + np.exp(-4.0 * wave))  # crisp, not binary
    jitter = rng.uniform(0.85, 1.15)
    image = np.asarray(low, np.float64) * (1 - t[..., None]) + np.asarray(high, np.float64) * t[..., None]
    image = np.clip(image * jitter + rng.normal(0, 8, 3), 0, 255) + rng.normal(0, 10, size=(SIZE, SIZE, 3))
    return strokes(image, rows, cols, rng.integers(1, 4), rng)  # a little clutter behind the parts


class LooksSource(PartsSource):
    """Looks shared within groups, parts shared across them (see the module docstring)."""

    source = "looks"

    @cached_property
    def groups(self) -> np.ndarray:
        """(C,) the group, and so the look, of each class."""
        return look_classes(self.num_classes)[0]

    def class_parts(self) -> np.ndarray:
        return look_classes(self.num_classes)[1]

    def render(self, label: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[Placement]]:
        return place_parts(look(int(self.groups[label]), rng), self.parts[label], rng, DISTRACTOR)

    def shares_look(self) -> np.ndarray:
        return self.groups[:, None] == self.groups[None, :]

