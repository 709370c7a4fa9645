"""``LocalRun``: an Experiment manifest run on this machine, trial by trial, with Katib's rules.

The loop does what Katib's controllers do, in their order: finished trials get their state from the exit
code and the collector (``finish.py``); the experiment completes when the goal is reached, then when
failed + MetricsUnavailable reach maxFailedTrialCount, then when completed trials reach maxTrialCount, then
when the algorithm has nothing more to suggest (REFERENCE §1.10); otherwise new trials fill the free
parallel slots. Results are written to the work directory as each trial starts and ends.

Differences from the cluster (also in ``notes``): trials still running when the experiment completes are
stopped (Katib leaves them running); Ctrl-C or SIGTERM stops the running trials (SIGTERM, the grace period,
SIGKILL), records them as Killed with reason "Interrupted" and raises ``LocalRunInterrupted``; ``resume``
drops those interrupted trials and runs them again, keeping every finished one.
"""

from __future__ import annotations

import os
import random
import signal
import string
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from katib_hp.lint.defaults import apply_defaults
from katib_hp.local.collect import CollectorKind, CollectorSpec
from katib_hp.local.errors import LocalRunInterrupted, UnsupportedError
from katib_hp.local.finish import ActiveTrial, Stopper, StopReason, checkpoint_of
from katib_hp.local.launch import Launcher
from katib_hp.local.suggest_base import Observation, Suggester, Suggestion
from katib_hp.local.trial import TrialBuilder
from katib_hp.local.workdir import WorkDir
from katib_hp.results import ExperimentState, ExperimentStatus, Objective, TrialResult, TrialState, best_trial

_ALNUM = string.ascii_lowercase + string.digits


def default_python(environ: Mapping[str, str] | None = None, base_dir: Path | None = None) -> str:
    """``$KATIB_HP_PYTHON``, else ``.venv-trainer/bin/python`` under ``base_dir`` (default: the current
    directory), else this interpreter."""
    environ = os.environ if environ is None else environ
    if environ.get("KATIB_HP_PYTHON"):
        return environ["KATIB_HP_PYTHON"]
    local = (Path.cwd() if base_dir is None else base_dir) / ".venv-trainer" / "bin" / "python"
    return str(local) if local.exists() else sys.executable


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LocalRun:
    """Runs one Experiment manifest locally; ``run()`` returns its final ``ExperimentStatus``.

    Args:
        manifest: the Experiment (as loaded from YAML); Katib's defaults are applied first.
        work_dir: where results go (see ``workdir.py``).
        launcher: starts trial processes (``SubprocessLauncher`` or a warm worker); its owner closes it.
        python: interpreter for ``python`` commands (default: see ``default_python``).
        suggester: the search algorithm (default: ``make_suggester(spec, seed=seed)``).
        seed: seeds trial names and the default suggester.
        resume: continue the run stored in ``work_dir`` instead of refusing to overwrite it.
        clock, sleep: monotonic seconds and waiting, injected for tests.
        grace_period: seconds between SIGTERM and SIGKILL when a trial is stopped.
        poll_interval: seconds between looks at the running trials.
        environ: the variables trials may inherit from (default ``os.environ``; see ``trial.py``).
        base_dir: the launching directory (default: the current one).
        now: wall-clock time for trial and experiment timestamps.

    Raises:
        UnsupportedError: a trial kind, collector kind or template source only a cluster can run.
        SuggestionError: an algorithm or early-stopping setting that cannot run.
        WorkDirError: ``work_dir`` holds another experiment, or a run and ``resume`` is false.
    """

    def __init__(self, manifest: Mapping[str, Any], *, work_dir: Path, launcher: Launcher, python: str | None = None,
                 suggester: Suggester | None = None, seed: int | None = None, resume: bool = False,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 grace_period: float = 10.0, poll_interval: float = 0.2, environ: Mapping[str, str] | None = None,
                 base_dir: Path | None = None, now: Callable[[], datetime] = _utcnow) -> None:
        self.manifest = apply_defaults(manifest)
        self.spec: dict[str, Any] = self.manifest.get("spec") or {}
        metadata = self.manifest.get("metadata") or {}
        self.name = str(metadata.get("name") or "")
        self.namespace = str(metadata.get("namespace") or "")
        self.objective = Objective.from_spec(self.spec)
        self.collector = CollectorSpec.from_spec(self.spec)
        environ = dict(os.environ if environ is None else environ)
        base = Path.cwd() if base_dir is None else Path(base_dir)
        self.python = python or default_python(environ, base)
        self.builder = TrialBuilder(self.manifest, collector=self.collector, python=self.python, environ=environ,
                                    base_dir=base)
        self.stopper = self._early_stopping()
        if suggester is None:
            from katib_hp.local.suggest import make_suggester

            suggester = make_suggester(self.spec, seed=seed)
        self.suggester = suggester
        self.launcher = launcher
        self.work = WorkDir(work_dir)
        self.clock, self.sleep, self.now = clock, sleep, now
        self.grace_period, self.poll_interval = grace_period, poll_interval
        self._random = random.Random(seed)
        self._trials: dict[str, TrialResult] = {}  # every trial, in creation order
        self._active: dict[str, ActiveTrial] = {}
        self._commands: dict[str, list[str]] = {}
        self._state, self._reason, self._message = ExperimentState.CREATED, "ExperimentCreated", ""
        self._start_time: datetime | None = None
        self._completion_time: datetime | None = None
        self._notes: list[str] = []
        # claim the work directory now, so a mismatch is reported before anything runs
        for trial in self.work.prepare(manifest, resume=resume):
            self._trials[trial.name] = trial
            self._commands[trial.name] = self.work.trial_command(trial.name)
        self._resumed_points = {tuple(sorted(t.parameters.items())) for t in self._trials.values()}
        if self._trials:
            self._notes.append(f"resumed with {len(self._trials)} finished trial(s) from {self.work.root}")

    # --- public -----------------------------------------------------------------------------------------

    @property
    def notes(self) -> list[str]:
        """Differences from the cluster, for the user (builder, suggester and runner notes, no repeats)."""
        merged: list[str] = []
        for note in [*self._notes, *self.builder.notes, *getattr(self.suggester, "notes", [])]:
            if note not in merged:
                merged.append(note)
        return merged

    def status(self) -> ExperimentStatus:
        """A fresh snapshot of the experiment and all its trials."""
        trials = [self._active[n].snapshot(self.objective) if n in self._active else t
                  for n, t in self._trials.items()]
        return ExperimentStatus(
            name=self.name, namespace=self.namespace, state=self._state, objective=self.objective,
            trials=tuple(trials), reason=self._reason, message=self._message,
            max_trials=self.spec.get("maxTrialCount"), parallel_trials=self.spec.get("parallelTrialCount"),
            max_failed_trials=self.spec.get("maxFailedTrialCount"), start_time=self._start_time,
            completion_time=self._completion_time)

    def run(self, on_update: Callable[[ExperimentStatus], None] | None = None) -> ExperimentStatus:
        """Run until Katib's completion rules end the experiment; return its final status.

        Raises:
            LocalRunInterrupted: after Ctrl-C or SIGTERM, once running trials are stopped and results saved.
        """
        notify = on_update or (lambda status: None)
        self._start_time = self.now()
        self._set(ExperimentState.RUNNING, "ExperimentRunning", "Experiment is running")
        try:
            with _sigterm_as_interrupt():
                self._loop(notify)
        except KeyboardInterrupt as exc:
            self._stop_all(StopReason.INTERRUPTED, notify)
            self._message = "interrupted: running trials were stopped"
            self._save(notify)
            kept = sum(t.reason != StopReason.INTERRUPTED.value for t in self._finished())
            raise LocalRunInterrupted(
                f"run of {self.name!r} interrupted; {kept} finished trial(s) are kept in {self.work.root}",
                hint=f"continue it with the same command plus `--resume` (work dir {self.work.root})") from exc
        except BaseException:
            # never leave trial processes behind when the runner itself fails
            self._stop_all(StopReason.INTERRUPTED, lambda status: None)
            raise
        return self.status()

    # --- the loop ---------------------------------------------------------------------------------------

    def _loop(self, notify: Callable[[ExperimentStatus], None]) -> None:
        self._save(notify)
        dirty = True  # something changed since the suggester was last asked
        while True:
            for active in list(self._active.values()):
                changed = active.advance(self.clock(), self.grace_period, self.stopper)
                if active.result is not None:
                    del self._active[active.plan.name]
                    self._record(active.result, notify)
                    dirty = True
                elif changed:
                    self._save(notify)
            done = self._completion(exhausted=False)
            if done is not None:
                self._complete(*done, notify=notify)
                return
            if dirty:
                dirty = False
                started = self._start_new()
                if started:
                    dirty = True
                    self._save(notify)
                elif not self._active:
                    self._complete(*(self._completion(exhausted=True) or self._suggestion_end()), notify=notify)
                    return
            self.sleep(self.poll_interval)

    def _finished(self) -> list[TrialResult]:
        return [t for t in self._trials.values() if t.state.is_terminal]

    def _completion(self, *, exhausted: bool) -> tuple[ExperimentState, str, str] | None:
        finished = self._finished()
        best = best_trial(finished, self.objective)
        if best is not None and self.objective.reached(best.objective):
            return (ExperimentState.SUCCEEDED, "ExperimentGoalReached",
                    "Experiment has succeeded because Objective goal has reached")
        failed = sum(t.state.is_failed for t in finished)
        max_failed = self.spec.get("maxFailedTrialCount")
        if max_failed is not None and failed and failed >= int(max_failed):
            return ExperimentState.FAILED, "ExperimentFailed", "Experiment has failed because max failed count has reached"
        max_trials = self.spec.get("maxTrialCount")
        if max_trials is not None and len(finished) >= int(max_trials):
            return (ExperimentState.SUCCEEDED, "ExperimentMaxTrialsReached",
                    "Experiment has succeeded because max trial count has reached")
        if (self.suggester.finished or exhausted) and not self._active:
            return self._suggestion_end()
        return None

    def _suggestion_end(self) -> tuple[ExperimentState, str, str]:
        if not self.suggester.finished:
            self._notes.append("the algorithm stopped suggesting before maxTrialCount; on the cluster the "
                               "experiment would wait in Running")
        return (ExperimentState.SUCCEEDED, "ExperimentSuggestionEndReached",
                "Experiment has succeeded because suggestion service has reached the end")

    def _start_new(self) -> int:
        if self.suggester.finished:
            return 0
        slots = int(self.spec.get("parallelTrialCount") or 1) - len(self._active)
        max_trials = self.spec.get("maxTrialCount")
        if max_trials is not None:
            slots = min(slots, int(max_trials) - len(self._trials))
        if slots <= 0:
            return 0
        history = [Observation(t.name, dict(t.parameters), str(t.state), t.objective, dict(t.labels))
                   for t in self.status().trials]
        suggestions = self._ask(slots, history)
        succeeded = [t.series.get(self.objective.metric, ()) for t in self._finished()
                     if t.state is TrialState.SUCCEEDED]
        for suggestion in suggestions:
            name = self._new_name()
            checkpoint = checkpoint_of(self._commands.get(suggestion.parent or "", []))
            plan = self.builder.build(name, self.work.trial_dir(name), suggestion.assignments,
                                      labels=suggestion.labels, parent=suggestion.parent,
                                      parent_resource=suggestion.parent_resource, parent_checkpoint=checkpoint)
            self._commands[name] = list(plan.argv)
            # Katib fixes the early-stopping threshold when it creates the trial
            active = ActiveTrial(plan, self.launcher, self.collector, self.objective, clock=self.clock,
                                 now=self.now, completed=tuple(succeeded))
            self._active[name] = active
            self._trials[name] = active.snapshot(self.objective)
            self.work.write_trial(self._trials[name], plan.argv)
        return len(suggestions)

    def _ask(self, slots: int, history: list[Observation]) -> list[Suggestion]:
        """Ask the suggester; on a resumed run, skip points an earlier session already ran.

        A resumed suggester starts its random stream again (``random_state`` is fixed), so its first answers
        would repeat the earlier session's first trials; a few more asks move it past them. Only spaces with a
        continuous parameter are checked: there an identical point can only be such a replay, while a small
        discrete space may legitimately offer a point again.
        """
        suggestions = self.suggester.ask(slots, history)[:slots]
        continuous = any(p.get("parameterType") == "double" for p in self.spec.get("parameters") or [])
        for _ in range(3 if continuous and self._resumed_points else 0):
            fresh = [s for s in suggestions if s.parent is not None or
                     tuple(sorted(s.assignments.items())) not in self._resumed_points]
            if len(fresh) == len(suggestions) or self.suggester.finished:
                return fresh or suggestions
            suggestions = fresh + self.suggester.ask(slots - len(fresh), history)[:slots - len(fresh)]
        return suggestions

    def _new_name(self) -> str:
        while True:
            name = f"{self.name}-{''.join(self._random.choice(_ALNUM) for _ in range(8))}"
            if name not in self._trials and not self.work.trial_dir(name).exists():
                return name

    def _record(self, trial: TrialResult, notify: Callable[[ExperimentStatus], None]) -> None:
        self._trials[trial.name] = trial
        self.work.write_trial(trial, self._commands.get(trial.name, ()))
        self._save(notify)

    def _complete(self, state: ExperimentState, reason: str, message: str, *,
                  notify: Callable[[ExperimentStatus], None]) -> None:
        self._completion_time = self.now()
        self._set(state, reason, message)
        if self._active:
            self._notes.append(f"{len(self._active)} trial(s) still running when the experiment completed were "
                               "stopped (Killed); on the cluster they would run to their end")
            self._stop_all(StopReason.EXPERIMENT_COMPLETED, notify)
        self._save(notify)

    def _stop_all(self, reason: StopReason, notify: Callable[[ExperimentStatus], None]) -> None:
        """Terminate every running trial, kill what outlives the grace period, and record them."""
        for active in self._active.values():
            active.stop(reason, self.clock())
        try:
            while self._active:
                for active in list(self._active.values()):
                    active.advance(self.clock(), self.grace_period, None)
                    if active.result is not None:
                        del self._active[active.plan.name]
                        self._record(active.result, notify)
                if self._active:
                    self.sleep(min(self.poll_interval, 0.05))
        except KeyboardInterrupt:  # a second Ctrl-C: no more grace
            leftover = list(self._active.values())
            self._active.clear()
            for active in leftover:
                active.kill_now()
                self._record(active.finish_killed(reason), notify)

    def _set(self, state: ExperimentState, reason: str, message: str) -> None:
        self._state, self._reason, self._message = state, reason, message

    def _save(self, notify: Callable[[ExperimentStatus], None]) -> None:
        status = self.status()
        self.work.write_status(status, self.notes)
        notify(status)

    def _early_stopping(self) -> Stopper | None:
        from katib_hp.local.earlystop import median_stop_from_spec

        stopper = median_stop_from_spec(self.spec)
        if stopper is not None and self.collector.kind is CollectorKind.TFEVENT:
            self.builder.note("early stopping is off: the TensorFlowEvent collector has none (as on the cluster)")
            return None
        return stopper


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM to the runner stops it like Ctrl-C (only the main thread can install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["LocalRun", "LocalRunInterrupted", "UnsupportedError", "default_python"]
