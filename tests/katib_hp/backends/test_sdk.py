"""Interop with the kubeflow-katib SDK, against the API server over HTTP and a katib-db-manager over gRPC.

kubeflow-katib 0.19's deserializer breaks on labelled objects with kubernetes >= 36 (REFERENCE 7); these tests
pin that the calls we rely on work with the kubernetes client we ship.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from fake_apiserver import FakeKubeAPI, ServerThread
from katib_objects import experiment, trial

from katib_hp.backends.cluster import KatibCluster, as_dict, to_sdk_experiment
from katib_hp.backends.errors import Unreachable


@pytest.fixture
def katib_client(server: ServerThread) -> Any:
    from kubeflow.katib import KatibClient
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = server.url
    return KatibClient(client_configuration=configuration, namespace="default")


def test_sdk_reads_labelled_objects_with_our_kubernetes_client(katib_client: Any, api: FakeKubeAPI) -> None:
    made = [trial("mnist", f"mnist-{i}", {"lr": 0.1 * (i + 1)}, "Succeeded", {"accuracy": 0.8 + i / 100})
            for i in range(2)]
    for t in made:
        api.put(t)
    api.put(experiment("mnist", trials=made, labels={"team": "vision"}))
    trials = katib_client.list_trials("mnist")
    assert sorted(t.metadata.name for t in trials) == ["mnist-0", "mnist-1"]
    assert trials[0].metadata.labels == {"katib.kubeflow.org/experiment": "mnist"}
    got = katib_client.get_experiment("mnist")
    assert got.metadata.labels == {"team": "vision"}
    assert got.status.current_optimal_trial.best_trial_name == "mnist-1"
    assert katib_client.is_experiment_running("mnist") is True


def test_to_sdk_experiment_round_trips(api: FakeKubeAPI) -> None:
    made = trial("mnist", "mnist-0", {"lr": 0.1}, "Succeeded", {"accuracy": 0.9})
    source = experiment("mnist", trials=[made], labels={"team": "vision"}, max_failed=2)
    model = to_sdk_experiment(source)
    assert model.spec.max_trial_count == 12 and model.spec.max_failed_trial_count == 2
    assert model.metadata.labels == {"team": "vision"}
    assert model.status.current_optimal_trial.observation.metrics[0].latest == "0.9"
    back = as_dict(model)
    assert back["spec"] == source["spec"]
    assert back["metadata"]["labels"] == source["metadata"]["labels"]


def _servicer_base() -> type:
    from kubeflow.katib import katib_api_pb2_grpc

    return katib_api_pb2_grpc.DBManagerServicer  # type: ignore[no-any-return]


class _DBManager(_servicer_base()):  # type: ignore[misc]
    """A katib-db-manager that knows one trial's observation log."""

    def __init__(self) -> None:
        from kubeflow.katib import katib_api_pb2 as pb

        self.pb = pb
        self.asked: list[str] = []

    def GetObservationLog(self, request: Any, context: Any) -> Any:
        self.asked.append(request.trial_name)
        logs = [self.pb.MetricLog(time_stamp=f"2026-01-01T00:00:0{i}Z",
                                  metric=self.pb.Metric(name="accuracy", value=str(0.5 + i / 10)))
                for i in range(3)]
        return self.pb.GetObservationLogReply(observation_log=self.pb.ObservationLog(metric_logs=logs))


@pytest.fixture
def db_manager() -> Iterator[tuple[str, _DBManager]]:
    from kubeflow.katib import katib_api_pb2_grpc

    servicer = _DBManager()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    katib_api_pb2_grpc.add_DBManagerServicer_to_server(servicer, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    yield f"127.0.0.1:{port}", servicer
    grpc_server.stop(None)


def test_trial_metrics_reads_the_full_series(cluster: KatibCluster, db_manager: tuple[str, _DBManager]) -> None:
    address, servicer = db_manager
    series = cluster.trial_metrics("mnist-0", db_manager_address=address, timeout=5)
    assert series == [{"time_stamp": f"2026-01-01T00:00:0{i}Z", "name": "accuracy", "value": str(0.5 + i / 10)}
                      for i in range(3)]
    assert servicer.asked == ["mnist-0"]


def test_trial_metrics_unreachable_says_how_to_port_forward(cluster: KatibCluster) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Unreachable, match="kubectl port-forward svc/katib-db-manager -n kubeflow 6789") as info:
        cluster.trial_metrics("mnist-0", db_manager_address=f"127.0.0.1:{port}", timeout=1)
    assert f"katib-db-manager at 127.0.0.1:{port}" in str(info.value)
