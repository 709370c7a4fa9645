"""KatibCluster.watch: LIST once, then WATCH trials from a resourceVersion; reconnects, 410, backoff, timeout."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fake_apiserver import FakeKubeAPI, api_client
from katib_objects import experiment, suggestion, trial, trial_state

from katib_hp.backends.cluster import ClusterSnapshot, KatibCluster, diagnose
from katib_hp.backends.errors import Unreachable, WatchTimeout

INTERVAL = 0.05


class FakeClock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def states(snapshot: ClusterSnapshot) -> dict[str, str]:
    return {t["metadata"]["name"]: trial_state(t) for t in snapshot.trials}


def is_watch(request: Any) -> bool:
    return "/trials" in request.url.path and str(request.params.get("watch", "")).lower() == "true"


def is_trial_list(request: Any) -> bool:
    return request.url.path.endswith("/trials") and not is_watch(request)


def start(api: FakeKubeAPI, name: str, states_: list[str], **kwargs: Any) -> list[dict[str, Any]]:
    trials = [trial(name, f"{name}-{i}", {"lr": 0.01 * (i + 1)}, s) for i, s in enumerate(states_)]
    for made in trials:
        api.put(made)
    api.put(experiment(name, trials=trials, max_trials=len(trials), **kwargs))
    api.put(suggestion(name))
    return trials


def advance(api: FakeKubeAPI, name: str, updates: dict[int, tuple[str, dict[str, Any] | None]],
            trials: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    """Move some trials to new states and the experiment with them, as Katib's controllers would."""
    for index, (state, metrics) in updates.items():
        trials[index] = trial(name, f"{name}-{index}", {"lr": 0.01 * (index + 1)}, state, metrics)
        api.put(trials[index])
    api.put(experiment(name, trials=trials, max_trials=len(trials), **kwargs))
    return trials


def test_an_experiment_evolves_until_it_succeeds(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    trials = start(api, "mnist", ["Pending", "Pending", "Pending"])
    snapshots = cluster.watch("mnist", interval=INTERVAL)
    first = next(snapshots)
    assert set(states(first).values()) == {"Pending"} and first.suggestion is not None
    advance(api, "mnist", {0: ("Running", None), 1: ("Running", None), 2: ("Running", None)}, trials)
    assert set(states(next(snapshots)).values()) == {"Running"}
    advance(api, "mnist", {0: ("Succeeded", {"accuracy": 0.93}), 1: ("Failed", None),
                           2: ("MetricsUnavailable", None)}, trials, state="Succeeded")
    last = next(snapshots)
    assert states(last) == {"mnist-0": "Succeeded", "mnist-1": "Failed", "mnist-2": "MetricsUnavailable"}
    assert last.experiment["status"]["currentOptimalTrial"]["bestTrialName"] == "mnist-0"
    with pytest.raises(StopIteration):
        next(snapshots)
    # Never one request per trial: no GET of a single trial, one LIST, and a handful of requests per refresh.
    assert api.request_count(lambda r: "/trials/" in r.url.path) == 0
    assert api.request_count(is_trial_list) == 1
    assert all(s.requests <= 4 for s in (first, last))


def test_a_failed_experiment_ends_the_watch(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    trials = start(api, "flaky", ["Running", "Running"], max_failed=2)
    snapshots = cluster.watch("flaky", interval=INTERVAL)
    next(snapshots)
    advance(api, "flaky", {0: ("Failed", None), 1: ("Failed", None)}, trials, state="Failed", max_failed=2)
    last = list(snapshots)[-1]
    failed = next(c for c in last.experiment["status"]["conditions"] if c["type"] == "Failed")
    assert failed["message"] == "Experiment has failed because max failed count has reached"
    assert set(states(last).values()) == {"Failed"}


def test_a_succeeded_experiment_where_every_trial_failed_is_surfaced(cluster: KatibCluster,
                                                                       api: FakeKubeAPI) -> None:
    trials = start(api, "doomed", ["Running", "Running"])
    snapshots = cluster.watch("doomed", interval=INTERVAL)
    next(snapshots)
    advance(api, "doomed", {0: ("Failed", None), 1: ("MetricsUnavailable", None)}, trials, state="Succeeded")
    last = list(snapshots)[-1]
    assert last.experiment["status"].get("trialsSucceeded", 0) == 0
    assert last.experiment["status"]["currentOptimalTrial"]["bestTrialName"] == ""
    found = [str(d) for d in diagnose(last)]
    assert any("reports Succeeded (ExperimentMaxTrialsReached) but no trial succeeded" in f for f in found)


def test_a_dropped_stream_reconnects_without_losing_updates(cluster: KatibCluster, api: FakeKubeAPI,
                                                            sleeps: list[float]) -> None:
    trials = start(api, "drop", ["Running", "Running", "Running"])
    snapshots = cluster.watch("drop", interval=INTERVAL)
    next(snapshots)
    api.drop_watch_after = 1  # the next stream dies after one event
    advance(api, "drop", {0: ("Succeeded", {"accuracy": 0.5}), 1: ("Succeeded", {"accuracy": 0.6}),
                          2: ("Failed", None)}, trials)
    seen: dict[str, str] = {}
    for _ in range(5):
        seen = states(next(snapshots))
        if "Running" not in seen.values():
            break
    assert seen == {"drop-0": "Succeeded", "drop-1": "Succeeded", "drop-2": "Failed"}
    assert sleeps == [1.0]  # one backoff after the drop
    assert api.request_count(is_trial_list) == 1  # resumed from the resourceVersion, no relist
    watches = [r for r in api if is_watch(r)]
    assert len(watches) >= 2 and watches[1].params["resourceVersion"] != watches[0].params["resourceVersion"]


def test_410_gone_relists_and_continues(cluster: KatibCluster, api: FakeKubeAPI, sleeps: list[float]) -> None:
    trials = start(api, "old", ["Running", "Running"])
    snapshots = cluster.watch("old", interval=INTERVAL)
    next(snapshots)
    advance(api, "old", {1: ("Succeeded", {"accuracy": 0.7})}, trials)
    api.compacted_below = api.resource_version  # the client's resourceVersion is now too old
    seen: dict[str, str] = {}
    for _ in range(5):
        seen = states(next(snapshots))
        if seen["old-1"] == "Succeeded":
            break
    assert seen == {"old-0": "Running", "old-1": "Succeeded"}
    assert api.request_count(is_trial_list) == 2  # the first LIST and the relist after 410
    assert sleeps == []  # a 410 is not an error to back off from
    advance(api, "old", {0: ("Succeeded", {"accuracy": 0.8})}, trials, state="Succeeded")
    assert states(list(snapshots)[-1]) == {"old-0": "Succeeded", "old-1": "Succeeded"}


def test_a_server_that_keeps_answering_410_is_backed_off(cluster: KatibCluster, api: FakeKubeAPI,
                                                        sleeps: list[float]) -> None:
    start(api, "loop", ["Running"])
    snapshots = cluster.watch("loop", interval=INTERVAL)
    next(snapshots)
    api.compacted_below = 10**9  # every resourceVersion is "too old"
    with pytest.raises(Unreachable, match="keeps answering 410 Gone to watches of experiment 'loop'"):
        for _ in snapshots:
            pass
    assert sleeps[:3] == [1.0, 2.0, 4.0]


def test_a_watch_gives_up_after_its_timeout(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    start(api, "slow", ["Running"])
    with pytest.raises(WatchTimeout, match=r"experiment 'slow' did not finish within 0.3 s.*katib-hp watch slow"):
        for _ in cluster.watch("slow", timeout=0.3, interval=INTERVAL):
            pass


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_errors_back_off_up_to_30_s_then_time_out() -> None:
    clock = FakeClock()
    cluster = KatibCluster(api_client(f"http://127.0.0.1:{closed_port()}"), "default", sleep=clock.sleep,
                           clock=clock)
    with pytest.raises(WatchTimeout, match=r"did not finish within 120 s .last error: cannot reach"):
        next(cluster.watch("mnist", timeout=120))
    between_tries = [s for s in clock.sleeps if s >= 2]
    assert between_tries[:4] == [2.0, 4.0, 8.0, 16.0] and max(clock.sleeps) == 30.0
    assert clock.now <= 120


def test_without_a_timeout_it_gives_up_after_a_bounded_number_of_tries() -> None:
    clock = FakeClock()
    cluster = KatibCluster(api_client(f"http://127.0.0.1:{closed_port()}"), "default", sleep=clock.sleep,
                           clock=clock)
    with pytest.raises(Unreachable, match="gave up watching experiment 'mnist' after 8 failed tries"):
        next(cluster.watch("mnist"))
