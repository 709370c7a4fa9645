"""Trial template substitution, as Katib's controller does it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from katib_hp.substitute import SubstitutionError, substitute, trial_command
from katib_hp.yamlio import load_yaml

MANIFEST = Path(__file__).resolve().parents[2] / "manifests" / "cpu" / "digits-bayes-cpu.yaml"


@pytest.fixture
def spec() -> dict:
    return copy.deepcopy(load_yaml(MANIFEST.read_text(), str(MANIFEST))["spec"])


def test_command_of_a_generated_manifest(spec):
    argv = trial_command(spec, {"optimizer": "adam", "learning_rate": "0.0123"})
    assert argv[:4] == ["python", "-u", "-m", "trainer"]
    assert "--optimizer=adam" in argv and "--learning_rate=0.0123" in argv
    assert not any("${" in a for a in argv)


def test_run_spec_is_named_after_the_trial(spec):
    run = substitute(spec, {"optimizer": "adam", "learning_rate": "0.1"}, trial_name="t-1", namespace="ns")
    assert run["metadata"] == {"name": "t-1", "namespace": "ns"}
    assert run["kind"] == "Job"


def test_metadata_references(spec):
    spec["trialTemplate"]["trialParameters"].append({"name": "trialName", "reference": "${trialSpec.Name}"})
    spec["trialTemplate"]["trialParameters"].append({"name": "team", "reference": "${trialSpec.Labels[team]}"})
    spec["trialTemplate"]["trialSpec"]["metadata"] = {"labels": {"team": "vision"}}
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["args"] += ["--run-name=${trialParameters.trialName}", "--team=${trialParameters.team}"]
    argv = trial_command(spec, {"optimizer": "adam", "learning_rate": "0.1"}, trial_name="exp-abc")
    assert "--run-name=exp-abc" in argv and "--team=vision" in argv


def test_missing_label_reference_is_an_error(spec):
    spec["trialTemplate"]["trialParameters"].append({"name": "x", "reference": "${trialSpec.Labels[nope]}"})
    with pytest.raises(SubstitutionError, match="no label 'nope'"):
        trial_command(spec, {"optimizer": "adam", "learning_rate": "0.1"})


def test_unreferenced_assignment_is_an_error(spec):
    with pytest.raises(SubstitutionError, match="extra"):
        trial_command(spec, {"optimizer": "adam", "learning_rate": "0.1", "extra": "1"})


def test_quotes_in_values_cannot_break_the_template(spec):
    argv = trial_command(spec, {"optimizer": 'a"b\\c', "learning_rate": "0.1"})
    assert '--optimizer=a"b\\c' in argv
