"""Trial template substitution exactly as Katib's controller does it (REFERENCE §5).

Katib serialises ``trialTemplate.trialSpec`` to JSON, replaces every ``${trialParameters.<name>}`` with plain
string replacement, and parses the JSON back. A trial parameter whose ``reference`` is a ``spec.parameters``
name takes that parameter's assigned value; one whose reference is ``${trialSpec.Name}`` (``Namespace``,
``Kind``, ``APIVersion``, ``Labels[key]``, ``Annotations[key]``) takes the trial's metadata. The local runner
and ``katib-hp best -o args`` both go through here, so a trial runs locally with exactly the arguments the
cluster would give it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from katib_hp.errors import KatibHPError

_META = re.compile(r"\$\{trialSpec\.(.+?)\}")
_INDEXED = re.compile(r"(.+)\[(.+)]")
_PLACEHOLDER = "${{trialParameters.{}}}"


class SubstitutionError(KatibHPError):
    """The trial template cannot be filled in (Katib would fail the same trial)."""

    exit_code = 2


def _meta_value(reference: str, key: str, trial_spec: Mapping[str, Any], trial_name: str, namespace: str) -> str:
    metadata = trial_spec.get("metadata") or {}
    indexed = _INDEXED.fullmatch(key)
    if indexed:
        kind, index = indexed.group(1), indexed.group(2)
        source = {"Labels": metadata.get("labels"), "Annotations": metadata.get("annotations")}.get(kind)
        if source is None or index not in source:
            raise SubstitutionError(
                f"illegal reference of trial metadata {reference!r}: the template has no {kind[:-1].lower()} "
                f"{index!r}", path="spec.trialTemplate.trialParameters",
                hint=f"add it under trialSpec.metadata.{kind.lower()}")
        return str(source[index])
    values = {"Name": trial_name, "Namespace": namespace, "Kind": trial_spec.get("kind", ""),
              "APIVersion": trial_spec.get("apiVersion", "")}
    if key not in values:
        raise SubstitutionError(
            f"illegal reference of trial metadata {reference!r}", path="spec.trialTemplate.trialParameters",
            hint="use ${trialSpec.Name}, Namespace, Kind, APIVersion, Labels[key] or Annotations[key]")
    return str(values[key])


def placeholder_values(spec: Mapping[str, Any], assignments: Mapping[str, str], *, trial_name: str,
                       namespace: str = "default") -> dict[str, str]:
    """Map each trial parameter's name to the text that replaces ``${trialParameters.<name>}``."""
    template = spec.get("trialTemplate") or {}
    trial_spec = template.get("trialSpec") or {}
    values: dict[str, str] = {}
    consumed = 0
    for index, parameter in enumerate(template.get("trialParameters") or []):
        name, reference = parameter.get("name", ""), str(parameter.get("reference", ""))
        meta = _META.search(reference)
        if meta is None:
            if reference not in assignments:
                raise SubstitutionError(
                    f"trial parameter {name!r} references {reference!r}, which has no assigned value",
                    path=f"spec.trialTemplate.trialParameters[{index}].reference",
                    hint="reference the name of one of spec.parameters")
            values[name] = str(assignments[reference])
            consumed += 1
        else:
            values[name] = _meta_value(reference, meta.group(1), trial_spec, trial_name, namespace)
    if consumed != len(assignments):
        missing = sorted(set(assignments) - {str(p.get("reference")) for p in template.get("trialParameters") or []})
        raise SubstitutionError(
            f"parameters {', '.join(missing)} are assigned but no trial parameter references them",
            path="spec.trialTemplate.trialParameters", hint="add a trial parameter for each search parameter")
    return values


def substitute(spec: Mapping[str, Any], assignments: Mapping[str, str], *, trial_name: str,
               namespace: str = "default") -> dict[str, Any]:
    """Return the trial's run spec: ``trialSpec`` with every placeholder replaced, named after the trial."""
    template = spec.get("trialTemplate") or {}
    trial_spec = template.get("trialSpec")
    if not isinstance(trial_spec, Mapping):
        raise SubstitutionError(
            "the trial template has no inline trialSpec", path="spec.trialTemplate.trialSpec",
            hint="inline the Job in trialSpec (a configMap template is read only on the cluster)")
    text = json.dumps(trial_spec)
    for name, value in placeholder_values(spec, assignments, trial_name=trial_name, namespace=namespace).items():
        # Katib inserts the raw value into the JSON text, where a quote or backslash would break it; escape it
        text = text.replace(_PLACEHOLDER.format(name), json.dumps(value)[1:-1])
    try:
        run_spec: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:  # pragma: no cover - escaping above keeps the JSON valid
        raise SubstitutionError(f"the substituted template is not valid JSON: {exc}",
                                path="spec.trialTemplate.trialSpec") from exc
    metadata = run_spec.setdefault("metadata", {})
    metadata["name"], metadata["namespace"] = trial_name, namespace
    return run_spec


def primary_container(spec: Mapping[str, Any], run_spec: Mapping[str, Any]) -> dict[str, Any]:
    """The primary container of a substituted run spec (Job or any kind with a pod template)."""
    name = (spec.get("trialTemplate") or {}).get("primaryContainerName", "training-container")
    for pod_spec in _pod_specs(run_spec):
        for container in pod_spec.get("containers") or []:
            if container.get("name") == name:
                return dict(container)
    raise SubstitutionError(
        f"no container named {name!r} in the trial template",
        path="spec.trialTemplate.primaryContainerName", hint="name the container that runs the trainer")


def _pod_specs(run_spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            template = node.get("template")
            if isinstance(template, Mapping) and isinstance(template.get("spec"), Mapping) and \
                    "containers" in template["spec"]:
                found.append(template["spec"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(run_spec.get("spec"))
    return found


def _container_for(spec: Mapping[str, Any], assignments: Mapping[str, str], trial_name: str,
                   namespace: str) -> dict[str, Any]:
    return primary_container(spec, substitute(spec, assignments, trial_name=trial_name, namespace=namespace))


def trial_command(spec: Mapping[str, Any], assignments: Mapping[str, str], *, trial_name: str = "trial",
                  namespace: str = "default") -> list[str]:
    """The primary container's command + args for these assignments, as the trial's pod would run them."""
    container = _container_for(spec, assignments, trial_name, namespace)
    argv: Sequence[Any] = [*(container.get("command") or []), *(container.get("args") or [])]
    return [str(a) for a in argv]


def trial_args(spec: Mapping[str, Any], assignments: Mapping[str, str], *, trial_name: str = "trial",
               namespace: str = "default") -> list[str]:
    """The primary container's args alone (the trainer flags to retrain with)."""
    return [str(a) for a in _container_for(spec, assignments, trial_name, namespace).get("args") or []]
