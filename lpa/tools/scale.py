"""The data stages at growing sizes: K-means and attributes on synthetic shards, their time and peak memory.

    python -m lpa.tools.scale --images 2000 4000 8000 --map 7 7 --dim 2048 --out-dir /tmp/scale [--json out.json]

Writes long-tailed synthetic shards in the features stage's format (:func:`lpa.io.artifacts.shard_writer`,
float16, non-negative like post-ReLU features) and K-means' samples beside them, runs
``python -m lpa.kmeans`` on the samples and ``python -m lpa.attributes`` on the shards as the
workflow's rules call them, each in its own process, and reads each process's wall time and peak
resident memory (its VmHWM, read as it exits). Then fits the growth laws the workflow's requests
rest on: K-means memory against its float32 points, attributes time against images, and prints a
Markdown table with the extrapolation to the paper's datasets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from lpa.clustering.sampling import chosen_rows, sample_mask
from lpa.io.artifacts import sample_writer, shard_writer
from lpa.io.cli import run_main

# training images and the 7x7x2048 map of ResNet-50 / ResNeXt-50 at 224 px
PAPER_DATASETS = {"ImageNet-LT": 115_846, "iNaturalist 2018": 437_513}


def write_shards(folder: Path, images: int, height: int, width: int, dim: int, shards: int, classes: int,
                 seed: int = 0, compression: str = "snappy",
                 max_points: int | None = None) -> tuple[list[Path], list[Path], Path]:  # fmt: skip
    """Long-tailed synthetic shards (IF 100 over ``classes``), with ``max_points`` also K-means' samples
    (drawn as the features stage draws them, seed 0), and their class_counts.csv."""
    rng = np.random.default_rng(seed)
    weights = 100.0 ** (-np.arange(classes) / max(classes - 1, 1))
    labels = np.sort(rng.choice(classes, size=images, p=weights / weights.sum()))
    centres = rng.random((classes, dim), dtype=np.float32)
    chosen = sample_mask(labels, height * width, max_points, 0) if max_points else None
    folder.mkdir(parents=True, exist_ok=True)
    paths, samples = [], []
    for i, rows in enumerate(np.array_split(np.arange(images), shards), 1):
        path, sample = folder / f"shard-{i}-of-{shards}.parquet", folder / f"sample-{i}-of-{shards}.parquet"
        meta = {"max_points": max_points, "seed": 0, "feature_map": [height, width, dim], "images": len(rows),
                "local_features": len(rows) * height * width}  # fmt: skip
        with contextlib.ExitStack() as outputs:
            write = outputs.enter_context(shard_writer(path, pa.float16(), height, width, dim, compression,
                                                       cam=True))  # fmt: skip
            if chosen is not None:
                write_sample = outputs.enter_context(sample_writer(sample, pa.float16(), dim, compression, meta))
                samples.append(sample)
            for batch in np.array_split(rows, max(1, len(rows) // 64)):
                noise = rng.random((len(batch), height * width, dim), dtype=np.float32)
                local = np.maximum(centres[labels[batch]][:, None, :] + noise - 0.8, 0).astype(np.float16)
                cams = local.astype(np.float32).sum(-1)  # a stand-in for w_y . z_p: the features' total
                write(batch, labels[batch], local.reshape(len(batch), -1), cams)
                if chosen is not None:
                    write_sample(*chosen_rows(batch, labels[batch], local, chosen[batch]))
        paths.append(path)
    counts = np.bincount(labels, minlength=classes)
    group = np.where(counts > 100, "many", np.where(counts < 20, "few", "medium"))
    counts_path = folder / "class_counts.csv"
    pd.DataFrame({"label": np.arange(classes), "train_count": counts, "group": group}).to_csv(counts_path, index=False)
    return paths, samples, counts_path


# Runs a module as ``python -m`` would and writes its peak resident KiB (VmHWM) at exit. The peak
# is read inside the process because os.wait4's ru_maxrss also holds the parent's resident size
# at the moment of exec (a child of a 2 GiB pytest reads 2 GiB).
_PEAK_WRAPPER = """import atexit, runpy, sys
out = sys.argv.pop(1)
def _peak():
    with open("/proc/self/status") as fh:
        kib = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    with open(out, "w") as fh:
        fh.write(str(kib))
atexit.register(_peak)
sys.argv.pop(0)
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def measured(module: str, args: Sequence[str], peak_file: Path) -> dict:
    """Run ``python -m module args``; its wall seconds and peak resident MiB (the process's own VmHWM)."""
    tic = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK_WRAPPER, str(peak_file), module, *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    seconds = time.perf_counter() - tic
    if proc.returncode != 0:
        raise RuntimeError(f"python -m {module} failed:\n{proc.stderr.decode(errors='replace')[-3000:]}")
    return {"seconds": seconds, "peak_mib": int(peak_file.read_text()) / 1024}


def run_size(folder: Path, images: int, args: argparse.Namespace) -> dict:
    height, width = args.map
    paths, samples, counts = write_shards(folder, images, height, width, args.dim, args.shards, args.classes,
                                          max_points=args.max_points)  # fmt: skip
    shard_mb = sum(p.stat().st_size for p in paths) / 2**20
    sample_mb = sum(p.stat().st_size for p in samples) / 2**20
    points = min(args.max_points, images * height * width)
    peak = folder / "peak_kib.txt"
    kmeans = measured("lpa.kmeans", ["--k", str(args.k), "--niter", str(args.niter), "--backend", "faiss",
                                      "--max-points", str(args.max_points), "--seed", "0",
                                      "--features", *map(str, samples),
                                      "--out-centroids", str(folder / "centroids.npy"),
                                      "--out-stats", str(folder / "stats.json")], peak)  # fmt: skip
    attributes = measured("lpa.attributes", ["--features", *map(str, paths),
                                              "--centroids", str(folder / "centroids.npy"),
                                              "--kmeans-stats", str(folder / "stats.json"), "--counts", str(counts),
                                              "--out-scores", str(folder / "scores.parquet"),
                                              "--out-classes", str(folder / "classes.parquet"),
                                              "--out-balance", str(folder / "balance.json")], peak)  # fmt: skip
    for p in paths + samples:
        p.unlink()
    return {
        "images": images,
        "points": points,
        "points_mib": points * args.dim * 4 / 2**20,
        "shard_mb": shard_mb,
        "sample_mb": sample_mb,
        "kmeans_s": kmeans["seconds"],
        "kmeans_read_mb_s": _read_rate(folder / "stats.json"),
        "kmeans_peak_mib": kmeans["peak_mib"],
        "attributes_s": attributes["seconds"],
        "attributes_peak_mib": attributes["peak_mib"],
    }


def _read_rate(stats_path: Path) -> float:
    """MB of samples per second K-means decoded them at (its stats' sampling record)."""
    sampling = json.loads(stats_path.read_text())["sampling"]
    return sampling["read_bytes"] / 1e6 / sampling["read_seconds"]


def fit_line(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares intercept and slope of y = a + b x."""
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(intercept), float(slope)


def growth(rows: list[dict], points_per_image: int, max_points: int, dim: int) -> dict:
    """The fitted laws and their extrapolation to the paper's datasets on this machine."""
    frame = pd.DataFrame(rows)
    laws = {
        "kmeans_peak_mib": fit_line(frame["points_mib"], frame["kmeans_peak_mib"]),
        "attributes_s": fit_line(frame["images"], frame["attributes_s"]),
        "attributes_peak_mib": fit_line(frame["images"], frame["attributes_peak_mib"]),
        "shard_mb": fit_line(frame["images"], frame["shard_mb"]),
    }
    projected = {}
    for name, images in PAPER_DATASETS.items():
        points_mib = min(max_points, images * points_per_image) * dim * 4 / 2**20
        projected[name] = {
            "images": images,
            "kmeans_points_mib": points_mib,
            "kmeans_peak_mib": laws["kmeans_peak_mib"][0] + laws["kmeans_peak_mib"][1] * points_mib,
            "attributes_minutes": (laws["attributes_s"][0] + laws["attributes_s"][1] * images) / 60,
            "attributes_peak_mib": laws["attributes_peak_mib"][0] + laws["attributes_peak_mib"][1] * images,
            "shards_gb": (laws["shard_mb"][0] + laws["shard_mb"][1] * images) * 2**20 / 1e9,
        }
    return {"laws": {k: {"intercept": a, "slope": b} for k, (a, b) in laws.items()}, "projected": projected}


def markdown(rows: list[dict], fitted: dict) -> str:
    lines = ["| images | points (float32 MiB) | shards MB | samples MB | K-means s | K-means read MB/s | "
             "K-means peak MiB | attributes s | attributes peak MiB |", "|---" * 9 + "|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['images']:,} | {r['points']:,} ({r['points_mib']:,.0f}) | {r['shard_mb']:,.0f} | "
                     f"{r['sample_mb']:,.0f} | "
                     f"{r['kmeans_s']:.1f} | {r['kmeans_read_mb_s']:.0f} | {r['kmeans_peak_mib']:,.0f} | "
                     f"{r['attributes_s']:.1f} | {r['attributes_peak_mib']:,.0f} |")  # fmt: skip
    laws = fitted["laws"]
    lines += ["", f"K-means peak MiB = {laws['kmeans_peak_mib']['intercept']:.0f} + "
              f"{laws['kmeans_peak_mib']['slope']:.3f} x points MiB; attributes s = "
              f"{laws['attributes_s']['intercept']:.1f} + {laws['attributes_s']['slope'] * 1000:.2f} ms x images; "
              f"attributes peak MiB = {laws['attributes_peak_mib']['intercept']:.0f} + "
              f"{laws['attributes_peak_mib']['slope'] * 1000:.3f} x 1000 images.", "",
              "| dataset | images | K-means points MiB | K-means peak MiB | attributes min (this machine) | "
              "attributes peak MiB | shards GB |", "|---" * 7 + "|"]  # fmt: skip
    for name, p in fitted["projected"].items():
        lines.append(f"| {name} | {p['images']:,} | {p['kmeans_points_mib']:,.0f} | {p['kmeans_peak_mib']:,.0f} | "
                     f"{p['attributes_minutes']:.0f} | {p['attributes_peak_mib']:,.0f} | "
                     f"{p['shards_gb']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--map", type=int, nargs=2, default=[7, 7], metavar=("H", "W"))
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--niter", type=int, default=2, help="K-means iterations (time grows with it, memory not)")
    parser.add_argument("--max-points", type=int, default=2_000_000, help="as the paper configs")
    parser.add_argument("--out-dir", required=True, help="scratch folder for the shards (removed as it goes)")
    parser.add_argument("--json", help="write the rows, the fitted laws and the projection here")
    args = parser.parse_args(argv)
    rows = []
    for images in sorted(args.images):
        rows.append(run_size(Path(args.out_dir) / f"n{images}", images, args))
        print(json.dumps(rows[-1]), flush=True)
    fitted = growth(rows, args.map[0] * args.map[1], args.max_points, args.dim)
    print(markdown(rows, fitted))
    if args.json:
        Path(args.json).write_text(json.dumps({"config": vars(args), "rows": rows, **fitted}, indent=2) + "\n")


if __name__ == "__main__":
    run_main(main)
