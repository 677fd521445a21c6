from pathlib import Path

import pytest
import yaml

from lpa.tools.step_cost import measure, train_images

REPO = Path(__file__).resolve().parents[2]


def test_expected_training_sizes_of_the_benchmark_configs():
    cifar = yaml.safe_load((REPO / "config" / "cifar100_lt.yaml").read_text())["datasets"]
    assert [train_images(d)[0] for d in cifar.values()] == [10847, 12608, 19573]
    inat = yaml.safe_load((REPO / "config" / "inat2018.yaml").read_text())["datasets"]["inat2018"]
    assert train_images(inat) == (437513, 8142)


def test_measure_counts_flops_and_extrapolates_by_batch():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    result = measure(config, batch_size=8, steps=1, device="cpu")
    assert result["gflop_per_step"] > 0 and result["seconds_per_step"] > 0
    assert result["steps_per_epoch"] == 347 // 64
    expected = result["seconds_per_step"] * 64 / 8 * result["steps_per_epoch"] * 100 / 3600
    assert abs(result["baseline_hours_on_this_device"] - expected) < 1e-9


@pytest.mark.slow  # scripts/gpu_check.py end to end, compile included: minutes
def test_gpu_check_script_smoke_runs_on_the_cpu():
    import subprocess
    import sys

    command = [sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--device", "cpu", "--steps", "1"]
    command += ["--big-batch", "2", "--images", "256", "--points", "5000", "--k", "8"]
    command += ["--no-compile"]  # the compiled path: test_bench
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert sum(line.startswith("train ") for line in lines) == 3  # ResNet-32; ResNeXt-50 fp32 and bf16
    assert sum(line.startswith("kmeans") and "error" not in line for line in lines) == 2
    # lpa.bench on the CIFAR config: the figures, the ratios, and 400 epochs per path
    assert sum(line.startswith("bench {") for line in lines) == 1
    assert any(line.startswith("step time, ours / reference loop's") for line in lines)
    assert sum(line.startswith("400 epochs of CIFAR100-LT IF 100") for line in lines) == 3
