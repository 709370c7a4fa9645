"""The Python API (katib_hp.Client) over real HTTP against the Kubernetes API mock server."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "backends"))

from fake_apiserver import ServerThread, api_client
from katib_objects import experiment, namespace, pod, suggestion, trial

from katib_hp import Client, ExperimentStatus
from katib_hp.api import LintFailed
from katib_hp.backends.cluster import KatibCluster
from katib_hp.client import ExperimentUnsuccessful, NoResult
from katib_hp.results import TrialState
from katib_hp.yamlio import load_yaml

MANIFEST = Path(__file__).resolve().parents[2] / "manifests" / "cpu" / "digits-bayes-cpu.yaml"


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread() as running:
        running.api.namespaces["default"] = namespace("default")
        yield running


@pytest.fixture
def client(server: ServerThread) -> Client:
    return Client(KatibCluster(api_client(server.url), "default", sleep=lambda s: None))


def test_submit_accepts_a_kubeflow_katib_model_and_returns_it(client: Client, server: ServerThread) -> None:
    from katib_hp.backends.cluster import to_sdk_experiment

    model = to_sdk_experiment(load_yaml(MANIFEST.read_text(), str(MANIFEST)))
    [submitted] = client.submit(model)
    assert submitted.name == "digits-bayes-cpu" and submitted.namespace == "default"
    back = client.experiment("digits-bayes-cpu", sdk=True)
    assert type(back).__name__ == "V1beta1Experiment"
    assert back.spec.algorithm.algorithm_name == "bayesianoptimization"


def test_submit_lints_and_sends_nothing_on_errors(client: Client, server: ServerThread) -> None:
    manifest = load_yaml(MANIFEST.read_text(), str(MANIFEST))
    manifest["spec"]["objective"]["objectiveMetricName"] = "val_acc"
    with pytest.raises(LintFailed, match="val_acc"):
        client.submit(manifest)
    assert server.api.request_count(lambda r: r.method.value == "POST") == 0


def test_wait_follows_an_experiment_to_success(client: Client, server: ServerThread) -> None:
    api = server.api
    trials = [trial("exp", "exp-0", {"lr": 0.01}, "Running"), trial("exp", "exp-1", {"lr": 0.02}, "Pending")]
    for made in trials:
        api.put(made)
    api.put(experiment("exp", trials=trials, max_trials=2))
    api.put(suggestion("exp"))

    def finish() -> None:
        time.sleep(0.4)
        done = [trial("exp", "exp-0", {"lr": 0.01}, "Succeeded", {"accuracy": 0.9}),
                trial("exp", "exp-1", {"lr": 0.02}, "Succeeded", {"accuracy": 0.95})]
        for made in done:
            api.put(made)
        api.put(experiment("exp", state="Succeeded", trials=done, max_trials=2))

    seen: list[ExperimentStatus] = []
    threading.Thread(target=finish, daemon=True).start()
    status = client.wait("exp", timeout=30, interval=0.1, on_update=lambda s, _: seen.append(s))
    assert seen[0].count(TrialState.RUNNING) == 1 and not seen[0].finished
    assert status.finished and status.best.name == "exp-1"  # type: ignore[union-attr]
    assert client.best("exp").parameters == {"lr": "0.02"}


def test_wait_raises_with_the_log_of_a_trial_without_metrics(client: Client, server: ServerThread) -> None:
    api = server.api
    failed = trial("exp", "exp-0", {"lr": 0.01}, "MetricsUnavailable")
    api.put(failed)
    api.put(pod(failed))
    api.logs[("default", "exp-0-x1y2z", "metrics-logger-and-collector")] = "epoch 1 accuracy: 0.91\n"
    api.put(experiment("exp", state="Succeeded", trials=[failed], max_trials=1))
    api.put(suggestion("exp", state="Succeeded"))
    with pytest.raises(ExperimentUnsuccessful, match="no trial succeeded") as raised:
        client.wait("exp", timeout=30, interval=0.1)
    text = "\n".join(raised.value.diagnostics)
    assert "exp-0" in text and "accuracy: 0.91" in text
    with pytest.raises(NoResult, match="no trial with the objective 'accuracy'"):
        client.best("exp")


def test_best_with_its_args_costs_two_requests(client: Client, server: ServerThread) -> None:
    manifest = load_yaml(MANIFEST.read_text(), str(MANIFEST))
    made = experiment("digits-bayes-cpu", state="Succeeded", objective="val_accuracy",
                      trials=[trial("digits-bayes-cpu", "digits-bayes-cpu-a", {"optimizer": "adam",
                                                                               "learning_rate": "0.02"},
                                    "Succeeded", {"val_accuracy": 0.95}, objective="val_accuracy")])
    made["spec"] = manifest["spec"]
    server.api.put(made)
    for each in made["status"]["succeededTrialList"]:
        server.api.put(trial("digits-bayes-cpu", each, {"optimizer": "adam", "learning_rate": "0.02"}, "Succeeded",
                             {"val_accuracy": 0.95}, objective="val_accuracy"))
    before = server.api.request_count()
    status, best, args = client.best_with_args("digits-bayes-cpu")
    assert server.api.request_count() - before == 2
    assert best.name == "digits-bayes-cpu-a" and status.best == best
    assert args[-2:] == ["--optimizer=adam", "--learning_rate=0.02"]
