"""Figures as files: matplotlib on the file-only Agg backend, each PNG written atomically."""

from __future__ import annotations

import os

from lpa.io.files import atomic_path


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (stages run on machines without a screen)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike) -> None:
    """Write a matplotlib figure as PNG atomically and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    pyplot().close(fig)
