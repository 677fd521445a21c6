"""The whole workflow on the CI-sized config (.test/config/config.yaml), through Snakemake itself."""

import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from snakemake_cli import ENV, REPO, SNAKEMAKE, planned_jobs, planned_rules, snakemake

from lpa.targets.kinds import READINGS


def test_workflow_produces_the_tables(finished_run):
    tables = finished_run / "results" / "digits_lt" / "tables"
    accuracy = pd.read_csv(tables / "accuracy.csv")
    assert accuracy["method"].tolist() == ["CE", "PaCo", "LPA"]
    assert list(accuracy.columns[:5]) == ["method", "many", "medium", "few", "all"]
    assert accuracy["all"].between(0, 100).all()
    assert (tables / "per_class_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    runs = [
        f"K{k}_{name}_e1_lr0.01"
        for k in (4, 6)
        for name in ("projection_cosine_alpha0.5_t0.1", "none_alpha0.0", "projection_label_alpha0.5_t0.1",
                     "projection_cam-cosine_alpha0.5_t0.1", "pooled_cosine_alpha0.5_t0.1",
                     "pooled_label_alpha0.5_t0.1", "pooled_cam-cosine_alpha0.5_t0.1")  # fmt: skip
    ]
    assert pd.read_csv(tables / "lpa_ablation.csv")["method"].tolist() == ["PaCo"] + [f"LPA_{r}" for r in runs]
    paired = pd.read_csv(tables / "lpa_ablation_paired.csv")
    assert f"LPA_{runs[4]} - LPA_{runs[5]}" in set(paired["comparison"])  # pooled cosine against pooled label
    assert f"LPA_{runs[4]} - LPA_{runs[1]}" in set(paired["comparison"])  # and against alpha 0
    assert "LPA - PaCo" in (tables / "accuracy.md").read_text()
    balance = json.loads(
        (finished_run / "results" / "digits_lt" / "seed0" / "attributes" / "K4" / "balance.json").read_text()
    )
    weights = balance["positive_weights"]
    assert weights["batch_size"] == 32 and set(weights["similarities"]) >= {"label", "cosine", "multilabel"}
    assert weights["similarities"]["label"]["few"]["other_share"] == 0.0
    assert "| K4 | cosine | few |" in (tables / "lpa_ablation.md").read_text()
    run = finished_run / "results" / "digits_lt" / "seed0"
    assert sorted(p.name for p in (run / "features").iterdir()) == [
        "sample-1-of-2.parquet", "sample-2-of-2.parquet", "shard-1-of-2.parquet", "shard-2-of-2.parquet"
    ]  # fmt: skip
    for rule in (
        "baseline/paco",
        "kmeans/K4",
        "attributes/K4",
        "finetune/K4_pooled_cosine_alpha0.5_t0.1_e1_lr0.01",
        "evaluate/lpa_K4_pooled_cosine_alpha0.5_t0.1_e1_lr0.01",
    ):
        assert (finished_run / "results" / "digits_lt" / "logs" / "seed0" / f"{rule}.log").exists(), rule
        assert (finished_run / "results" / "digits_lt" / "benchmarks" / "seed0" / f"{rule}.tsv").exists(), rule


def test_the_parts_dataset_measures_recovery_and_validates(finished_run):
    results = finished_run / "results" / "parts_lt"
    recovery = pd.read_csv(results / "tables" / "recovery.csv")
    assert set(recovery["metric"]) == {"part (images)", "part (positions)", "class sharing (part)"}
    assert set(recovery.loc[recovery["metric"] == "part (images)", "reading"]) == set(READINGS)
    assert set(recovery["K"]) == {4, 6} and (recovery["runs"] == 1).all()  # seed 0, each K apart
    assert recovery["mean"].between(0, 1).all()
    raw = json.loads((results / "seed0" / "attributes" / "K4" / "recovery.json").read_text())
    assert raw["ground_truth"] and len(raw["part_images"]["histogram"]["per_part"]) == 16
    digits = json.loads((finished_run / "results" / "digits_lt" / "seed0" / "attributes" / "K4" / "recovery.json")
                        .read_text())  # fmt: skip
    assert digits == {"ground_truth": False, "reason": "the source does not know which part lies where"}
    val = pd.read_csv(results / "tables" / "lpa_ablation_val.csv")
    assert "LPA_K4_pooled_cam-cosine_alpha0.5_t0.1_e1_lr0.01" in set(val["method"])
    val_summary = json.loads((results / "seed0" / "evaluate_val" / "paco" / "summary.json").read_text())
    test_summary = json.loads((results / "seed0" / "evaluate" / "paco" / "summary.json").read_text())
    assert val_summary["split"] == "val" and test_summary["split"] == "test"
    assert val_summary["all_classes"] == 6 and "stalled" in test_summary
    metrics = results / "seed0" / "baseline" / "paco" / "metrics.jsonl"
    epochs = [json.loads(x) for x in metrics.read_text().splitlines()]
    assert all("train_balanced_top1" in e and "stalled" in e for e in epochs)
    finetuned = json.loads((results / "seed0" / "finetune" / "K4_pooled_cam-cosine_alpha0.5_t0.1_e1_lr0.01"
                            / "config.json").read_text())  # fmt: skip
    assert (finetuned["reading"], finetuned["similarity"], finetuned["site"]) == ("cam", "cosine", "pooled")


def test_the_looks_dataset_measures_look_sharing_beside_part_sharing(finished_run):
    results = finished_run / "results" / "looks_lt"
    recovery = pd.read_csv(results / "tables" / "recovery.csv")
    assert {"class sharing (part)", "class sharing (look)"} <= set(recovery["metric"])
    raw = json.loads((results / "seed0" / "attributes" / "K4" / "recovery.json").read_text())
    # 25 classes in 5 looks: 50 of the 300 pairs share a look, 100 a part (10 parts, 5 classes each)
    assert raw["classes_sharing_a_look"] == pytest.approx(50 / 300)
    assert raw["classes_sharing_a_part"] == pytest.approx(100 / 300)
    assert (results / "tables" / "selected.csv").exists()


def test_the_selection_picks_each_family_on_val(finished_run):
    tables = finished_run / "results" / "parts_lt" / "tables"
    picks = pd.read_csv(tables / "selected.csv")
    assert picks["family"].tolist() == ["LPA", "label", "alpha0"]
    assert picks["candidates"].tolist() == [8, 4, 2]  # 2 K x 2 sites x 2 readings; 2 K x 2 sites; 2 K
    assert picks["val"].between(0, 100).all() and picks["test_all"].between(0, 100).all()
    paired = pd.read_csv(tables / "selected_paired.csv")
    assert set(paired["comparison"]) == {"LPA - label", "LPA - alpha0"}
    assert "picked run" in (tables / "selected.md").read_text()


def test_second_run_has_nothing_to_do(finished_run):
    assert "Nothing to be done" in snakemake(finished_run, "--dry-run")


def test_changing_k_replans_only_kmeans_and_what_depends_on_it(finished_run, tmp_path):
    config = yaml.safe_load((finished_run / "config" / "config.yaml").read_text())
    config["kmeans"]["K"] = [4, 5]
    (tmp_path / "k.yaml").write_text(yaml.safe_dump(config))
    rules = planned_rules(snakemake(finished_run, "--dry-run", "--configfile", str(tmp_path / "k.yaml")))
    assert {"kmeans", "attributes", "finetune", "evaluate"} <= rules
    assert rules <= {"kmeans", "attributes", "finetune", "evaluate", "evaluate_val", "ablation", "ablation_val",
                     "select", "recovery", "curves", "all"}  # fmt: skip


def test_speed_settings_never_redo_a_result(finished_run, tmp_path):
    config = yaml.safe_load((finished_run / "config" / "config.yaml").read_text())
    config["execution"].update(device="cpu", num_workers=1, threads=2, eval_batch_size=7)
    config["features"]["batch_size"] = 5
    (tmp_path / "speed.yaml").write_text(yaml.safe_dump(config))
    assert "Nothing to be done" in snakemake(finished_run, "--dry-run", "--configfile", str(tmp_path / "speed.yaml"))
    config["execution"]["amp"] = True  # changes the numbers (bf16 on CUDA): the training reruns
    (tmp_path / "amp.yaml").write_text(yaml.safe_dump(config))
    assert {"baseline", "finetune"} <= planned_rules(
        snakemake(finished_run, "--dry-run", "--configfile", str(tmp_path / "amp.yaml"))
    )


def test_report_holds_the_tables_and_figures(finished_run, tmp_path):
    snakemake(finished_run, "--report", str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text()
    for name in (
        "accuracy.csv",
        "per_class_accuracy.png",
        "lpa_ablation_paired.csv",
        "retrieval.png",
        "Training curves",
        "recovery.csv",
        "lpa_ablation_val.csv",
        "selected.csv",
    ):
        assert name in html, name


def test_forcerun_one_stage(finished_run):
    out = snakemake(finished_run, "--dry-run", "--forcerun", "kmeans", "--until", "kmeans")
    assert planned_rules(out) == {"kmeans"}


def test_lint_is_clean():
    result = subprocess.run(
        [*SNAKEMAKE, "--lint", "--directory", str(REPO / ".test")], capture_output=True, text=True, env=ENV
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def slurm_cluster_up() -> str | None:
    """None when a SLURM controller answers here, else why not."""
    if shutil.which("sbatch") is None:
        return "sbatch not found: SLURM is not installed (.ci/run installs slurm-wlm and starts a cluster)"
    probe = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if probe.returncode != 0 or not probe.stdout.strip():
        return f"no SLURM controller answers (sinfo: {probe.stderr.strip()}); start one with .ci/slurm-up.sh"
    return None


def local_rules():
    """The rules the workflow's `localrules:` blocks keep on the submitting machine."""
    names = set()
    for path in (REPO / "workflow").rglob("*.smk"):
        for block in re.findall(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", path.read_text(), re.MULTILINE):
            names |= set(re.findall(r"\w+", block))
    return names


def test_slurm_profile_runs_the_workflow_like_a_local_run(finished_run, tmp_path):
    reason = slurm_cluster_up()
    if reason:
        pytest.skip(reason)
    shutil.copytree(REPO / ".test" / "config", tmp_path / "config")
    out = snakemake(
        tmp_path,
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--seconds-between-status-checks",
        "2",
        "--slurm-init-seconds-before-status-checks",
        "1",
    )
    submitted = [line for line in out.splitlines() if "has been submitted with SLURM jobid" in line]
    jobs = planned_jobs(snakemake(tmp_path, "--dry-run", "--forceall"))
    local = {"all"} | local_rules()  # `all` has no job of its own to submit
    assert len(submitted) == sum(n for rule, n in jobs.items() if rule not in local), out[-3000:]
    for rel in ("tables/accuracy.csv", "tables/lpa_ablation.csv", "seed0/evaluate/paco/per_class.csv"):
        ours = (tmp_path / "results" / "digits_lt" / rel).read_text()
        assert ours == (finished_run / "results" / "digits_lt" / rel).read_text(), rel


def test_a_checkpoint_saved_by_pacos_code_replaces_the_trained_baseline(finished_run, tmp_path):
    import hashlib

    import torch

    from lpa.models.checkpoints import export_paco, load_checkpoint

    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    trained = finished_run / "results" / "digits_lt" / "seed0" / "baseline" / "paco" / "model.pt"
    model, _ = load_checkpoint(trained)
    released = tmp_path / "moco_ckpt.pth.tar"  # as PaCo's paco_cifar.py saves it
    torch.save({"epoch": 2, "arch": "resnet_cifar", "state_dict": export_paco(model), "optimizer": {}}, released)
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    config["datasets"]["digits_lt"]["paco_checkpoint"] = str(released)
    (tmp_path / "released.yaml").write_text(yaml.safe_dump(config))
    overlay = ("--configfile", str(tmp_path / "released.yaml"))

    jobs = planned_jobs(snakemake(workdir, "--dry-run", *overlay))
    assert jobs["import_paco"] == 1 and "baseline" not in jobs  # 400 epochs replaced by one import
    assert {"features", "kmeans", "attributes", "finetune", "evaluate"} <= set(jobs)
    snakemake(workdir, *overlay)
    run = workdir / "results" / "digits_lt" / "seed0"
    provenance = json.loads((run / "baseline" / "paco_imported" / "provenance.json").read_text())
    assert provenance["imported_from"]["sha256"] == hashlib.sha256(released.read_bytes()).hexdigest()
    # the same weights through PaCo's layout: the same evaluation, to the byte
    rel = "seed0/evaluate/paco/per_class.csv"
    assert (workdir / "results" / "digits_lt" / rel).read_text() == (
        finished_run / "results" / "digits_lt" / rel
    ).read_text()
    fresh = tmp_path / "fresh" / "config"
    fresh.mkdir(parents=True)
    config["datasets"]["digits_lt"]["paco_checkpoint"] = str(tmp_path / "no.pth")
    (fresh / "config.yaml").write_text(yaml.safe_dump(config))
    out = snakemake(fresh.parent, "--dry-run", check=False)
    assert "no.pth" in out and "MissingInputException" in out


def test_the_workflow_runs_as_a_snakemake_module(finished_run, tmp_path):
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / ".test" / "config" / "config.yaml", tmp_path / "config" / "lpa.yaml")
    snakefile = str(REPO / "workflow" / "Snakefile")
    (tmp_path / "Snakefile").write_text(
        'configfile: "config/lpa.yaml"\n\n\n'
        f"module lpa:\n    snakefile:\n        {snakefile!r}\n    config:\n        config\n\n\n"
        "use rule * from lpa\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(tmp_path)],
        capture_output=True, text=True, env=ENV, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rel = "results/digits_lt/tables/accuracy.csv"
    assert (tmp_path / rel).read_text() == (finished_run / rel).read_text()
