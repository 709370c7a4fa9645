"""Watching an experiment with 1,000 trials: API requests per refresh and client memory, against a naive poller.

The API server (the test suite's kmock-based server, over real HTTP) runs in a child process, so the memory
measured here is the client's alone: ``tracemalloc`` peak of Python allocations while watching (imports are done
before tracing starts). Requests are counted at the server. Between refreshes the server moves 20 trials to
Succeeded. The baseline, measured in the same run, polls the way a naive client does: GET the experiment and
GET every trial on each refresh.

Targets: O(1) requests per refresh (not one per trial) and under 150 MB.

Run: .venv/bin/python bench/watch_scale.py [--trials 1000] [--refreshes 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import tracemalloc
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "katib_hp" / "backends")]

TARGET_MB = 150.0
BATCH = 20
PARALLEL = 10


def serve(conn: Connection, count: int) -> None:
    """Child process: a server with ``count`` trials; answers "advance", "count" and "stop" on ``conn``."""
    from fake_apiserver import FakeKubeAPI, ServerThread
    from katib_objects import experiment, namespace, pod, suggestion, trial

    def make(i: int, state: str) -> dict[str, Any]:
        metrics = {"accuracy": round(0.5 + i / (4 * count), 4)} if state == "Succeeded" else None
        return trial("big", f"big-{i:05d}", {"lr": 0.001 * (i % 97 + 1), "units": 32 + i % 64}, state, metrics,
                     created=f"2026-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z")

    trials = [make(i, "Running") for i in range(count)]
    with ServerThread(FakeKubeAPI(direct=True)) as server:
        api = server.api
        api.namespaces["default"] = namespace("default")
        for made in trials:
            api.put(made)
        for made in trials[:PARALLEL]:
            api.put(pod(made))
        api.put(experiment("big", trials=trials, max_trials=count, parallel=PARALLEL))
        api.put(suggestion("big"))
        conn.send(server.url)
        done = 0
        while True:
            command = conn.recv()
            if command == "advance":
                for i in range(done, min(done + BATCH, count)):
                    trials[i] = make(i, "Succeeded")
                    api.put(trials[i])
                done += BATCH
                api.put(experiment("big", trials=trials, max_trials=count, parallel=PARALLEL))
                conn.send(done)
            elif command == "count":
                conn.send(api.request_count())
            else:
                conn.send("bye")
                return


def watched(url: str, conn: Connection, refreshes: int) -> tuple[list[int], float, float]:
    """(server requests per refresh, seconds per refresh, tracemalloc peak MB) for KatibCluster.watch."""
    from fake_apiserver import api_client

    from katib_hp.backends.cluster import KatibCluster

    tracemalloc.start()
    cluster = KatibCluster(api_client(url), "default")
    snapshots = cluster.watch("big", interval=0.05)
    per_refresh, started = [], time.perf_counter()
    for step in range(refreshes + 1):
        conn.send("count")
        before = conn.recv()
        snapshot = next(snapshots)
        conn.send("count")
        per_refresh.append(conn.recv() - before)
        assert len(snapshot.trials) >= BATCH * step
        conn.send("advance")
        conn.recv()
    elapsed = (time.perf_counter() - started) / (refreshes + 1)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return per_refresh, elapsed, peak


def polled(url: str, conn: Connection, refreshes: int, count: int) -> tuple[list[int], float, float]:
    """The same numbers for a naive poller: GET the experiment, then GET each trial, every refresh."""
    from fake_apiserver import api_client
    from kubernetes import client

    tracemalloc.start()
    custom = client.CustomObjectsApi(api_client(url))
    per_refresh, started = [], time.perf_counter()
    for _ in range(refreshes + 1):
        conn.send("count")
        before = conn.recv()
        custom.get_namespaced_custom_object("kubeflow.org", "v1beta1", "default", "experiments", "big")
        trials = [custom.get_namespaced_custom_object("kubeflow.org", "v1beta1", "default", "trials", f"big-{i:05d}")
                  for i in range(count)]
        conn.send("count")
        per_refresh.append(conn.recv() - before)
        assert len(trials) == count
        conn.send("advance")
        conn.recv()
    elapsed = (time.perf_counter() - started) / (refreshes + 1)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return per_refresh, elapsed, peak


def run(kind: str, count: int, refreshes: int) -> tuple[list[int], float, float]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=serve, args=(child, count), daemon=True)
    process.start()
    url = parent.recv()
    try:
        if kind == "watch":
            return watched(url, parent, refreshes)
        return polled(url, parent, refreshes, count)
    finally:
        parent.send("stop")
        parent.recv()
        process.join(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--refreshes", type=int, default=5)
    args = parser.parse_args()
    import kubernetes.client  # noqa: F401  (imported before tracing, for both sides alike)

    import katib_hp.backends.cluster  # noqa: F401

    ours = run("watch", args.trials, args.refreshes)
    naive = run("poll", args.trials, args.refreshes)
    steady = ours[0][1:]  # after the first snapshot (which LISTs once)
    ours_rate = sum(steady) / len(steady)
    naive_rate = sum(naive[0]) / len(naive[0])
    print(f"{args.trials} trials, {args.refreshes} refreshes after the first, {BATCH} trials change per refresh")
    print(f"{'client':34} {'req/refresh':>11} {'first':>6} {'s/refresh':>10} {'peak MB':>8} {'vs naive req':>13}")
    print(f"{'naive poll (GET exp + GET each trial)':34} {naive_rate:11.1f} {naive[0][0]:6d} {naive[1]:10.3f} "
          f"{naive[2]:8.1f} {1.0:12.3f}x")
    print(f"{'KatibCluster.watch (LIST + WATCH)':34} {ours_rate:11.1f} {ours[0][0]:6d} {ours[1]:10.3f} "
          f"{ours[2]:8.1f} {ours_rate / naive_rate:12.4f}x")
    print("memory: tracemalloc peak of the client process while watching (server in a child process)")
    constant = max(steady) <= 6
    small = ours[2] < TARGET_MB
    print(f"target O(1) requests per refresh (<= 6, not {args.trials}): {'met' if constant else 'NOT met'}")
    print(f"target < {TARGET_MB:.0f} MB: {'met' if small else 'NOT met'}")
    return 0 if constant and small else 1


if __name__ == "__main__":
    raise SystemExit(main())
