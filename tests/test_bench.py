import json

from lpa import bench


def test_bench_prints_each_path_and_the_ratios(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(["config/config.yaml", "--device", "cpu", "--images", "64", "--steps", "1", "--compile",
                "--json", str(out)])  # fmt: skip
    figures = json.loads(out.read_text())
    for key in ("worker_images_per_s_per_core", "device_images_per_s_per_core", "step_s", "reference_step_s",
                "worker_training_images_per_s", "device_training_images_per_s", "device_compile_s",
                "device_compiled_images_per_s_total", "compiled_training_images_per_s"):  # fmt: skip
        assert figures[key] > 0, key
    printed = capsys.readouterr().out
    assert "device / worker images/s per core:" in printed and "step time, ours / reference loop's" in printed
    assert "device path images/s in total, compiled / eager:" in printed
    assert len(figures["ratios"]) == 7  # no decode + crop lines: digits are in memory
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
