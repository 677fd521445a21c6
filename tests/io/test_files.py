"""lpa.io.files: atomic writes, the mode of what they write, and the temporaries a killed writer leaves."""

import errno
import os
import stat

import pyarrow as pa
import pytest

from lpa.io.files import atomic_path, read_json, write_json, write_parquet, write_text


@pytest.fixture
def umask():
    """Set the process's umask for one test."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_get_the_mode_open_gives(tmp_path, umask, mask):
    umask(mask)
    write_text(tmp_path / "a.txt", "a\n")
    write_parquet(tmp_path / "b.parquet", pa.table({"x": [1, 2]}))
    (tmp_path / "opened").write_text("")
    expected = stat.S_IMODE((tmp_path / "opened").stat().st_mode)
    assert expected == 0o666 & ~mask
    for name in ("a.txt", "b.parquet"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


def test_stale_temporaries_of_the_target_are_removed_and_other_files_kept(tmp_path):
    stale = [".out.json.0a1b2c3d.tmp", ".out.json.k3j_x9zq.tmp"]  # ours, and tempfile.mkstemp's
    kept = [
        ".out.json.gz.0a1b2c3d.tmp",  # a temporary of another target
        ".out.jsonl.0a1b2c3d.tmp",
        ".out.json.0a1b2c3d4.tmp",
        "out.json.0a1b2c3d.tmp",
        ".out.json.old",
        "notes.txt",
    ]
    for name in stale + kept:
        (tmp_path / name).write_text("left")
    write_json(tmp_path / "out.json", {"a": 1})
    assert read_json(tmp_path / "out.json") == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["out.json"])


def test_a_failed_write_that_names_no_file_names_the_target(tmp_path):
    target = tmp_path / "model.pt"
    with pytest.raises(OSError) as raised, atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a write() without room raises
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
