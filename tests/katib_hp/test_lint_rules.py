"""katib_hp.lint rule by rule: each invalid case next to its valid neighbour, both built from valid-bayes.yaml."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from katib_hp.lint import validate, validate_text
from katib_hp.problems import Problem, Severity
from katib_hp.yamlio import dump_yaml, load_yaml

DATA = Path(__file__).resolve().parent.parent / "data" / "lint"
BASE: dict[str, Any] = load_yaml((DATA / "valid-bayes.yaml").read_text(), "valid-bayes.yaml")
T = "spec.trialTemplate.trialSpec"
C = f"{T}.spec.template.spec.containers[0]"
Mutation = Callable[[dict[str, Any]], None]

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str | list[str | int]) -> list[str | int]:
    if isinstance(path, list):
        return path
    return [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _STEP.finditer(path)]


def _parent(doc: Any, steps: list[str | int]) -> Any:
    for step in steps[:-1]:
        doc = doc[step]
    return doc


def put(path: str | list[str | int], value: Any) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        steps = _steps(path)
        _parent(doc, steps)[steps[-1]] = value
    return apply


def drop(path: str | list[str | int]) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        steps = _steps(path)
        del _parent(doc, steps)[steps[-1]]
    return apply


def add(path: str | list[str | int], value: Any) -> Mutation:
    """Append ``value`` to the list at ``path``."""
    def apply(doc: dict[str, Any]) -> None:
        steps = _steps(path)
        _parent(doc, steps)[steps[-1]].append(value)
    return apply


def chain(*mutations: Mutation) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(doc)
    return apply


def lint(*mutations: Mutation) -> list[Problem]:
    doc = copy.deepcopy(BASE)
    for mutation in mutations:
        mutation(doc)
    return validate(doc, source="case.yaml")


def found(problems: list[Problem], rule: str, path: str, severity: Severity) -> bool:
    return any(p.rule == rule and p.path.startswith(path) and p.severity is severity for p in problems)


def show(problems: list[Problem]) -> str:
    return "\n".join(p.render() for p in problems)


def args(*extra: str) -> Mutation:
    return add(f"{C}.args", extra[0]) if len(extra) == 1 else chain(*(add(f"{C}.args", e) for e in extra))


def set_arg(index: int, text: str) -> Mutation:
    return put(f"{C}.args[{index}]", text)


def collector(spec: dict[str, Any]) -> Mutation:
    return put("spec.metricsCollectorSpec", spec)


def no_early_stopping(doc: dict[str, Any]) -> None:
    doc["spec"].pop("earlyStopping", None)


def algorithm(name: str, settings: list[dict[str, str]] | None = None) -> Mutation:
    value: dict[str, Any] = {"algorithmName": name}
    if settings:
        value["algorithmSettings"] = settings
    return put("spec.algorithm", value)


def minimize_val_loss(doc: dict[str, Any]) -> None:
    objective = doc["spec"]["objective"]
    objective.update(type="minimize", objectiveMetricName="val_loss", goal=0.01,
                     additionalMetricNames=["val_accuracy", "accuracy", "loss"])


def hyperband(r_l: str, eta: str, parallel: int, max_trials: int) -> Mutation:
    return chain(
        algorithm("hyperband", [{"name": "resource_name", "value": "epochs"}, {"name": "r_l", "value": r_l},
                                {"name": "eta", "value": eta}]),
        put("spec.parallelTrialCount", parallel), put("spec.maxTrialCount", max_trials),
        put("spec.maxFailedTrialCount", 0), no_early_stopping,
        add("spec.parameters", {"name": "epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "9"}}),
        add("spec.trialTemplate.trialParameters", {"name": "epochs", "reference": "epochs"}),
        set_arg(1, "--epochs=${trialParameters.epochs}"),
        *(put(f"spec.parameters[{i}].feasibleSpace.distribution", "uniform") for i in (0, 3)),
    )


def extra_parameter(name: str, kind: str, space: dict[str, Any], flag: bool = True) -> Mutation:
    steps: list[Mutation] = [
        add("spec.parameters", {"name": name, "parameterType": kind, "feasibleSpace": space}),
        add("spec.trialTemplate.trialParameters", {"name": name, "reference": name}),
    ]
    if flag:
        steps.append(args(f"--{name}=${{trialParameters.{name}}}"))
    return chain(*steps)


def tfjob(doc: dict[str, Any]) -> None:
    pod = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]
    doc["spec"]["trialTemplate"]["trialSpec"] = {
        "apiVersion": "kubeflow.org/v1", "kind": "TFJob",
        "spec": {"tfReplicaSpecs": {
            "Chief": {"replicas": 1, "restartPolicy": "Never", "template": copy.deepcopy(pod)},
            "Worker": {"replicas": 1, "restartPolicy": "Never", "template": copy.deepcopy(pod)},
        }},
    }


def custom_kind(doc: dict[str, Any]) -> None:
    doc["spec"]["trialTemplate"]["trialSpec"] = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "spec": {"arguments": {"parameters": [
            {"name": n, "value": f"${{trialParameters.{n}}}"}
            for n in ("learning_rate", "dense_units_0", "optimizer", "dropout_rate_0")]}},
    }


def with_conditions(doc: dict[str, Any]) -> None:
    doc["spec"]["trialTemplate"]["successCondition"] = "status.phase == Succeeded"
    doc["spec"]["trialTemplate"]["failureCondition"] = "status.phase == Failed"


def config_map_source(doc: dict[str, Any]) -> None:
    template = doc["spec"]["trialTemplate"]
    del template["trialSpec"]
    template["configMap"] = {"configMapName": "trial-templates", "configMapNamespace": "kubeflow",
                             "templatePath": "trainer-job.yaml"}


def gpu_limits(count: int = 1) -> Mutation:
    return put([*_steps(C), "resources", "limits", "nvidia.com/gpu"], count)


def own_script(doc: dict[str, Any]) -> None:
    """The primary container runs some other program (no trainer-specific checks apply)."""
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python3", "/opt/train.py"]


def darts(doc: dict[str, Any]) -> None:
    """A NAS Experiment: nasConfig instead of parameters, metadata-free trialParameters."""
    spec = doc["spec"]
    del spec["parameters"]
    spec.pop("earlyStopping")
    spec["algorithm"] = {"algorithmName": "darts", "algorithmSettings": [{"name": "num_epochs", "value": "2"}]}
    spec["nasConfig"] = {"graphConfig": {"numLayers": 3},
                         "operations": [{"operationType": "separable_convolution", "parameters": [
                             {"name": "filter_size", "parameterType": "categorical",
                              "feasibleSpace": {"list": ["3", "5"]}}]}]}
    spec["trialTemplate"]["trialParameters"] = [
        {"name": "algorithmSettings", "reference": "algorithm-settings"},
        {"name": "searchSpace", "reference": "search-space"},
        {"name": "numberLayers", "reference": "num-layers"}]
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["python3", "/opt/darts/run_trial.py"]
    container["args"] = ["--algorithm-settings='${trialParameters.algorithmSettings}'",
                         "--search-space='${trialParameters.searchSpace}'",
                         "--num-layers=${trialParameters.numberLayers}"]


def rename_trial_parameter(doc: dict[str, Any]) -> None:
    doc["spec"]["trialTemplate"]["trialParameters"][0]["name"] = "lr"
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    container["args"][2] = "--learning_rate=${trialParameters.lr}"


# ------------------------------------------------------------------------------------------------ the base
def test_base_manifest_has_no_errors_or_warnings() -> None:
    problems = lint()
    assert [p for p in problems if p.severity is not Severity.NOTE] == [], show(problems)


# --------------------------------------------------------------------- invalid cases: (mutation, rule, path, sev)
E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE
INVALID = [
    # V0 / D0: decoding into Katib's Go types
    pytest.param(put("spec.parameters[0].feasibleSpace.min", 0.0001), "V0", "spec.parameters[0].feasibleSpace.min",
                 E, id="V0-unquoted-min"),
    pytest.param(put("spec.algorithm.algorithmSettings[0].value", 5), "V0", "spec.algorithm.algorithmSettings[0].value",
                 E, id="V0-setting-value-number"),
    pytest.param(put("spec.maxTrialCount", "12"), "V0", "spec.maxTrialCount", E, id="V0-count-as-string"),
    pytest.param(put("spec.trialTemplate.primaryPodLabels", ["a"]), "V0", "spec.trialTemplate.primaryPodLabels", E,
                 id="V0-labels-as-list"),
    pytest.param(put("kind", "Job"), "V0", "kind", E, id="V0-not-an-experiment"),
    pytest.param(put("spec.maxTrialCounts", 12), "D0", "spec.maxTrialCounts", W, id="D0-unknown-field"),
    # V1–V6
    pytest.param(put("metadata.name", "Digits_Bayes"), "V1", "metadata.name", E, id="V1-uppercase-underscore"),
    pytest.param(put("metadata.name", "a" * 41), "V1", "metadata.name", E, id="V1-41-chars"),
    pytest.param(put("metadata.name", "1digits"), "V1", "metadata.name", E, id="V1-leading-digit"),
    pytest.param(put("metadata.name", "digits-"), "V1", "metadata.name", E, id="V1-trailing-dash"),
    pytest.param(drop("metadata.name"), "V1", "metadata.name", E, id="V1-missing"),
    pytest.param(put("spec.maxFailedTrialCount", -1), "V2", "spec.maxFailedTrialCount", E, id="V2-negative"),
    pytest.param(put("spec.maxTrialCount", 0), "V3", "spec.maxTrialCount", E, id="V3-zero"),
    pytest.param(put("spec.parallelTrialCount", 0), "V4", "spec.parallelTrialCount", E, id="V4-zero"),
    pytest.param(put("spec.maxFailedTrialCount", 13), "V5", "spec.maxFailedTrialCount", E, id="V5-more-than-max"),
    pytest.param(put("spec.parallelTrialCount", 13), "V6", "spec.parallelTrialCount", E, id="V6-more-than-max"),
    pytest.param(chain(drop("spec.parallelTrialCount"), put("spec.maxTrialCount", 2),
                       put("spec.maxFailedTrialCount", 2)),
                 "V6", "spec.parallelTrialCount", E, id="V6-defaulted-parallel"),
    # V10–V13
    pytest.param(drop("spec.objective"), "V10", "spec.objective", E, id="V10-missing"),
    pytest.param(put("spec.objective.type", "maximise"), "V11", "spec.objective.type", E, id="V11-misspelled"),
    pytest.param(drop("spec.objective.type"), "V11", "spec.objective.type", E, id="V11-missing"),
    pytest.param(put("spec.objective.objectiveMetricName", ""), "V12", "spec.objective.objectiveMetricName", E,
                 id="V12-empty"),
    pytest.param(add("spec.objective.additionalMetricNames", "val_accuracy"), "V13",
                 "spec.objective.additionalMetricNames", E, id="V13-objective-repeated"),
    # V14–V18
    pytest.param(drop("spec.algorithm"), "V14", "spec.algorithm", E, id="V14-missing"),
    pytest.param(put("spec.algorithm.algorithmName", ""), "V15", "spec.algorithm.algorithmName", E, id="V15-empty"),
    pytest.param(put("spec.algorithm.algorithmName", "bayesian"), "V16", "spec.algorithm.algorithmName", E,
                 id="V16-unknown-algorithm"),
    pytest.param(put("spec.earlyStopping.algorithmName", "mediansto"), "V17", "spec.earlyStopping.algorithmName", E,
                 id="V17-unknown"),
    pytest.param(put("spec.earlyStopping.algorithmName", ""), "V17", "spec.earlyStopping.algorithmName", E,
                 id="V17-empty"),
    pytest.param(put("spec.resumePolicy", "Always"), "V18", "spec.resumePolicy", E, id="V18-invalid"),
    # V19
    pytest.param(drop("spec.trialTemplate"), "V19a", "spec.trialTemplate", E, id="V19a-missing"),
    pytest.param(put("spec.trialTemplate.primaryContainerName", ""), "V19b", "spec.trialTemplate.primaryContainerName",
                 E, id="V19b-empty"),
    pytest.param(custom_kind, "V19c", "spec.trialTemplate.successCondition", E, id="V19c-custom-kind"),
    pytest.param(config_map_source, "V19c", "spec.trialTemplate.failureCondition", E, id="V19c-configmap"),
    pytest.param(drop("spec.trialTemplate.trialParameters"), "V19d", "spec.trialTemplate.trialParameters", E,
                 id="V19d-missing"),
    pytest.param(drop(f"{T}"), "V19e", T, E, id="V19e-no-source"),
    pytest.param(chain(put("spec.trialTemplate.configMap", {"configMapName": "t", "configMapNamespace": "kubeflow",
                                                            "templatePath": "x"})),
                 "V19f", "spec.trialTemplate", E, id="V19f-both-sources"),
    pytest.param(chain(config_map_source, put("spec.trialTemplate.configMap", {"configMapName": "t"})), "V19g",
                 "spec.trialTemplate.configMap", E, id="V19g-incomplete-configmap"),
    pytest.param(config_map_source, "V19h", "spec.trialTemplate.configMap", N, id="V19h-template-elsewhere"),
    pytest.param(put("spec.trialTemplate.trialParameters[0].reference", ""), "V19i1",
                 "spec.trialTemplate.trialParameters[0]", E, id="V19i1-no-reference"),
    pytest.param(put("spec.trialTemplate.trialParameters[1].name", "learning_rate"), "V19i2",
                 "spec.trialTemplate.trialParameters[1].name", E, id="V19i2-duplicate-name"),
    pytest.param(put("spec.trialTemplate.trialParameters[1].reference", "learning_rate"), "V19i3",
                 "spec.trialTemplate.trialParameters[1].reference", E, id="V19i3-duplicate-reference"),
    pytest.param(put("spec.trialTemplate.trialParameters[0].reference", "learning_rat"), "V19i4",
                 "spec.trialTemplate.trialParameters[0].reference", E, id="V19i4-unknown-reference"),
    pytest.param(add("spec.trialTemplate.trialParameters", {"name": "unused", "reference": "${trialSpec.Name}"}),
                 "V19i5", "spec.trialTemplate.trialParameters[4].name", E, id="V19i5-unused-trial-parameter"),
    pytest.param(args("--l2=${trialParameters.l2}"), "V19j", f"{C}.args[6]", E, id="V19j-undeclared-placeholder"),
    pytest.param(put(f"{T}.metadata", {"name": "job"}), "V19l", f"{T}.metadata.name", E, id="V19l-template-name"),
    pytest.param(drop(f"{T}.apiVersion"), "V19m", f"{T}.apiVersion", E, id="V19m-no-apiversion"),
    pytest.param(put(f"{T}.spec.template.spec.restartPolicyy", "Never"), "V19n",
                 f"{T}.spec.template.spec.restartPolicyy", E, id="V19n-misspelled-field"),
    pytest.param(put(f"{C}.env[0].value", 2), "V19n", f"{C}.env[0].value", E, id="V19n-env-value-number"),
    pytest.param(put(f"{C}.env[0].value", ""), "V19n", f"{C}.env[0].value", E, id="V19n-empty-omitempty-string"),
    pytest.param(put(f"{T}.spec.template.spec.nodeSelector", {}), "V19n", f"{T}.spec.template.spec.nodeSelector", E,
                 id="V19n-empty-map"),
    pytest.param(put(f"{T}.spec.template.spec.tolerations", []), "V19n", f"{T}.spec.template.spec.tolerations", E,
                 id="V19n-empty-list"),
    pytest.param(put(f"{T}.spec.template.spec.hostNetwork", False), "V19n", f"{T}.spec.template.spec.hostNetwork", E,
                 id="V19n-false-plain-bool"),
    pytest.param(put(f"{T}.spec.backoffLimit", "${trialParameters.dense_units_0}"), "V19n", f"{T}.spec.backoffLimit",
                 E, id="V19n-placeholder-in-int"),
    pytest.param(put(f"{C}.resources.limits.memory", "4 GB"), "V19n", f"{C}.resources.limits.memory", E,
                 id="V19n-bad-quantity"),
    pytest.param(put(f"{T}.spec.template.spec.containers", {"name": "x"}), "V19n",
                 f"{T}.spec.template.spec.containers", E, id="V19n-containers-not-a-list"),
    # V20–V22
    pytest.param(drop("spec.parameters"), "V20", "spec.parameters", E, id="V20-no-parameters"),
    pytest.param(put("spec.nasConfig", {"graphConfig": {"numLayers": 2}}), "V21", "spec.nasConfig", E,
                 id="V21-parameters-and-nas"),
    pytest.param(put("spec.parameters[0].parameterType", "float"), "V22a", "spec.parameters[0].parameterType", E,
                 id="V22a-float"),
    pytest.param(put("spec.parameters[0].feasibleSpace.distribution", "loguniform"), "V22b",
                 "spec.parameters[0].feasibleSpace.distribution", E, id="V22b-lowercase"),
    pytest.param(put("spec.parameters[1].feasibleSpace.list", ["32", "64"]), "V22d",
                 "spec.parameters[1].feasibleSpace.list", E, id="V22d-int-with-list"),
    pytest.param(drop("spec.parameters[0].feasibleSpace.max"), "V22d", "spec.parameters[0].feasibleSpace.max", E,
                 id="V22d-no-max"),
    pytest.param(put("spec.parameters[2].feasibleSpace.min", "1"), "V22e", "spec.parameters[2].feasibleSpace.min", E,
                 id="V22e-categorical-min"),
    # V23
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "PrometheusMetric"}})), "V23a",
                 "spec.metricsCollectorSpec.collector.kind", E, id="V23a-prometheus"),
    pytest.param(collector({"collector": {"kind": "File"}, "source": {"fileSystemPath": {
        "path": "metrics.log", "kind": "File"}}}), "V23c", "spec.metricsCollectorSpec.source.fileSystemPath.path", E,
                 id="V23c-relative-path"),
    pytest.param(collector({"collector": {"kind": "File"}, "source": {"fileSystemPath": {"format": "text"}}}), "V23c",
                 "spec.metricsCollectorSpec.source.fileSystemPath.format", E, id="V23c-lowercase-format"),
    pytest.param(collector({"collector": {"kind": "File"}, "source": {
        "fileSystemPath": {"format": "JSON"}, "filter": {"metricsFormat": ["(a)=(b)"]}}}), "V23c",
                 "spec.metricsCollectorSpec.source.filter", E, id="V23c-json-with-filter"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "TensorFlowEvent"}, "source": {
        "fileSystemPath": {"kind": "File", "path": "/var/log/katib/tfevent"}}})), "V23d",
                 "spec.metricsCollectorSpec.source.fileSystemPath", E, id="V23d-file-kind"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "TensorFlowEvent"}, "source": {
        "fileSystemPath": {"format": "TEXT"}}})), "V23d", "spec.metricsCollectorSpec.source.fileSystemPath.format", E,
                 id="V23d-format-set"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "PrometheusMetric"}, "source": {
        "httpGet": {"port": "http", "path": "metrics"}}})), "V23e", "spec.metricsCollectorSpec.source.httpGet", E,
                 id="V23e-port-and-path"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "Custom"}})), "V23f",
                 "spec.metricsCollectorSpec.collector.customCollector", E, id="V23f-no-container"),
    pytest.param(collector({"collector": {"kind": "None"}}), "V23g", "spec.metricsCollectorSpec.collector.kind", E,
                 id="V23g-none-renamed"),
    pytest.param(collector({"collector": {"kind": "Stdout"}}), "V23g", "spec.metricsCollectorSpec.collector.kind", E,
                 id="V23g-misspelled"),
    pytest.param(collector({"collector": {"kind": "StdOut"}, "source": {"filter": {"metricsFormat": [r"([\w|-]+)"]}}}),
                 "V23h", "spec.metricsCollectorSpec.source.filter.metricsFormat[0]", E, id="V23h-one-group"),
    pytest.param(collector({"collector": {"kind": "StdOut"}, "source": {"filter": {"metricsFormat": ["(a)(b"]}}}),
                 "V23h", "spec.metricsCollectorSpec.source.filter.metricsFormat[0]", E, id="V23h-invalid-regex"),
    pytest.param(collector({"collector": {"kind": "StdOut"}, "source": {"filter": {"metricsFormat": [
        r"(?<=\s)([\w|-]+)=(\d+)"]}}}), "V23h", "spec.metricsCollectorSpec.source.filter.metricsFormat[0]", E,
                 id="V23h-lookbehind-not-in-re2"),
    # E1 settings
    pytest.param(put("spec.algorithm.algorithmSettings[0]", {"name": "acq_func", "value": "EI2"}), "E1",
                 "spec.algorithm.algorithmSettings[0].value", E, id="E1-bad-choice"),
    pytest.param(put("spec.algorithm.algorithmSettings[0].name", "n_initial_point"), "E1",
                 "spec.algorithm.algorithmSettings[0].name", E, id="E1-unknown-setting"),
    pytest.param(put("spec.algorithm.algorithmSettings[1].value", "-1"), "E1",
                 "spec.algorithm.algorithmSettings[1].value", E, id="E1-negative-seed"),
    pytest.param(put("spec.earlyStopping.algorithmSettings[1].value", "0"), "E1",
                 "spec.earlyStopping.algorithmSettings[1].value", E, id="E1-medianstop-start-step"),
    pytest.param(chain(hyperband("9", "3", 9, 9), put("spec.algorithm.algorithmSettings", [
        {"name": "resource_name", "value": "epochs"}])), "E1", "spec.algorithm.algorithmSettings", E,
                 id="E1-hyperband-missing-r_l"),
    # E2 references
    pytest.param(add("spec.parameters", {"name": "seed", "parameterType": "int",
                                         "feasibleSpace": {"min": "1", "max": "9"}}), "E2", "spec.parameters[4].name",
                 E, id="E2-unreferenced-parameter"),
    pytest.param(chain(add("spec.trialTemplate.trialParameters", {"name": "team", "reference":
                                                                  "${trialSpec.Labels[team]}"}),
                       args("--summary-file=/out/${trialParameters.team}.json")), "E2",
                 "spec.trialTemplate.trialParameters[4].reference", E, id="E2-missing-label"),
    # E3 numbers
    pytest.param(put("spec.parameters[1].feasibleSpace.min", "32.5"), "E3", "spec.parameters[1].feasibleSpace.min", E,
                 id="E3-int-min-not-integer"),
    pytest.param(put("spec.parameters[0].feasibleSpace.min", "1e-x"), "E3", "spec.parameters[0].feasibleSpace.min", E,
                 id="E3-double-not-a-number"),
    pytest.param(put("spec.parameters[1].feasibleSpace.min", "600"), "E3", "spec.parameters[1].feasibleSpace.min", E,
                 id="E3-min-above-max"),
    pytest.param(chain(algorithm("random"), put("spec.parameters[1].feasibleSpace.step", "0")), "E3",
                 "spec.parameters[1].feasibleSpace.step", E, id="E3-step-zero"),
    pytest.param(put("spec.parameters[2].feasibleSpace.list", []), "E3", "spec.parameters[2].feasibleSpace.list", E,
                 id="E3-empty-list"),
    pytest.param(add("spec.parameters[2].feasibleSpace.list", "adam"), "E3", "spec.parameters[2].feasibleSpace.list[3]",
                 E, id="E3-duplicate-value"),
    pytest.param(add("spec.parameters[2].feasibleSpace.list", 'ad"am'), "E3",
                 "spec.parameters[2].feasibleSpace.list[3]", E, id="E3-quote-in-value"),
    pytest.param(add("spec.parameters", {"name": "optimizer", "parameterType": "categorical",
                                         "feasibleSpace": {"list": ["sgd"]}}), "E3", "spec.parameters[4].name", E,
                 id="E3-duplicate-parameter-name"),
    # E4 per algorithm
    pytest.param(put("spec.parameters[3].feasibleSpace.min", "0"), "E4", "spec.parameters[3].feasibleSpace.min", E,
                 id="E4-bayes-min-zero"),
    pytest.param(put("spec.parameters[0].feasibleSpace.distribution", "uniform"), "E4",
                 "spec.parameters[0].feasibleSpace.distribution", W, id="E4-bayes-linear-double"),
    pytest.param(put("spec.parameters[1].feasibleSpace.step", "32"), "E4", "spec.parameters[1].feasibleSpace.step", W,
                 id="E4-bayes-ignores-step"),
    pytest.param(hyperband("9", "3", 3, 3), "E4", "spec.parallelTrialCount", E, id="E4-hyperband-parallel"),
    pytest.param(hyperband("9", "3", 9, 18), "E4", "spec.maxTrialCount", W, id="E4-hyperband-beyond-first-bracket"),
    pytest.param(chain(hyperband("9", "3", 9, 9), put("spec.algorithm.algorithmSettings[0].value", "epoch")), "E4",
                 "spec.algorithm.algorithmSettings[0].value", E, id="E4-hyperband-resource-not-a-parameter"),
    pytest.param(chain(hyperband("9", "3", 9, 9), put("spec.parameters[4].parameterType", "double")), "E4",
                 "spec.algorithm.algorithmSettings[0].value", W, id="E4-hyperband-resource-double"),
    pytest.param(chain(algorithm("grid"), put("spec.maxTrialCount", 12)), "E4", "spec.parameters[0].feasibleSpace.step",
                 E, id="E4-grid-double-without-step"),
    pytest.param(chain(algorithm("grid"), put("spec.parameters[0].feasibleSpace.step", "0.05"),
                       put("spec.parameters[3].feasibleSpace", {"min": "0.1", "max": "0.3", "step": "0.1"}),
                       put("spec.parameters[1].feasibleSpace", {"min": "32", "max": "33"}),
                       put("spec.maxTrialCount", 100)),
                 "E4", "spec.maxTrialCount", E, id="E4-grid-more-trials-than-points"),
    pytest.param(chain(algorithm("cmaes"), drop("spec.parameters[3]"), drop("spec.parameters[1]"),
                       drop("spec.trialTemplate.trialParameters[3]"), drop("spec.trialTemplate.trialParameters[1]"),
                       drop(f"{C}.args[5]"), drop(f"{C}.args[3]")),
                 "E4", "spec.parameters", E, id="E4-cmaes-one-numeric"),
    pytest.param(chain(algorithm("pbt", [{"name": "suggestion_trial_dir", "value": "/var/log/katib/checkpoints"},
                                         {"name": "n_population", "value": "5"},
                                         {"name": "truncation_threshold", "value": "0.4"}]), no_early_stopping),
                 "E4", "spec.parameters[0].feasibleSpace.step", E, id="E4-pbt-double-without-step"),
    pytest.param(chain(algorithm("multivariate-tpe"), put("spec.parameters[0].feasibleSpace.distribution", "normal")),
                 "E4", "spec.parameters[0].feasibleSpace.distribution", E, id="E4-optuna-drops-normal"),
    pytest.param(chain(algorithm("random"), put("spec.parameters[3].feasibleSpace.min", "0")), "E4",
                 "spec.parameters[3].feasibleSpace.min", E, id="E4-hyperopt-log-min-zero"),
    pytest.param(algorithm("sobol"), "E4", "spec.parameters[0].feasibleSpace.distribution", W,
                 id="E4-sobol-ignores-log"),
    pytest.param(chain(algorithm("tpe"), put("spec.parameters[2].feasibleSpace.distribution", "normal")), "E4",
                 "spec.parameters[2].feasibleSpace.distribution", W, id="E4-categorical-distribution"),
    # E5–E9
    pytest.param(chain(custom_kind, with_conditions), "E5", f"{T}.kind", W, id="E5-kind-not-in-trial-resources"),
    pytest.param(chain(tfjob, put(f"{T}.apiVersion", "kubeflow.org/v2")), "E5", f"{T}.apiVersion", W,
                 id="E5-wrong-version"),
    pytest.param(put("spec.trialTemplate.primaryContainerName", "trainer"), "E6",
                 f"{T}.spec.template.spec.containers", E, id="E6-no-such-container"),
    pytest.param(chain(tfjob, put(f"{T}.spec.tfReplicaSpecs.Worker.template.spec.containers[0].name", "worker")),
                 "E6", f"{T}.spec.tfReplicaSpecs.Worker.template.spec.containers", E, id="E6-tfjob-worker"),
    pytest.param(chain(put(f"{C}.args", [f"{a}" for a in BASE["spec"]["trialTemplate"]["trialSpec"]["spec"][
        "template"]["spec"]["containers"][0]["args"]]), drop(f"{C}.command")), "E7", f"{C}.command", W,
                 id="E7-no-command"),
    pytest.param(add("spec.parameters[2].feasibleSpace.list", "adam w"), "E7", f"{C}.args[4]", E,
                 id="E7-value-with-space"),
    pytest.param(chain(put(f"{C}.command", ["python", "train.py"]), args("--note=two words")), "E7", f"{C}.args[6]", W,
                 id="E7-fixed-arg-with-space"),
    pytest.param(put(f"{C}.command", ["sh", "-c", "python -u -m trainer --optimizer='adam"]), "E7",
                 f"{C}.command[2]", E, id="E7-unclosed-quote-in-script"),
    pytest.param(drop("spec.maxTrialCount"), "E8", "spec.maxTrialCount", W, id="E8-no-max-trials"),
    pytest.param(drop("spec.parallelTrialCount"), "E8", "spec.parallelTrialCount", W, id="E8-parallel-defaulted"),
    pytest.param(drop("spec.maxFailedTrialCount"), "E8", "spec.maxFailedTrialCount", W, id="E8-no-max-failed"),
    pytest.param(drop(f"{T}.spec.backoffLimit"), "E9", f"{T}.spec.backoffLimit", W, id="E9-no-backoff-limit"),
    pytest.param(put(f"{T}.spec.backoffLimit", 3), "E9", f"{T}.spec.backoffLimit", W, id="E9-backoff-retries"),
    pytest.param(drop(f"{T}.spec.template.spec.restartPolicy"), "E9", f"{T}.spec.template.spec.restartPolicy", E,
                 id="E9-no-restart-policy"),
    pytest.param(put(f"{T}.spec.template.spec.restartPolicy", "Always"), "E9", f"{T}.spec.template.spec.restartPolicy",
                 E, id="E9-restart-always"),
    pytest.param(put(f"{T}.spec.template.spec.restartPolicy", "OnFailure"), "E9",
                 f"{T}.spec.template.spec.restartPolicy", W, id="E9-restart-on-failure"),
    # M1–M3, G1, D1
    pytest.param(put("spec.objective.objectiveMetricName", "val.accuracy"), "M1", "spec.objective.objectiveMetricName",
                 E, id="M1-dot-in-metric-name"),
    pytest.param(collector({"collector": {"kind": "TensorFlowEvent"}}), "M2", "spec.earlyStopping", E,
                 id="M2-medianstop-with-tfevent"),
    pytest.param(put("spec.objective.metricStrategies[1].value", "minimum"), "M3",
                 "spec.objective.metricStrategies[1].value", E, id="M3-unknown-strategy"),
    pytest.param(put("spec.objective.metricStrategies[0].value", "min"), "M3",
                 "spec.objective.metricStrategies[0].value", W, id="M3-objective-strategy-contradicts-type"),
    pytest.param(drop("spec.objective.metricStrategies"), "D1", "spec.objective.metricStrategies", N,
                 id="D1-additional-strategies-defaulted"),
    pytest.param(put([*_steps(C), "resources", "requests", "nvidia.com/gpu"], 1), "G1",
                 f'{C}.resources.requests["nvidia.com/gpu"]', E, id="G1-gpu-request-without-limit"),
    pytest.param(chain(gpu_limits(2), put([*_steps(C), "resources", "requests", "nvidia.com/gpu"], 1)), "G1",
                 f'{C}.resources.requests["nvidia.com/gpu"]', E, id="G1-gpu-request-differs"),
    pytest.param(gpu_limits(2), "G1", "spec.parallelTrialCount", N, id="G1-peak-gpus-note"),
    # T1–T6: templates running our trainer
    pytest.param(put("spec.objective.objectiveMetricName", "val_acc"), "T1", "spec.objective.objectiveMetricName", E,
                 id="T1-unknown-metric"),
    pytest.param(put("spec.objective.additionalMetricNames[0]", "val_los"), "T1",
                 "spec.objective.additionalMetricNames[0]", E, id="T1-unknown-additional-metric"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "Push"}})), "T1",
                 "spec.metricsCollectorSpec.collector.kind", E, id="T1-push-never-reported"),
    pytest.param(args("--hypermodel=models.cnn:build"), "T1", "spec.objective.objectiveMetricName", N,
                 id="T1-hypermodel-note"),
    pytest.param(set_arg(2, "--lr=${trialParameters.learning_rate}"), "T2", f"{C}.args[2]", E, id="T2-unknown-flag"),
    pytest.param(args("positional"), "T2", f"{C}.args[6]", E, id="T2-positional"),
    pytest.param(set_arg(1, "--epochs=0"), "T3", f"{C}.args[1]", E, id="T3-fixed-value-out-of-range"),
    pytest.param(set_arg(0, "--dataset=imagenet"), "T3", f"{C}.args[0]", E, id="T3-bad-choice"),
    pytest.param(args("--xla=true"), "T3", f"{C}.args[6]", E, id="T3-switch-with-value"),
    pytest.param(set_arg(0, "--dataset=folder"), "T3", f"{C}.command[0]", E, id="T3-whole-parse-needs-data-dir"),
    pytest.param(put("spec.parameters[0].feasibleSpace.max", "20"), "T4", "spec.parameters[0].feasibleSpace.max", E,
                 id="T4-range-above-trainer-max"),
    pytest.param(put("spec.parameters[1].parameterType", "double"), "T4", "spec.parameters[1].parameterType", E,
                 id="T4-double-into-int-flag"),
    pytest.param(add("spec.parameters[2].feasibleSpace.list", "adamx"), "T4", "spec.parameters[2].feasibleSpace.list[3]",
                 E, id="T4-list-value-refused"),
    pytest.param(chain(hyperband("2000", "3", 729, 729)), "T4", "spec.algorithm.algorithmSettings", E,
                 id="T4-hyperband-resource-above-trainer-max"),
    pytest.param(chain(algorithm("random"), put("spec.parameters[0].feasibleSpace.distribution", "normal")), "T4",
                 "spec.parameters[0].feasibleSpace.distribution", W, id="T4-normal-unbounded"),
    pytest.param(collector({"collector": {"kind": "File"}}), "T5", f"{C}.command[0]", E, id="T5-file-no-metrics-file"),
    pytest.param(chain(collector({"collector": {"kind": "File"}}), args("--metrics-file=/tmp/m.log")), "T5",
                 f"{C}.args[6]", E, id="T5-file-other-path"),
    pytest.param(chain(collector({"collector": {"kind": "File"}, "source": {"fileSystemPath": {"format": "JSON"}}}),
                       args("--metrics-file=/var/log/katib/metrics.log")), "T5", f"{C}.args[6]", E,
                 id="T5-file-json-format-missing"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "TensorFlowEvent"}})), "T5",
                 f"{C}.command[0]", E, id="T5-tfevent-no-dir"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "TensorFlowEvent"}}),
                       args("--tensorboard-dir=/tmp/tb")), "T5", f"{C}.args[6]", E, id="T5-tfevent-dir-outside"),
    pytest.param(chain(put(f"{C}.command", ["sh", "-c"]), put(f"{C}.args", [
        "python -u -m trainer --learning_rate=${trialParameters.learning_rate} "
        "--dense_units_0=${trialParameters.dense_units_0} --optimizer=${trialParameters.optimizer} "
        "--dropout_rate_0=${trialParameters.dropout_rate_0} > /tmp/train.log"])), "T6", f"{C}.args[0]", E,
                 id="T6-stdout-redirected"),
    pytest.param(args("--metrics-file=/var/log/katib/metrics.log"), "T6", f"{C}.args[6]", E,
                 id="T6-metrics-file-on-stdout-path"),
]


@pytest.mark.parametrize(("mutation", "rule", "path", "severity"), INVALID)
def test_invalid_case_is_reported(mutation: Mutation, rule: str, path: str, severity: Severity) -> None:
    problems = lint(mutation)
    assert found(problems, rule, path, severity), show(problems)
    for problem in problems:
        assert problem.path and problem.message and problem.source == "case.yaml"


# ------------------------------------------------------------------------- valid neighbours: (mutation, rule)
VALID = [
    pytest.param(put("spec.parameters[0].feasibleSpace.min", "0.00001"), "V0", id="V0-quoted-min"),
    pytest.param(put("spec.maxTrialCount", 12.0), "V0", id="V0-integral-float-count"),
    pytest.param(put("metadata.name", "a" * 40), "V1", id="V1-40-chars"),
    pytest.param(chain(drop("metadata.name"), put("metadata.generateName", "digits-bayes-")), "V1",
                 id="V1-generate-name"),
    pytest.param(put("spec.maxFailedTrialCount", 0), "V2", id="V2-zero"),
    pytest.param(chain(put("spec.maxTrialCount", 3), put("spec.maxFailedTrialCount", 3)), "V3", id="V3-three"),
    pytest.param(put("spec.parallelTrialCount", 1), "V4", id="V4-one"),
    pytest.param(put("spec.maxFailedTrialCount", 12), "V5", id="V5-equal"),
    pytest.param(put("spec.parallelTrialCount", 12), "V6", id="V6-equal"),
    pytest.param(minimize_val_loss, "V11", id="V11-minimize"),
    pytest.param(put("spec.objective.additionalMetricNames", ["val_loss"]), "V13", id="V13-distinct"),
    pytest.param(algorithm("tpe"), "V16", id="V16-tpe"),
    pytest.param(no_early_stopping, "V17", id="V17-no-early-stopping"),
    pytest.param(put("spec.resumePolicy", "LongRunning"), "V18", id="V18-long-running"),
    pytest.param(chain(custom_kind, with_conditions), "V19c", id="V19c-custom-kind-with-conditions"),
    pytest.param(chain(add("spec.trialTemplate.trialParameters", {"name": "trialName", "reference":
                                                                   "${trialSpec.Name}"}),
                       args("--checkpoint-dir=/ckpt/${trialParameters.trialName}")), "V19i4",
                 id="V19i4-metadata-reference"),
    pytest.param(put(f"{T}.metadata", {"labels": {"team": "vision"}}), "V19l", id="V19l-labels-only"),
    pytest.param(gpu_limits(1), "V19n", id="V19n-gpu-limit-integer"),
    pytest.param(put(f"{T}.spec.template.spec.volumes", [{"name": "cache", "emptyDir": {}}]), "V19n",
                 id="V19n-empty-dir-object"),
    pytest.param(put(f"{C}.env[0].value", "${trialParameters.optimizer}"), "V19n", id="V19n-placeholder-in-string"),
    pytest.param(chain(tfjob, put(f"{T}.spec.tfReplicaSpecs.Chief.template.spec.nodeSelector", {})), "V19n",
                 id="V19n-only-for-batch-job"),
    pytest.param(put("spec.parameters[2].parameterType", "discrete"), "V22a", id="V22a-discrete-words"),
    pytest.param(chain(collector({"collector": {"kind": "File"}, "source": {"fileSystemPath": {
        "path": "/var/log/katib/metrics.log", "kind": "File", "format": "TEXT"}}}),
                       args("--metrics-file=/var/log/katib/metrics.log")), "V23c", id="V23c-file-ok"),
    pytest.param(collector({"collector": {"kind": "StdOut"}, "source": {"filter": {
        "metricsFormat": [r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"]}}}), "V23h", id="V23h-default-regex"),
    pytest.param(put("spec.algorithm.algorithmSettings[0]", {"name": "acq_func", "value": "EI"}), "E1",
                 id="E1-valid-choice"),
    pytest.param(chain(add("spec.trialTemplate.trialParameters", {"name": "team", "reference":
                                                                  "${trialSpec.Labels[team]}"}),
                       args("--summary-file=/out/${trialParameters.team}.json"),
                       put(f"{T}.metadata", {"labels": {"team": "vision"}})), "E2", id="E2-label-present"),
    pytest.param(put("spec.parameters[1].feasibleSpace.min", "8"), "E3", id="E3-int-min"),
    pytest.param(hyperband("9", "3", 9, 9), "E4", id="E4-hyperband-first-bracket"),
    pytest.param(chain(algorithm("grid"), put("spec.parameters[0].feasibleSpace.step", "0.05"),
                       put("spec.parameters[3].feasibleSpace", {"min": "0.1", "max": "0.3", "step": "0.1"}),
                       put("spec.parameters[1].feasibleSpace", {"min": "32", "max": "64", "step": "32"}),
                       put("spec.maxTrialCount", 12)), "E4", id="E4-grid-fits"),
    pytest.param(chain(algorithm("cmaes"), *(put(f"spec.parameters[{i}].feasibleSpace.distribution", "uniform")
                                             for i in (0, 3))), "E4", id="E4-cmaes-three-numeric"),
    pytest.param(chain(algorithm("random"), put("spec.parameters[0].feasibleSpace.distribution", "normal"),
                       put("spec.parameters[0].feasibleSpace.min", "0.5"),
                       put("spec.parameters[0].feasibleSpace.max", "1")), "E4", id="E4-hyperopt-normal-note"),
    pytest.param(tfjob, "E5", id="E5-tfjob"),
    pytest.param(chain(put("spec.trialTemplate.primaryContainerName", "trainer"), put(f"{C}.name", "trainer")), "E6",
                 id="E6-renamed-both"),
    pytest.param(chain(put(f"{C}.command", ["sh", "-c"]), put(f"{C}.args", [
        "python -u -m trainer --dataset=digits --learning_rate=${trialParameters.learning_rate} "
        "--dense_units_0=${trialParameters.dense_units_0} --optimizer=${trialParameters.optimizer} "
        "--dropout_rate_0=${trialParameters.dropout_rate_0} 2>/tmp/err.log"])), "E7", id="E7-shell-form"),
    pytest.param(put("spec.maxFailedTrialCount", 0), "E8", id="E8-zero-failures"),
    pytest.param(put(f"{T}.spec.backoffLimit", 0), "E9", id="E9-backoff-zero"),
    pytest.param(minimize_val_loss, "M1", id="M1-underscore-name"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "TensorFlowEvent"}}),
                       args("--tensorboard-dir=/var/log/katib/tfevent"),
                       put("spec.objective.objectiveMetricName", "validation/val_accuracy"),
                       put("spec.objective.metricStrategies[0].name", "validation/val_accuracy")), "M2",
                 id="M2-tfevent-without-early-stopping"),
    pytest.param(put("spec.objective.metricStrategies[0].value", "latest"), "M3", id="M3-latest"),
    pytest.param(gpu_limits(1), "G1", id="G1-limits-only"),
    pytest.param(set_arg(2, "--learning-rate=${trialParameters.learning_rate}"), "T2", id="T2-dashed-alias"),
    pytest.param(set_arg(1, "--epochs=1000"), "T3", id="T3-max-epochs"),
    pytest.param(put("spec.parameters[0].feasibleSpace.max", "10"), "T4", id="T4-range-at-trainer-max"),
    pytest.param(chain(collector({"collector": {"kind": "File"}, "source": {"fileSystemPath": {"format": "JSON"}}}),
                       args("--metrics-file=/var/log/katib/metrics.log", "--metrics-format=json")), "T5",
                 id="T5-file-json-wired"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "TensorFlowEvent"}, "source": {
        "fileSystemPath": {"path": "/var/log/katib/tfevent/"}}}),
                       args("--tensorboard-dir=/var/log/katib/tfevent/run")), "T5", id="T5-tfevent-subdir"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "TensorFlowEvent"}, "source": {
        "fileSystemPath": {"path": "/var/log/katib/tfevent/validation"}}}),
                       args("--tensorboard-dir=/var/log/katib/tfevent")), "T5", id="T5-tfevent-validation-split"),
    pytest.param(chain(put(f"{C}.command", ["sh", "-c"]), put(f"{C}.args", [
        "python -u -m trainer --learning_rate=${trialParameters.learning_rate} "
        "--dense_units_0=${trialParameters.dense_units_0} --optimizer=${trialParameters.optimizer} "
        "--dropout_rate_0=${trialParameters.dropout_rate_0} 2> /tmp/err.log | tee /tmp/copy.log"])), "T6",
                 id="T6-stderr-redirect-and-tee"),
]


VALID += [
    pytest.param(put("spec.objective", {"type": "maximize", "objectiveMetricName": "val_accuracy"}), "V10",
                 id="V10-minimal-objective"),
    pytest.param(minimize_val_loss, "V12", id="V12-val-loss"),
    pytest.param(algorithm("random"), "V14", id="V14-random-without-settings"),
    pytest.param(algorithm("multivariate-tpe", [{"name": "n_startup_trials", "value": "4"}]), "V15",
                 id="V15-multivariate-tpe"),
    pytest.param(put("spec.trialTemplate.retain", True), "V19a", id="V19a-retain"),
    pytest.param(chain(put("spec.trialTemplate.primaryContainerName", "main"), put(f"{C}.name", "main")), "V19b",
                 id="V19b-other-name"),
    pytest.param(chain(config_map_source, with_conditions), "V19e", id="V19e-configmap-source"),
    pytest.param(chain(config_map_source, with_conditions), "V19f", id="V19f-one-source"),
    pytest.param(chain(config_map_source, with_conditions), "V19g", id="V19g-complete-configmap"),
    pytest.param(rename_trial_parameter, "V19i1", id="V19i1-renamed-consistently"),
    pytest.param(rename_trial_parameter, "V19i2", id="V19i2-distinct-names"),
    pytest.param(rename_trial_parameter, "V19i3", id="V19i3-distinct-references"),
    pytest.param(rename_trial_parameter, "V19i5", id="V19i5-used"),
    pytest.param(rename_trial_parameter, "V19j", id="V19j-declared"),
    pytest.param(tfjob, "V19m", id="V19m-tfjob-api-version"),
    pytest.param(darts, "V20", id="V20-nas-config-instead"),
    pytest.param(darts, "V21", id="V21-nas-only"),
    pytest.param(chain(algorithm("tpe"), put("spec.parameters[0].feasibleSpace.distribution", "logNormal")), "V22b",
                 id="V22b-lognormal-with-tpe"),
    pytest.param(put("spec.parameters[3].feasibleSpace", {"min": "0.1", "max": "0.4", "distribution": "logUniform"}),
                 "V22d", id="V22d-min-max-strings"),
    pytest.param(put("spec.parameters[1]", {"name": "dense_units_0", "parameterType": "discrete",
                                            "feasibleSpace": {"list": ["32", "64", "128"]}}), "V22e",
                 id="V22e-discrete-list"),
    pytest.param(chain(own_script, no_early_stopping, collector({"collector": {"kind": "Push"}})), "V23a",
                 id="V23a-push-instead-of-prometheus"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "TensorFlowEvent"}}),
                       args("--tensorboard-dir=/var/log/katib/tfevent")), "V23d", id="V23d-tfevent-default-dir"),
    # V23e has no valid neighbour on a stock install: any PrometheusMetric collector is refused (V23a).
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "Custom", "customCollector": {
        "name": "collector", "image": "example/collector:1"}}})), "V23f", id="V23f-custom-with-container"),
    pytest.param(chain(own_script, no_early_stopping, collector({"collector": {"kind": "Push"}})), "V23g",
                 id="V23g-push"),
    pytest.param(put("metadata.annotations", {"owner": "vision"}), "D0", id="D0-known-metadata-field"),
    pytest.param(put("spec.objective.metricStrategies", [{"name": "val_accuracy", "value": "max"}, {
        "name": "val_loss", "value": "min"}, {"name": "accuracy", "value": "max"}, {"name": "loss", "value": "max"}]),
                 "D1", id="D1-strategies-explicit"),
    pytest.param(minimize_val_loss, "T1", id="T1-val-loss-is-printed"),
    pytest.param(chain(no_early_stopping, collector({"collector": {"kind": "TensorFlowEvent"}}),
                       args("--tensorboard-dir=/var/log/katib/tfevent"),
                       put("spec.objective.objectiveMetricName", "validation/val_accuracy"),
                       put("spec.objective.metricStrategies[0].name", "validation/val_accuracy")), "T1",
                 id="T1-event-tag-with-split"),
]


@pytest.mark.parametrize(("mutation", "rule"), VALID)
def test_valid_neighbour_passes(mutation: Mutation, rule: str, request: pytest.FixtureRequest) -> None:
    problems = lint(mutation)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    assert errors == [], show(problems)
    assert not [p for p in problems if p.rule == rule and p.severity is Severity.WARNING], show(problems)
    # Neighbours stay free of any warning, except those whose change is fine for the rule but warned elsewhere.
    if request.node.callspec.id not in WARN_ELSEWHERE and rule not in ("E4", "E5"):
        assert [p for p in problems if p.severity is Severity.WARNING] == [], show(problems)
    if rule == "D1":
        assert not [p for p in problems if p.rule == "D1"], show(problems)


WARN_ELSEWHERE = {
    "V19c-custom-kind-with-conditions",  # E5: a Workflow is not in the standalone trialResources
    "V22a-discrete-words",  # E3: discrete values should be numbers
    "V22b-lognormal-with-tpe",  # T4: logNormal is unbounded, the trainer refuses values beyond its range
}


# --------------------------------------------------------------------------------------------- details
def test_did_you_mean_hints() -> None:
    def hint(problems: list[Problem], rule: str) -> str:
        return next(p.hint for p in problems if p.rule == rule)

    assert "val_accuracy" in hint(lint(put("spec.objective.objectiveMetricName", "val_acc")), "T1")
    assert "--learning_rate" in hint(lint(set_arg(2, "--learning_rat=${trialParameters.learning_rate}")), "T2")
    assert "bayesianoptimization" in hint(lint(put("spec.algorithm.algorithmName", "bayesianoptimisation")), "V16")
    assert "maxTrialCount" in hint(lint(put("spec.maxTrialCounts", 12)), "D0")
    assert "Push" in hint(lint(collector({"collector": {"kind": "None"}})), "V23g")
    assert "logUniform" in hint(lint(put("spec.parameters[0].feasibleSpace.distribution", "loguniform")), "V22b")


def test_v19d_only_needs_the_list_present() -> None:
    problems = lint(put("spec.trialTemplate.trialParameters", []))
    assert not [p for p in problems if p.rule == "V19d"]
    assert {"V19j", "E2"} <= {p.rule for p in problems}  # the placeholders and parameters are now unmatched


def test_v6_with_defaulted_parallel_says_so() -> None:
    problems = lint(drop("spec.parallelTrialCount"), put("spec.maxTrialCount", 2), put("spec.maxFailedTrialCount", 2))
    v6 = next(p for p in problems if p.rule == "V6")
    assert "defaults it to 3" in v6.message and "parallelTrialCount: 2" in v6.hint
    # The E8 "set it explicitly" warning would only repeat this.
    assert not [p for p in problems if p.rule == "E8" and p.path == "spec.parallelTrialCount"]


def test_hyperband_parallel_message_has_katib_numbers() -> None:
    problems = lint(hyperband("9", "3", 3, 3))
    message = next(p.message for p in problems if p.rule == "E4" and p.path == "spec.parallelTrialCount")
    assert ">= 9" in message and "parallelTrialCount must be not less than 9" in message


def test_grid_combinations_counted_like_optuna() -> None:
    problems = lint(algorithm("grid"), put("spec.parameters[0].feasibleSpace.step", "0.05"),
                    put("spec.parameters[0].feasibleSpace.min", "0.0001"),
                    put("spec.parameters[3].feasibleSpace", {"min": "0.1", "max": "0.3", "step": "0.1"}),
                    put("spec.parameters[1].feasibleSpace", {"min": "32", "max": "33"}),
                    put("spec.maxTrialCount", 100))
    message = next(p.message for p in problems if p.rule == "E4" and p.path == "spec.maxTrialCount")
    # learning_rate: arange(0.0001, 0.1 + 0.05, 0.05) -> 2 points (0.1001 is dropped); 2 ints; 3 optimizers; 3 rates.
    assert "combinations: 36" in message


def test_template_problems_point_at_the_field() -> None:
    problems = lint(put(f"{C}.env", [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPat": "x"}}}]))
    assert found(problems, "V19n", f"{C}.env[0].valueFrom.fieldRef.fieldPat", Severity.ERROR), show(problems)
    hint = next(p.hint for p in problems if p.rule == "V19n")
    assert "fieldPath" in hint


def test_placeholder_in_non_string_field_explains_why() -> None:
    problems = lint(put(f"{T}.spec.backoffLimit", "${trialParameters.dense_units_0}"))
    problem = next(p for p in problems if p.rule == "V19n")
    assert "string fields" in problem.hint


def test_every_problem_reported_in_one_pass() -> None:
    problems = lint(put("metadata.name", "Bad_Name"), put("spec.objective.type", "max"),
                    put("spec.algorithm.algorithmName", "bayes"), put("spec.parameters[0].parameterType", "float"),
                    put("spec.metricsCollectorSpec.collector.kind", "Stdout"))
    assert {"V1", "V11", "V16", "V22a", "V23g"} <= {p.rule for p in problems}


def test_no_follow_on_noise_without_objective_or_template() -> None:
    problems = lint(drop("spec.objective"))
    assert {p.rule for p in problems if p.is_error} == {"V10"}, show(problems)
    problems = lint(drop("spec.trialTemplate"))
    assert {p.rule for p in problems if p.is_error} == {"V19a"}, show(problems)


def test_unknown_algorithm_skips_its_settings_checks() -> None:
    problems = lint(put("spec.algorithm.algorithmName", "bayes"))
    assert [p.rule for p in problems if p.is_error] == ["V16"], show(problems)


def test_config_map_template_in_the_same_file_is_checked() -> None:
    doc = copy.deepcopy(BASE)
    job = doc["spec"]["trialTemplate"].pop("trialSpec")
    doc["spec"]["trialTemplate"].update(
        configMap={"configMapName": "trial-templates", "configMapNamespace": "kubeflow",
                   "templatePath": "trainer-job.yaml"},
        successCondition='status.conditions.#(type=="Complete")#|#(status=="True")#',
        failureCondition='status.conditions.#(type=="Failed")#|#(status=="True")#')
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "trial-templates", "namespace": "kubeflow"},
                  "data": {"trainer-job.yaml": dump_yaml(job)}}
    text = dump_yaml(config_map) + "---\n" + dump_yaml(doc)
    problems = validate_text(text, "multi.yaml")
    assert [p for p in problems if p.severity is not Severity.NOTE] == [], show(problems)
    assert any(p.rule == "" and p.source == "multi.yaml#doc 1" and "skipped" in p.message for p in problems)
    # A broken template inside the ConfigMap is found, with the ConfigMap in the path.
    job["spec"]["template"]["spec"]["restartPolicyy"] = "Never"
    config_map["data"]["trainer-job.yaml"] = dump_yaml(job)
    problems = validate_text(dump_yaml(config_map) + "---\n" + dump_yaml(doc), "multi.yaml")
    bad = next(p for p in problems if p.rule == "V19n")
    assert bad.path.startswith("configMap kubeflow/trial-templates[trainer-job.yaml]") and \
        bad.source == "multi.yaml#doc 2"
    # A missing key is V19h.
    config_map["data"] = {"other.yaml": "{}"}
    problems = validate_text(dump_yaml(config_map) + "---\n" + dump_yaml(doc), "multi.yaml")
    assert any(p.rule == "V19h" and p.is_error for p in problems), show(problems)
