"""Follow an experiment without hammering the API server.

Trials are listed once with a label selector, then followed with a WATCH from the list's resourceVersion; an
in-memory dict of trials is updated from the events. Each refresh costs a constant number of requests (one
WATCH, one GET of the experiment, and for each snapshot yielded one GET of the suggestion and one LIST of pods),
whatever the number of trials. A stream that ends or drops is reopened from the last resourceVersion seen, so
no update is lost; a 410 Gone (the resourceVersion was compacted) relists. Connection errors back off
exponentially (capped at 30 s) until the watch's timeout, or for ``MAX_FAILURES`` tries without one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from katib_hp.backends import errors
from katib_hp.backends.errors import ClusterError, Unreachable, WatchTimeout
from katib_hp.backends.status import EXPERIMENT_LABEL, condition_key, is_finished, name_of

if TYPE_CHECKING:
    from katib_hp.backends.cluster import ClusterSnapshot, KatibCluster

BACKOFF_CAP_SECONDS = 30.0
MAX_FAILURES = 8


class _Gone(Exception):
    """The watch's resourceVersion is too old (HTTP 410): list again."""


class TrialCache:
    """The trials of one experiment, kept current from LIST and WATCH events."""

    def __init__(self, cluster: KatibCluster, experiment: str) -> None:
        self.cluster = cluster
        self.experiment = experiment
        self.items: dict[str, dict[str, Any]] = {}
        self.resource_version: str | None = None

    @property
    def selector(self) -> str:
        return f"{EXPERIMENT_LABEL}={self.experiment}"

    def trials(self) -> list[dict[str, Any]]:
        """The trials known now, oldest first (each event replaces a dict, so the list stays consistent)."""
        from katib_hp.backends.cluster import sort_by_age

        return sort_by_age(list(self.items.values()))

    def relist(self) -> None:
        """Replace the cache with one LIST and remember its resourceVersion."""
        from katib_hp.backends.cluster import GROUP, VERSION

        cluster = self.cluster
        found = cluster.call("list", "trials.kubeflow.org", cluster._custom.list_namespaced_custom_object, GROUP,
                             VERSION, cluster.namespace, "trials", label_selector=self.selector)
        self.items = {name_of(t): t for t in found.get("items") or []}
        self.resource_version = str((found.get("metadata") or {}).get("resourceVersion") or "") or None

    def stream(self, seconds: float) -> None:
        """Apply WATCH events for about ``seconds`` (the server ends the stream; we stop early if it does not)."""
        import urllib3
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        from katib_hp.backends.cluster import GROUP, VERSION

        cluster = self.cluster
        server_timeout = max(1, math.ceil(seconds))
        stop_at = cluster.clock() + seconds
        watcher = watch.Watch()
        cluster.requests += 1
        try:
            for event in watcher.stream(cluster._custom.list_namespaced_custom_object, GROUP, VERSION,
                                        cluster.namespace, "trials", label_selector=self.selector,
                                        resource_version=self.resource_version, timeout_seconds=server_timeout,
                                        allow_watch_bookmarks=True, _request_timeout=(10, server_timeout + 30)):
                self.apply(event)
                if cluster.clock() >= stop_at:
                    watcher.stop()
        except ApiException as exc:
            if exc.status == 410:
                raise _Gone from exc
            raise errors.from_api_exception(exc, verb="watch", resource="trials.kubeflow.org",
                                            namespace=cluster.namespace) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise errors.unreachable(exc, host=cluster.host, verb="watch", resource="trials.kubeflow.org") from exc

    def apply(self, event: dict[str, Any]) -> None:
        """Apply one WATCH event (ADDED, MODIFIED, DELETED or BOOKMARK)."""
        kind = event.get("type")
        obj = event.get("raw_object") or event.get("object") or {}
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            self.items[name_of(obj)] = obj
        elif kind == "DELETED":
            self.items.pop(name_of(obj), None)
        if version:
            self.resource_version = str(version)


def _transient(exc: ClusterError) -> bool:
    cause = exc.__cause__
    return isinstance(exc, Unreachable) or getattr(cause, "status", None) in errors.RETRYABLE_STATUSES


def follow(cluster: KatibCluster, name: str, *, timeout: float | None, interval: float) -> Iterator[ClusterSnapshot]:
    """Yield snapshots of experiment ``name`` until one shows it finished (see the module docstring).

    A snapshot is yielded first, then at most every ``interval`` seconds, and at once when the experiment's
    conditions change. The last snapshot is the one whose experiment is Succeeded or Failed.
    """
    from katib_hp.backends.cluster import ClusterSnapshot

    deadline = None if timeout is None else cluster.clock() + timeout
    cache = TrialCache(cluster, name)
    last_key: tuple[tuple[str, str, str], ...] | None = None
    last_yield: float | None = None
    failures = gone = 0
    counted = cluster.requests
    while True:
        try:
            if cache.resource_version is None:
                cache.relist()
            experiment = cluster.get_experiment(name)
            now = cluster.clock()
            finished = is_finished(experiment)
            key = condition_key(experiment)
            if last_yield is None or finished or key != last_key or now - last_yield >= interval:
                suggestion = cluster.get_suggestion(name)
                pods = cluster.list_pods(cache.selector)
                yield ClusterSnapshot(experiment, cache.trials(), suggestion, pods, cluster.requests - counted)
                counted = cluster.requests
                last_yield, last_key = now, key
            if finished:
                return
            remaining = math.inf if deadline is None else deadline - cluster.clock()
            if remaining <= 0:
                raise _timeout(name, timeout)
            cache.stream(min(interval, remaining))
            failures = gone = 0
        except (_Gone, ClusterError) as exc:
            if isinstance(exc, _Gone):
                cache.resource_version = None
                gone += 1
                if gone == 1:
                    continue  # relist at once; a fresh list's resourceVersion is always valid
                exc = Unreachable(f"the API server keeps answering 410 Gone to watches of experiment '{name}'")
            elif isinstance(exc, WatchTimeout) or not _transient(exc):
                raise
            failures += 1
            delay = min(BACKOFF_CAP_SECONDS, 2.0 ** (failures - 1))
            if deadline is not None and cluster.clock() + delay > deadline:
                raise _timeout(name, timeout, exc) from exc
            if deadline is None and failures >= MAX_FAILURES:
                raise Unreachable(f"gave up watching experiment '{name}' after {failures} failed tries: "
                                  f"{exc.message}", value=name, hint=exc.hint) from exc
            cluster.sleep(delay)


def _timeout(name: str, timeout: float | None, cause: ClusterError | None = None) -> WatchTimeout:
    why = f" (last error: {cause.message})" if cause is not None else ""
    return WatchTimeout(f"experiment '{name}' did not finish within {timeout:g} s{why}; it keeps running on the "
                        "cluster", value=name, hint=f"watch it again with `katib-hp watch {name}` or raise --timeout")
