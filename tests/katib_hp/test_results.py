"""The shared result model: Katib objects in, rows, best trial, progress and the watch outcome out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from katib_hp.results import (
    ExperimentState,
    Objective,
    TrialResult,
    TrialState,
    best_trial,
    experiment_row,
    format_seconds,
    status_from_katib,
    trial_from_katib,
    trial_rows,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def katib_trial(name: str, state: str, lr: str, val: str | None, *, start: int = 0, seconds: int = 60,
                reason: str = "") -> dict:
    conditions = [{"type": "Created", "status": "True", "reason": "TrialCreated"}]
    if state != "Created":
        conditions.append({"type": "Running", "status": "False" if state != "Running" else "True",
                           "reason": "TrialRunning"})
    if state not in ("Created", "Running"):
        conditions.append({"type": state, "status": "True", "reason": reason or f"Trial{state}",
                           "message": f"Trial is {state.lower()}"})
    metrics = [] if val is None else [
        {"name": "val_accuracy", "min": "0.5", "max": val, "latest": val},
        {"name": "loss", "min": "0.1", "max": "1.0", "latest": "0.2"},
    ]
    status: dict = {"conditions": conditions, "startTime": _iso(T0 + timedelta(seconds=start))}
    if state not in ("Created", "Running"):
        status["completionTime"] = _iso(T0 + timedelta(seconds=start + seconds))
    if metrics:
        status["observation"] = {"metrics": metrics}
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Trial",
        "metadata": {"name": name, "labels": {"katib.kubeflow.org/experiment": "exp"}},
        "spec": {"objective": {"type": "maximize", "objectiveMetricName": "val_accuracy",
                               "additionalMetricNames": ["loss"],
                               "metricStrategies": [{"name": "val_accuracy", "value": "max"},
                                                    {"name": "loss", "value": "min"}]},
                 "parameterAssignments": [{"name": "lr", "value": lr}, {"name": "units", "value": "64"}]},
        "status": status,
    }


def katib_experiment(state: str, *, reason: str = "", message: str = "", max_trials: int = 4,
                     optimal: str | None = None) -> dict:
    conditions = [{"type": "Created", "status": "True", "reason": "ExperimentCreated"},
                  {"type": "Running", "status": "False" if state != "Running" else "True",
                   "reason": "ExperimentRunning"}]
    if state in ("Succeeded", "Failed"):
        conditions.append({"type": state, "status": "True", "reason": reason, "message": message})
    status: dict = {"conditions": conditions, "startTime": _iso(T0), "trials": 3, "trialsSucceeded": 2,
                    "trialsFailed": 1, "trialsRunning": 0}
    if optimal:
        status["currentOptimalTrial"] = {"bestTrialName": optimal, "observation": {"metrics": [
            {"name": "val_accuracy", "min": "0.5", "max": "0.97", "latest": "0.95"}]}}
    return {"metadata": {"name": "exp", "namespace": "team"},
            "spec": {"objective": {"type": "maximize", "objectiveMetricName": "val_accuracy",
                                   "metricStrategies": [{"name": "val_accuracy", "value": "max"}]},
                     "maxTrialCount": max_trials, "parallelTrialCount": 2, "maxFailedTrialCount": 3},
            "status": status}


def test_trial_from_katib_reads_state_parameters_metrics_and_duration():
    trial = trial_from_katib(katib_trial("exp-a", "Succeeded", "0.01", "0.93", seconds=90))
    assert trial.state is TrialState.SUCCEEDED
    assert trial.parameters == {"lr": "0.01", "units": "64"}
    assert trial.objective == pytest.approx(0.93)
    assert trial.metrics["loss"].min == pytest.approx(0.1)
    assert trial.duration == 90
    assert trial.experiment == "exp"
    assert trial.reason == "TrialSucceeded"


def test_unavailable_metric_is_none_and_metrics_unavailable_state():
    raw = katib_trial("exp-b", "MetricsUnavailable", "0.1", None, reason="MetricsUnavailable")
    raw["status"]["observation"] = {"metrics": [{"name": "val_accuracy", "min": "unavailable",
                                                 "max": "unavailable", "latest": "unavailable"}]}
    trial = trial_from_katib(raw)
    assert trial.state is TrialState.METRICS_UNAVAILABLE
    assert trial.state.is_failed
    assert trial.objective is None


def test_running_trial_without_terminal_condition():
    trial = trial_from_katib(katib_trial("exp-c", "Running", "0.1", None))
    assert trial.state is TrialState.RUNNING and not trial.state.is_terminal
    assert trial.duration is None


def test_best_respects_direction_and_skips_failed():
    trials = [TrialResult("a", TrialState.SUCCEEDED, {"lr": "1"}, objective=0.2),
              TrialResult("b", TrialState.SUCCEEDED, {"lr": "2"}, objective=0.1),
              TrialResult("c", TrialState.FAILED, {"lr": "3"}, objective=0.0)]
    assert best_trial(trials, Objective("loss", "minimize")).name == "b"  # type: ignore[union-attr]
    assert best_trial(trials, Objective("acc", "maximize")).name == "a"  # type: ignore[union-attr]
    assert best_trial(trials[2:], Objective("acc")) is None


def test_outcome_all_failed_experiment_marked_succeeded_is_not_ok():
    experiment = katib_experiment("Succeeded", reason="ExperimentMaxTrialsReached", max_trials=2)
    trials = [katib_trial("exp-a", "Failed", "0.1", None), katib_trial("exp-b", "Failed", "0.2", None)]
    status = status_from_katib(experiment, trials)
    assert status.state is ExperimentState.SUCCEEDED
    ok, reason = status.outcome()
    assert not ok
    assert "no trial succeeded" in reason and "2 failed" in reason


def test_outcome_failed_experiment_carries_katib_message():
    status = status_from_katib(katib_experiment("Failed", reason="ExperimentFailed",
                                                message="max failed count has reached"), [])
    ok, reason = status.outcome()
    assert not ok and "max failed count has reached" in reason


def test_outcome_ok_with_a_succeeded_trial_and_optimal_trial_from_katib():
    trials = [katib_trial("exp-a", "Succeeded", "0.1", "0.91"),
              katib_trial("exp-b", "Succeeded", "0.2", "0.95", start=60)]
    status = status_from_katib(katib_experiment("Succeeded", reason="ExperimentMaxTrialsReached",
                                                optimal="exp-b"), trials)
    assert status.outcome()[0]
    assert status.best.name == "exp-b"  # type: ignore[union-attr]


def test_progress_line_counts_best_and_remaining_time():
    trials = [katib_trial("exp-a", "Succeeded", "0.1", "0.91", seconds=100),
              katib_trial("exp-b", "Running", "0.2", None, start=100),
              katib_trial("exp-c", "Created", "0.3", None, start=100)]
    status = status_from_katib(katib_experiment("Running", max_trials=5), trials)
    line = status.progress_line(now=T0 + timedelta(seconds=150))
    assert "1/5 trials" in line and "1 running" in line and "1 pending" in line
    assert "best val_accuracy=0.91 (lr=0.1, units=64)" in line
    assert "2m30s elapsed" in line
    # 4 trials left, 2 in parallel, 100 s per trial -> about 200 s
    assert "~3m20s left" in line


def test_trial_rows_share_columns_and_put_reason_last():
    trials = [trial_from_katib(katib_trial("exp-a", "Succeeded", "0.1", "0.9")),
              trial_from_katib(katib_trial("exp-b", "Failed", "0.2", None, reason="TrialFailed"))]
    rows = trial_rows(trials, Objective.from_spec(katib_experiment("Running")["spec"]))
    assert list(rows[0]) == list(rows[1])
    assert list(rows[0])[:3] == ["trial", "state", "val_accuracy"]
    assert list(rows[0])[-1] == "reason"
    assert rows[1]["reason"] == "TrialFailed" and rows[0]["reason"] == ""


def test_round_trip_through_dict():
    trial = trial_from_katib(katib_trial("exp-a", "Succeeded", "0.1", "0.9"))
    trial = TrialResult(**{**trial.__dict__, "series": {"val_accuracy": (0.5, 0.9)}, "log_tail": ("done",)})
    assert TrialResult.from_dict(trial.to_dict()) == trial


def test_experiment_row_uses_katib_counters_without_trials():
    row = experiment_row(katib_experiment("Running", optimal="exp-b"))
    assert row["trials"] == 3 and row["succeeded"] == 2 and row["failed"] == 1
    assert row["best"] == pytest.approx(0.97) and row["best_trial"] == "exp-b"


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (65, "1m05s"), (3700, "1h01m")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
