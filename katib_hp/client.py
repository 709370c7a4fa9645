"""The Python API for a cluster: the same verbs as the CLI, returning typed results, raising typed errors.

Example:
    >>> from katib_hp.client import Client
    >>> client = Client.connect(namespace="tuning")                          # doctest: +SKIP
    >>> [submitted] = client.submit("examples/digits-bayes.yaml")            # doctest: +SKIP
    >>> status = client.wait(submitted.name, timeout=3600)                   # doctest: +SKIP
    >>> client.best(submitted.name).parameters                               # doctest: +SKIP
    {'lr': '0.0012', 'units': '128'}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from katib_hp.api import Prepared, prepare_experiments
from katib_hp.errors import KatibHPError
from katib_hp.problems import Problem
from katib_hp.results import ExperimentStatus, TrialResult, status_from_katib
from katib_hp.substitute import trial_args

if TYPE_CHECKING:
    from katib_hp.backends.cluster import ClusterSnapshot, KatibCluster

INJECTION_LABEL = "katib.kubeflow.org/metrics-collector-injection"


class ExperimentUnsuccessful(KatibHPError):
    """The experiment ended without a usable result (failed, or "succeeded" with every trial failed)."""

    exit_code = 1

    def __init__(self, status: ExperimentStatus, reason: str, diagnostics: Sequence[str] = ()) -> None:
        self.status = status
        self.diagnostics = list(diagnostics)
        super().__init__(reason, hint=self.diagnostics[0] if self.diagnostics else "")


class NoResult(KatibHPError):
    """No trial has produced the objective yet."""

    exit_code = 1


class NamespaceNotLabelled(KatibHPError):
    """Katib injects its metrics collector only into namespaces with the injection label."""

    exit_code = 2


@dataclass(frozen=True)
class Submission:
    """One Experiment sent to the cluster (or only printed / judged by the API server)."""

    name: str
    namespace: str
    manifest: dict[str, Any]
    problems: tuple[Problem, ...] = ()
    created: dict[str, Any] | None = None
    server_dry_run: bool = False


@dataclass
class Client:
    """A namespace on one cluster, seen through Katib's objects."""

    cluster: KatibCluster
    clock: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def connect(cls, *, kubeconfig: str | None = None, context: str | None = None,
                namespace: str | None = None) -> Client:
        """Connect the way kubectl does (kubeconfig, context, in-cluster); namespace defaults to the context's."""
        from katib_hp.backends.cluster import KatibCluster
        from katib_hp.backends.kube import connect

        connection = connect(kubeconfig=kubeconfig, context=context, namespace=namespace)
        return cls(KatibCluster(connection.api_client, connection.namespace))

    @property
    def namespace(self) -> str:
        return str(self.cluster.namespace)

    # --- submit -----------------------------------------------------------------------------------------

    def submit(self, source: str | Path | dict[str, Any] | Any, *, server_dry_run: bool = False,
               overwrite: bool = False, label_namespace: bool = False) -> list[Submission]:
        """Lint, then create every Experiment of a config, a manifest file, a dict or a ``V1beta1Experiment``.

        Refuses (``LintFailed``) on linter errors and (``NamespaceNotLabelled``) when the namespace lacks
        Katib's injection label, unless ``label_namespace`` adds it. ``server_dry_run`` lets the API server and
        Katib's webhook judge the Experiment without storing it.
        """
        prepared = prepare_experiments(_as_source(source))
        self._check_namespace(label_namespace, server_dry_run)
        return [self._create(p, server_dry_run=server_dry_run, overwrite=overwrite) for p in prepared]

    def _check_namespace(self, label: bool, dry_run: bool) -> None:
        from katib_hp.backends.errors import Forbidden

        try:
            labelled = self.cluster.namespace_is_labelled()
        except Forbidden:
            return  # many users may not read Namespaces; the webhook will say so if it matters
        if labelled:
            return
        if label and not dry_run:
            self.cluster.label_namespace()
            return
        raise NamespaceNotLabelled(
            f"namespace {self.namespace!r} lacks the label {INJECTION_LABEL}=enabled, so Katib would not "
            "inject its metrics collector and every trial would end without metrics",
            hint=f"rerun with --label-namespace, or `kubectl label namespace {self.namespace} "
                 f"{INJECTION_LABEL}=enabled`")

    def _create(self, prepared: Prepared, *, server_dry_run: bool, overwrite: bool) -> Submission:
        from katib_hp.backends.errors import AdmissionDenied

        manifest = dict(prepared.manifest)
        manifest["metadata"] = {**(manifest.get("metadata") or {}), "namespace": self.namespace}
        try:
            created = self.cluster.create_experiment(manifest, dry_run=server_dry_run, overwrite=overwrite)
        except AdmissionDenied as exc:
            hint = next((p.hint for p in prepared.problems if p.hint and p.severity.rank <= 1), "")
            raise AdmissionDenied(exc.message, path=exc.path, value=exc.value, hint=hint or exc.hint) from exc
        return Submission(prepared.name, self.namespace, manifest, prepared.problems, created, server_dry_run)

    # --- read ---------------------------------------------------------------------------------------------

    def experiment(self, name: str, *, sdk: bool = False) -> Any:
        """The Experiment object as the API returns it: a dict, or kubeflow-katib's ``V1beta1Experiment``."""
        data = self.cluster.get_experiment(name)
        if not sdk:
            return data
        from katib_hp.backends.cluster import to_sdk_experiment

        return to_sdk_experiment(data)

    def status(self, name: str) -> ExperimentStatus:
        """The experiment with its trials (two API requests, whatever the number of trials)."""
        return status_from_katib(self.cluster.get_experiment(name), self.cluster.list_trials(name))

    def experiments(self) -> list[dict[str, Any]]:
        """One row per experiment in the namespace, from Katib's own counters (one API request)."""
        from katib_hp.results import experiment_row

        return [experiment_row(e) for e in self.cluster.list_experiments()]

    def trials(self, name: str) -> list[TrialResult]:
        return list(self.status(name).trials)

    def best(self, name: str) -> TrialResult:
        return best_of(self.status(name))

    def best_args(self, name: str) -> list[str]:
        """The trainer's arguments of the best trial, to retrain with (the container's substituted args)."""
        return self.best_with_args(name)[2]

    def best_with_args(self, name: str) -> tuple[ExperimentStatus, TrialResult, list[str]]:
        """The experiment, its best trial and that trial's args, from one GET and one LIST."""
        experiment = self.cluster.get_experiment(name)
        status = status_from_katib(experiment, self.cluster.list_trials(name))
        best = best_of(status)
        return status, best, trial_args(experiment.get("spec") or {}, best.parameters, trial_name=best.name)

    def logs(self, name: str, trial: str | None = None, *, tail_lines: int | None = None) -> tuple[str, str]:
        """(trial name, its log) for ``trial``, or for the best trial, or else the most recent one."""
        trials = self.cluster.list_trials(name)
        if not trials:
            raise NoResult(f"experiment {name!r} has no trials yet")
        status = status_from_katib(self.cluster.get_experiment(name), trials) if trial is None else None
        chosen = _pick_trial(trials, trial, status)
        return str(chosen["metadata"]["name"]), str(self.cluster.trial_logs(chosen, tail_lines=tail_lines))

    def trial_metrics(self, name: str, trial: str | None = None, *,
                      db_manager_address: str = "katib-db-manager.kubeflow:6789") -> tuple[str, list[dict[str, Any]]]:
        """(trial name, every metric value it reported) from katib-db-manager, for ``trial`` or the best one.

        From outside the cluster: ``kubectl port-forward svc/katib-db-manager -n kubeflow 6789`` and
        ``db_manager_address="localhost:6789"``.
        """
        chosen = trial or self.best(name).name
        return chosen, self.cluster.trial_metrics(chosen, db_manager_address=db_manager_address)

    def delete(self, name: str) -> None:
        self.cluster.delete_experiment(name)

    def resume(self, name: str, max_trial_count: int, *, parallel_trial_count: int | None = None,
               max_failed_trial_count: int | None = None) -> ExperimentStatus:
        experiment = self.cluster.resume(name, max_trial_count, parallel_trial_count, max_failed_trial_count)
        return status_from_katib(experiment, [])

    # --- wait -------------------------------------------------------------------------------------------

    def watch(self, name: str, *, timeout: float | None = None,
              interval: float = 5.0) -> Iterator[tuple[ExperimentStatus, list[str]]]:
        """Snapshots of the experiment and the findings that explain stuck or failed trials.

        The findings come from each snapshot alone (pending pods, a failed Suggestion): no extra requests.
        """
        for snapshot in self.cluster.watch(name, timeout=timeout, interval=interval):
            yield _status_of(snapshot), [str(d) for d in self._findings(snapshot)]

    @staticmethod
    def _findings(snapshot: ClusterSnapshot) -> list[Any]:
        from katib_hp.backends.diagnose import diagnose

        return list(diagnose(snapshot))

    def wait(self, name: str, *, timeout: float | None = None, interval: float = 5.0,
             on_update: Callable[[ExperimentStatus, list[str]], None] | None = None) -> ExperimentStatus:
        """Wait until the experiment finishes; return it when it succeeded with at least one succeeded trial.

        Raises ``ExperimentUnsuccessful`` otherwise (a failed experiment, or one Katib marks Succeeded
        although every trial failed), with findings that include the last log lines of trials without
        metrics, and ``WatchTimeout`` when ``timeout`` seconds pass first.
        """
        last: ClusterSnapshot | None = None
        status: ExperimentStatus | None = None
        for last in self.cluster.watch(name, timeout=timeout, interval=interval):
            status = _status_of(last)
            if on_update is not None:
                on_update(status, [str(d) for d in self._findings(last)])
            if status.finished:
                break
        if last is None or status is None or not status.finished:
            from katib_hp.backends.errors import WatchTimeout

            raise WatchTimeout(f"experiment {name!r} has not finished", hint="it keeps running; watch it again later")
        ok, reason = status.outcome()
        if not ok:
            findings = [str(d) for d in self.cluster.diagnose(last, with_logs=True)]
            raise ExperimentUnsuccessful(status, reason, findings)
        return status


def _status_of(snapshot: ClusterSnapshot) -> ExperimentStatus:
    return status_from_katib(snapshot.experiment, snapshot.trials)


def _as_source(source: Any) -> str | Path | dict[str, Any]:
    if isinstance(source, (str, Path, dict)):
        return source
    to_dict = getattr(source, "to_dict", None)
    if to_dict is None:
        raise KatibHPError(f"cannot submit a {type(source).__name__}",
                           hint="pass a config or manifest path, a manifest dict or a kubeflow-katib V1beta1Experiment")
    from kubeflow.katib import ApiClient

    data: dict[str, Any] = ApiClient().sanitize_for_serialization(source)
    return data


def _pick_trial(trials: Sequence[dict[str, Any]], name: str | None, status: ExperimentStatus | None) -> dict[str, Any]:
    by_name = {str(t["metadata"]["name"]): t for t in trials}
    if name is not None:
        if name not in by_name:
            from katib_hp.errors import did_you_mean

            raise NoResult(f"no trial {name!r} in this experiment", hint=did_you_mean(name, by_name))
        return by_name[name]
    if status is not None and status.best is not None:
        return by_name[status.best.name]
    return max(trials, key=lambda t: str((t.get("metadata") or {}).get("creationTimestamp", "")))


def best_of(status: ExperimentStatus, *, local_dir: str | None = None) -> TrialResult:
    """The best trial of a snapshot, or ``NoResult`` naming the objective no trial has produced yet."""
    best = status.best
    if best is None:
        subject = f"the local run in {local_dir}" if local_dir else f"experiment {status.name!r}"
        raise NoResult(f"{subject} has no trial with the objective {status.objective.metric!r} yet "
                       f"({len(status.trials)} trial(s))", hint=f"see `katib-hp trials {local_dir or status.name}`")
    return best
