"""Running Snakemake on the workflow from the tests, and reading its dry runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflow" / "Snakefile")]
# Jobs call `python`: make it this interpreter, however pytest was started.
ENV = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


def snakemake(workdir, *args, check=True):
    result = subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--cores", "2", *args], capture_output=True, text=True, env=ENV
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result.stdout + result.stderr


def planned_jobs(output):
    """Rule name -> job count, from the 'Job stats' table of a dry run."""
    jobs = {}
    for line in output.split("Job stats:")[1].splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def planned_rules(output):
    return set(planned_jobs(output))
