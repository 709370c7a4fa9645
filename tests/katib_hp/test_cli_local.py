"""`katib-hp run-local` from the command line, and reading its results back with trials/best/status."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from katib_hp.cli import cli
from katib_hp.yamlio import dump_yaml

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "katib_hp" / "local" / "fake_trainer.py"
TRAINER_PYTHON = ROOT / ".venv-trainer" / "bin" / "python"
pytestmark = pytest.mark.timeout(120)


def manifest(mode: str = "ok", *, max_trials: int = 3) -> dict[str, Any]:
    container = {"name": "training-container", "image": "fake:1", "command": ["python", "-u", str(FAKE)],
                 "args": ["--lr=${trialParameters.lr}", f"--mode={mode}", "--epochs=2"]}
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "fake-cli"},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "val_accuracy"},
            "algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "3"}]},
            "maxTrialCount": max_trials, "parallelTrialCount": 2, "maxFailedTrialCount": max_trials,
            "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.2"}}],
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "trialParameters": [{"name": "lr", "reference": "lr"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"backoffLimit": 0, "template": {
                    "spec": {"restartPolicy": "Never", "containers": [container]}}}}},
        },
    }


def run_local(tmp_path: Path, document: dict[str, Any], *extra: str) -> Any:
    path = tmp_path / "experiment.yaml"
    path.write_text(dump_yaml(document))
    return CliRunner().invoke(cli, ["run-local", str(path), "--work-dir", str(tmp_path / "run"),
                                    "--python", sys.executable, "--cold", *extra])


def test_run_local_prints_trials_best_and_the_cluster_command(tmp_path: Path) -> None:
    result = run_local(tmp_path, manifest())
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split()[:3] == ["TRIAL", "STATE", "VAL"]
    assert result.stdout.count("Succeeded") == 3
    assert "best trial fake-cli-" in result.stderr
    assert "on a cluster:   katib-hp submit" in result.stderr

    work = str(tmp_path / "run")
    trials = json.loads(CliRunner().invoke(cli, ["trials", work, "-o", "json"]).stdout)
    assert [t["state"] for t in trials] == ["Succeeded"] * 3
    best = CliRunner().invoke(cli, ["best", work, "-o", "args"])
    assert best.exit_code == 0
    top = max(trials, key=lambda t: t["objective"])
    assert best.stdout.strip() == f"--lr={top['parameters']['lr']} --mode=ok --epochs=2"
    status = CliRunner().invoke(cli, ["status", work, "-o", "json"])
    assert json.loads(status.stdout)["state"] == "Succeeded"


@pytest.mark.parametrize(("max_failed", "reason"), [
    (None, "is marked Succeeded (ExperimentMaxTrialsReached) but no trial succeeded (2 failed"),
    (2, "failed: Experiment has failed because max failed count has reached"),
])
def test_an_all_failed_run_exits_1_with_the_reason(tmp_path: Path, max_failed: int | None, reason: str) -> None:
    document = manifest("crash", max_trials=2)
    document["spec"]["maxFailedTrialCount"] = max_failed
    if max_failed is None:
        del document["spec"]["maxFailedTrialCount"]
    result = run_local(tmp_path, document)
    assert result.exit_code == 1
    assert reason in result.stderr
    assert "TrialFailed. Job reason: BackoffLimitExceeded" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_kept_run_needs_resume(tmp_path: Path) -> None:
    assert run_local(tmp_path, manifest(max_trials=2)).exit_code == 0
    again = run_local(tmp_path, manifest(max_trials=2))
    assert again.exit_code == 2
    assert "--resume" in again.stderr
    more = manifest(max_trials=3)
    resumed = run_local(tmp_path, more, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.count("Succeeded") == 3


def test_lint_errors_refuse_before_running(tmp_path: Path) -> None:
    broken = manifest()
    broken["spec"]["parallelTrialCount"] = 9
    result = run_local(tmp_path, broken)
    assert result.exit_code == 1
    assert "parallelTrialCount" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.skipif(not TRAINER_PYTHON.exists(), reason="needs the trainer environment (make setup)")
def test_the_built_in_trainer_runs_locally_in_the_warm_worker(tmp_path: Path) -> None:
    source = ROOT / "manifests" / "cpu" / "digits-bayes-cpu.yaml"
    shutil.copy(source, tmp_path / "exp.yaml")
    result = CliRunner().invoke(cli, ["run-local", str(tmp_path / "exp.yaml"), "--work-dir", str(tmp_path / "run"),
                                      "--python", str(TRAINER_PYTHON), "-o", "csv"])
    assert result.exit_code == 0, result.output
    rows = result.stdout.strip().splitlines()
    assert len(rows) == 4 and all(",Succeeded," in row for row in rows[1:])
    assert "retrain with:   python -m trainer --dataset=digits --epochs=2" in result.stderr


def test_a_missing_interpreter_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_text(dump_yaml(manifest()))
    result = CliRunner().invoke(cli, ["run-local", str(path), "--python", str(tmp_path / "nope"), "--cold"])
    assert result.exit_code == 2
    assert result.stderr == f"Error: --python: no such interpreter: {tmp_path / 'nope'}; pass the path of a Python " \
                            "that has the trainer installed, e.g. .venv-trainer/bin/python\n"


def test_a_command_that_cannot_start_fails_its_trials(tmp_path: Path) -> None:
    document = manifest(max_trials=2)
    container = document["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = [str(tmp_path / "no-such-program")]
    result = run_local(tmp_path, document)
    assert result.exit_code == 1
    assert "Failed" in result.stdout
    log = next((tmp_path / "run" / "trials").glob("*/log.txt")).read_text()
    assert "cannot start" in log and "No such file or directory" in log


def test_a_resumed_random_search_does_not_repeat_earlier_points(tmp_path: Path) -> None:
    assert run_local(tmp_path, manifest(max_trials=2)).exit_code == 0
    resumed = run_local(tmp_path, manifest(max_trials=4), "--resume")
    assert resumed.exit_code == 0, resumed.output
    trials = json.loads(CliRunner().invoke(cli, ["trials", str(tmp_path / "run"), "-o", "json"]).stdout)
    points = [t["parameters"]["lr"] for t in trials]
    assert len(points) == 4 and len(set(points)) == 4
