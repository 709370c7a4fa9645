"""katib_hp.lint as a whole: files, documents, YAML errors, defaulting, Katib-shaped examples, robustness."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from katib_hp.lint import apply_defaults, validate, validate_file, validate_text
from katib_hp.lint.defaults import (
    JOB_SUCCESS,
    KUBEFLOW_FAILURE,
    KUBEFLOW_SUCCESS,
    TRAINJOB_PRIMARY_POD_LABELS,
)
from katib_hp.problems import Problem, Severity
from katib_hp.yamlio import dump_yaml, load_yaml

DATA = Path(__file__).resolve().parent.parent / "data" / "lint"
ROOT = Path(__file__).resolve().parents[2]


def base() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml((DATA / "valid-bayes.yaml").read_text(), "valid-bayes.yaml")
    return loaded


def show(problems: list[Problem]) -> str:
    return "\n".join(p.render() for p in problems)


def serious(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity is not Severity.NOTE]


# ------------------------------------------------------------------------------------------- fixtures
def test_valid_bayes_file_has_no_errors_or_warnings() -> None:
    problems = validate_file(DATA / "valid-bayes.yaml")
    assert serious(problems) == [], show(problems)
    assert all(p.source == str(DATA / "valid-bayes.yaml") for p in problems)


@pytest.mark.parametrize("name", ["katib-random.yaml", "katib-hyperband.yaml", "katib-tfjob.yaml"])
def test_katib_shaped_examples_have_no_errors(name: str) -> None:
    problems = validate_file(DATA / name)
    assert [p for p in problems if p.is_error] == [], show(problems)


def test_katib_random_example_only_misses_backoff_limit() -> None:
    problems = validate_file(DATA / "katib-random.yaml")
    assert [(p.rule, p.path) for p in serious(problems)] == [("E9", "spec.trialTemplate.trialSpec.spec.backoffLimit")]


def test_multi_document_file() -> None:
    path = DATA / "multi-document.yaml"
    problems = validate_file(path)
    by_doc: dict[str, list[Problem]] = {}
    for problem in problems:
        by_doc.setdefault(problem.source, []).append(problem)
    # Documents 1 and 2 are skipped with a note; document 3 (the ConfigMap template) is clean.
    assert [p.severity for p in by_doc[f"{path}#doc 1"]] == [Severity.NOTE]
    assert [p.severity for p in by_doc[f"{path}#doc 2"]] == [Severity.NOTE]
    assert serious(by_doc[f"{path}#doc 3"]) == [], show(problems)
    # The Namespace in the file carries the injection label, so no reminder about it.
    assert not [p for p in problems if p.rule == "H1"]
    # Document 4 has several independent mistakes, all reported.
    rules = {p.rule for p in by_doc[f"{path}#doc 4"] if p.is_error}
    assert rules == {"V0", "V1", "V6"}, show(problems)
    # Errors first, then warnings, then notes.
    ranks = [p.severity.rank for p in problems]
    assert ranks == sorted(ranks)


def test_document_that_is_not_an_experiment() -> None:
    problems = validate_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "cm.yaml")
    assert [p.rule for p in problems if p.is_error] == ["V0"] and problems[0].path == "kind"
    problems = validate_text(dump_yaml({**base(), "apiVersion": "kubeflow.org/v1alpha3"}), "old.yaml")
    assert [(p.path, p.rule) for p in problems] == [("apiVersion", "V0")]
    problems = validate_text("- a\n- b\n", "list.yaml")
    assert [(p.path, p.is_error) for p in problems] == [("<document>", True)]
    assert validate_text("", "empty.yaml")[0].is_error


def test_yaml_syntax_error_gives_file_and_line() -> None:
    text = "apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nspec:\n  objective: {type: maximize\n  x: 1\n"
    problems = validate_text(text, "broken.yaml")
    assert len(problems) == 1
    problem = problems[0]
    assert problem.is_error and problem.source.startswith("broken.yaml:") and problem.source[len("broken.yaml:"):]
    assert problem.source.split(":")[1].isdigit()
    assert "invalid YAML" in problem.message


def test_unreadable_file_is_one_error(tmp_path: Path) -> None:
    problems = validate_file(tmp_path / "missing.yaml")
    assert len(problems) == 1 and problems[0].is_error and problems[0].source.endswith("missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    problems = validate_file(binary)
    assert len(problems) == 1 and problems[0].is_error


def test_json_manifest_is_accepted(tmp_path: Path) -> None:
    import json

    path = tmp_path / "exp.json"
    path.write_text(json.dumps(base()))
    assert serious(validate_file(path)) == []


def test_validate_does_not_change_its_input() -> None:
    doc = base()
    del doc["spec"]["parallelTrialCount"]
    before = copy.deepcopy(doc)
    validate(doc)
    assert doc == before


def test_refused_items_keep_the_indices_of_the_others() -> None:
    doc = base()
    doc["spec"]["parameters"].insert(0, "garbage")
    doc["spec"]["trialTemplate"]["trialParameters"].insert(0, 7)
    doc["spec"]["parameters"][2]["feasibleSpace"]["min"] = "0.5"  # dense_units_0, now at index 2
    problems = validate(doc)
    assert {(p.rule, p.path) for p in problems if p.is_error} == {
        ("V0", "spec.parameters[0]"), ("V0", "spec.trialTemplate.trialParameters[0]"),
        ("E3", "spec.parameters[2].feasibleSpace.min")}, show(problems)


def test_every_problem_has_path_message_and_rule() -> None:
    broken = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {},
              "spec": {"parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {}}],
                       "trialTemplate": {"trialSpec": {"apiVersion": "batch/v1", "kind": "Job"}}}}
    problems = validate(broken)
    assert len(problems) > 5
    for problem in problems:
        assert problem.path and problem.message and problem.rule, problem


# ------------------------------------------------------------------------------------------ defaulting
def test_apply_defaults_fills_what_katib_fills() -> None:
    doc = base()
    for key in ("parallelTrialCount", "resumePolicy", "metricsCollectorSpec"):
        del doc["spec"][key]
    del doc["spec"]["objective"]["metricStrategies"]
    del doc["spec"]["parameters"][0]["feasibleSpace"]["distribution"]
    out = apply_defaults(doc)
    spec = out["spec"]
    assert spec["parallelTrialCount"] == 3 and spec["resumePolicy"] == "Never"
    assert spec["metricsCollectorSpec"] == {"collector": {"kind": "StdOut"}}
    # Additional metrics get the objective's strategy (max), not "latest" and not their own.
    assert spec["objective"]["metricStrategies"] == [
        {"name": "val_accuracy", "value": "max"}, {"name": "val_loss", "value": "max"},
        {"name": "accuracy", "value": "max"}, {"name": "loss", "value": "max"}]
    assert spec["trialTemplate"]["successCondition"] == JOB_SUCCESS
    assert "primaryPodLabels" not in spec["trialTemplate"]
    assert [p["feasibleSpace"]["distribution"] for p in spec["parameters"]] == \
        ["uniform", "uniform", "uniform", "logUniform"]
    assert "distribution" not in doc["spec"]["parameters"][0]["feasibleSpace"]  # input untouched


@pytest.mark.parametrize(("kind", "success", "labels"), [
    ("TFJob", KUBEFLOW_SUCCESS, {"training.kubeflow.org/job-role": "master"}),
    ("PyTorchJob", KUBEFLOW_SUCCESS, {"training.kubeflow.org/job-role": "master"}),
    ("TrainJob", JOB_SUCCESS, TRAINJOB_PRIMARY_POD_LABELS),
])
def test_apply_defaults_for_kubeflow_kinds(kind: str, success: str, labels: dict[str, str]) -> None:
    doc = {"spec": {"trialTemplate": {"trialSpec": {"kind": kind}}}}
    template = apply_defaults(doc)["spec"]["trialTemplate"]
    assert template["successCondition"] == success
    assert template["failureCondition"] == KUBEFLOW_FAILURE
    assert template["primaryPodLabels"] == labels


def test_apply_defaults_leaves_config_map_templates_and_custom_kinds_alone() -> None:
    doc = {"spec": {"trialTemplate": {"configMap": {"configMapName": "x"}}}}
    assert "successCondition" not in apply_defaults(doc)["spec"]["trialTemplate"]
    doc = {"spec": {"trialTemplate": {"trialSpec": {"kind": "Workflow"}}}}
    assert "successCondition" not in apply_defaults(doc)["spec"]["trialTemplate"]


@pytest.mark.parametrize(("collector", "expected"), [
    ({"kind": "File"}, {"fileSystemPath": {"kind": "File", "path": "/var/log/katib/metrics.log",
                                           "format": "TEXT"}}),
    ({"kind": "TensorFlowEvent"}, {"fileSystemPath": {"kind": "Directory", "path": "/var/log/katib/tfevent/"}}),
    ({"kind": "PrometheusMetric"}, {"httpGet": {"path": "/metrics", "port": 8080}}),
])
def test_apply_defaults_for_collectors(collector: dict[str, str], expected: dict[str, Any]) -> None:
    out = apply_defaults({"spec": {"metricsCollectorSpec": {"collector": collector}}})
    assert out["spec"]["metricsCollectorSpec"]["source"] == expected


def test_apply_defaults_tolerates_any_shape() -> None:
    for doc in ({}, {"spec": []}, {"spec": {"objective": "x", "trialTemplate": 3, "parameters": [1, None]}},
                {"spec": {"metricsCollectorSpec": {"collector": "StdOut"}}}):
        assert isinstance(apply_defaults(doc), dict)


def test_defaults_that_matter_are_notes_or_part_of_the_message() -> None:
    doc = base()
    del doc["spec"]["objective"]["metricStrategies"]
    problems = validate(doc)
    note = next(p for p in problems if p.rule == "D1")
    assert note.severity is Severity.NOTE and "val_loss=max" in note.message


# ------------------------------------------------------------------------------------------ robustness
json_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(
    max_size=12)
keys = st.sampled_from([
    "apiVersion", "kind", "metadata", "name", "spec", "parameters", "parameterType", "feasibleSpace", "min", "max",
    "step", "list", "distribution", "objective", "type", "objectiveMetricName", "additionalMetricNames",
    "algorithm", "algorithmName", "algorithmSettings", "value", "trialTemplate", "trialSpec", "trialParameters",
    "reference", "primaryContainerName", "configMap", "metricsCollectorSpec", "collector", "source",
    "fileSystemPath", "path", "format", "filter", "metricsFormat", "template", "containers", "command", "args",
    "resources", "limits", "env", "earlyStopping", "maxTrialCount", "parallelTrialCount", "nasConfig",
]) | st.text(max_size=6)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    keys, inner, max_size=6), max_leaves=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_never_raises_on_garbage(value: Any) -> None:
    problems = validate(value)
    assert isinstance(problems, list)
    assert not [p for p in problems if "internal error" in p.message], show(problems)
    for problem in problems:
        assert problem.path and problem.message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_never_raises_on_a_mutated_valid_manifest(data: st.DataObject) -> None:
    doc = base()
    # Replace one random node of the valid manifest with garbage.
    node: Any = doc
    path: list[Any] = []
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
        path.append(key)
        node = node[key]
    if path:
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = data.draw(json_values)
    problems = validate(doc)
    assert not [p for p in problems if "internal error" in p.message], show(problems)


def test_recursive_yaml_does_not_crash() -> None:
    problems = validate_text("&a\napiVersion: kubeflow.org/v1beta1\nkind: Experiment\nspec: *a\n", "loop.yaml")
    assert problems and all(isinstance(p, Problem) for p in problems)
    assert not [p for p in problems if "internal error" in p.message]


def test_text_garbage_never_raises() -> None:
    for text in ("{", "key: [1, 2", "\t- x", "---\n---\n", "null", "42", "!!python/object:os.system x",
                 "a: !!binary 'zz'"):
        problems = validate_text(text, "g.yaml")
        assert problems and all(p.path and p.message for p in problems)


# ------------------------------------------------------------------------------------------ speed, imports
def test_lint_imports_nothing_heavy() -> None:
    code = ("import sys, katib_hp.lint as lint; lint.validate_file(sys.argv[1]); "
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'kubernetes', "
            "'kubeflow', 'numpy', 'grpc', 'google')]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code, str(DATA / "valid-bayes.yaml")], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_importtime_shows_no_tensorflow_or_kubernetes() -> None:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import katib_hp.lint"], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    lines = out.stderr.splitlines()
    assert any("katib_hp.lint" in line for line in lines)
    assert not [line for line in lines if any(w in line for w in ("tensorflow", "kubernetes", "kubeflow"))]


def test_validate_is_fast() -> None:
    import time

    doc = base()
    validate(doc)  # warm the trainer parser cache
    start = time.perf_counter()
    for _ in range(20):
        validate(doc)
    assert (time.perf_counter() - start) / 20 < 0.05
