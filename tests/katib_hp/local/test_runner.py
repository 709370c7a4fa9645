"""LocalRun end to end with a fake trial program through the real SubprocessLauncher."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from katib_hp.local.errors import LocalRunInterrupted, UnsupportedError, WorkDirError
from katib_hp.local.launch import SubprocessLauncher
from katib_hp.local.runner import LocalRun
from katib_hp.local.suggest_base import Observation, Suggestion
from katib_hp.local.workdir import load
from katib_hp.results import ExperimentState, ExperimentStatus, TrialState

FAKE = Path(__file__).with_name("fake_trainer.py")
pytestmark = pytest.mark.timeout(60)  # a runner bug must not hang the suite

Batch = list[Suggestion] | Callable[[Sequence[Observation]], list[Suggestion]]


def experiment(params: Mapping[str, Sequence[str]], *, name: str = "fake", args: Sequence[str] = (),
               command: Sequence[str] | None = None, max_trials: int = 4, parallel: int = 2,
               algorithm: str = "grid", **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "fake:1",
                 "command": list(command or ["python", "-u", str(FAKE)]),
                 "args": [*(f"--{p}=${{trialParameters.{p}}}" for p in params), *args]}
    job_spec: dict[str, Any] = {"backoffLimit": spec.pop("backoff", 0),
                                "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}
    if "deadline" in spec:
        job_spec["activeDeadlineSeconds"] = spec.pop("deadline")
    body = {
        "objective": {"type": "maximize", "objectiveMetricName": "val_accuracy", "additionalMetricNames": ["loss"],
                      **spec.pop("objective", {})},
        "algorithm": {"algorithmName": algorithm}, "maxTrialCount": max_trials, "parallelTrialCount": parallel,
        "parameters": [{"name": p, "parameterType": "categorical", "feasibleSpace": {"list": list(v)}}
                       for p, v in params.items()],
        "trialTemplate": {"primaryContainerName": "main",
                          "trialParameters": [{"name": p, "reference": p} for p in params],
                          "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": job_spec}},
        **spec,
    }
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": body}


class Scripted:
    """Hands out prepared suggestions in batches; a batch may wait until no trial is running."""

    def __init__(self, *batches: Batch, wait: bool = False) -> None:
        self.batches = list(batches)
        self.wait = wait
        self.notes: list[str] = []
        self.histories: list[list[Observation]] = []

    @property
    def finished(self) -> bool:
        return not self.batches

    def ask(self, count: int, history: Sequence[Observation]) -> list[Suggestion]:
        self.histories.append(list(history))
        if not self.batches or (self.wait and any(o.state == "Running" for o in history)):
            return []
        batch = self.batches[0]
        items = batch(history) if callable(batch) else batch
        taken, rest = items[:count], items[count:]
        if rest:
            self.batches[0] = rest
        else:
            self.batches.pop(0)
        return taken


def s(**assignments: str) -> Suggestion:
    return Suggestion(dict(assignments))


def local(tmp_path: Path, manifest: dict[str, Any], suggester: Any = None, *, speed: float = 1.0,
          **kwargs: Any) -> LocalRun:
    kwargs.setdefault("grace_period", 2.0)
    return LocalRun(manifest, work_dir=tmp_path / "run", launcher=SubprocessLauncher(), python=sys.executable,
                    suggester=suggester, seed=7, poll_interval=0.01, base_dir=tmp_path,
                    clock=lambda: time.monotonic() * speed, **kwargs)


def by_state(status: ExperimentStatus, state: TrialState) -> list[Any]:
    return [t for t in status.trials if t.state is state]


def test_grid_experiment_end_to_end(tmp_path: Path) -> None:
    manifest = experiment({"lr": ["0.02", "0.05", "0.1", "0.2"]}, parallel=2)
    run = local(tmp_path, manifest)
    updates: list[ExperimentStatus] = []
    status = run.run(on_update=updates.append)
    assert (status.state, status.reason) == (ExperimentState.SUCCEEDED, "ExperimentMaxTrialsReached")
    assert status.outcome()[0]
    assert len(status.trials) == 4 and status.count(TrialState.SUCCEEDED) == 4
    assert status.best is not None and status.best.parameters == {"lr": "0.1"}
    assert status.best.objective == pytest.approx(1.0)
    assert all(re.fullmatch(r"fake-[a-z0-9]{8}", t.name) for t in status.trials)
    assert {t.parameters["lr"] for t in status.trials} == {"0.02", "0.05", "0.1", "0.2"}
    _, stored = load(tmp_path / "run")
    assert [t.name for t in stored.trials] == [t.name for t in status.trials]
    assert stored.state is ExperimentState.SUCCEEDED and stored.best == status.best
    trial = status.trials[0]
    record = json.loads((tmp_path / "run" / "trials" / trial.name / "trial.json").read_text())
    assert record["state"] == "Succeeded" and record["command"][0] == sys.executable
    log = (tmp_path / "run" / "trials" / trial.name / "log.txt").read_text()
    assert f"trial={trial.name} " in log  # KATIB_TRIAL_NAME is set, cwd is the trial folder
    assert str(tmp_path / "run" / "trials" / trial.name) in log
    assert len(trial.series["val_accuracy"]) == 3 and len(trial.series["loss"]) == 3
    assert any(t.state is TrialState.RUNNING for u in updates for t in u.trials)


def test_parallel_trial_count_is_honoured(tmp_path: Path) -> None:
    manifest = experiment({"lr": ["0.1"]}, args=["--sleep=0.05"], parallel=2, max_trials=5)
    peak = []
    status = local(tmp_path, manifest, Scripted([s(lr="0.1")] * 5)).run(
        on_update=lambda st: peak.append(st.count(TrialState.RUNNING)))
    assert max(peak) == 2
    assert status.count(TrialState.SUCCEEDED) == 5


def test_crash_fails_with_the_log_tail(tmp_path: Path) -> None:
    manifest = experiment({"mode": ["crash"]}, max_trials=1, parallel=1)
    status = local(tmp_path, manifest, Scripted([s(mode="crash")])).run()
    trial = status.trials[0]
    assert trial.state is TrialState.FAILED
    assert trial.reason == "TrialFailed. Job reason: BackoffLimitExceeded"
    assert "exit code 2" in trial.message and "crashed on purpose" in trial.message
    assert trial.log_tail[-1] == "ValueError: the fake trainer crashed on purpose"
    ok, why = status.outcome()  # Katib calls an all-failed run Succeeded; outcome() does not
    assert status.state is ExperimentState.SUCCEEDED and not ok and "no trial succeeded" in why


def test_max_failed_trial_count_fails_the_experiment_and_stops_the_rest(tmp_path: Path) -> None:
    manifest = experiment({"mode": ["crash", "hang"]}, max_trials=4, parallel=2, maxFailedTrialCount=1)
    status = local(tmp_path, manifest, Scripted([s(mode="hang"), s(mode="crash")], [s(mode="ok")] * 2)).run()
    assert (status.state, status.reason) == (ExperimentState.FAILED, "ExperimentFailed")
    assert "max failed count has reached" in status.message
    assert [t.state for t in status.trials] == [TrialState.KILLED, TrialState.FAILED]
    assert status.trials[0].reason == "ExperimentCompleted"
    assert not status.outcome()[0]


def test_backoff_limit_retries_a_crashing_trial(tmp_path: Path) -> None:
    manifest = experiment({"mode": ["crash-once"]}, max_trials=1, parallel=1, backoff=1)
    status = local(tmp_path, manifest, Scripted([s(mode="crash-once")])).run()
    trial = status.trials[0]
    assert trial.state is TrialState.SUCCEEDED
    assert (tmp_path / "run" / "trials" / trial.name / "log.txt.attempt1").exists()


def test_deadline_kills_a_hanging_trial(tmp_path: Path) -> None:
    manifest = experiment({"mode": ["hang"]}, args=["--ignore-term"], max_trials=1, parallel=1, deadline=20)
    started = time.monotonic()
    status = local(tmp_path, manifest, Scripted([s(mode="hang")]), speed=20.0).run()
    trial = status.trials[0]
    assert trial.state is TrialState.FAILED
    assert trial.reason == "TrialFailed. Job reason: DeadlineExceeded"
    assert "SIGKILL" in trial.message and "hanging" in trial.message  # SIGTERM ignored: killed after grace
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("mode", "why"), [("colon", "Katib needs val_accuracy=<number>"),
                                           ("wrong-name", "but the objective is 'val_accuracy'")])
def test_exit_zero_without_the_objective_is_metrics_unavailable(tmp_path: Path, mode: str, why: str) -> None:
    manifest = experiment({"mode": [mode]}, max_trials=1, parallel=1, maxFailedTrialCount=1)
    status = local(tmp_path, manifest, Scripted([s(mode=mode)])).run()
    trial = status.trials[0]
    assert (trial.state, trial.reason) == (TrialState.METRICS_UNAVAILABLE, "MetricsUnavailable")
    assert trial.message.startswith("Metrics are not available") and why in trial.message
    assert status.state is ExperimentState.FAILED  # MetricsUnavailable counts toward maxFailedTrialCount


def test_medianstop_stops_a_bad_trial(tmp_path: Path) -> None:
    # the good trials (lr=0.1) sleep 0.1 s per epoch, the bad one 0.9 s: it is stopped after its first report
    manifest = experiment({"lr": ["0.1", "0.9"]}, args=["--epochs=4", "--sleep=${trialParameters.lr}"],
                          max_trials=3, parallel=1,
                          earlyStopping={"algorithmName": "medianstop", "algorithmSettings": [
                              {"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "1"}]})
    suggester = Scripted([s(lr="0.1"), s(lr="0.1"), s(lr="0.9")])
    status = local(tmp_path, manifest, suggester).run()
    good, bad = status.trials[:2], status.trials[2]
    assert all(t.state is TrialState.SUCCEEDED for t in good)
    assert (bad.state, bad.reason, bad.message) == (TrialState.EARLY_STOPPED, "TrialEarlyStopped",
                                                    "Trial is early stopped")
    assert 1 <= len(bad.series["val_accuracy"]) < 4
    assert status.state is ExperimentState.SUCCEEDED and status.completed == 3


def test_goal_reached_stops_running_trials(tmp_path: Path) -> None:
    manifest = experiment({"lr": ["0.1"], "mode": ["ok", "hang"]}, max_trials=10, parallel=2,
                          objective={"goal": 0.9})
    status = local(tmp_path, manifest, Scripted([s(lr="0.1", mode="hang"), s(lr="0.1", mode="ok")])).run()
    assert (status.state, status.reason) == (ExperimentState.SUCCEEDED, "ExperimentGoalReached")
    assert [t.state for t in status.trials] == [TrialState.KILLED, TrialState.SUCCEEDED]
    assert status.outcome()[0]


def test_hyperband_promotion_continues_from_the_parent_checkpoint(tmp_path: Path) -> None:
    package = tmp_path / "trainer"  # `python -m trainer` finds this stand-in first on PYTHONPATH
    package.mkdir()
    (package / "__main__.py").write_text(f"import runpy\nrunpy.run_path({str(FAKE)!r}, run_name='__main__')\n")
    manifest = experiment({"lr": ["0.1"], "epochs": ["1", "3"]}, command=["python", "-u", "-m", "trainer"],
                          max_trials=2, parallel=1)

    def promote(history: Sequence[Observation]) -> list[Suggestion]:
        return [Suggestion({"lr": "0.1", "epochs": "3"}, parent=history[0].name, parent_resource=1)]

    run = local(tmp_path, manifest, Scripted([s(lr="0.1", epochs="1")], promote, wait=True))
    status = run.run()
    parent, child = status.trials
    assert child.state is TrialState.SUCCEEDED
    parent_dir, child_dir = (tmp_path / "run" / "trials" / t.name for t in (parent, child))
    command = json.loads((child_dir / "trial.json").read_text())["command"]
    assert f"--checkpoint-dir={child_dir / 'checkpoints'}" in command
    assert f"--resume-from={parent_dir / 'checkpoints'}" in command and "--initial-epoch=1" in command
    assert "at epoch 1 (initial 1)" in (child_dir / "log.txt").read_text()
    assert len(child.series["val_accuracy"]) == 2  # epochs 2 and 3 only
    assert any("continue from their parent's checkpoint" in n for n in run.notes)


def test_file_collector_paths_are_mapped_into_the_trial(tmp_path: Path) -> None:
    manifest = experiment({"mode": ["silent"]}, args=["--metrics-file=/var/log/katib/metrics.log"], max_trials=1,
                          parallel=1, metricsCollectorSpec={"collector": {"kind": "File"}, "source": {
                              "fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File"}}})
    run = local(tmp_path, manifest, Scripted([s(mode="silent")]))
    status = run.run()
    trial = status.trials[0]
    assert trial.state is TrialState.SUCCEEDED and trial.objective is not None
    assert (tmp_path / "run" / "trials" / trial.name / "files" / "var/log/katib/metrics.log").exists()
    assert any("/var/log/katib is mapped" in n for n in run.notes)


def test_json_numbers_make_metrics_unavailable(tmp_path: Path) -> None:
    manifest = experiment({"mode": ["silent"]}, args=["--metrics-file=/m/metrics.json", "--metrics-format=json-number"],
                          max_trials=1, parallel=1, metricsCollectorSpec={"collector": {"kind": "File"}, "source": {
                              "fileSystemPath": {"path": "/m/metrics.json", "kind": "File", "format": "JSON"}}})
    status = local(tmp_path, manifest, Scripted([s(mode="silent")])).run()
    assert status.trials[0].state is TrialState.METRICS_UNAVAILABLE
    assert "JSON number" in status.trials[0].message


def test_tfevent_collector_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    manifest = experiment({"lr": ["0.1"]}, args=["--event-dir=/var/log/katib/tfevent"], max_trials=1, parallel=1,
                          metricsCollectorSpec={"collector": {"kind": "TensorFlowEvent"}})
    status = local(tmp_path, manifest, Scripted([s(lr="0.1")])).run()
    assert status.trials[0].state is TrialState.SUCCEEDED
    assert status.trials[0].objective == pytest.approx(1.0)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupt_keeps_finished_trials_and_resume_completes_the_budget(tmp_path: Path, how: str) -> None:
    manifest = experiment({"mode": ["ok", "hang"]}, max_trials=4, parallel=2)
    fired = []

    def interrupt(status: ExperimentStatus) -> None:
        if status.count(TrialState.SUCCEEDED) and not fired:
            fired.append(True)
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler raises here
            raise KeyboardInterrupt

    with pytest.raises(LocalRunInterrupted, match="--resume") as info:
        local(tmp_path, manifest, Scripted([s(mode="ok"), s(mode="hang")])).run(on_update=interrupt)
    assert info.value.exit_code == 130
    _, saved = load(tmp_path / "run")
    assert [t.state for t in saved.trials] == [TrialState.SUCCEEDED, TrialState.KILLED]
    assert saved.trials[1].reason == "Interrupted"
    first = saved.trials[0]

    suggester = Scripted([s(mode="ok")] * 3)
    status = local(tmp_path, manifest, suggester, resume=True).run()
    assert status.state is ExperimentState.SUCCEEDED and status.count(TrialState.SUCCEEDED) == 4
    assert status.trials[0] == first  # kept, not run again
    assert [o.name for o in suggester.histories[0]] == [first.name]
    assert len(list((tmp_path / "run" / "trials").iterdir())) == 4  # the interrupted one is gone


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["spec"]["trialTemplate"]["trialSpec"].update(kind="Deployment", apiVersion="apps/v1"),
     "trial kind apps/v1/Deployment cannot run locally"),
    (lambda m: m["spec"]["trialTemplate"].update(trialSpec=None, configMap={"configMapName": "t"}),
     "configMap trial template"),
    (lambda m: m["spec"].update(metricsCollectorSpec={"collector": {"kind": "Push"}}), "Push collector"),
    (lambda m: m["spec"]["trialTemplate"].update(trialSpec={
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob", "spec": {"tfReplicaSpecs": {
            "Chief": {"replicas": 1}, "Worker": {"replicas": 2}}}}), "TFJob with 3 replicas"),
], ids=["deployment", "configmap", "push", "tfjob"])
def test_unsupported_experiments_are_refused(tmp_path: Path, change: Callable[[dict[str, Any]], None],
                                            message: str) -> None:
    manifest = experiment({"lr": ["0.1"]})
    change(manifest)
    with pytest.raises(UnsupportedError, match=re.escape(message)) as info:
        local(tmp_path, manifest, Scripted())
    assert "batch/v1 Job" in str(info.value) or "StdOut" in str(info.value)


def test_a_work_dir_of_another_experiment_is_refused(tmp_path: Path) -> None:
    local(tmp_path, experiment({"lr": ["0.1"]}, max_trials=1, parallel=1), Scripted([s(lr="0.1")])).run()
    with pytest.raises(WorkDirError, match="different experiment"):
        local(tmp_path, experiment({"lr": ["0.1"]}, name="other"), Scripted())
    with pytest.raises(WorkDirError, match="--resume"):
        local(tmp_path, experiment({"lr": ["0.1"]}, max_trials=1, parallel=1), Scripted())
