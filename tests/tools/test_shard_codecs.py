"""The shard codec benchmark at a CI size: one row per compression the features stage offers."""

from lpa.io.artifacts import COMPRESSIONS
from lpa.tools import shard_codecs


def test_every_compression_is_written_sized_and_read(tmp_path, capsys):
    shard_codecs.main(["--images", "100", "--map", "4", "4", "--dim", "64", "--repeats", "1",
                       "--out-dir", str(tmp_path)])  # fmt: skip
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    table = {cells[0].strip(): (float(cells[1]), float(cells[2].replace(",", ""))) for cells in rows[1:]}
    assert set(table) == set(COMPRESSIONS)
    assert table["none"][0] >= 1.0 > table["zstd"][0]  # the raw values and Parquet's framing; zstd compresses
    assert all(rate > 0 for _, rate in table.values())
    assert not list(tmp_path.rglob("*.parquet"))
