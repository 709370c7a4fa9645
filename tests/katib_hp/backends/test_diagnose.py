"""Diagnostics: why trials hang or fail, from a snapshot taken over real HTTP."""

from __future__ import annotations

from fake_apiserver import FakeKubeAPI
from katib_objects import experiment, namespace, pod, suggestion, trial

from katib_hp.backends.cluster import KatibCluster, diagnose

GPU_MESSAGE = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available."


def test_a_running_trial_whose_pod_waits_for_a_gpu(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    stuck = trial("gpu", "gpu-a", {"lr": 0.1}, "Running")
    fine = trial("gpu", "gpu-b", {"lr": 0.2}, "Running")
    for made in (stuck, fine):
        api.put(made)
    api.put(pod(stuck, phase="Pending", unschedulable=GPU_MESSAGE))
    api.put(pod(fine))
    api.put(experiment("gpu", trials=[stuck, fine]))
    found = cluster.diagnose(cluster.snapshot("gpu"))
    assert [d.subject for d in found] == ["trial 'gpu-a' (pod 'gpu-a-x1y2z')"]
    assert f"Pending, Katib still shows it Running: {GPU_MESSAGE}" in found[0].message
    assert "lower parallelTrialCount" in found[0].hint


def test_an_image_that_cannot_be_pulled(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    made = trial("img", "img-a", {"lr": 0.1}, "Running")
    api.put(made)
    api.put(pod(made, phase="Pending", waiting=("ImagePullBackOff", 'Back-off pulling image "example/trainer:1"')))
    api.put(experiment("img", trials=[made]))
    text = [str(d) for d in diagnose(cluster.snapshot("img"))]
    assert text == ["trial 'img-a' (pod 'img-a-x1y2z'): container 'training-container' is waiting: "
                    'ImagePullBackOff: Back-off pulling image "example/trainer:1"; check the image name and tag '
                    "and that the nodes can pull it (with kind: `kind load docker-image`)"]


def test_metrics_unavailable_with_the_log_shows_the_print_format(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    made = trial("fmt", "fmt-a", {"lr": 0.1}, "MetricsUnavailable", objective="val_accuracy")
    api.put(made)
    api.put(pod(made, phase="Succeeded"))
    api.logs[("default", "fmt-a-x1y2z", "metrics-logger-and-collector")] = (
        "Epoch 1/2\nloss: 0.52\nEpoch 2/2\nval_accuracy: 0.91\n")
    api.put(experiment("fmt", trials=[made], objective="val_accuracy"))
    snap = cluster.snapshot("fmt")
    quiet = cluster.diagnose(snap)  # without logs: no log request
    assert api.request_count(lambda r: r.url.path.endswith("/log")) == 0
    assert "objective 'val_accuracy'" in quiet[0].message
    loud = cluster.diagnose(snap, with_logs=True)
    assert "printed in a form the collector does not parse: 'val_accuracy: 0.91'" in loud[0].message
    assert "Last log lines: Epoch 1/2 | loss: 0.52 | Epoch 2/2 | val_accuracy: 0.91" in loud[0].hint


def test_metrics_unavailable_when_the_metric_is_never_printed(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    made = trial("quiet", "quiet-a", {"lr": 0.1}, "MetricsUnavailable")
    api.put(made)
    api.put(pod(made, phase="Succeeded"))
    api.logs[("default", "quiet-a-x1y2z", "metrics-logger-and-collector")] = "training done\n"
    api.put(experiment("quiet", trials=[made]))
    found = cluster.diagnose(cluster.snapshot("quiet"), with_logs=True)
    assert found[0].message.endswith("the log never mentions it")
    assert "print it as one line `accuracy=<number>`" in found[0].hint


def test_a_failed_suggestion_gives_its_message(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    message = "Validation failed: random_state must be a non-negative integer, got -1"
    api.put(experiment("bad", state="Failed", message="Experiment has failed because Suggestion has failed"))
    api.put(suggestion("bad", state="Failed", message=message))
    found = [str(d) for d in cluster.diagnose(cluster.snapshot("bad"))]
    assert found == [f"suggestion 'bad': failed: {message}; fix the algorithm settings (`katib-hp validate` "
                     "checks them) and submit again"]


def test_a_namespace_without_the_injection_label(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    api.namespaces["default"] = namespace("default", labelled=False)
    api.put(experiment("plain"))
    found = cluster.diagnose(cluster.snapshot("plain"))
    assert found[0].subject == "namespace 'default'"
    assert "kubectl label namespace default katib.kubeflow.org/metrics-collector-injection=enabled" in found[0].hint


def test_a_healthy_experiment_has_no_findings(cluster: KatibCluster, api: FakeKubeAPI) -> None:
    made = trial("ok", "ok-a", {"lr": 0.1}, "Succeeded", {"accuracy": 0.9})
    api.put(made)
    api.put(experiment("ok", trials=[made], state="Succeeded"))
    api.put(suggestion("ok", state="Succeeded"))
    assert cluster.diagnose(cluster.snapshot("ok")) == []
