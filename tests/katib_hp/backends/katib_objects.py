"""Katib objects shaped exactly as Katib v0.19 writes them (REFERENCE 1.10), for tests.

``experiment(...)`` derives its status counters, trial lists and currentOptimalTrial from the trials given, so
a test states what happened (trials and their states) and the experiment agrees with it:

    trials = [trial("mnist", "mnist-aaaa", {"lr": 0.01}, "Succeeded", {"accuracy": 0.91}),
              trial("mnist", "mnist-bbbb", {"lr": 0.1}, "Failed")]
    exp = experiment("mnist", state="Running", trials=trials, max_trials=4)
"""

from __future__ import annotations

from typing import Any

GROUP_VERSION = "kubeflow.org/v1beta1"
STAMP = "2026-01-01T00:00:00Z"
EXPERIMENT_REASONS = {"Created": "ExperimentCreated", "Running": "ExperimentRunning",
                      "Restarting": "ExperimentRestarting", "Succeeded": "ExperimentMaxTrialsReached",
                      "Failed": "ExperimentFailed"}
TRIAL_REASONS = {"Created": "TrialCreated", "Running": "TrialRunning", "Succeeded": "TrialSucceeded",
                 "Failed": "TrialFailed", "Killed": "TrialKilled", "MetricsUnavailable": "MetricsUnavailable",
                 "EarlyStopped": "TrialEarlyStopped"}
TRIAL_MESSAGES = {"Succeeded": "Trial has succeeded", "Failed": "Trial has failed",
                  "MetricsUnavailable": "Metrics are not available", "Running": "Trial is running",
                  "Killed": "Trial has been killed", "EarlyStopped": "Trial is early stopped"}
# status field of each trial state: (counter, list)
_COUNTERS = {"Succeeded": ("trialsSucceeded", "succeededTrialList"), "Failed": ("trialsFailed", "failedTrialList"),
             "Killed": ("trialsKilled", "killedTrialList"), "Pending": ("trialsPending", "pendingTrialList"),
             "Running": ("trialsRunning", "runningTrialList"),
             "EarlyStopped": ("trialsEarlyStopped", "earlyStoppedTrialList"),
             "MetricsUnavailable": ("trialMetricsUnavailable", "metricsUnavailableTrialList")}


def cond(kind: str, status: bool, reason: str, message: str = "", stamp: str = STAMP) -> dict[str, Any]:
    """One Kubernetes-style condition."""
    return {"type": kind, "status": "True" if status else "False", "reason": reason, "message": message,
            "lastUpdateTime": stamp, "lastTransitionTime": stamp}


def trial(experiment_name: str, name: str, params: dict[str, Any], state: str = "Running",
          metrics: dict[str, Any] | None = None, *, namespace: str = "default", objective: str = "accuracy",
          goal_type: str = "maximize", collector: str = "StdOut", primary_container: str = "training-container",
          primary_pod_labels: dict[str, str] | None = None, created: str = STAMP) -> dict[str, Any]:
    """A Trial in ``state`` (Pending = created only, Running, Succeeded, Failed, MetricsUnavailable, ...).

    ``metrics`` maps a metric name to its latest value; values become strings as in Katib's status.
    """
    conditions = [cond("Created", True, "TrialCreated", "Trial is created", created)]
    if state != "Pending":
        conditions.append(cond("Running", state == "Running", "TrialRunning", "Trial is running", created))
    if state not in ("Pending", "Running"):
        conditions.append(cond(state, True, TRIAL_REASONS[state], TRIAL_MESSAGES[state], created))
    status: dict[str, Any] = {"startTime": created, "conditions": conditions}
    if state not in ("Pending", "Running"):
        status["completionTime"] = created
    observed = dict(metrics or {})
    if state == "MetricsUnavailable":
        observed = {objective: "unavailable"}
    if observed:
        status["observation"] = {"metrics": [{"name": k, "min": str(v), "max": str(v), "latest": str(v)}
                                             for k, v in observed.items()]}
    spec: dict[str, Any] = {
        "objective": {"type": goal_type, "objectiveMetricName": objective,
                      "metricStrategies": [{"name": objective, "value": "max" if goal_type == "maximize" else "min"}]},
        "parameterAssignments": [{"name": k, "value": str(v)} for k, v in params.items()],
        "runSpec": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace}},
        "metricsCollector": {"collector": {"kind": collector}},
        "primaryContainerName": primary_container,
        "successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
        "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
        "labels": {},
    }
    if primary_pod_labels:
        spec["primaryPodLabels"] = dict(primary_pod_labels)
    return {
        "apiVersion": GROUP_VERSION, "kind": "Trial",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created, "uid": f"uid-{name}",
                     "labels": {"katib.kubeflow.org/experiment": experiment_name},
                     "finalizers": ["clean-metrics-in-db"],
                     "ownerReferences": [{"apiVersion": GROUP_VERSION, "kind": "Experiment", "name": experiment_name,
                                          "uid": f"uid-{experiment_name}", "controller": True}]},
        "spec": spec, "status": status,
    }


def trial_state(obj: dict[str, Any]) -> str:
    """The state a ``trial(...)`` was built with."""
    true = [c["type"] for c in obj["status"]["conditions"] if c["status"] == "True"]
    return "Pending" if true == ["Created"] else true[-1]


def experiment(name: str, *, namespace: str = "default", state: str = "Running", reason: str | None = None,
               message: str | None = None, trials: list[dict[str, Any]] | None = None, max_trials: int = 12,
               parallel: int = 3, max_failed: int | None = None, objective: str = "accuracy",
               goal_type: str = "maximize", optimal: dict[str, Any] | None = None, resume_policy: str = "Never",
               algorithm: str = "random", collector: str = "StdOut",
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    """An Experiment whose status agrees with ``trials``; ``optimal`` defaults to the best Succeeded trial."""
    trials = trials or []
    conditions = [cond("Created", True, "ExperimentCreated", "Experiment is created")]
    if state != "Created":
        conditions.append(cond("Running", state in ("Running", "Restarting"), "ExperimentRunning",
                               "Experiment is running"))
    if state == "Restarting":
        conditions.append(cond("Restarting", True, "ExperimentRestarting", "Experiment is restarting"))
    if state in ("Succeeded", "Failed"):
        default = "Experiment has succeeded because max trial count has reached" if state == "Succeeded" else \
            "Experiment has failed because max failed count has reached"
        conditions.append(cond(state, True, reason or EXPERIMENT_REASONS[state], message or default))
    status: dict[str, Any] = {"startTime": STAMP, "conditions": conditions, "trials": len(trials),
                              "currentOptimalTrial": _optimal(optimal, trials, objective, goal_type)}
    for trial_obj in trials:
        counter, listing = _COUNTERS[trial_state(trial_obj)]
        status[counter] = status.get(counter, 0) + 1
        status.setdefault(listing, []).append(trial_obj["metadata"]["name"])
    if state in ("Succeeded", "Failed"):
        status["completionTime"] = STAMP
    spec: dict[str, Any] = {
        "objective": {"type": goal_type, "objectiveMetricName": objective,
                      "metricStrategies": [{"name": objective, "value": "max" if goal_type == "maximize" else "min"}]},
        "algorithm": {"algorithmName": algorithm},
        "parameters": [{"name": "lr", "parameterType": "double",
                        "feasibleSpace": {"min": "0.001", "max": "0.1", "distribution": "logUniform"}}],
        "maxTrialCount": max_trials, "parallelTrialCount": parallel, "resumePolicy": resume_policy,
        "metricsCollectorSpec": {"collector": {"kind": collector}},
        "trialTemplate": {"primaryContainerName": "training-container", "retain": False,
                          "trialParameters": [{"name": "lr", "reference": "lr"}],
                          "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {}}},
    }
    if max_failed is not None:
        spec["maxFailedTrialCount"] = max_failed
    return {"apiVersion": GROUP_VERSION, "kind": "Experiment",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": STAMP, "uid": f"uid-{name}",
                         "labels": dict(labels or {"app": "katib-hp"}), "finalizers": ["update-prometheus-metrics"]},
            "spec": spec, "status": status}


def _optimal(optimal: dict[str, Any] | None, trials: list[dict[str, Any]], objective: str,
             goal_type: str) -> dict[str, Any]:
    if optimal is None:
        scored = [(float(m["latest"]), t) for t in trials if trial_state(t) == "Succeeded"
                  for m in (t["status"].get("observation") or {}).get("metrics", []) if m["name"] == objective]
        if scored:
            pick = max if goal_type == "maximize" else min
            optimal = pick(scored, key=lambda pair: pair[0])[1]
    if optimal is None:
        return {"bestTrialName": "", "parameterAssignments": None, "observation": {"metrics": None}}
    return {"bestTrialName": optimal["metadata"]["name"],
            "parameterAssignments": optimal["spec"]["parameterAssignments"],
            "observation": optimal["status"].get("observation") or {"metrics": None}}


def suggestion(experiment_name: str, *, namespace: str = "default", state: str = "Running", message: str = "",
               requests: int = 3, assigned: int = 3, algorithm: str = "random") -> dict[str, Any]:
    """The Suggestion of an experiment; ``state="Failed"`` with Katib's "Validation failed: ..." message."""
    conditions = [cond("Created", True, "SuggestionCreated", "Suggestion is created"),
                  cond("DeploymentReady", state != "Failed", "DeploymentReady", "Deployment is ready")]
    if state == "Failed":
        conditions.append(cond("Failed", True, "SuggestionFailed", message or "Suggestion has failed"))
    else:
        conditions.append(cond(state, True, f"Suggestion{state}", message or f"Suggestion is {state.lower()}"))
    return {"apiVersion": GROUP_VERSION, "kind": "Suggestion",
            "metadata": {"name": experiment_name, "namespace": namespace, "creationTimestamp": STAMP,
                         "labels": {"katib.kubeflow.org/experiment": experiment_name}},
            "spec": {"algorithm": {"algorithmName": algorithm}, "requests": requests, "resumePolicy": "Never"},
            "status": {"suggestionCount": assigned, "conditions": conditions, "startTime": STAMP}}


def pod(trial_obj: dict[str, Any], *, phase: str = "Running", sidecar: bool = True, unschedulable: str = "",
        waiting: tuple[str, str] | None = None, suffix: str = "x1y2z") -> dict[str, Any]:
    """The pod of a trial's Job, as the webhook leaves it (labels, sidecar with the StdOut collector).

    Args:
        unschedulable: a PodScheduled=False message such as "0/3 nodes are available: 3 Insufficient nvidia.com/gpu".
        waiting: (reason, message) of the primary container waiting, e.g. ("ImagePullBackOff", "...").
    """
    meta = trial_obj["metadata"]
    primary = trial_obj["spec"].get("primaryContainerName", "training-container")
    names = [primary] + (["metrics-logger-and-collector"] if sidecar else [])
    conditions = [{"type": "PodScheduled", "status": "False" if unschedulable else "True",
                   "reason": "Unschedulable" if unschedulable else "", "message": unschedulable}]
    statuses = []
    if waiting:
        statuses.append({"name": primary, "ready": False, "restartCount": 0,
                         "state": {"waiting": {"reason": waiting[0], "message": waiting[1]}}})
    labels = {**meta["labels"], "katib.kubeflow.org/trial": meta["name"], "job-name": meta["name"],
              **dict(trial_obj["spec"].get("primaryPodLabels") or {})}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{meta['name']}-{suffix}", "namespace": meta["namespace"], "labels": labels,
                         "creationTimestamp": meta["creationTimestamp"]},
            "spec": {"containers": [{"name": n, "image": "example/trainer:1"} for n in names],
                     "shareProcessNamespace": sidecar, "restartPolicy": "Never"},
            "status": {"phase": phase, "conditions": conditions, "containerStatuses": statuses}}


def namespace(name: str = "default", *, labelled: bool = True) -> dict[str, Any]:
    """A Namespace, with Katib's metrics-collector injection label when ``labelled``."""
    labels = {"kubernetes.io/metadata.name": name}
    if labelled:
        labels["katib.kubeflow.org/metrics-collector-injection"] = "enabled"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
