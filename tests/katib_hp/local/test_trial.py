"""A trial's command, environment and paths on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from katib_hp.local.collect import CollectorKind, CollectorSpec
from katib_hp.local.trial import TrialBuilder, check_template, flag_value, is_trainer, remap


def manifest(command: list[str], args: list[str], **container: Any) -> dict[str, Any]:
    main = {"name": "main", "image": "x", "command": command, "args": args, **container}
    return {"metadata": {"name": "exp", "labels": {"team": "a"}}, "spec": {
        "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "1"}}],
        "trialTemplate": {"primaryContainerName": "main", "trialParameters": [{"name": "lr", "reference": "lr"}],
                          "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {
                              "backoffLimit": 0, "activeDeadlineSeconds": 30,
                              "template": {"spec": {"containers": [main]}}}}}}}


def builder(doc: dict[str, Any], tmp_path: Path, collector: CollectorSpec | None = None) -> TrialBuilder:
    environ = {"PATH": "/usr/bin", "HOME": "/home/u", "LC_ALL": "C", "AWS_SECRET_ACCESS_KEY": "s3cret"}
    return TrialBuilder(doc, collector=collector or CollectorSpec(), python="/venv/bin/python", environ=environ,
                        base_dir=tmp_path)


def test_command_env_and_paths(tmp_path: Path) -> None:
    doc = manifest(["python3", "-u", "-m", "trainer"],
                   ["--lr=${trialParameters.lr}", "--metrics-file=/var/log/katib/metrics.log",
                    "--save-model=/models/m.keras", "--other=/models2/x"],
                   env=[{"name": "MODE", "value": "fast"}, {"name": "TOKEN", "valueFrom": {"secretKeyRef": {}}}],
                   volumeMounts=[{"name": "m", "mountPath": "/models"}])
    collector = CollectorSpec(CollectorKind.FILE, "/var/log/katib/metrics.log")
    build = builder(doc, tmp_path, collector)
    trial = tmp_path / "trials" / "exp-a"
    plan = build.build("exp-a", trial, {"lr": "0.5"})
    files = trial / "files"
    assert plan.argv == ("/venv/bin/python", "-u", "-m", "trainer", "--lr=0.5",
                         f"--metrics-file={files}/var/log/katib/metrics.log", f"--save-model={files}/models/m.keras",
                         "--other=/models2/x", f"--checkpoint-dir={trial / 'checkpoints'}")
    assert plan.metrics_source == files / "var/log/katib/metrics.log"
    assert (files / "models").is_dir()
    assert plan.env["KATIB_TRIAL_NAME"] == "exp-a" and plan.env["MODE"] == "fast" and plan.env["LC_ALL"] == "C"
    assert "AWS_SECRET_ACCESS_KEY" not in plan.env and "TOKEN" not in plan.env
    assert plan.env["PATH"] == "/venv/bin:/usr/bin" and plan.env["PYTHONPATH"] == str(tmp_path)
    assert (plan.deadline_seconds, plan.backoff_limit) == (30.0, 0)
    assert plan.labels == {"team": "a", "katib.kubeflow.org/experiment": "exp"}
    assert any("valueFrom" in n for n in build.notes)


def test_notes_are_known_before_the_first_trial(tmp_path: Path) -> None:
    doc = manifest(["python", "-m", "trainer"], ["--lr=${trialParameters.lr}"],
                   volumeMounts=[{"name": "d", "mountPath": "/data"}])
    notes = builder(doc, tmp_path).notes
    assert "container path /data is mapped to trials/<trial>/files/data" in notes
    assert "`python` in the trial command runs /venv/bin/python" in notes


def test_a_promotion_resumes_from_the_parent_checkpoint(tmp_path: Path) -> None:
    parent = tmp_path / "parent" / "checkpoints"
    parent.mkdir(parents=True)
    (parent / "state.json").write_text("{}")
    doc = manifest(["katib-hp-trainer"], ["--lr=${trialParameters.lr}", "--checkpoint-dir=/ckpt"])
    plan = builder(doc, tmp_path).build("exp-b", tmp_path / "b", {"lr": "0.5"}, parent="exp-a", parent_resource=3,
                                         parent_checkpoint=parent)
    assert plan.argv[:3] == ("/venv/bin/python", "-m", "trainer")
    assert flag_value(plan.argv, "--checkpoint-dir") == "/ckpt"  # the user's own is kept
    assert flag_value(plan.argv, "--resume-from") == str(parent)
    assert flag_value(plan.argv, "--initial-epoch") == "3"


def test_another_program_restarts_a_promotion_from_zero(tmp_path: Path) -> None:
    doc = manifest(["python", "train.py"], ["--lr=${trialParameters.lr}"])
    (tmp_path / "train.py").write_text("")
    build = builder(doc, tmp_path)
    plan = build.build("exp-b", tmp_path / "b", {"lr": "0.5"}, parent="exp-a", parent_resource=3)
    assert plan.argv == ("/venv/bin/python", str(tmp_path / "train.py"), "--lr=0.5")
    assert any("restart from epoch 0" in n for n in build.notes)


@pytest.mark.parametrize(("text", "expected"), [
    ("--out=/ckpt/x", "--out=LOCAL/x"), ("/ckpt", "LOCAL"), ("--out=/ckpt2", "--out=/ckpt2"),
    ("sh -c 'cp a /ckpt/b'", "sh -c 'cp a LOCAL/b'"), ("/data/ckpt", "/data/ckpt"),
])
def test_remap_replaces_whole_path_prefixes(text: str, expected: str) -> None:
    assert remap(text, {"/ckpt": Path("LOCAL")}) == expected


def test_trainer_detection_and_limits() -> None:
    assert is_trainer(["python", "-u", "-m", "trainer", "--epochs=1"])
    assert is_trainer(["/usr/local/bin/katib-hp-trainer"])
    assert not is_trainer(["python", "-m", "trainer_v2"])
    limits, notes = check_template({"trialTemplate": {"trialSpec": {"apiVersion": "batch/v1", "kind": "Job",
                                                                    "spec": {}}}})
    assert limits.backoff_limit == 6 and "backoffLimit" in notes[0]
    limits, notes = check_template({"trialTemplate": {"trialSpec": {
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob", "spec": {"tfReplicaSpecs": {"Worker": {"replicas": 1}}}}}})
    assert limits.backoff_limit == 0 and "one replica" in notes[0]
