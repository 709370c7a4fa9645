"""katib_hp.estimate: trials, peak pods and GPUs, epochs and GPU-hours, from compiled and hand-written manifests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from katib_hp.compile import compile
from katib_hp.config import load_config
from katib_hp.errors import ConfigError
from katib_hp.estimate import Estimate, estimate
from katib_hp.manifest import to_manifest

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"


def compiled(stem: str) -> dict[str, Any]:
    (result,) = compile(load_config(CONFIGS / f"{stem}.yaml"))
    return to_manifest(result.experiment)


def hand_written(**spec: Any) -> dict[str, Any]:
    """A minimal Experiment as a person would write it (Katib's random example, trimmed)."""
    container = {"name": "training-container", "image": "docker.io/me/mnist:1", "command": ["python", "/opt/m.py"],
                 "args": ["--lr=${trialParameters.learningRate}", "--epochs", "4"],
                 "resources": {"limits": {"nvidia.com/gpu": "2"}}}
    body: dict[str, Any] = {
        "algorithm": {"algorithmName": "random"},
        "maxTrialCount": 12,
        "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}}],
        "trialTemplate": {
            "primaryContainerName": "training-container",
            "trialParameters": [{"name": "learningRate", "reference": "lr"}],
            "trialSpec": {"apiVersion": "batch/v1", "kind": "Job",
                          "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}}},
        },
    }
    body.update(spec)
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "x"}, "spec": body}


def numbers(result: Estimate) -> tuple[Any, ...]:
    return (result.trials, result.peak_parallel_trials, result.pods_per_trial, result.peak_pods,
            result.gpus_per_trial, result.peak_gpus, result.total_epochs, result.gpu_hours)


def test_job_with_fixed_epochs() -> None:
    result = estimate(compiled("digits-bayes"), epoch_seconds=30)
    assert numbers(result) == (12, 3, 1, 3, 1, 3, 60, 0.5)
    assert not result.total_epochs_is_upper_bound
    assert "gpu_hours = 60 epochs × 30 s × 1 GPU per trial / 3600" in result.notes


def test_tfjob_counts_every_replica_and_its_gpus() -> None:
    result = estimate(compiled("tfjob"), epoch_seconds=60)
    # 1 Chief + 2 Workers, 2 GPUs each; 2 trials at once; 8 trials x 10 epochs.
    assert numbers(result) == (8, 2, 3, 6, 6, 12, 80, 8.0)
    assert "TFJob Worker: 2 pods × 2 GPU per pod" in result.notes


def test_hyperband_counts_the_first_bracket() -> None:
    result = estimate(compiled("hyperband"), epoch_seconds=120)
    # r_l=9, eta=3: maxTrialCount = parallelTrialCount = 9 trials of int(9 * 3^-2) = 1 epoch.
    assert numbers(result) == (9, 9, 1, 9, 1, 9, 9, 0.3)
    assert any(n.startswith("hyperband r_l=9, eta=3: 9 trials in rung order") for n in result.notes)


def test_hyperband_without_max_trials_counts_the_whole_first_bracket() -> None:
    manifest = compiled("hyperband")
    del manifest["spec"]["maxTrialCount"]
    result = estimate(manifest)
    assert (result.trials, result.total_epochs) == (13, 27)  # 9x1 + 3x3 + 1x9
    manifest["spec"]["maxTrialCount"] = 12
    assert (estimate(manifest).trials, estimate(manifest).total_epochs) == (12, 18)


def test_hyperband_with_another_resource_leaves_epochs_unknown() -> None:
    manifest = compiled("hyperband")
    for setting in manifest["spec"]["algorithm"]["algorithmSettings"]:
        if setting["name"] == "resource_name":
            setting["value"] = "steps"
    result = estimate(manifest)
    assert result.trials == 9 and result.total_epochs is None
    assert "hyperband's resource 'steps' is not the trainer's --epochs: epochs unknown" in result.notes


def test_searched_epochs_give_an_upper_bound() -> None:
    result = estimate(compiled("tfevent"), epoch_seconds=10)
    assert (result.trials, result.total_epochs, result.total_epochs_is_upper_bound) == (6, 60, True)
    assert result.gpus_per_trial == 0 and result.gpu_hours == 0.0
    assert "up to 10 epochs per trial (the maximum of the searched epochs parameter)" in result.notes
    assert "no GPUs requested (no nvidia.com/gpu limits in the trial template)" in result.notes


def test_hand_written_manifest() -> None:
    result = estimate(hand_written(), epoch_seconds=90)
    assert numbers(result) == (12, 3, 1, 3, 2, 6, 48, 2.4)
    assert "parallelTrialCount is not set: Katib defaults it to 3" in result.notes


def test_peak_parallelism_is_capped_by_max_trials() -> None:
    result = estimate(hand_written(parallelTrialCount=5, maxTrialCount=2))
    assert (result.peak_parallel_trials, result.peak_gpus, result.trials) == (2, 4, 2)


def test_without_max_trials_the_totals_are_unknown() -> None:
    manifest = hand_written()
    del manifest["spec"]["maxTrialCount"]
    result = estimate(manifest, epoch_seconds=10)
    assert (result.trials, result.total_epochs, result.gpu_hours) == (0, None, None)
    assert any("maxTrialCount is not set" in n for n in result.notes)


def test_unknown_epochs_leave_gpu_hours_unknown() -> None:
    manifest = hand_written()
    manifest["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["args"] = []
    result = estimate(manifest, epoch_seconds=10)
    assert result.total_epochs is None and result.gpu_hours is None
    assert "epochs per trial unknown: no --epochs argument in the primary container" in result.notes


def test_other_training_operator_kinds_count_their_replicas() -> None:
    manifest = hand_written()
    pod = manifest["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]
    manifest["spec"]["trialTemplate"]["trialSpec"] = {
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": pod},
                                         "Worker": {"replicas": 3, "template": copy.deepcopy(pod)}}}}
    result = estimate(manifest)
    assert (result.pods_per_trial, result.gpus_per_trial, result.peak_gpus) == (4, 8, 24)


def test_configmap_templates_are_assumed_one_pod_without_gpus() -> None:
    manifest = hand_written()
    manifest["spec"]["trialTemplate"] = {"primaryContainerName": "c", "configMap": {"configMapName": "t"}}
    result = estimate(manifest)
    assert (result.pods_per_trial, result.gpus_per_trial) == (1, 0)
    assert "the trial template is not inline (trialSpec): assuming 1 pod and no GPUs per trial" in result.notes


@pytest.mark.parametrize(("manifest", "kwargs", "expected"), [
    ({"kind": "Trial"}, {}, "kind: not a Katib Experiment"),
    ({"kind": "Experiment"}, {}, "spec: the Experiment has no spec"),
    (None, {"epoch_seconds": -1.0}, "epoch_seconds: must be a positive number of seconds"),
])
def test_errors(manifest: Any, kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        estimate(manifest if manifest is not None else hand_written(), **kwargs)
