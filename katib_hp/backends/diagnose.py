"""Explain why an experiment is stuck or its trials fail, from one snapshot (no extra requests).

Each finding names the object, says what is wrong and how to fix it. The caller may pass the namespace label
state and trial logs it fetched on demand (``KatibCluster.diagnose`` does that); without them those checks are
skipped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from katib_hp.backends.status import (
    INJECTION_LABEL,
    TRIAL_LABEL,
    Condition,
    collector_kind,
    condition,
    labels_of,
    name_of,
    objective_metric,
    state,
)

if TYPE_CHECKING:
    from katib_hp.backends.cluster import ClusterSnapshot

# Katib's StdOut/File TEXT default filter (REFERENCE 4.2).
METRIC_LINE = re.compile(r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)")
_WAITING_REASONS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError",
                    "CreateContainerError", "CrashLoopBackOff", "RunContainerError"}
LOG_TAIL_LINES = 5


@dataclass(frozen=True)
class Diagnosis:
    """One finding: the object it is about, what is wrong, and what to do."""

    subject: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.subject}: {self.message}"
        return f"{text}; {self.hint}" if self.hint else text


def diagnose(snapshot: ClusterSnapshot, *, namespace: str = "", namespace_labelled: bool | None = None,
             logs: Mapping[str, str] | None = None) -> list[Diagnosis]:
    """Findings for a snapshot, most fundamental first.

    Args:
        snapshot: what the cluster showed.
        namespace: the namespace's name, for the messages.
        namespace_labelled: whether the namespace has Katib's injection label (``None``: not checked).
        logs: trainer output by trial name, for MetricsUnavailable trials (optional).
    """
    found: list[Diagnosis] = []
    if namespace_labelled is False:
        found.append(Diagnosis(
            f"namespace '{namespace}'", f"lacks the label {INJECTION_LABEL}=enabled, so Katib injects no "
            "metrics collector and refuses new experiments",
            f"run `kubectl label namespace {namespace} {INJECTION_LABEL}=enabled`"))
    failed = condition(snapshot.suggestion, Condition.FAILED)
    if failed is not None:
        found.append(Diagnosis(f"suggestion '{name_of(snapshot.suggestion or {})}'",
                               f"failed: {failed.get('message') or failed.get('reason')}",
                               "fix the algorithm settings (`katib-hp validate` checks them) and submit again"))
    pods_by_trial: dict[str, list[dict[str, Any]]] = {}
    for pod in snapshot.pods:
        trial_name = labels_of(pod).get(TRIAL_LABEL)
        if trial_name:
            pods_by_trial.setdefault(trial_name, []).append(pod)
    for trial in snapshot.trials:
        trial_name = name_of(trial)
        trial_state = state(trial)
        if trial_state == Condition.RUNNING:
            found.extend(_pod_problems(trial_name, pods_by_trial.get(trial_name, [])))
        elif trial_state == Condition.METRICS_UNAVAILABLE:
            found.append(_metrics_unavailable(trial, (logs or {}).get(trial_name)))
    found.extend(_all_failed(snapshot.experiment))
    return found


def _pod_problems(trial_name: str, pods: list[dict[str, Any]]) -> list[Diagnosis]:
    found = []
    for pod in pods:
        status = pod.get("status") or {}
        subject = f"trial '{trial_name}' (pod '{name_of(pod)}')"
        for entry in status.get("containerStatuses") or []:
            waiting = (entry.get("state") or {}).get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            if reason in _WAITING_REASONS:
                detail = f": {waiting['message']}" if waiting.get("message") else ""
                hint = ("check the image name and tag and that the nodes can pull it (with kind: `kind load "
                        "docker-image`)" if "Image" in reason else
                        f"read the trainer's output with `kubectl logs {name_of(pod)} -c {entry.get('name')}`")
                found.append(Diagnosis(subject, f"container '{entry.get('name')}' is waiting: {reason}{detail}",
                                       hint))
        if status.get("phase") != "Pending":
            continue
        for entry in status.get("conditions") or []:
            if entry.get("type") == "PodScheduled" and str(entry.get("status")) == "False":
                message = str(entry.get("message") or entry.get("reason") or "cannot be scheduled")
                hint = ("each parallel trial requests its own GPUs: lower parallelTrialCount or the GPU limit, or "
                        "add GPU nodes" if "nvidia.com/gpu" in message else
                        "lower the trial's resource requests or parallelTrialCount, or add nodes")
                found.append(Diagnosis(subject, f"Pending, Katib still shows it Running: {message}", hint))
    return found


def _metrics_unavailable(trial: dict[str, Any], log: str | None) -> Diagnosis:
    metric = objective_metric(trial)
    subject = f"trial '{name_of(trial)}'"
    kind = collector_kind(trial)
    message = f"MetricsUnavailable: the {kind} collector found no value for the objective '{metric}'"
    hint = f"print it as one line `{metric}=<number>` (python -u, no nan/inf) at the end of training"
    if log is not None:
        lines = [line for line in log.splitlines() if line.strip()]
        parsed = {m.group(1) for line in lines for m in METRIC_LINE.finditer(line) if m.group(2) not in ("", "+", "-")}
        mentioned = [line for line in lines if metric and metric in line]
        if metric in parsed:
            message += " although the log has it; the trainer may have printed it after the collector stopped"
        elif mentioned:
            message += f"; it was printed in a form the collector does not parse: {mentioned[-1].strip()!r}"
        else:
            message += "; the log never mentions it"
        tail = " | ".join(lines[-LOG_TAIL_LINES:]) or "(empty)"
        hint = f"{hint}. Last log lines: {tail}"
    return Diagnosis(subject, message, hint)


def _all_failed(experiment: dict[str, Any]) -> list[Diagnosis]:
    succeeded = condition(experiment, Condition.SUCCEEDED)
    status = experiment.get("status") or {}
    if succeeded is None or int(status.get("trialsSucceeded") or 0) > 0:
        return []
    return [Diagnosis(f"experiment '{name_of(experiment)}'",
                      f"reports Succeeded ({succeeded.get('reason')}) but no trial succeeded "
                      f"({int(status.get('trialsFailed') or 0)} failed, "
                      f"{int(status.get('trialMetricsUnavailable') or 0)} without metrics)",
                      "look at a trial's log (`katib-hp logs`) and set maxFailedTrialCount so Katib stops early")]
