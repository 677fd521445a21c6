"""The scale benchmark at a CI size: its table, its fitted laws, and the memory bounds of the data stages."""

import json

import pytest

from lpa.planning.sizing import ATTRIBUTES_BASE_MB, kmeans_request_mb
from lpa.tools import scale


def test_scale_benchmark_measures_both_stages_within_their_memory_bounds(tmp_path, capsys):
    scale.main(["--images", "60", "120", "240", "--map", "4", "4", "--dim", "32", "--classes", "10", "--k", "4",
                "--out-dir", str(tmp_path / "work"), "--json", str(tmp_path / "scale.json")])  # fmt: skip
    result = json.loads((tmp_path / "scale.json").read_text())
    rows = result["rows"]
    assert [r["images"] for r in rows] == [60, 120, 240] and [r["points"] for r in rows] == [960, 1920, 3840]
    for r in rows:  # each stage within what the workflow requests for it (lpa.planning.sizing)
        assert r["kmeans_peak_mib"] <= kmeans_request_mb(r["points_mib"])
        assert r["attributes_peak_mib"] <= ATTRIBUTES_BASE_MB
        assert r["kmeans_read_mb_s"] > 0
    assert set(result["laws"]) == {"kmeans_peak_mib", "attributes_s", "attributes_peak_mib", "shard_mb"}
    assert set(result["projected"]) == {"ImageNet-LT", "iNaturalist 2018"}
    assert "| ImageNet-LT | 115,846 |" in capsys.readouterr().out
    assert not list((tmp_path / "work").rglob("shard-*.parquet"))  # shards removed as it goes


def test_a_line_is_fitted_exactly():
    assert scale.fit_line([1, 2, 3], [5, 7, 9]) == pytest.approx((3.0, 2.0))
