"""ExperimentSpec -> the Katib v1beta1 manifest (the one place that writes Katib's camelCase).

The manifest is a plain dict in a stable key order, ready for ``yaml.safe_dump``: no ``None`` values, and
strings wherever Katib expects strings (feasible-space bounds and list items, setting values). It is
accepted by ``kubectl apply`` unchanged. ``to_sdk`` turns it into the kubeflow-katib SDK's typed object for
code that talks to Katib through the SDK.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from katib_hp.experiment import (
    API_VERSION,
    KIND,
    CollectorKind,
    CollectorSpec,
    ExperimentSpec,
    ParameterSpec,
    TrialTemplateSpec,
)

if TYPE_CHECKING:
    from kubeflow.katib import V1beta1Experiment


def to_manifest(experiment: ExperimentSpec) -> dict[str, Any]:
    """The Experiment as Katib's YAML/JSON object (apiVersion kubeflow.org/v1beta1, kind Experiment)."""
    metadata: dict[str, Any] = {"name": experiment.name}
    if experiment.namespace:
        metadata["namespace"] = experiment.namespace
    if experiment.labels:
        metadata["labels"] = dict(experiment.labels)
    objective = experiment.objective
    objective_dict: dict[str, Any] = {"type": objective.type.value}
    if objective.goal is not None:
        objective_dict["goal"] = objective.goal
    objective_dict["objectiveMetricName"] = objective.metric
    if objective.additional_metrics:
        objective_dict["additionalMetricNames"] = list(objective.additional_metrics)
    if objective.strategies:
        objective_dict["metricStrategies"] = [{"name": n, "value": s.value} for n, s in objective.strategies]
    spec: dict[str, Any] = {"objective": objective_dict, "algorithm": _algorithm(experiment)}
    if experiment.early_stopping is not None:
        early: dict[str, Any] = {"algorithmName": experiment.early_stopping.name}
        if experiment.early_stopping.settings:
            early["algorithmSettings"] = _settings(experiment.early_stopping.settings)
        spec["earlyStopping"] = early
    spec["parallelTrialCount"] = experiment.parallel
    spec["maxTrialCount"] = experiment.max
    spec["maxFailedTrialCount"] = experiment.max_failed
    spec["resumePolicy"] = experiment.resume_policy.value
    spec["metricsCollectorSpec"] = _collector(experiment.collector)
    spec["parameters"] = [_parameter(p) for p in experiment.parameters]
    spec["trialTemplate"] = _trial_template(experiment.trial_template)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def _settings(settings: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"name": name, "value": str(value)} for name, value in settings]


def _algorithm(experiment: ExperimentSpec) -> dict[str, Any]:
    algorithm: dict[str, Any] = {"algorithmName": experiment.algorithm.name}
    if experiment.algorithm.settings:
        algorithm["algorithmSettings"] = _settings(experiment.algorithm.settings)
    return algorithm


def _collector(collector: CollectorSpec) -> dict[str, Any]:
    result: dict[str, Any] = {"collector": {"kind": collector.kind.value}}
    source: dict[str, Any] = {}
    if collector.path is not None and collector.kind is not CollectorKind.STDOUT:
        path: dict[str, Any] = {"path": collector.path}
        if collector.path_kind is not None:
            path["kind"] = collector.path_kind.value
        if collector.format is not None:
            path["format"] = collector.format.value
        source["fileSystemPath"] = path
    if collector.filters:
        source["filter"] = {"metricsFormat": list(collector.filters)}
    if source:
        result["source"] = source
    return result


def _parameter(parameter: ParameterSpec) -> dict[str, Any]:
    space: dict[str, Any] = {}
    if parameter.min is not None:
        space["min"] = str(parameter.min)
    if parameter.max is not None:
        space["max"] = str(parameter.max)
    if parameter.step is not None:
        space["step"] = str(parameter.step)
    if parameter.values:
        space["list"] = [str(v) for v in parameter.values]
    if parameter.distribution is not None:
        space["distribution"] = parameter.distribution.value
    return {"name": parameter.name, "parameterType": parameter.type.value, "feasibleSpace": space}


def _trial_template(template: TrialTemplateSpec) -> dict[str, Any]:
    result: dict[str, Any] = {
        "primaryContainerName": template.primary_container_name,
        "retain": template.retain,
        "trialParameters": [
            {"name": p.name, "description": p.description, "reference": p.reference}
            for p in template.trial_parameters
        ],
        "successCondition": template.success_condition,
        "failureCondition": template.failure_condition,
    }
    if template.primary_pod_labels:
        result["primaryPodLabels"] = dict(template.primary_pod_labels)
    result["trialSpec"] = _plain(template.run_spec)
    return result


def _plain(value: Any) -> Any:
    """A deep copy made of dicts, lists and scalars only, without None values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value if v is not None]
    return value


def to_sdk(manifest: Mapping[str, Any]) -> V1beta1Experiment:
    """The manifest as the kubeflow-katib SDK's ``V1beta1Experiment`` (needs the ``client`` extra)."""
    try:
        from kubeflow.katib import ApiClient
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_sdk needs kubeflow-katib: pip install 'katib-hp[client]'") from exc

    class _Response:
        data = json.dumps(manifest)

    experiment: V1beta1Experiment = ApiClient().deserialize(_Response(), "V1beta1Experiment")
    return experiment
