import argparse
import errno
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from lpa.io.cli import add_dataclass_arguments, cli_flags, dataclass_from_args, run_main

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CONFIGS = [REPO / "config" / "config.yaml", REPO / ".test/config/config.yaml"]


@dataclass(frozen=True)
class Settings:
    name: str = "a"
    root: str = ""
    count: int = 1
    rate: float = 0.5
    flag: bool = True
    dims: tuple[int, ...] = (1, 2)
    limit: int | None = None


@pytest.mark.parametrize(
    "values",
    [{}, {"name": "with space", "root": "", "count": 7, "rate": 1e-4, "flag": False, "dims": (), "limit": 3}],
)
def test_flags_round_trip_through_the_parser(values):
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Settings)
    settings = Settings(**values)
    args = parser.parse_args(shlex.split(cli_flags(vars(settings))))
    assert dataclass_from_args(Settings, args) == settings


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.parent.name or "config")
def test_shipped_configs_validate_and_get_defaults(path):
    config = yaml.safe_load(path.read_text())
    validate(config, str(SCHEMA), set_default=True)
    assert config["kmeans"]["nredo"] == 1  # filled from the schema
    assert config["finetune"]["similarity"] == ["cosine", "label"]  # the attributes and the label control


@pytest.mark.parametrize(
    "patch,words",
    [
        ({"kmeans": {"K": [16], "n_iter": 5}}, "n_iter"),  # a typo is an error, not a silent default
        ({"baseline": {"lr": -1}}, "lr"),
        ({"finetune": {"similarity": "jaccard"}}, "jaccard"),
        ({"datasets": {"x": {"imbalance_factor": 0.5}}}, "imbalance_factor"),
    ],
)
def test_schema_rejects_bad_config_naming_the_key(patch, words):
    config = {**yaml.safe_load(CONFIGS[1].read_text()), **patch}
    with pytest.raises(WorkflowError, match=words):
        validate(config, str(SCHEMA), set_default=True)


def _raises(err: BaseException):
    def main(argv):
        raise err

    return main


@pytest.mark.parametrize(
    "err,line",
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/out/model.pt"),
         f"OSError: {os.strerror(errno.ENOSPC)} (ENOSPC): /out/model.pt"),
        (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/out/split.parquet"),
         f"PermissionError: {os.strerror(errno.EACCES)} (EACCES): /out/split.parquet"),
        (RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB"), "RuntimeError: CUDA out of memory."),
    ],
)  # fmt: skip
def test_os_and_runtime_errors_are_one_line_then_the_traceback(err, line, caplog, capsys):
    with pytest.raises(SystemExit) as exit_, caplog.at_level("ERROR", logger="lpa"):
        run_main(_raises(err))
    assert exit_.value.code == 1
    assert [r.getMessage() for r in caplog.records] == [line]
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_an_error_a_user_can_fix_is_the_line_alone(caplog, capsys):
    with pytest.raises(SystemExit), caplog.at_level("ERROR", logger="lpa"):
        run_main(_raises(ValueError("/in/split.parquet has no training images")))
    assert [r.getMessage() for r in caplog.records] == ["ValueError: /in/split.parquet has no training images"]
    assert capsys.readouterr().err == ""
