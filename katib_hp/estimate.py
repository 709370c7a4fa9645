"""How much an Experiment will run: trials, pods and GPUs at the peak, epochs and GPU-hours in total.

Works on any Experiment manifest, ours or hand-written: the numbers come from ``maxTrialCount``,
``parallelTrialCount``, the run object's replicas and its ``nvidia.com/gpu`` limits, and the epochs each
trial trains (a fixed ``--epochs=N`` argument, or the epochs search parameter's maximum as an upper bound,
or Hyperband's rungs). Every assumption made is listed in ``notes``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from katib_hp.algorithms import hyperband_plan
from katib_hp.errors import ConfigError
from katib_hp.experiment import GPU_RESOURCE

DEFAULT_PARALLEL = 3  # Katib's mutating webhook default
EPOCHS_FLAG = "epochs"
_PLACEHOLDER = re.compile(r"^\$\{trialParameters\.([^}]+)\}$")


@dataclass(frozen=True)
class Estimate:
    trials: int
    peak_parallel_trials: int
    pods_per_trial: int
    peak_pods: int
    gpus_per_trial: int
    peak_gpus: int
    total_epochs: int | None
    gpu_hours: float | None
    notes: tuple[str, ...]
    total_epochs_is_upper_bound: bool = False  # epochs came from a searched parameter's maximum ("up to")


def estimate(manifest: Mapping[str, Any], epoch_seconds: float | None = None) -> Estimate:
    """Estimate the size of the Experiment in ``manifest``; ``epoch_seconds`` is one epoch on one trial."""
    if not isinstance(manifest, Mapping) or manifest.get("kind") != "Experiment":
        raise ConfigError("not a Katib Experiment (kind: Experiment expected)", path="kind",
                          value=manifest.get("kind") if isinstance(manifest, Mapping) else None)
    spec = manifest.get("spec")
    if not isinstance(spec, Mapping):
        raise ConfigError("the Experiment has no spec", path="spec")
    if epoch_seconds is not None and not (epoch_seconds > 0 and math.isfinite(epoch_seconds)):
        raise ConfigError(f"must be a positive number of seconds (got {epoch_seconds!r})", path="epoch_seconds")
    notes: list[str] = []

    parallel = _int(spec.get("parallelTrialCount"))
    if parallel is None:
        parallel = DEFAULT_PARALLEL
        notes.append(f"parallelTrialCount is not set: Katib defaults it to {DEFAULT_PARALLEL}")
    maximum = _int(spec.get("maxTrialCount"))
    if maximum is not None:
        parallel = min(parallel, maximum)

    pods, gpus, primary_args = _run_object(spec, notes)
    epochs_per_trial, upper = _epochs_per_trial(spec, primary_args, notes)

    algorithm = spec.get("algorithm") if isinstance(spec.get("algorithm"), Mapping) else {}
    assert isinstance(algorithm, Mapping)
    trials: int
    total_epochs: int | None
    if algorithm.get("algorithmName") == "hyperband":
        trials, total_epochs = _hyperband(algorithm, parallel, maximum, primary_args, spec, notes)
        upper = False
    else:
        if maximum is None:
            trials = 0
            notes.append("maxTrialCount is not set: the Experiment runs until its goal is reached, or forever; "
                         "totals are unknown")
        else:
            trials = maximum
            notes.append(f"{trials} trials (maxTrialCount: failed, early-stopped and metrics-unavailable trials "
                         "count towards it)")
        total_epochs = trials * epochs_per_trial if (epochs_per_trial is not None and maximum is not None) else None
        if total_epochs is not None:
            notes.append(f"{'up to ' if upper else ''}{epochs_per_trial} epochs per trial"
                         + (" (the maximum of the searched epochs parameter)" if upper else ""))

    gpu_hours = None
    if epoch_seconds is not None and total_epochs is not None:
        gpu_hours = total_epochs * epoch_seconds * gpus / 3600
        notes.append(f"gpu_hours = {'up to ' if upper else ''}{total_epochs} epochs × {epoch_seconds:g} s × "
                     f"{gpus} GPU{'s' if gpus != 1 else ''} per trial / 3600")
    elif epoch_seconds is not None:
        notes.append("gpu_hours unknown: the epochs per trial are not known")
    if gpus == 0:
        notes.append("no GPUs requested (no nvidia.com/gpu limits in the trial template)")
    return Estimate(
        trials=trials, peak_parallel_trials=parallel, pods_per_trial=pods, peak_pods=parallel * pods,
        gpus_per_trial=gpus, peak_gpus=parallel * gpus, total_epochs=total_epochs, gpu_hours=gpu_hours,
        notes=tuple(notes), total_epochs_is_upper_bound=upper and total_epochs is not None,
    )


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _gpus(pod_spec: Any) -> int:
    if not isinstance(pod_spec, Mapping):
        return 0
    total = 0
    for container in pod_spec.get("containers") or []:
        if not isinstance(container, Mapping):
            continue
        resources = container.get("resources") or {}
        amount = (resources.get("limits") or {}).get(GPU_RESOURCE)
        if amount is None:
            amount = (resources.get("requests") or {}).get(GPU_RESOURCE)
        try:
            total += int(float(amount)) if amount is not None else 0
        except (TypeError, ValueError):
            continue
    return total


def _primary_args(pod_spec: Any, primary: Any) -> list[str] | None:
    if not isinstance(pod_spec, Mapping):
        return None
    for container in pod_spec.get("containers") or []:
        if isinstance(container, Mapping) and container.get("name") == primary:
            tokens: list[str] = []
            for part in [*(container.get("command") or []), *(container.get("args") or [])]:
                tokens.extend(str(part).split())
            return tokens
    return None


def _run_object(spec: Mapping[str, Any], notes: list[str]) -> tuple[int, int, list[str]]:
    """(pods per trial, GPUs per trial, the primary container's command and args as tokens)."""
    template = spec.get("trialTemplate") if isinstance(spec.get("trialTemplate"), Mapping) else {}
    assert isinstance(template, Mapping)
    primary = template.get("primaryContainerName")
    run = template.get("trialSpec")
    if not isinstance(run, Mapping):
        notes.append("the trial template is not inline (trialSpec): assuming 1 pod and no GPUs per trial")
        return 1, 0, []
    kind = run.get("kind")
    body = run.get("spec") if isinstance(run.get("spec"), Mapping) else {}
    assert isinstance(body, Mapping)
    replica_specs = next((v for k, v in body.items() if k.endswith("ReplicaSpecs") and isinstance(v, Mapping)), None)
    if replica_specs is not None:
        pods = gpus = 0
        args: list[str] | None = None
        for role, replica in replica_specs.items():
            if not isinstance(replica, Mapping):
                continue
            count = _int(replica.get("replicas"))
            count = 1 if count is None else count
            pod = (replica.get("template") or {}).get("spec")
            pods += count
            gpus += count * _gpus(pod)
            args = args or _primary_args(pod, primary)
            notes.append(f"{kind} {role}: {count} pod{'s' if count != 1 else ''} × {_gpus(pod)} GPU per pod")
        return pods, gpus, args or []
    if kind != "Job":
        notes.append(f"run object kind {kind!r}: counted as one pod per trial")
    pod = ((body.get("template") or {}) if isinstance(body.get("template"), Mapping) else {}).get("spec")
    return 1, _gpus(pod), _primary_args(pod, primary) or []


def _flag_value(tokens: list[str], flag: str) -> str | None:
    for index, token in enumerate(tokens):
        if token.startswith(f"--{flag}="):
            return token.split("=", 1)[1]
        if token == f"--{flag}" and index + 1 < len(tokens):
            return tokens[index + 1]
    return None


def _parameter_for(spec: Mapping[str, Any], placeholder: str) -> Mapping[str, Any] | None:
    """The spec.parameters entry that ``${trialParameters.x}`` stands for."""
    match = _PLACEHOLDER.match(placeholder)
    if not match:
        return None
    template = spec.get("trialTemplate") or {}
    reference = next((p.get("reference") for p in template.get("trialParameters") or []
                      if isinstance(p, Mapping) and p.get("name") == match.group(1)), None)
    return next((p for p in spec.get("parameters") or [] if isinstance(p, Mapping) and p.get("name") == reference),
                None)


def _epochs_per_trial(spec: Mapping[str, Any], tokens: list[str], notes: list[str]) -> tuple[int | None, bool]:
    value = _flag_value(tokens, EPOCHS_FLAG)
    if value is None:
        notes.append("epochs per trial unknown: no --epochs argument in the primary container")
        return None, False
    parameter = _parameter_for(spec, value)
    if parameter is None:
        try:
            return int(float(value)), False
        except ValueError:
            notes.append(f"epochs per trial unknown: --epochs={value}")
            return None, False
    space = parameter.get("feasibleSpace") or {}
    candidates = [space.get("max"), *(space.get("list") or [])]
    numbers = []
    for item in candidates:
        try:
            numbers.append(int(float(item)))
        except (TypeError, ValueError):
            continue
    if not numbers:
        notes.append(f"epochs per trial unknown: parameter {parameter.get('name')} has no numeric maximum")
        return None, False
    return max(numbers), True


def _hyperband(algorithm: Mapping[str, Any], parallel: int, maximum: int | None, tokens: list[str],
               spec: Mapping[str, Any], notes: list[str]) -> tuple[int, int | None]:
    settings: dict[str, Any] = {str(s.get("name")): s.get("value") for s in algorithm.get("algorithmSettings") or []
                                if isinstance(s, Mapping)}
    try:
        r_l = float(settings["r_l"])
        eta = int(float(settings.get("eta", 3)))
        plan = hyperband_plan(r_l, eta)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        notes.append("hyperband without a usable r_l/eta: counted as maxTrialCount trials of unknown length")
        return maximum or 0, None
    rungs = [rung for bracket in plan.brackets(parallel) for rung in bracket]
    first_bracket = plan.brackets(parallel)[0]
    budget = maximum if maximum is not None else sum(n for n, _ in first_bracket)
    if maximum is None:
        rungs = first_bracket
    trials = epochs = 0
    for count, resource in rungs:
        take = min(count, budget - trials)
        if take <= 0:
            break
        trials += take
        epochs += take * resource
    ran = ", ".join(f"{n}×{r}" for n, r in rungs)
    notes.append(f"hyperband r_l={settings['r_l']}, eta={plan.eta}: {trials} trials in rung order "
                 f"(trials×resource: {ran}), {'up to maxTrialCount ' + str(maximum) if maximum else 'the first bracket'}")
    resource_name = settings.get("resource_name")
    value = _flag_value(tokens, EPOCHS_FLAG)
    parameter = _parameter_for(spec, value) if value is not None else None
    if parameter is None or parameter.get("name") != resource_name:
        notes.append(f"hyperband's resource '{resource_name}' is not the trainer's --epochs: epochs unknown")
        return trials, None
    return trials, epochs
