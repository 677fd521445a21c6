import json

import pytest

from lpa.tools import throughput as bench


@pytest.mark.slow  # every path of the throughput tool, compile included: minutes
def test_bench_prints_each_path_and_the_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["config/config.yaml", "--device", "cpu", "--images", "64", "--steps", "1", "--compile",
                "--json", str(out)])  # fmt: skip
    figures = json.loads(out.read_text())
    for key in ("worker_images_per_s_per_core", "device_images_per_s_per_core", "step_s", "reference_step_s",
                "worker_training_images_per_s", "device_training_images_per_s", "device_compile_s",
                "device_compiled_images_per_s_total", "compiled_training_images_per_s", "device_operations",
                "device_gbytes", "stream_gb_per_s", "operation_us", "device_bound_ms", "device_batch_ms",
                "eval_input_images_per_s_0_workers",
                f"eval_input_images_per_s_{figures['cores']}_workers"):  # fmt: skip
        assert figures[key] > 0, key
    assert figures["device_bmm_gflop"] > 0  # the digits key view's resized crop is two batched products
    printed = capsys.readouterr().out
    assert "device / worker images/s per core:" in printed and "step time, ours / reference loop's" in printed
    assert "device path images/s in total, compiled / eager:" in printed
    assert "device path time per batch, measured / bound" in printed
    assert "features and evaluate input, one worker per core / in the stage's process" in printed
    assert len(figures["ratios"]) == 9  # no decode + crop lines: digits are in memory
    assert figures["reference_training_images_per_s"] > 0


def test_jpeg_recipes_time_the_workers_decode_and_crop(tmp_path):
    config = tmp_path / "imagenet.yaml"
    text = open("config/imagenet_lt.yaml").read()
    config.write_text(text)
    settings, source, classes = bench.load_settings(str(config))
    assert source == "listfile" and settings.augment == "randclsstack_sim" and classes == 1000
    crops = bench.decode_crop_transform(settings.augment)
    query, key = crops(bench.SyntheticSource(1, 224, 3, tmp_path).load(0))
    assert query.shape == key.shape == (3, 224, 224) and query.dtype.is_floating_point is False


def test_traffic_counts_operations_bytes_and_bmm_flops():
    import torch

    left, right = torch.ones(2, 3, 4, dtype=torch.float64), torch.ones(2, 4, 5, dtype=torch.float64)
    with bench.Traffic() as traffic:
        torch.bmm(left, right)  # reads 24 + 40 numbers, writes 30
        left[:, :1].sum()  # a slice (reads 24, a view of 8 in a storage of 24: counted 8), then a sum of 8 into 1
    assert traffic.operations == 3 and traffic.bmm_flops == 2 * 2 * 3 * 4 * 5
    assert traffic.bytes == 8 * ((24 + 40 + 30) + (24 + 8) + (8 + 1))
