"""Files whose unpickling runs code: it writes a marker file, as a hostile pickle could run anything."""

from __future__ import annotations

from pathlib import Path

import torch

from lpa.models.checkpoints import FORMAT_VERSION


class WritesMarker:
    """Unpickled, this creates ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def hostile_checkpoint(path: Path, marker: Path) -> Path:
    """A ``torch.save`` file in our layout whose ``model`` entry runs code when unpickled."""
    torch.save({"format_version": FORMAT_VERSION, "config": {}, "model_config": {}, "num_classes": 2,
                "model": WritesMarker(marker)}, path)  # fmt: skip
    return path
