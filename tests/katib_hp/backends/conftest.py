"""Fixtures: a Kubernetes API server over real HTTP (kmock), and a KatibCluster pointed at it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_apiserver import FakeKubeAPI, ServerThread, api_client
from katib_objects import namespace

from katib_hp.backends.cluster import KatibCluster


class Sleeps(list[float]):
    """An injected ``sleep`` that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(FakeKubeAPI()) as running:
        running.api.namespaces["default"] = namespace("default")
        yield running


@pytest.fixture
def api(server: ServerThread) -> FakeKubeAPI:
    return server.api


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def cluster(server: ServerThread, sleeps: Sleeps) -> KatibCluster:
    return KatibCluster(api_client(server.url), "default", sleep=sleeps)
