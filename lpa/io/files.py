"""Atomic file writing and JSON helpers.

No stage ever leaves a half-written file where a later stage reads: everything is
written to a temporary file in the destination folder, then moved with ``os.replace``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The temporary is ``.<name>.<8 random characters>.tmp``, created as ``open()`` creates a file
    (mode 0o666 less the umask), so the result is as readable as the user's umask allows.
    Temporaries of the same target that a killed writer left are removed first: they are all
    stale, since a target has one writer at a time (Snakemake locks the outputs of a running
    job, and no stage writes one file from two places at once). An ``OSError`` of the block that
    names no file (a ``write()`` without room) is raised again naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in _temporaries(path):
        with contextlib.suppress(OSError):
            stale.unlink()
    tmp = _create_temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.filename is None and err.errno:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _temporaries(path: Path) -> list[Path]:
    """The temporaries of ``path`` in its folder (ours, and ``tempfile.mkstemp``'s of the same pattern)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    with os.scandir(path.parent) as entries:
        return [Path(e.path) for e in entries if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False)]


def _create_temporary(path: Path) -> Path:
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name for {path}")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_parquet(path: str | os.PathLike, table: pa.Table) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"missing input file {path}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
