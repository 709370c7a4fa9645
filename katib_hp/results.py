"""The result model both backends produce: trial rows and experiment snapshots.

The cluster backend reads Katib's Trial and Experiment objects (REFERENCE §1.10) through ``trial_from_katib``
and ``status_from_katib``; the local runner builds the same ``TrialResult`` and ``ExperimentStatus`` itself.
Everything after them (tables, ``best``, progress lines, the exit code of ``watch``) is written once, here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
UNAVAILABLE = "unavailable"


class TrialState(StrEnum):
    """A trial's condition, with Katib's own strings."""

    CREATED = "Created"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    EARLY_STOPPED = "EarlyStopped"
    KILLED = "Killed"

    @property
    def is_terminal(self) -> bool:
        return self not in (TrialState.CREATED, TrialState.RUNNING)

    @property
    def is_failed(self) -> bool:
        """Counts toward maxFailedTrialCount (MetricsUnavailable does, REFERENCE §4.6)."""
        return self in (TrialState.FAILED, TrialState.METRICS_UNAVAILABLE)


class ExperimentState(StrEnum):
    """An experiment's condition, with Katib's own strings."""

    CREATED = "Created"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def is_terminal(self) -> bool:
        return self in (ExperimentState.SUCCEEDED, ExperimentState.FAILED)


_TRIAL_ORDER = (TrialState.SUCCEEDED, TrialState.FAILED, TrialState.METRICS_UNAVAILABLE, TrialState.EARLY_STOPPED,
                TrialState.KILLED, TrialState.RUNNING, TrialState.CREATED)
_EXPERIMENT_ORDER = (ExperimentState.SUCCEEDED, ExperimentState.FAILED, ExperimentState.RESTARTING,
                     ExperimentState.RUNNING, ExperimentState.CREATED)


@dataclass(frozen=True)
class Objective:
    """What a trial is judged by: the objective metric, its direction, its goal, and each metric's strategy."""

    metric: str
    goal_type: str = "maximize"
    goal: float | None = None
    additional: tuple[str, ...] = ()
    strategies: Mapping[str, str] = field(default_factory=dict)

    @property
    def maximize(self) -> bool:
        return self.goal_type == "maximize"

    def strategy(self, metric: str) -> str:
        return self.strategies.get(metric) or ("max" if self.maximize else "min")

    def better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b

    def reached(self, value: float | None) -> bool:
        if value is None or self.goal is None:
            return False
        return value >= self.goal if self.maximize else value <= self.goal

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Objective:
        """Read ``spec.objective`` of an Experiment (camelCase, as Katib stores it)."""
        objective = spec.get("objective") or {}
        goal = _number(objective.get("goal"))
        strategies = {str(s.get("name")): str(s.get("value")) for s in objective.get("metricStrategies") or []
                      if isinstance(s, Mapping)}
        return cls(metric=str(objective.get("objectiveMetricName", "")),
                   goal_type=str(objective.get("type", "maximize")), goal=goal,
                   additional=tuple(str(m) for m in objective.get("additionalMetricNames") or []),
                   strategies=strategies)


@dataclass(frozen=True)
class MetricValue:
    """One metric of a trial's observation; ``None`` where Katib says "unavailable"."""

    name: str
    min: float | None = None
    max: float | None = None
    latest: float | None = None

    def value(self, strategy: str) -> float | None:
        return {"min": self.min, "max": self.max}.get(strategy, self.latest)


@dataclass(frozen=True)
class TrialResult:
    """One trial, from the cluster or from a local run, in one shape."""

    name: str
    state: TrialState
    parameters: Mapping[str, str]
    metrics: Mapping[str, MetricValue] = field(default_factory=dict)
    objective: float | None = None
    reason: str = ""
    message: str = ""
    start_time: datetime | None = None
    completion_time: datetime | None = None
    experiment: str = ""
    series: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    log_tail: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        """Seconds from start to completion (or None while unknown)."""
        if self.start_time is None or self.completion_time is None:
            return None
        return (self.completion_time - self.start_time).total_seconds()

    def row(self, objective: Objective | None = None) -> dict[str, Any]:
        """A flat record for tables and CSV: name, state, objective, each parameter, each metric, reason."""
        record: dict[str, Any] = {"trial": self.name, "state": str(self.state)}
        metric = objective.metric if objective else "objective"
        record[metric] = self.objective
        record.update(self.parameters)
        for name, value in self.metrics.items():
            if name == metric:
                continue
            strategy = objective.strategy(name) if objective else "latest"
            record[name] = value.value(strategy)
        record["duration_s"] = None if self.duration is None else round(self.duration, 1)
        record["reason"] = self.reason if self.state is not TrialState.SUCCEEDED else ""
        return record

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the local work directory stores)."""
        return {
            "name": self.name, "experiment": self.experiment, "state": str(self.state),
            "parameters": dict(self.parameters), "objective": self.objective,
            "metrics": {k: {"min": v.min, "max": v.max, "latest": v.latest} for k, v in self.metrics.items()},
            "reason": self.reason, "message": self.message,
            "start_time": _iso(self.start_time), "completion_time": _iso(self.completion_time),
            "series": {k: list(v) for k, v in self.series.items()}, "log_tail": list(self.log_tail),
            "labels": dict(self.labels),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialResult:
        return cls(
            name=str(data["name"]), experiment=str(data.get("experiment", "")), state=TrialState(data["state"]),
            parameters={str(k): str(v) for k, v in (data.get("parameters") or {}).items()},
            objective=_number(data.get("objective")),
            metrics={str(k): MetricValue(str(k), _number(v.get("min")), _number(v.get("max")),
                                         _number(v.get("latest")))
                     for k, v in (data.get("metrics") or {}).items()},
            reason=str(data.get("reason", "")), message=str(data.get("message", "")),
            start_time=_parse_time(data.get("start_time")), completion_time=_parse_time(data.get("completion_time")),
            series={str(k): tuple(float(x) for x in v) for k, v in (data.get("series") or {}).items()},
            log_tail=tuple(str(x) for x in data.get("log_tail") or ()),
            labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
        )


@dataclass(frozen=True)
class ExperimentStatus:
    """A snapshot of one experiment: its condition, budget, counters and trials."""

    name: str
    state: ExperimentState
    objective: Objective
    trials: tuple[TrialResult, ...] = ()
    reason: str = ""
    message: str = ""
    namespace: str = ""
    max_trials: int | None = None
    parallel_trials: int | None = None
    max_failed_trials: int | None = None
    start_time: datetime | None = None
    completion_time: datetime | None = None
    best_name: str | None = None

    def count(self, *states: TrialState) -> int:
        return sum(t.state in states for t in self.trials)

    @property
    def completed(self) -> int:
        return sum(t.state.is_terminal for t in self.trials)

    @property
    def best(self) -> TrialResult | None:
        """The optimal trial: Katib's ``currentOptimalTrial`` when it names one, else the best objective."""
        if self.best_name:
            for trial in self.trials:
                if trial.name == self.best_name and trial.objective is not None:
                    return trial
        return best_trial(self.trials, self.objective)

    @property
    def finished(self) -> bool:
        return self.state.is_terminal

    def outcome(self) -> tuple[bool, str]:
        """(ok, reason): ok only when the experiment succeeded **and** at least one trial succeeded.

        Katib marks an experiment whose trials all failed "Succeeded" when maxFailedTrialCount is unset
        (REFERENCE §1.10), so the condition alone is not enough.
        """
        if self.state is ExperimentState.FAILED:
            detail = self.message or self.reason or "failed"
            return False, f"experiment {self.name!r} failed: {detail}"
        if self.state is not ExperimentState.SUCCEEDED:
            return False, f"experiment {self.name!r} is {self.state} (not finished)"
        succeeded = self.count(TrialState.SUCCEEDED)
        if succeeded == 0 or self.best is None:
            failed = self.count(TrialState.FAILED, TrialState.METRICS_UNAVAILABLE)
            return False, (f"experiment {self.name!r} is marked Succeeded ({self.reason or 'done'}) but no trial "
                           f"succeeded ({failed} failed or without metrics); see `katib-hp trials {self.name}`")
        return True, f"experiment {self.name!r} succeeded ({self.reason or 'done'})"

    def elapsed(self, now: datetime | None = None) -> float | None:
        if self.start_time is None:
            return None
        end = self.completion_time or now or datetime.now(UTC)
        return max(0.0, (end - self.start_time).total_seconds())

    def remaining(self, now: datetime | None = None) -> float | None:
        """Estimated seconds left: mean finished-trial duration × trials left ÷ parallel trials."""
        if self.finished or not self.max_trials:
            return None if not self.finished else 0.0
        durations = [t.duration for t in self.trials if t.state.is_terminal and t.duration is not None]
        if not durations:
            return None
        left = max(0, self.max_trials - self.completed)
        waves = math.ceil(left / max(1, self.parallel_trials or 1))
        return waves * (sum(durations) / len(durations))

    def progress_line(self, now: datetime | None = None) -> str:
        """One line for a live display: trials done, running/pending/failed, best so far, time."""
        running = self.count(TrialState.RUNNING)
        pending = self.count(TrialState.CREATED)
        failed = self.count(TrialState.FAILED, TrialState.METRICS_UNAVAILABLE)
        stopped = self.count(TrialState.EARLY_STOPPED)
        total = self.max_trials if self.max_trials is not None else "?"
        parts = [f"{self.name}: {self.state}", f"{self.completed}/{total} trials",
                 f"{running} running", f"{pending} pending", f"{failed} failed"]
        if stopped:
            parts.append(f"{stopped} early-stopped")
        best = self.best
        if best is not None and best.objective is not None:
            params = ", ".join(f"{k}={v}" for k, v in best.parameters.items())
            parts.append(f"best {self.objective.metric}={best.objective:.6g} ({params})")
        elapsed = self.elapsed(now)
        if elapsed is not None:
            parts.append(f"{format_seconds(elapsed)} elapsed")
        left = self.remaining(now)
        if left is not None and left >= 1 and not self.finished:
            parts.append(f"~{format_seconds(left)} left")
        return " · ".join(parts)

    def summary(self) -> dict[str, Any]:
        """A record for ``katib-hp status``."""
        best = self.best
        return {
            "name": self.name, "namespace": self.namespace or None, "state": str(self.state),
            "reason": self.reason or None, "message": self.message or None,
            "trials": len(self.trials), "max_trials": self.max_trials, "parallel": self.parallel_trials,
            "succeeded": self.count(TrialState.SUCCEEDED), "running": self.count(TrialState.RUNNING),
            "pending": self.count(TrialState.CREATED),
            "failed": self.count(TrialState.FAILED), "metrics_unavailable": self.count(TrialState.METRICS_UNAVAILABLE),
            "early_stopped": self.count(TrialState.EARLY_STOPPED), "killed": self.count(TrialState.KILLED),
            "best_trial": best.name if best else None,
            f"best_{self.objective.metric}": best.objective if best else None,
            "elapsed_s": None if self.elapsed() is None else round(self.elapsed() or 0.0, 1),
        }


def best_trial(trials: Iterable[TrialResult], objective: Objective) -> TrialResult | None:
    """The trial with the best objective among those that produced one (succeeded or early-stopped)."""
    best: TrialResult | None = None
    for trial in trials:
        if trial.objective is None or trial.state not in (TrialState.SUCCEEDED, TrialState.EARLY_STOPPED):
            continue
        if best is None or objective.better(trial.objective, best.objective):  # type: ignore[arg-type]
            best = trial
    return best


def trial_rows(trials: Sequence[TrialResult], objective: Objective) -> list[dict[str, Any]]:
    """Rows with the same columns for every trial (parameters and metrics unioned), in trial order."""
    rows = [t.row(objective) for t in trials]
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    # keep reason and duration last
    for tail in ("duration_s", "reason"):
        if tail in columns:
            columns.remove(tail)
            columns.append(tail)
    return [{c: row.get(c) for c in columns} for row in rows]


# --- reading Katib's objects -------------------------------------------------------------------------------


def _true_conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {str(c.get("type")): c for c in conditions if isinstance(c, Mapping) and str(c.get("status")) == "True"}


def trial_from_katib(trial: Mapping[str, Any], objective: Objective | None = None) -> TrialResult:
    """Read a Katib Trial object (a dict as the API returns it)."""
    metadata = trial.get("metadata") or {}
    spec = trial.get("spec") or {}
    status = trial.get("status") or {}
    if objective is None:
        objective = Objective.from_spec({"objective": spec.get("objective") or {}})
    true = _true_conditions(trial)
    state = next((s for s in _TRIAL_ORDER if s.value in true), TrialState.CREATED)
    condition = true.get(state.value, {})
    metrics: dict[str, MetricValue] = {}
    for metric in (status.get("observation") or {}).get("metrics") or []:
        name = str(metric.get("name"))
        metrics[name] = MetricValue(name, _number(metric.get("min")), _number(metric.get("max")),
                                    _number(metric.get("latest")))
    observed = metrics.get(objective.metric)
    return TrialResult(
        name=str(metadata.get("name", "")), state=state,
        parameters={str(a.get("name")): str(a.get("value")) for a in spec.get("parameterAssignments") or []},
        metrics=metrics,
        objective=observed.value(objective.strategy(objective.metric)) if observed else None,
        reason=str(condition.get("reason", "")), message=str(condition.get("message", "")),
        start_time=_parse_time(status.get("startTime")), completion_time=_parse_time(status.get("completionTime")),
        experiment=str((metadata.get("labels") or {}).get(EXPERIMENT_LABEL, "")),
        labels={str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
    )


def status_from_katib(experiment: Mapping[str, Any], trials: Iterable[Mapping[str, Any]]) -> ExperimentStatus:
    """Read a Katib Experiment object and its Trials into one snapshot."""
    metadata = experiment.get("metadata") or {}
    spec = experiment.get("spec") or {}
    status = experiment.get("status") or {}
    objective = Objective.from_spec(spec)
    true = _true_conditions(experiment)
    state = next((s for s in _EXPERIMENT_ORDER if s.value in true), ExperimentState.CREATED)
    condition = true.get(state.value, {})
    results = sorted((trial_from_katib(t, objective) for t in trials),
                     key=lambda t: (t.start_time or datetime.max.replace(tzinfo=UTC), t.name))
    optimal = (status.get("currentOptimalTrial") or {}).get("bestTrialName") or None
    return ExperimentStatus(
        name=str(metadata.get("name", "")), namespace=str(metadata.get("namespace", "")), state=state,
        objective=objective, trials=tuple(results), reason=str(condition.get("reason", "")),
        message=str(condition.get("message", "")), max_trials=_int(spec.get("maxTrialCount")),
        parallel_trials=_int(spec.get("parallelTrialCount")), max_failed_trials=_int(spec.get("maxFailedTrialCount")),
        start_time=_parse_time(status.get("startTime")), completion_time=_parse_time(status.get("completionTime")),
        best_name=str(optimal) if optimal else None,
    )


def experiment_row(experiment: Mapping[str, Any]) -> dict[str, Any]:
    """One row for ``katib-hp list`` from an Experiment object alone, using Katib's own counters."""
    status = status_from_katib(experiment, [])
    counters = experiment.get("status") or {}
    optimal = counters.get("currentOptimalTrial") or {}
    best_value = None
    for metric in (optimal.get("observation") or {}).get("metrics") or []:
        if metric.get("name") == status.objective.metric:
            best_value = MetricValue(status.objective.metric, _number(metric.get("min")), _number(metric.get("max")),
                                     _number(metric.get("latest"))).value(status.objective.strategy(status.objective.metric))
    return {
        "name": status.name, "state": str(status.state), "reason": status.reason or None,
        "trials": _int(counters.get("trials")) or 0, "max_trials": status.max_trials,
        "succeeded": _int(counters.get("trialsSucceeded")) or 0, "running": _int(counters.get("trialsRunning")) or 0,
        "failed": (_int(counters.get("trialsFailed")) or 0) + (_int(counters.get("trialMetricsUnavailable")) or 0),
        "objective": status.objective.metric, "best": best_value,
        "best_trial": optimal.get("bestTrialName") or None,
        "age": None if status.start_time is None else format_seconds(status.elapsed() or 0.0),
    }


def with_trials(status: ExperimentStatus, trials: Sequence[TrialResult]) -> ExperimentStatus:
    return replace(status, trials=tuple(trials))


# --- small helpers -----------------------------------------------------------------------------------------


def format_seconds(value: float) -> str:
    seconds = round(value)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _number(value: Any) -> float | None:
    if value is None or value == "" or value == UNAVAILABLE:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
