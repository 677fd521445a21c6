"""Stage import_paco: a checkpoint saved by PaCo's training scripts as this project's baseline ``model.pt``.

The conversion itself is :func:`lpa.models.checkpoints.import_paco`; this stage records the
file's SHA-256 beside the model::

    python -m lpa.import_paco --paco-checkpoint moco_ckpt.pth.tar --split split.parquet \\
        --out-model model.pt --out-provenance provenance.json <lpa.train flags>
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from lpa.io.artifacts import read_split
from lpa.io.cli import add_dataclass_arguments, dataclass_from_args, run_main, setup_logging
from lpa.io.files import sha256, write_json
from lpa.models.checkpoints import import_paco, save_checkpoint
from lpa.sources.images import open_source
from lpa.training.config import TrainConfig

log = logging.getLogger("lpa.import_paco")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Import a checkpoint saved by PaCo's training scripts.")
    add_dataclass_arguments(parser, TrainConfig)
    parser.add_argument("--paco-checkpoint", required=True, help="a file saved by paco_cifar.py / paco_lt.py")
    parser.add_argument("--split", required=True, help="the data stage's split.parquet (number of classes)")
    parser.add_argument("--out-model", required=True)
    parser.add_argument("--out-provenance", required=True)
    args = parser.parse_args(argv)
    setup_logging()
    cfg = dataclass_from_args(TrainConfig, args)
    _, meta = read_split(args.split)
    num_classes = meta["num_classes"]
    model_config = cfg.model_config(open_source(meta).in_channels)
    model = import_paco(args.paco_checkpoint, model_config, num_classes)
    digest = sha256(args.paco_checkpoint)
    source = {"path": str(Path(args.paco_checkpoint).resolve()), "sha256": digest}
    save_checkpoint(
        args.out_model,
        config={**asdict(cfg), "init_from": None},
        model_config=asdict(model_config),
        num_classes=num_classes,
        model=model.state_dict(),
        epoch=None,
        history=[],
        imported_from=source,
    )
    write_json(args.out_provenance, {"imported_from": source, "num_classes": num_classes,
                                     "model_config": asdict(model_config)})  # fmt: skip
    log.info("imported %s (sha256 %s) as %s", args.paco_checkpoint, digest, args.out_model)


if __name__ == "__main__":
    run_main(main)
