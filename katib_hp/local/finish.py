"""One running trial: its process, its live metrics, how it is stopped, and the state it ends in.

End states follow Katib's trial controller (REFERENCE §1.10, §4.6), with its reasons and messages:

* exit 0 and the objective collected → Succeeded (``TrialSucceeded``);
* exit 0 without it → MetricsUnavailable, the message saying why (``collect.diagnose``);
* a non-zero exit after the Job's retries → Failed (``TrialFailed. Job reason: BackoffLimitExceeded``), the
  last log lines in the message; the collector crashing (a non-JSON line) fails the pod the same way;
* ``activeDeadlineSeconds`` passed → stopped, Failed (``TrialFailed. Job reason: DeadlineExceeded``);
* the median rule fires → stopped as Katib's sidecar does it (SIGTERM to the trial, metrics reported from
  what it wrote), EarlyStopped (``TrialEarlyStopped``);
* stopped by the runner → Killed (``Interrupted`` or ``ExperimentCompleted``).

Stopping is SIGTERM, then SIGKILL once the grace period has passed, as the kubelet does.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from katib_hp.local.collect import (
    Collection,
    CollectorKind,
    CollectorSpec,
    Follower,
    LineParser,
    MetricLog,
    collect,
    observe,
)
from katib_hp.local.launch import Launcher, TrialProcess
from katib_hp.local.trial import TrialPlan, flag_value
from katib_hp.results import EXPERIMENT_LABEL, MetricValue, Objective, TrialResult, TrialState


class StopReason(StrEnum):
    EARLY_STOPPED = "EarlyStopped"
    DEADLINE = "DeadlineExceeded"
    INTERRUPTED = "Interrupted"
    EXPERIMENT_COMPLETED = "ExperimentCompleted"


class Stopper(Protocol):
    def should_stop(self, reported: Sequence[float], completed: Sequence[Sequence[float]]) -> bool: ...


_FAILED = "TrialFailed. Job reason: BackoffLimitExceeded"
_FAILED_MESSAGE = "Trial has failed. Job message: Job has reached the specified backoff limit"


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ActiveTrial:
    """A trial between its start and its end state (``result`` is set once it has ended)."""

    def __init__(self, plan: TrialPlan, launcher: Launcher, collector: CollectorSpec, objective: Objective, *,
                 clock: Callable[[], float], now: Callable[[], datetime],
                 completed: Sequence[Sequence[float]] = ()) -> None:
        self.plan, self.launcher, self.collector, self.objective = plan, launcher, collector, objective
        self.now = now
        self.completed = tuple(completed)
        self.start_time = now()
        self.started = clock()
        self.attempt = 0
        self.logs: list[MetricLog] = []
        self.stop_reason: StopReason | None = None
        self.stop_at = 0.0
        self.killed = False
        self.result: TrialResult | None = None
        plan.directory.mkdir(parents=True, exist_ok=True)
        self.follower = self._follower()
        self.process: TrialProcess = self._launch()

    def _follower(self) -> Follower | None:
        if not self.collector.live:
            return None
        names = (self.objective.metric, *self.objective.additional)
        parser = LineParser(names, filters=self.collector.filters, file_format=self.collector.file_format)
        return Follower(self.plan.metrics_source, parser)

    def _launch(self) -> TrialProcess:
        return self.launcher.start(self.plan.argv, env=self.plan.env, cwd=self.plan.directory,
                                   log_path=self.plan.log_path)

    def _poll_metrics(self) -> bool:
        new = self.follower.poll() if self.follower is not None else []
        self.logs.extend(new)
        return bool(new)

    def objective_series(self) -> list[float]:
        return list(Collection(self.objective.metric, tuple(self.logs)).series(self.objective.metric))

    def advance(self, now_s: float, grace: float, stopper: Stopper | None) -> bool:
        """Look at the trial once; True when something changed. Sets ``result`` when it has ended."""
        changed = self._poll_metrics()
        code = self.process.poll()
        if code is None:
            if self.stop_reason is None:
                deadline = self.plan.deadline_seconds
                if deadline is not None and now_s - self.started >= deadline:
                    self.stop(StopReason.DEADLINE, now_s)
                elif stopper is not None and changed and stopper.should_stop(self.objective_series(),
                                                                             self.completed):
                    self.stop(StopReason.EARLY_STOPPED, now_s)
            elif not self.killed and now_s - self.stop_at >= grace:
                self.kill_now()
            return changed
        self._poll_metrics()
        if self.stop_reason is None and code != 0 and self.attempt < self.plan.backoff_limit:
            self._retry()
            return True
        self.result = self._finish(code)
        return True

    def _retry(self) -> None:
        # a new pod: its own log, and a fresh emptyDir for the metrics file
        self.attempt += 1
        moved = [self.plan.log_path]
        if self.collector.kind is CollectorKind.FILE:
            moved.append(self.plan.metrics_source)
        for path in moved:
            if path.exists():
                path.rename(path.with_name(f"{path.name}.attempt{self.attempt}"))
        self.logs = []
        self.follower = self._follower()
        self.process = self._launch()

    def stop(self, reason: StopReason, now_s: float) -> None:
        """Ask the trial to stop (SIGTERM); ``advance`` kills it after the grace period."""
        if self.stop_reason is None:
            self.stop_reason, self.stop_at = reason, now_s
            self.process.terminate()

    def kill_now(self) -> None:
        self.killed = True
        self.process.kill()

    def snapshot(self, objective: Objective) -> TrialResult:
        """The trial as it is now (Running, with the metrics seen so far)."""
        metrics, value, _ = observe(self.logs, objective)
        series = Collection(objective.metric, tuple(self.logs)).all_series
        return self._result(TrialState.RUNNING, "TrialRunning", "Trial is running", metrics=metrics,
                            objective=value, series=series, completion=None)

    def finish_killed(self, reason: StopReason) -> TrialResult:
        self.stop_reason = reason
        return self._finish(-signal.SIGKILL)

    def _finish(self, code: int) -> TrialResult:
        found = collect(self.collector, self.objective, source=self.plan.metrics_source, log_path=self.plan.log_path)
        tail = found.log_tail
        last = " | ".join(tail[-3:]) or "(no output)"
        state, reason, message = self._end_state(code, found, last)
        keep_objective = state in (TrialState.SUCCEEDED, TrialState.EARLY_STOPPED)
        return self._result(state, reason, message, metrics=dict(found.metrics),
                            objective=found.objective if keep_objective else None,
                            series=found.all_series, completion=self.now(), log_tail=tail)

    def _end_state(self, code: int, found: Collection, last: str) -> tuple[TrialState, str, str]:
        if self.stop_reason is StopReason.EARLY_STOPPED:
            return TrialState.EARLY_STOPPED, "TrialEarlyStopped", "Trial is early stopped"
        if self.stop_reason is StopReason.DEADLINE:
            return (TrialState.FAILED, "TrialFailed. Job reason: DeadlineExceeded",
                    "Trial has failed. Job message: Job was active longer than specified deadline "
                    f"({self.plan.deadline_seconds:g}s; {_exit_text(code)}); last output: {last}")
        if self.stop_reason is StopReason.INTERRUPTED:
            return (TrialState.KILLED, "Interrupted",
                    "stopped by Ctrl-C or SIGTERM before it finished; `--resume` runs it again")
        if self.stop_reason is StopReason.EXPERIMENT_COMPLETED:
            return (TrialState.KILLED, "ExperimentCompleted",
                    "stopped because the experiment completed; on the cluster it would run to its end")
        if code != 0:
            tries = f" after {self.attempt + 1} attempts" if self.attempt else ""
            return TrialState.FAILED, _FAILED, f"{_FAILED_MESSAGE} ({_exit_text(code)}{tries}); last output: {last}"
        if found.fatal:
            return TrialState.FAILED, _FAILED, f"{_FAILED_MESSAGE} (the metrics collector failed: {found.fatal})"
        if found.available:
            warning = f" (warning: {found.explanation})" if found.problems else ""
            return TrialState.SUCCEEDED, "TrialSucceeded", "Trial has succeeded" + warning
        return TrialState.METRICS_UNAVAILABLE, "MetricsUnavailable", f"Metrics are not available: {found.explanation}"

    def _result(self, state: TrialState, reason: str, message: str, *, metrics: Mapping[str, MetricValue],
                objective: float | None, series: dict[str, tuple[float, ...]], completion: datetime | None,
                log_tail: tuple[str, ...] = ()) -> TrialResult:
        return TrialResult(
            name=self.plan.name, state=state, parameters=dict(self.plan.assignments),
            metrics=metrics,
            objective=objective, reason=reason, message=message, start_time=self.start_time,
            completion_time=completion, experiment=self.plan.labels.get(EXPERIMENT_LABEL, ""), series=series,
            log_tail=log_tail, labels=dict(self.plan.labels))


def checkpoint_of(command: Sequence[str]) -> Path | None:
    """Where a trial's trainer wrote checkpoints (its ``--checkpoint-dir``), if it says."""
    value = flag_value(command, "--checkpoint-dir")
    return Path(value) if value else None
