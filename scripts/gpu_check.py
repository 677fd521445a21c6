"""Check a CUDA machine end to end on generated data and print times and peak memory.

    python scripts/gpu_check.py                 # on a GPU machine
    python scripts/gpu_check.py --device cpu --steps 2 --images 64 --points 20000   # smoke run anywhere

1. PaCo training steps of ResNet-32 (CIFAR size, batch 128) and of ResNeXt-50 (224 px, --big-batch):
   seconds per step and peak GPU memory.
2. Dense feature extraction of ResNet-32 (8x8x64 maps): images per second.
3. K-means on random local features: faiss (GPU when faiss has one) and the torch backend,
   each in a child process (faiss and torch are never loaded together).
4. ``lpa.tools.throughput`` on the CIFAR100-LT config: the PIL worker path against the device path (eager
   and compiled), our step against one written as PaCo's reference loop (a read-back every
   step), training images/s of each path, their ratios in this one run, and what 400 epochs of
   IF 100 take.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lpa.models.networks import LongTailNet, ModelConfig  # noqa: E402
from lpa.tools.throughput import bench, ratio_lines  # noqa: E402
from lpa.training.objectives import PaCoObjective  # noqa: E402

KMEANS_CHILD = """
import json, sys, time, numpy as np
from lpa.kmeans import KMeansConfig, fit
n, d, k, backend = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
x = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
_, _, stats = fit(x, KMeansConfig(k=k, niter=20, backend=backend))
print(json.dumps({k: stats[k] for k in ("backend", "device", "points", "k", "iterations", "seconds")}))
"""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_steps(cfg: ModelConfig, classes: int, batch: int, crop: int, steps: int, device: torch.device, amp: bool):
    model = LongTailNet(cfg, classes).to(device)
    objective = PaCoObjective([1] * classes, 0.05, 1.0, 1.0, 0.07).to(device)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    views = tuple(torch.randn(batch, 3, crop, crop, device=device) for _ in range(2))
    labels = torch.randint(classes, (batch,), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps + 1):  # the first step warms up
        sync(device)
        tic = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            losses, _ = objective(model, views, labels)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        sync(device)
        times.append(time.perf_counter() - tic)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"arch": cfg.arch, "batch": batch, "crop": crop, "seconds_per_step": statistics.median(times[1:]),
            "peak_gib": peak}  # fmt: skip


@torch.no_grad()
def extraction(images: int, device: torch.device) -> dict:
    model = LongTailNet(ModelConfig(depth=32), 100).to(device).eval()
    x = torch.randn(256, 3, 32, 32, device=device)
    model(x)
    sync(device)
    tic = time.perf_counter()
    done = 0
    while done < images:
        dense = model(x).dense.permute(0, 2, 3, 1).half().cpu()
        done += len(x)
    sync(device)
    seconds = time.perf_counter() - tic
    return {"images": done, "map": list(dense.shape[1:]), "images_per_second": done / seconds}


def kmeans(points: int, dim: int, k: int, backend: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", KMEANS_CHILD, str(points), str(dim), str(k), backend],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    if out.returncode != 0:
        return {"backend": backend, "error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--big-batch", type=int, default=64, help="ResNeXt-50 batch")
    parser.add_argument("--images", type=int, default=20_000, help="images to extract")
    parser.add_argument("--points", type=int, default=1_000_000, help="K-means points (64-d)")
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled device path and step")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device is visible; pass --device cpu for a smoke run")
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {card}, torch {torch.__version__}")
    resnet32 = ModelConfig(depth=32, proj_dims=(64, 32), queue_size=1024)
    print("train", train_steps(resnet32, 100, 128, 32, args.steps, device, amp=False))
    resnext = ModelConfig(arch="resnext50_32x4d", proj_dims=(2048, 128), queue_size=8192)
    print("train", train_steps(resnext, 1000, args.big_batch, 224, args.steps, device, amp=False))  # fp32, as PaCo
    print("train", train_steps(resnext, 1000, args.big_batch, 224, args.steps, device, amp=True))  # opt-in bf16
    print("extract", extraction(args.images, device))
    for backend in ("faiss", "torch"):
        print("kmeans", kmeans(args.points, 64, args.k, backend))
    config = str(Path(__file__).resolve().parents[1] / "config/cifar100_lt.yaml")
    try:
        figures = bench(config, device, args.steps, min(args.images, 4096), compile=not args.no_compile)
    except Exception as error:  # noqa: BLE001 (a failed compile must not cost the eager figures of a short GPU lease)
        print(f"bench with torch.compile failed ({error!r}); again without")
        figures = bench(config, device, args.steps, min(args.images, 4096))
    print("bench", json.dumps(figures))
    print("\n".join(ratio_lines(figures)))
    images = 400 * 10_847  # 400 epochs of CIFAR100-LT at imbalance 100
    for path in ("compiled", "device", "worker", "reference"):
        if f"{path}_training_images_per_s" in figures:
            minutes = images / figures[f"{path}_training_images_per_s"] / 60
            print(f"400 epochs of CIFAR100-LT IF 100, {path} path: {minutes:.1f} minutes")


if __name__ == "__main__":
    main()
