"""The end-to-end lane: one finished run of the CI-sized workflow (.test/config), shared by its tests."""

import shutil

import pytest
from snakemake_cli import REPO, snakemake


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    shutil.copytree(REPO / ".test" / "config", workdir / "config")
    snakemake(workdir)
    return workdir
