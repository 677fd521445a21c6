"""Feature shards under each compression: their size against the raw values and how fast they read.

    python -m lpa.tools.shard_codecs --images 1000 --map 7 7 --dim 2048 --out-dir /tmp/codecs

Writes the same synthetic shard (:func:`lpa.tools.scale.write_shards`: float16, non-negative like
post-ReLU features, a third of them zero) with every ``features.compression``
(:data:`lpa.io.artifacts.COMPRESSIONS`), then streams each through
:func:`lpa.io.artifacts.iter_shard_batches` as K-means and attributes do, and reports the size
as a share of the raw float16 values and the read rate in MB of raw values per second (the
median of ``--repeats`` reads, the file in the page cache: the decoder's rate, which a disk
slower than it would cap).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from lpa.io.artifacts import COMPRESSIONS, iter_shard_batches
from lpa.io.cli import run_main
from lpa.tools.scale import write_shards


def read_rate(path: Path, raw_bytes: int, repeats: int) -> float:
    """MB of raw values decoded per second: the median over ``repeats`` full reads."""
    seconds = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in iter_shard_batches([path]):
            pass
        seconds.append(time.perf_counter() - tic)
    return raw_bytes / statistics.median(seconds) / 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--map", type=int, nargs=2, default=[7, 7], metavar=("H", "W"))
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out-dir", required=True, help="scratch folder (each shard removed once read)")
    args = parser.parse_args(argv)
    height, width = args.map
    raw_bytes = args.images * height * width * args.dim * 2
    print(f"{args.images:,} images of {height}x{width}x{args.dim} float16: {raw_bytes / 1e6:,.0f} MB of raw values\n")
    print("| compression | size / raw | read MB/s (raw values) |\n|---|---|---|")
    for codec in COMPRESSIONS:
        paths, _, _ = write_shards(Path(args.out_dir) / codec, args.images, height, width, args.dim, shards=1,
                                classes=10, compression=codec)  # fmt: skip
        size = paths[0].stat().st_size
        print(f"| {codec} | {size / raw_bytes:.2f} | {read_rate(paths[0], raw_bytes, args.repeats):,.0f} |", flush=True)
        paths[0].unlink()


if __name__ == "__main__":
    run_main(main)
