"""KatibCluster against a Kubernetes API server over real HTTP: CRUD, errors, resume, namespaces, logs."""

from __future__ import annotations

import socket

import kmock
import pytest
from fake_apiserver import FakeKubeAPI, ServerThread, api_client
from katib_objects import experiment, namespace, pod, suggestion, trial

from katib_hp.backends.cluster import KatibCluster, to_sdk_experiment
from katib_hp.backends.errors import (
    AdmissionDenied,
    AlreadyExists,
    ClusterError,
    Forbidden,
    KatibNotInstalled,
    NotFound,
    ResumeRefused,
    Unreachable,
)

EXPERIMENTS = kmock.resource("kubeflow.org", "v1beta1", "experiments")
DENIAL = ('admission webhook "validator.experiment.katib.kubeflow.org" denied the request: '
          "spec.parallelTrialCount: Invalid value: 3: should be less than or equal to spec.maxTrialCount")


def new_manifest(name: str = "mnist") -> dict:
    made = experiment(name)
    del made["status"]
    return made


def posts(api: FakeKubeAPI) -> int:
    return api.request_count(lambda r: r.method.value == "POST")


def test_create_then_get_list_delete(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    created = cluster.create_experiment(new_manifest())
    assert created["metadata"]["resourceVersion"]
    assert cluster.get_experiment("mnist")["spec"]["maxTrialCount"] == 12
    assert [e["metadata"]["name"] for e in cluster.list_experiments()] == ["mnist"]
    cluster.delete_experiment("mnist")
    with pytest.raises(NotFound, match="experiment 'mnist' not found in namespace 'default'") as info:
        cluster.get_experiment("mnist")
    assert info.value.exit_code == 4


def test_dry_run_sends_dry_run_all_and_stores_nothing(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    cluster.create_experiment(new_manifest(), dry_run=True)
    assert [r.params.get("dryRun") for r in api if r.method.value == "POST"] == ["All"]
    assert cluster.list_experiments() == []


def test_create_accepts_a_kubeflow_katib_model(cluster: KatibCluster) -> None:
    model = to_sdk_experiment(new_manifest("from-sdk"))
    assert type(model).__name__ == "V1beta1Experiment"
    cluster.create_experiment(model)
    stored = cluster.get_experiment("from-sdk")
    assert stored["spec"]["objective"]["objectiveMetricName"] == "accuracy"
    assert stored["metadata"]["labels"] == {"app": "katib-hp"}


def test_webhook_denial_is_shown_verbatim_and_not_retried(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    api[kmock.method.POST, EXPERIMENTS] << kmock.KubernetesError(status=403, reason="Forbidden", message=DENIAL)
    with pytest.raises(AdmissionDenied) as info:
        cluster.create_experiment(new_manifest())
    assert str(info.value) == DENIAL
    assert info.value.exit_code == 6
    assert posts(api) == 1


def test_rbac_forbidden_names_verb_resource_namespace(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    message = ('experiments.kubeflow.org is forbidden: User "alice" cannot create resource "experiments" in API '
               'group "kubeflow.org" in the namespace "default"')
    api[kmock.method.POST, EXPERIMENTS] << kmock.KubernetesError(status=403, reason="Forbidden", message=message)
    with pytest.raises(Forbidden) as info:
        cluster.create_experiment(new_manifest())
    text = str(info.value)
    assert "not allowed to create experiments.kubeflow.org in namespace 'default'" in text
    assert "kubectl auth can-i create experiments.kubeflow.org -n default" in text
    assert info.value.exit_code == 7


def test_unauthorized_asks_for_fresh_credentials(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    api[EXPERIMENTS] << kmock.KubernetesError(status=401, reason="Unauthorized", message="Unauthorized")
    with pytest.raises(Forbidden, match="rejected the credentials to list"):
        cluster.list_experiments()


def test_missing_crd_is_katib_not_installed(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    api.missing_groups.add("kubeflow.org")
    with pytest.raises(KatibNotInstalled, match=r"does not serve experiments.kubeflow.org") as info:
        cluster.create_experiment(new_manifest())
    assert "install Katib" in str(info.value)
    with pytest.raises(KatibNotInstalled):
        cluster.get_experiment("mnist")


def test_conflict_says_how_to_replace(cluster: KatibCluster) -> None:
    cluster.create_experiment(new_manifest())
    with pytest.raises(AlreadyExists) as info:
        cluster.create_experiment(new_manifest())
    assert str(info.value) == ("experiment 'mnist' already exists in namespace 'default'; delete it with "
                               "`katib-hp delete mnist` or submit with --overwrite")
    assert info.value.exit_code == 5


def test_overwrite_deletes_waits_until_gone_then_creates(cluster: KatibCluster, api: FakeKubeAPI,
                                                         sleeps: list[float]) -> None:
    cluster.create_experiment(new_manifest())
    api.linger_deletes = 2  # finalizers keep it visible for a few more reads
    changed = new_manifest()
    changed["spec"]["maxTrialCount"] = 20
    cluster.create_experiment(changed, overwrite=True)
    assert cluster.get_experiment("mnist")["spec"]["maxTrialCount"] == 20
    assert len(sleeps) >= 2  # it waited for the old one to go
    assert posts(api) == 3  # the first create, the refused one, the replacement


def test_connection_refused_retries_reads_but_never_create(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    cluster = KatibCluster(api_client(f"http://127.0.0.1:{port}"), "default", sleep=sleeps)
    with pytest.raises(Unreachable, match=rf"cannot reach the Kubernetes API server at http://127.0.0.1:{port}"):
        cluster.get_experiment("mnist")
    assert len(sleeps) == 2 and cluster.requests == 3  # three tries, backing off in between
    sleeps.clear()
    with pytest.raises(Unreachable) as info:
        cluster.create_experiment(new_manifest())
    assert sleeps == [] and info.value.exit_code == 9


def test_server_errors_on_reads_are_retried(cluster: KatibCluster, api: FakeKubeAPI, sleeps: list[float]) -> None:
    cluster.create_experiment(new_manifest())
    api[kmock.method.GET, EXPERIMENTS][:1] << kmock.KubernetesError(status=503, reason="ServiceUnavailable",
                                                                    message="etcdserver: leader changed")
    assert cluster.get_experiment("mnist")["metadata"]["name"] == "mnist"
    assert sleeps == [0.5]


def test_trials_and_suggestion_by_label(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    api.put(trial("mnist", "mnist-b", {"lr": 0.1}, created="2026-01-01T00:02:00Z"))
    api.put(trial("mnist", "mnist-a", {"lr": 0.2}, created="2026-01-01T00:01:00Z"))
    api.put(trial("other", "other-a", {"lr": 0.3}))
    assert [t["metadata"]["name"] for t in cluster.list_trials("mnist")] == ["mnist-a", "mnist-b"]
    assert cluster.get_suggestion("mnist") is None
    api.put(suggestion("mnist"))
    assert cluster.get_suggestion("mnist")["status"]["suggestionCount"] == 3  # type: ignore[index]


def test_snapshot_costs_four_requests_whatever_the_trial_count(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    trials = [trial("big", f"big-{i:04d}", {"lr": i / 1000}, "Succeeded", {"accuracy": i / 100}) for i in range(60)]
    for made in trials:
        api.put(made)
        api.put(pod(made, phase="Succeeded", suffix=f"p{made['metadata']['name'][-4:]}"))
    api.put(experiment("big", trials=trials, max_trials=60))
    api.put(suggestion("big"))
    before = api.request_count()
    snap = cluster.snapshot("big")
    assert snap.requests == 4 == api.request_count() - before
    assert len(snap.trials) == 60 and len(snap.pods) == 60
    assert snap.experiment["status"]["currentOptimalTrial"]["bestTrialName"] == "big-0059"


@pytest.mark.parametrize(("state", "reason", "policy", "new_max", "expected"), [
    ("Succeeded", "ExperimentMaxTrialsReached", "Never", 20, "resumePolicy Never"),
    ("Succeeded", "ExperimentGoalReached", "LongRunning", 20, "reason ExperimentGoalReached"),
    ("Failed", None, "LongRunning", 20, "cannot restart a failed experiment"),
    ("Succeeded", "ExperimentMaxTrialsReached", "LongRunning", 12, "must be larger than the current 12"),
], ids=["policy-never", "goal-reached", "failed", "not-larger"])
def test_resume_refused_with_the_reason(cluster: KatibCluster, api: FakeKubeAPI, state: str, reason: str | None,
                                        policy: str, new_max: int, expected: str) -> None:
    api.put(experiment("mnist", state=state, reason=reason, resume_policy=policy, max_trials=12))
    with pytest.raises(ResumeRefused, match=expected) as info:
        cluster.resume("mnist", new_max)
    assert "submit a new experiment" in str(info.value) or "pass a number above" in str(info.value)
    assert api.request_count(lambda r: r.method.value == "PATCH") == 0


@pytest.mark.parametrize("policy", ["LongRunning", "FromVolume"])
def test_resume_patches_the_budget(cluster: KatibCluster, api: FakeKubeAPI, policy: str) -> None:
    api.put(experiment("mnist", state="Succeeded", resume_policy=policy, max_trials=12))
    patched = cluster.resume("mnist", 20, parallel_trial_count=4, max_failed_trial_count=3)
    assert patched["spec"]["maxTrialCount"] == 20
    sent = [r for r in api if r.method.value == "PATCH"]
    assert [r.data for r in sent] == [{"spec": {"maxTrialCount": 20, "parallelTrialCount": 4,
                                                "maxFailedTrialCount": 3}}]
    assert sent[0].headers["Content-Type"] == "application/merge-patch+json"


def test_namespace_label_detection_and_labelling(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    assert cluster.namespace_is_labelled() is True
    api.namespaces["team-a"] = namespace("team-a", labelled=False)
    assert cluster.namespace_is_labelled("team-a") is False
    cluster.label_namespace("team-a")
    assert cluster.namespace_is_labelled("team-a") is True
    assert api.namespaces["team-a"]["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team-a"
    with pytest.raises(NotFound, match="namespace 'nowhere' not found"):
        cluster.namespace_is_labelled("nowhere")


def test_logs_come_from_the_sidecar_with_the_stdout_collector(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    made = trial("mnist", "mnist-a", {"lr": 0.1}, "Succeeded", {"accuracy": 0.9})
    api.put(made)
    api.put(pod(made))
    api.logs[("default", "mnist-a-x1y2z", "metrics-logger-and-collector")] = "epoch 1\naccuracy=0.9\n"
    api.logs[("default", "mnist-a-x1y2z", "training-container")] = ""
    assert cluster.trial_logs(made) == "epoch 1\naccuracy=0.9\n"
    assert cluster.trial_logs(made, tail_lines=1) == "accuracy=0.9\n"


def test_logs_come_from_the_primary_container_otherwise(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    made = trial("mnist", "mnist-a", {"lr": 0.1}, collector="File", primary_container="trainer",
                 primary_pod_labels={"training.kubeflow.org/replica-type": "master"})
    api.put(made)
    api.put(pod(made))
    api.put(pod(made, suffix="worker") | {"metadata": {**pod(made, suffix="worker")["metadata"],
                                                       "labels": {"katib.kubeflow.org/trial": "mnist-a"}}})
    api.logs[("default", "mnist-a-x1y2z", "trainer")] = "hello from the trainer\n"
    assert cluster.trial_logs(made) == "hello from the trainer\n"
    assert "labelSelector" in [r for r in api if r.url.path.endswith("/pods")][-1].params
    assert "training.kubeflow.org/replica-type=master" in \
        [r for r in api if r.url.path.endswith("/pods")][-1].params["labelSelector"]


def test_logs_say_when_the_pod_is_gone(cluster: KatibCluster) -> None:
    made = trial("mnist", "mnist-a", {"lr": 0.1}, "Succeeded", {"accuracy": 0.9})
    with pytest.raises(NotFound, match=r"trial 'mnist-a' has no pod left.*trialTemplate.retain"):
        cluster.trial_logs(made)


def test_errors_are_cluster_errors_with_one_line(cluster: KatibCluster) -> None:
    with pytest.raises(ClusterError) as info:
        cluster.delete_experiment("ghost")
    assert "\n" not in str(info.value)


def test_other_namespaces_are_separate(server: ServerThread, api: FakeKubeAPI, sleeps: list[float]) -> None:
    api.put(experiment("mnist", namespace="team-b"))
    cluster = KatibCluster(api_client(server.url), "team-b", sleep=sleeps)
    assert cluster.get_experiment("mnist")["metadata"]["namespace"] == "team-b"
    assert KatibCluster(api_client(server.url), "default", sleep=sleeps).list_experiments() == []
