"""The work directory keeps a local run in the result model's shapes and refuses to mix experiments."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from katib_hp.local.errors import WorkDirError
from katib_hp.local.workdir import WorkDir, default_work_dir, load
from katib_hp.results import (
    ExperimentState,
    ExperimentStatus,
    MetricValue,
    Objective,
    TrialResult,
    TrialState,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def manifest(name: str = "demo", **spec: Any) -> dict[str, Any]:
    base = {"objective": {"type": "maximize", "objectiveMetricName": "val_accuracy"},
            "algorithm": {"algorithmName": "random"}, "maxTrialCount": 3, "parallelTrialCount": 1,
            "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}}],
            "trialTemplate": {"primaryContainerName": "main", "trialParameters": [{"name": "lr", "reference": "lr"}],
                              "trialSpec": {"apiVersion": "batch/v1", "kind": "Job"}}}
    base.update(spec)
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": base}


def trial(name: str, state: TrialState, objective: float | None, minutes: int, reason: str = "") -> TrialResult:
    return TrialResult(name=name, state=state, parameters={"lr": "0.05"}, objective=objective, reason=reason,
                       metrics={"val_accuracy": MetricValue("val_accuracy", objective, objective, objective)},
                       start_time=T0 + timedelta(minutes=minutes), completion_time=T0 + timedelta(minutes=minutes + 1),
                       experiment="demo", series={"val_accuracy": (0.1, objective or 0.0)}, log_tail=("done",))


def test_round_trip_gives_the_cluster_shapes(tmp_path: Path) -> None:
    work = WorkDir(tmp_path / "run")
    assert work.prepare(manifest(), resume=False) == []
    trials = [trial("demo-b", TrialState.SUCCEEDED, 0.9, 1), trial("demo-a", TrialState.FAILED, None, 2),
              trial("demo-c", TrialState.SUCCEEDED, 0.7, 0)]
    for item in trials:
        work.write_trial(item, ["python", "train.py", "--lr=0.05"])
    status = ExperimentStatus(name="demo", state=ExperimentState.SUCCEEDED, objective=Objective("val_accuracy"),
                              trials=tuple(trials), reason="ExperimentMaxTrialsReached", start_time=T0,
                              completion_time=T0 + timedelta(minutes=5))
    work.write_status(status, ["a note"])
    loaded_manifest, loaded = load(tmp_path / "run")
    assert loaded_manifest["metadata"]["name"] == "demo"
    assert [t.name for t in loaded.trials] == ["demo-c", "demo-b", "demo-a"]  # by start time
    assert loaded.trials[1] == trials[0]
    assert (loaded.state, loaded.reason, loaded.max_trials) == (ExperimentState.SUCCEEDED,
                                                                "ExperimentMaxTrialsReached", 3)
    assert loaded.best is not None and loaded.best.name == "demo-b"
    assert loaded.outcome()[0]
    assert work.trial_command("demo-b") == ["python", "train.py", "--lr=0.05"]
    assert (tmp_path / "run" / "trials" / "demo-b" / "trial.json").exists()


def test_another_experiment_is_refused(tmp_path: Path) -> None:
    WorkDir(tmp_path).prepare(manifest("demo"), resume=False)
    with pytest.raises(WorkDirError, match="different experiment"):
        WorkDir(tmp_path).prepare(manifest("other"), resume=True)
    changed = manifest("demo", algorithm={"algorithmName": "tpe"})
    with pytest.raises(WorkDirError, match="spec changed"):
        WorkDir(tmp_path).prepare(changed, resume=True)


def test_an_existing_run_needs_resume(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    work.prepare(manifest(), resume=False)
    work.write_trial(trial("demo-a", TrialState.SUCCEEDED, 0.9, 0))
    with pytest.raises(WorkDirError, match="--resume"):
        work.prepare(manifest(), resume=False)


def test_resume_keeps_finished_trials_and_drops_interrupted_ones(tmp_path: Path) -> None:
    work = WorkDir(tmp_path)
    work.prepare(manifest(), resume=False)
    work.write_trial(trial("demo-a", TrialState.SUCCEEDED, 0.9, 0))
    work.write_trial(trial("demo-b", TrialState.KILLED, None, 1, reason="Interrupted"))
    work.write_trial(trial("demo-c", TrialState.RUNNING, None, 2))
    raised = copy.deepcopy(manifest())
    raised["spec"]["maxTrialCount"] = 5  # Katib lets the budget grow on restart
    kept = work.prepare(raised, resume=True)
    assert [t.name for t in kept] == ["demo-a"]
    assert not work.trial_dir("demo-b").exists() and not work.trial_dir("demo-c").exists()
    assert work.read_manifest()["spec"]["maxTrialCount"] == 5


def test_load_without_a_run(tmp_path: Path) -> None:
    with pytest.raises(WorkDirError, match="no local run"):
        load(tmp_path)


def test_default_work_dir() -> None:
    assert default_work_dir(manifest("demo")) == Path("runs/demo")
