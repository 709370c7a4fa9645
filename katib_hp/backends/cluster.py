"""Katib on a real cluster: create, read, resume and watch experiments through the Kubernetes API.

Katib objects stay plain dicts (as the API server sends them); the Kubernetes client's model classes are only
used for what the client itself needs. Reads (GET, LIST, WATCH, logs) are retried with a bounded backoff;
a create is never retried, because the first attempt may have reached the server.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from katib_hp.backends import errors
from katib_hp.backends.diagnose import Diagnosis, diagnose
from katib_hp.backends.errors import (
    AlreadyExists,
    ClusterError,
    NotFound,
    Unreachable,
)
from katib_hp.backends.resume import check_resumable
from katib_hp.backends.status import (
    DEFAULT_PRIMARY_CONTAINER,
    EXPERIMENT_LABEL,
    INJECTION_LABEL,
    STDOUT_SIDECAR,
    TRIAL_LABEL,
    Condition,
    collector_kind,
    name_of,
    state,
)

__all__ = ["ClusterSnapshot", "Diagnosis", "KatibCluster", "as_dict", "diagnose", "to_sdk_experiment"]

GROUP = "kubeflow.org"
VERSION = "v1beta1"
EXPERIMENTS = "experiments.kubeflow.org"
TRIALS = "trials.kubeflow.org"
SUGGESTIONS = "suggestions.kubeflow.org"
READ_TRIES = 3
DELETE_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class ClusterSnapshot:
    """One consistent-enough view of an experiment: the experiment, its trials, suggestion and pods.

    Attributes:
        experiment: the Experiment object.
        trials: the experiment's Trials, oldest first.
        suggestion: the Suggestion of the same name, or ``None`` before Katib creates it.
        pods: pods labelled with the experiment (trial pods and the suggestion's pod).
        requests: how many API requests it took to build this snapshot.
    """

    experiment: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    suggestion: dict[str, Any] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0


class KatibCluster:
    """Katib's custom resources and their pods in one namespace.

    Args:
        api_client: a ``kubernetes.client.ApiClient`` (from ``kube.connect`` or built on a ``Configuration``).
        namespace: the namespace to act in.
        sleep: called to wait between retries (``time.sleep``); tests pass one that records.
        clock: a monotonic clock in seconds (``time.monotonic``).
    """

    def __init__(self, api_client: Any, namespace: str = "default", *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.namespace = namespace
        self.sleep = sleep
        self.clock = clock
        self.requests = 0  # every HTTP request sent, retries included
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)

    # -- plumbing ---------------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(getattr(getattr(self.api_client, "configuration", None), "host", "?"))

    def call(self, verb: str, resource: str, fn: Callable[..., Any], *args: Any, name: str | None = None,
             retry: bool = True, raw: bool = False, **kwargs: Any) -> Any:
        """Send one API request, mapping failures to ``ClusterError`` and retrying idempotent reads.

        With ``raw=True`` the response body is returned as parsed JSON (plain dicts, no model classes).
        """
        import urllib3
        from kubernetes.client.exceptions import ApiException

        tries = READ_TRIES if retry else 1
        if raw:
            kwargs["_preload_content"] = False
        for attempt in range(1, tries + 1):
            self.requests += 1
            try:
                result = fn(*args, **kwargs)
                return json.loads(result.data) if raw else result
            except ApiException as exc:
                if attempt < tries and exc.status in errors.RETRYABLE_STATUSES:
                    self.sleep(0.5 * 2 ** (attempt - 1))
                    continue
                raise errors.from_api_exception(exc, verb=verb, resource=resource, namespace=self.namespace,
                                                name=name) from exc
            except urllib3.exceptions.HTTPError as exc:
                if attempt < tries:
                    self.sleep(0.5 * 2 ** (attempt - 1))
                    continue
                raise errors.unreachable(exc, host=self.host, verb=verb, resource=resource) from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    def _custom_call(self, verb: str, plural: str, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self._custom, method)
        return self.call(verb, f"{plural}.{GROUP}", fn, GROUP, VERSION, self.namespace, plural, *args, **kwargs)

    # -- experiments ------------------------------------------------------------------------------------------

    def create_experiment(self, manifest: dict[str, Any] | Any, *, dry_run: bool = False,
                          overwrite: bool = False) -> dict[str, Any]:
        """Create an Experiment; Katib's webhooks default and validate it (a denial is raised verbatim).

        Args:
            manifest: the Experiment as a dict, or a kubeflow-katib ``V1beta1Experiment``.
            dry_run: send ``dryRun=All``: the admission webhooks judge it, nothing is stored.
            overwrite: delete an experiment of the same name first and wait until it is gone.

        Raises:
            AdmissionDenied: the webhook refused it. AlreadyExists: the name is taken (without overwrite).
        """
        body = as_dict(manifest)
        name = name_of(body) or str((body.get("metadata") or {}).get("generateName", ""))
        flags = {"dry_run": "All"} if dry_run else {}
        try:
            return dict(self._custom_call("create", "experiments", "create_namespaced_custom_object", body,
                                          name=name, retry=False, **flags))
        except AlreadyExists as exc:
            if not overwrite or dry_run:
                hint = (f"delete it with `katib-hp delete {name}` or submit with --overwrite" if not dry_run else
                        "a dry run cannot check a replacement; delete it first or drop --dry-run")
                raise AlreadyExists(f"experiment '{name}' already exists in namespace '{self.namespace}'",
                                    value=name, hint=hint) from exc
        self.delete_experiment(name)
        self._wait_gone(name)
        return dict(self._custom_call("create", "experiments", "create_namespaced_custom_object", body,
                                      name=name, retry=False))

    def _wait_gone(self, name: str) -> None:
        deadline = self.clock() + DELETE_WAIT_SECONDS
        delay = 0.25
        while True:
            try:
                self.get_experiment(name)
            except NotFound:
                return
            if self.clock() >= deadline:
                raise ClusterError(f"experiment '{name}' is still being deleted after {DELETE_WAIT_SECONDS:.0f} s",
                                   value=name, hint=f"check its finalizers (`kubectl get experiment {name} -n "
                                                    f"{self.namespace} -o yaml`) and try again")
            self.sleep(delay)
            delay = min(delay * 2, 5.0)

    def get_experiment(self, name: str) -> dict[str, Any]:
        """The Experiment ``name``. Raises ``NotFound`` when it does not exist."""
        return dict(self._custom_call("get", "experiments", "get_namespaced_custom_object", name, name=name))

    def list_experiments(self) -> list[dict[str, Any]]:
        """Every Experiment in the namespace."""
        found = self._custom_call("list", "experiments", "list_namespaced_custom_object")
        return list(found.get("items") or [])

    def delete_experiment(self, name: str) -> None:
        """Delete an Experiment (Kubernetes deletes its trials and suggestion with it)."""
        self._custom_call("delete", "experiments", "delete_namespaced_custom_object", name, name=name, retry=False)

    def list_trials(self, experiment: str) -> list[dict[str, Any]]:
        """The Trials of ``experiment`` (one label-selected LIST), oldest first."""
        found = self._custom_call("list", "trials", "list_namespaced_custom_object",
                                  label_selector=f"{EXPERIMENT_LABEL}={experiment}")
        return sort_by_age(found.get("items") or [])

    def get_suggestion(self, name: str) -> dict[str, Any] | None:
        """The Suggestion of experiment ``name``, or ``None`` before Katib created one."""
        try:
            return dict(self._custom_call("get", "suggestions", "get_namespaced_custom_object", name, name=name))
        except NotFound:
            return None

    def resume(self, name: str, max_trial_count: int, parallel_trial_count: int | None = None,
               max_failed_trial_count: int | None = None) -> dict[str, Any]:
        """Raise the trial budget of an experiment, restarting it if it had finished.

        Katib restarts a finished experiment only when it Succeeded with reason ExperimentMaxTrialsReached and its
        resumePolicy is LongRunning or FromVolume; the new ``maxTrialCount`` must be larger than the old one and
        than the number of trials so far. A running experiment can have its budget raised too.

        Raises:
            ResumeRefused: Katib's rules forbid it (the message says why and what to do instead).
        """
        experiment = self.get_experiment(name)
        check_resumable(experiment, max_trial_count, parallel_trial_count)
        spec: dict[str, Any] = {"maxTrialCount": max_trial_count}
        if parallel_trial_count is not None:
            spec["parallelTrialCount"] = parallel_trial_count
        if max_failed_trial_count is not None:
            spec["maxFailedTrialCount"] = max_failed_trial_count
        return dict(self._custom_call("patch", "experiments", "patch_namespaced_custom_object", name,
                                      {"spec": spec}, name=name, retry=False))

    # -- namespace, pods, logs --------------------------------------------------------------------------------

    def namespace_is_labelled(self, namespace: str | None = None) -> bool:
        """Whether the namespace has ``katib.kubeflow.org/metrics-collector-injection=enabled``."""
        ns = namespace or self.namespace
        found = self.call("get", "namespaces", self._core.read_namespace, ns, name=ns, raw=True)
        return ((found.get("metadata") or {}).get("labels") or {}).get(INJECTION_LABEL) == "enabled"

    def label_namespace(self, namespace: str | None = None) -> None:
        """Add the metrics-collector injection label to the namespace (Katib refuses experiments without it)."""
        ns = namespace or self.namespace
        body = {"metadata": {"labels": {INJECTION_LABEL: "enabled"}}}
        self.call("patch", "namespaces", self._core.patch_namespace, ns, body, name=ns, raw=True)

    def list_pods(self, label_selector: str) -> list[dict[str, Any]]:
        """Pods in the namespace matching ``label_selector``, as plain dicts."""
        found = self.call("list", "pods", self._core.list_namespaced_pod, self.namespace,
                          label_selector=label_selector, raw=True)
        return list(found.get("items") or [])

    def trial_logs(self, trial: dict[str, Any], *, tail_lines: int | None = None) -> str:
        """The trainer's output of a trial.

        With the StdOut collector Katib redirects the trainer's output into the sidecar
        ``metrics-logger-and-collector``, so that container is read; otherwise the primary container.

        Raises:
            NotFound: the trial has no pod (finished and deleted because the template's ``retain`` is false).
        """
        trial_name = name_of(trial)
        spec = trial.get("spec") or {}
        selector = {TRIAL_LABEL: trial_name, **dict(spec.get("primaryPodLabels") or {})}
        pods = self.list_pods(",".join(f"{k}={v}" for k, v in selector.items()))
        if not pods:
            raise NotFound(f"trial '{trial_name}' has no pod left in namespace '{self.namespace}'", value=trial_name,
                           hint="Katib deletes a finished trial's pods unless trialTemplate.retain is true; "
                                "set it to keep logs, or read the metrics with `katib-hp trials`")
        pod = sort_by_age(pods)[-1]
        containers = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
        primary = str(spec.get("primaryContainerName") or DEFAULT_PRIMARY_CONTAINER)
        container = STDOUT_SIDECAR if collector_kind(trial) == "StdOut" and STDOUT_SIDECAR in containers else primary
        flags: dict[str, Any] = {"tail_lines": tail_lines} if tail_lines is not None else {}
        text = self.call("logs", "pods/log", self._core.read_namespaced_pod_log, name_of(pod), self.namespace,
                         name=name_of(pod), container=container, **flags)
        return str(text)

    # -- snapshots and watching -------------------------------------------------------------------------------

    def snapshot(self, name: str) -> ClusterSnapshot:
        """Experiment, trials, suggestion and pods in four requests, however many trials there are."""
        before = self.requests
        experiment = self.get_experiment(name)
        trials = self.list_trials(name)
        suggestion = self.get_suggestion(name)
        pods = self.list_pods(f"{EXPERIMENT_LABEL}={name}")
        return ClusterSnapshot(experiment, trials, suggestion, pods, self.requests - before)

    def watch(self, name: str, *, timeout: float | None = None, interval: float = 5.0) -> Iterator[ClusterSnapshot]:
        """Follow an experiment until it finishes, yielding snapshots.

        Trials are listed once, then followed with a WATCH from the list's resourceVersion; each refresh costs
        a constant number of requests. See ``katib_hp.backends.watching`` for the details.

        Raises:
            WatchTimeout: ``timeout`` seconds passed before the experiment finished.
            Unreachable: the API server stayed unreachable past the retry budget.
        """
        from katib_hp.backends.watching import follow

        return follow(self, name, timeout=timeout, interval=interval)

    def diagnose(self, snapshot: ClusterSnapshot, *, with_logs: bool = False) -> list[Diagnosis]:
        """Findings about a snapshot (see ``katib_hp.backends.diagnose``).

        Costs one request for the namespace label, and with ``with_logs`` one LIST and one log read per
        MetricsUnavailable trial (their last lines show what the trainer printed). Call it on demand, not on
        every watch refresh.
        """
        from katib_hp.backends.diagnose import LOG_TAIL_LINES

        labelled = self.namespace_is_labelled()
        logs: dict[str, str] = {}
        if with_logs:
            for trial in snapshot.trials:
                if state(trial) == Condition.METRICS_UNAVAILABLE:
                    # A trial whose pod is gone still gets a finding, without its log.
                    with contextlib.suppress(NotFound):
                        logs[name_of(trial)] = self.trial_logs(trial, tail_lines=max(LOG_TAIL_LINES, 50))
        return diagnose(snapshot, namespace=self.namespace, namespace_labelled=labelled, logs=logs)

    # -- SDK interop ------------------------------------------------------------------------------------------

    def trial_metrics(self, trial_name: str, db_manager_address: str = "katib-db-manager.kubeflow:6789",
                      timeout: int = 30) -> list[dict[str, Any]]:
        """Every metric a trial reported, from katib-db-manager (``KatibClient.get_trial_metrics``).

        From outside the cluster, forward the service first (``kubectl port-forward svc/katib-db-manager -n
        kubeflow 6789``) and pass ``db_manager_address="localhost:6789"``.

        Returns:
            ``[{"time_stamp": str, "name": str, "value": str}]`` in the order Katib stored them.

        Raises:
            Unreachable: katib-db-manager could not be reached at ``db_manager_address``.
        """
        from kubeflow.katib import KatibClient

        client = KatibClient(client_configuration=self.api_client.configuration, namespace=self.namespace)
        try:
            logs = client.get_trial_metrics(trial_name, namespace=self.namespace,
                                            db_manager_address=db_manager_address, timeout=timeout)
        except RuntimeError as exc:
            raise Unreachable(f"cannot read the metrics of trial '{trial_name}' from katib-db-manager at "
                              f"{db_manager_address}", value=trial_name,
                              hint="from outside the cluster run `kubectl port-forward svc/katib-db-manager -n "
                                   "kubeflow 6789` and pass db_manager_address='localhost:6789'") from exc
        return [{"time_stamp": str(log.time_stamp), "name": str(log.metric.name), "value": str(log.metric.value)}
                for log in logs]


def as_dict(manifest: dict[str, Any] | Any) -> dict[str, Any]:
    """A plain dict of an Experiment given as a dict or a kubeflow-katib model."""
    if isinstance(manifest, dict):
        return manifest
    from kubeflow.katib import ApiClient

    return dict(ApiClient().sanitize_for_serialization(manifest))


def to_sdk_experiment(experiment: dict[str, Any]) -> Any:
    """A kubeflow-katib ``V1beta1Experiment`` built from a plain dict (for users of the Katib SDK)."""
    from kubeflow.katib import ApiClient, V1beta1Experiment

    class _Response:
        data = json.dumps(experiment)

    return ApiClient().deserialize(_Response(), V1beta1Experiment)


def sort_by_age(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects ordered by creationTimestamp, then name."""
    return sorted(items, key=lambda o: (str((o.get("metadata") or {}).get("creationTimestamp") or ""), name_of(o)))
