"""Read Katib's status conditions from plain dicts (experiments, trials, suggestions, pods)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
TRIAL_LABEL = "katib.kubeflow.org/trial"
INJECTION_LABEL = "katib.kubeflow.org/metrics-collector-injection"
STDOUT_SIDECAR = "metrics-logger-and-collector"
DEFAULT_PRIMARY_CONTAINER = "training-container"


class Condition(StrEnum):
    """Condition types of Katib's Experiment, Trial and Suggestion (Katib's own strings)."""

    CREATED = "Created"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    KILLED = "Killed"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    EARLY_STOPPED = "EarlyStopped"

    @property
    def is_terminal(self) -> bool:
        """Whether an object with this condition True has finished."""
        return self in _TERMINAL


_TERMINAL = {Condition.SUCCEEDED, Condition.FAILED, Condition.KILLED, Condition.METRICS_UNAVAILABLE,
             Condition.EARLY_STOPPED}


def conditions(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ``status.conditions`` list of an object (empty when absent)."""
    found = ((obj or {}).get("status") or {}).get("conditions") or []
    return [c for c in found if isinstance(c, dict)]


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    """The condition of type ``kind`` whose status is ``"True"``, or ``None``."""
    for entry in conditions(obj):
        if entry.get("type") == kind and str(entry.get("status")) == "True":
            return entry
    return None


def state(obj: dict[str, Any] | None) -> str:
    """The object's state as kubectl prints it: the type of the last condition that is True ("" if none)."""
    true = [c for c in conditions(obj) if str(c.get("status")) == "True"]
    return str(true[-1].get("type", "")) if true else ""


def is_finished(experiment: dict[str, Any] | None) -> bool:
    """Whether an experiment has a terminal condition (Succeeded or Failed with status "True")."""
    return condition(experiment, Condition.SUCCEEDED) is not None or condition(experiment, Condition.FAILED) is not None


def condition_key(obj: dict[str, Any] | None) -> tuple[tuple[str, str, str], ...]:
    """A comparable summary of the conditions, to notice when they change."""
    return tuple((str(c.get("type")), str(c.get("status")), str(c.get("reason"))) for c in conditions(obj))


def name_of(obj: dict[str, Any]) -> str:
    """``metadata.name`` of an object."""
    return str((obj.get("metadata") or {}).get("name", ""))


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    """``metadata.labels`` of an object."""
    return dict((obj.get("metadata") or {}).get("labels") or {})


def collector_kind(trial: dict[str, Any]) -> str:
    """The trial's metrics collector kind (Katib's default is StdOut)."""
    spec = trial.get("spec") or {}
    return str(((spec.get("metricsCollector") or {}).get("collector") or {}).get("kind") or "StdOut")


def objective_metric(trial: dict[str, Any]) -> str:
    """The objective metric's name from the trial's spec."""
    return str(((trial.get("spec") or {}).get("objective") or {}).get("objectiveMetricName") or "")
