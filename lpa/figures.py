"""The paper's analysis figures for one run: a pseudo-attribute retrieval grid (cf. its Figure 3)
and pseudo-attribute frequencies against class frequencies.

Retrieval: for a few rare-class training images, their dominant pseudo-attribute
argmax_k s(x)_k, and the training images of *other* classes that score highest on it, i.e. the
head-class images a tail class shares a local part with.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from lpa.io.artifacts import read_class_counts, read_split
from lpa.io.cli import run_main, setup_logging
from lpa.io.files import read_json
from lpa.io.plots import pyplot, save_figure
from lpa.sources.images import open_source

log = logging.getLogger("lpa.figures")


def retrieve(scores: pd.DataFrame, counts: pd.DataFrame, queries: int, neighbours: int) -> list[dict]:
    """Per query: ``image_id``, ``label``, ``attribute`` and the ``neighbours`` (image ids) that share it."""
    s = np.stack(scores["scores"].to_numpy())
    labels = scores["label"].to_numpy()
    rare = counts.sort_values("train_count")["label"].tolist()
    picked = []
    for label in rare:
        rows = np.flatnonzero(labels == label)
        if len(rows) == 0:
            continue
        row = rows[np.argmax(s[rows].max(1))]  # the class's image with the most concentrated attribute
        attribute = int(np.argmax(s[row]))
        others = np.flatnonzero(labels != label)
        best = others[np.argsort(-s[others, attribute], kind="stable")[:neighbours]]
        picked.append(
            {
                "image_id": int(scores["image_id"].iloc[row]),
                "label": int(label),
                "attribute": attribute,
                "neighbours": scores["image_id"].iloc[best].astype(int).tolist(),
                "neighbour_labels": labels[best].astype(int).tolist(),
            }
        )
        if len(picked) == queries:
            break
    return picked


def plot_retrieval(picked: list[dict], source, counts: pd.DataFrame, path: str) -> None:
    n_rows, n_cols = len(picked), 1 + max((len(p["neighbours"]) for p in picked), default=0)
    fig, axes = pyplot().subplots(n_rows, n_cols, figsize=(1.6 * n_cols, 1.8 * n_rows), squeeze=False, dpi=120)
    train_count = dict(zip(counts["label"], counts["train_count"]))
    for r, p in enumerate(picked):
        ids = [p["image_id"], *p["neighbours"]]
        labels = [p["label"], *p["neighbour_labels"]]
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c >= len(ids):
                continue
            image = source.load(ids[c])
            ax.imshow(image, cmap="gray" if image.mode == "L" else None)
            prefix = f"query, attr {p['attribute']}\n" if c == 0 else ""
            ax.set_title(f"{prefix}class {labels[c]} (n={train_count[labels[c]]})", fontsize=7)
    fig.suptitle("Rare-class queries and the other classes' images sharing their dominant pseudo-attribute", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def plot_frequencies(balance: dict, path: str) -> None:
    """Sorted, normalised frequencies of pseudo-attributes and of classes against their rank (0..1)."""
    fig, ax = pyplot().subplots(figsize=(5.6, 3.6), dpi=120)
    for key, name in (("classes", "classes"), ("pseudo_attributes", "pseudo-attributes")):
        freq = np.sort(np.asarray(balance[key]["frequencies"], dtype=float))[::-1]
        freq = freq / freq.sum()
        rank = np.linspace(0, 1, len(freq))
        ax.plot(rank, freq, marker="o", markersize=3, label=f"{name} (Gini {balance[key]['gini']:.2f})")
    ax.set_yscale("log")
    ax.set_xlabel("rank (0: most frequent, 1: least)")
    ax.set_ylabel("share of training data")
    ax.set_title("Pseudo-attribute and class frequency profiles")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scores", required=True, help="image_scores.parquet of the attributes stage")
    parser.add_argument("--balance", required=True, help="balance.json of the attributes stage")
    parser.add_argument("--split", required=True)
    parser.add_argument("--counts", required=True)
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--neighbours", type=int, default=6)
    parser.add_argument("--out-retrieval", required=True)
    parser.add_argument("--out-frequencies", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    counts = read_class_counts(args.counts)
    _, meta = read_split(args.split)
    picked = retrieve(pq.read_table(args.scores).to_pandas(), counts, args.queries, args.neighbours)
    for p in picked:
        log.info("query %s", p)
    plot_retrieval(picked, open_source(meta), counts, args.out_retrieval)
    plot_frequencies(read_json(args.balance), args.out_frequencies)


if __name__ == "__main__":
    run_main(main)
