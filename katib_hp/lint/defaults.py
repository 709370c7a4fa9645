"""Katib's mutating webhook for Experiments (REFERENCE §1.9), as a pure function on a manifest dict.

On CREATE and UPDATE, before validation, Katib fills in:

1. ``spec.parallelTrialCount`` = 3 when absent;
2. ``spec.resumePolicy`` = ``Never`` when empty;
3. ``spec.objective.metricStrategies``: the objective gets ``min`` (minimize) / ``max`` (maximize), and every
   additional metric without a strategy gets **the objective's** min/max (``latest`` only when the type is
   empty);
4. for an inline ``trialSpec``: success/failure conditions by kind (Job; TFJob, PyTorchJob, XGBoostJob, MPIJob;
   TrainJob) and, for the Kubeflow kinds, ``primaryPodLabels`` (ConfigMap templates get nothing);
5. metrics collector: no collector -> StdOut; File -> kind File, path /var/log/katib/metrics.log, format TEXT;
   TensorFlowEvent -> kind Directory, path /var/log/katib/tfevent/; PrometheusMetric -> path /metrics, port 8080;
6. ``distribution: uniform`` on every ``spec.parameters`` entry that has none (categorical included).

The validator then sees the defaulted object, which is why a missing parallelTrialCount with maxTrialCount < 3
is refused.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from katib_hp.lint._common import DEFAULT_METRICS_FILE, DEFAULT_TFEVENT_DIR, child

DEFAULT_PARALLEL_TRIAL_COUNT = 3
DEFAULT_RESUME_POLICY = "Never"

JOB_SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
KUBEFLOW_SUCCESS = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
KUBEFLOW_FAILURE = JOB_FAILURE
TRAINJOB_SUCCESS = JOB_SUCCESS
TRAINJOB_FAILURE = JOB_FAILURE
KUBEFLOW_PRIMARY_POD_LABELS = {"training.kubeflow.org/job-role": "master"}
TRAINJOB_PRIMARY_POD_LABELS = {
    "jobset.sigs.k8s.io/replicatedjob-name": "node",
    "batch.kubernetes.io/job-completion-index": "0",
}
KUBEFLOW_JOB_KINDS = ("TFJob", "PyTorchJob", "XGBoostJob", "MPIJob", "TrainJob")

Record = Callable[[str, Any], None]


def _ignore(path: str, value: Any) -> None:
    return None


def _sub(parent: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``parent[key]`` as a dict, created when absent; None when something else is there."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else None


def _empty(value: Any) -> bool:
    return value is None or value == ""


def default_in_place(doc: dict[str, Any], record: Record = _ignore) -> None:
    """Apply Katib's defaults to ``doc`` (tolerating any shape); ``record(path, value)`` for each one set."""
    if doc.get("spec") is None:
        doc["spec"] = {}  # Katib's spec is a struct: defaulting fills it even when the manifest has none
    spec = doc["spec"]
    if not isinstance(spec, dict):
        return
    if spec.get("parallelTrialCount") is None:
        spec["parallelTrialCount"] = DEFAULT_PARALLEL_TRIAL_COUNT
        record("spec.parallelTrialCount", DEFAULT_PARALLEL_TRIAL_COUNT)
    if _empty(spec.get("resumePolicy")):
        spec["resumePolicy"] = DEFAULT_RESUME_POLICY
        record("spec.resumePolicy", DEFAULT_RESUME_POLICY)
    _default_objective(spec, record)
    _default_trial_template(spec, record)
    _default_metrics_collector(spec, record)
    parameters = spec.get("parameters")
    if isinstance(parameters, list):
        for index, parameter in enumerate(parameters):
            if not isinstance(parameter, dict):
                continue
            space = _sub(parameter, "feasibleSpace")
            if space is not None and _empty(space.get("distribution")):
                space["distribution"] = "uniform"
                record(child(child(child("spec.parameters", index), "feasibleSpace"), "distribution"), "uniform")


def _strategy_for(objective_type: Any) -> str:
    return {"minimize": "min", "maximize": "max"}.get(objective_type if isinstance(objective_type, str) else "",
                                                      "latest")


def _default_objective(spec: dict[str, Any], record: Record) -> None:
    objective = spec.get("objective")
    if not isinstance(objective, dict):
        return
    strategies = objective.get("metricStrategies")
    if strategies is None:
        strategies = objective["metricStrategies"] = []
    if not isinstance(strategies, list):
        return
    name = objective.get("objectiveMetricName")
    name = name if isinstance(name, str) else ""
    named = {s.get("name") for s in strategies if isinstance(s, dict)}
    value = _strategy_for(objective.get("type"))
    if name not in named:
        strategies.append({"name": name, "value": value})
        record(f"spec.objective.metricStrategies[{len(strategies) - 1}]", {"name": name, "value": value})
    additional = objective.get("additionalMetricNames")
    for metric in additional if isinstance(additional, list) else []:
        if isinstance(metric, str) and metric not in named and metric != name:
            strategies.append({"name": metric, "value": value})
            named.add(metric)
            record(f"spec.objective.metricStrategies[{len(strategies) - 1}]", {"name": metric, "value": value})


def _default_trial_template(spec: dict[str, Any], record: Record) -> None:
    template = spec.get("trialTemplate")
    if not isinstance(template, dict) or template.get("trialSpec") is None:
        return
    trial_spec = template["trialSpec"]
    kind = trial_spec.get("kind") if isinstance(trial_spec, dict) else None
    if kind == "Job":
        success, failure, labels = JOB_SUCCESS, JOB_FAILURE, None
    elif kind == "TrainJob":
        success, failure, labels = TRAINJOB_SUCCESS, TRAINJOB_FAILURE, TRAINJOB_PRIMARY_POD_LABELS
    elif kind in KUBEFLOW_JOB_KINDS:
        success, failure, labels = KUBEFLOW_SUCCESS, KUBEFLOW_FAILURE, KUBEFLOW_PRIMARY_POD_LABELS
    else:
        return
    if _empty(template.get("successCondition")):
        template["successCondition"] = success
        record("spec.trialTemplate.successCondition", success)
    if _empty(template.get("failureCondition")):
        template["failureCondition"] = failure
        record("spec.trialTemplate.failureCondition", failure)
    if labels is not None and not template.get("primaryPodLabels"):
        template["primaryPodLabels"] = dict(labels)
        record("spec.trialTemplate.primaryPodLabels", dict(labels))


def _default_metrics_collector(spec: dict[str, Any], record: Record) -> None:
    mc = _sub(spec, "metricsCollectorSpec")
    if mc is None:
        return
    if mc.get("collector") is None:
        mc["collector"] = {"kind": "StdOut"}
        record("spec.metricsCollectorSpec.collector.kind", "StdOut")
    collector = mc["collector"]
    kind = collector.get("kind") if isinstance(collector, dict) else None
    base = "spec.metricsCollectorSpec.source"
    if kind == "PrometheusMetric":
        source = _sub(mc, "source")
        http = _sub(source, "httpGet") if source is not None else None
        if http is None:
            return
        if _empty(http.get("path")):
            http["path"] = "/metrics"
            record(f"{base}.httpGet.path", "/metrics")
        if http.get("port") in (None, 0, "0"):
            http["port"] = 8080
            record(f"{base}.httpGet.port", 8080)
    elif kind in ("File", "TensorFlowEvent"):
        source = _sub(mc, "source")
        fs = _sub(source, "fileSystemPath") if source is not None else None
        if fs is None:
            return
        file_kind = "File" if kind == "File" else "Directory"
        if _empty(fs.get("kind")):
            fs["kind"] = file_kind
            record(f"{base}.fileSystemPath.kind", file_kind)
        if _empty(fs.get("path")):
            path = DEFAULT_METRICS_FILE if kind == "File" else DEFAULT_TFEVENT_DIR
            fs["path"] = path
            record(f"{base}.fileSystemPath.path", path)
        if kind == "File" and _empty(fs.get("format")):
            fs["format"] = "TEXT"
            record(f"{base}.fileSystemPath.format", "TEXT")


def apply_defaults(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Return a new dict: ``manifest`` after Katib's mutating webhook (§1.9). Never raises on odd shapes."""
    given: Any = manifest
    if not isinstance(given, Mapping):
        return {}
    try:
        doc = copy.deepcopy(dict(given))
    except Exception:  # objects that cannot be copied: default a shallow copy instead of failing
        doc = dict(given)
    default_in_place(doc)
    return doc
