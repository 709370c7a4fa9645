"""Shared pieces of the linter: the per-run context, field paths, tolerant accessors, placeholders."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from katib_hp.problems import Problem, Severity

# Katib substitutes `${trialParameters.<name>}` (and metadata `${trialSpec.<Key>}`) textually in the template.
PLACEHOLDER = re.compile(r"\$\{trialParameters\.(.+?)\}")
META_REFERENCE = re.compile(r"\$\{trialSpec\.(.+?)\}")
META_INDEXED = re.compile(r"(.+)\[(.+)]")
META_KEYS = ("Name", "Namespace", "Kind", "APIVersion", "Annotations", "Labels")

# What the webhook's test substitution puts in place of every declared placeholder (V19i5, V19n).
TEST_VALUE = "test-value"

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"

# Metrics collector kinds whose sidecar wraps the primary container in `sh -c` (pull collectors).
PULL_COLLECTORS = ("StdOut", "File", "TensorFlowEvent")
DEFAULT_METRICS_FILE = "/var/log/katib/metrics.log"
DEFAULT_TFEVENT_DIR = "/var/log/katib/tfevent/"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def child(path: str, key: str | int) -> str:
    """``spec`` + ``parameters`` -> ``spec.parameters``; + 2 -> ``spec.parameters[2]``; odd keys are quoted."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENT.match(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def as_map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def dig(value: Any, *keys: str | int) -> Any:
    """Follow keys/indices through dicts and lists; None where the shape does not fit."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(value, list) or not -len(value) <= key < len(value):
                return None
            value = value[key]
        else:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
    return value


def strings_in(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string (values and mapping keys) of a JSON-like tree, with its field path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield child(path, key), key
            yield from strings_in(item, child(path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings_in(item, child(path, index))


def placeholders(text: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(text)]


def is_meta_reference(reference: str) -> bool:
    """Katib's test for a trial metadata reference (``${trialSpec.Name}``, ``${trialSpec.Labels[k]}``)."""
    match = META_REFERENCE.search(reference)
    if not match:
        return False
    key = match.group(1)
    if key in META_KEYS:
        return True
    sub = META_INDEXED.fullmatch(key)
    return bool(sub and sub.group(1) in META_KEYS)


def parse_float(text: str) -> float | None:
    try:
        number = float(text.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_int(text: str) -> int | None:
    """Parse like Python's ``int()`` on the string (what Katib's Python services do)."""
    try:
        return int(text.strip())
    except ValueError:
        return None


@dataclass
class ParamInfo:
    """One ``spec.parameters`` entry after the number checks (E3); numbers are None when they don't parse."""

    index: int
    name: str
    type: str
    path: str
    min_text: str
    max_text: str
    step_text: str
    values: list[str]
    distribution: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    numbers_ok: bool = False  # min/max (and step) parse for the type and min <= max

    @property
    def numeric(self) -> bool:
        return self.type in ("int", "double")

    def grid_size(self) -> int | None:
        """Points Katib's grid (optuna) enumerates for this parameter; None when continuous/unknown."""
        if self.type in ("categorical", "discrete"):
            return len(self.values)
        if not self.numbers_ok or self.low is None or self.high is None:
            return None
        if self.type == "int":
            step = int(self.step) if self.step else 1
            return max(0, len(range(int(self.low), int(self.high) + 1, step)))
        if not self.step:
            return None
        # numpy.arange(min, max + step, step), dropping a last point beyond max.
        count = max(0, math.ceil((self.high + self.step - self.low) / self.step))
        if count and self.low + (count - 1) * self.step > self.high:
            count -= 1
        return count


@dataclass
class Ctx:
    """Everything one validate() run shares: the decoded, defaulted Experiment and the findings."""

    raw: Mapping[str, Any]
    exp: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    bad: set[str] = field(default_factory=set)  # field paths whose value the decoder refused
    defaulted: dict[str, Any] = field(default_factory=dict)  # field path -> value Katib's defaulting set
    others: tuple[Mapping[str, Any], ...] = ()  # other documents of the same file (ConfigMaps, Namespaces)
    template: dict[str, Any] | None = None  # the trial template object (trialSpec, or from a ConfigMap)
    template_path: str = "spec.trialTemplate.trialSpec"
    params: list[ParamInfo] = field(default_factory=list)
    skip: set[str] = field(default_factory=set)  # check families switched off by an earlier finding

    def add(
        self, severity: Severity, path: str, message: str, hint: str = "", value: Any = None, rule: str = ""
    ) -> None:
        self.problems.append(Problem(severity, path, message, hint, value, rule))

    def error(self, path: str, message: str, hint: str = "", value: Any = None, rule: str = "") -> None:
        self.add(Severity.ERROR, path, message, hint, value, rule)

    def warning(self, path: str, message: str, hint: str = "", value: Any = None, rule: str = "") -> None:
        self.add(Severity.WARNING, path, message, hint, value, rule)

    def note(self, path: str, message: str, hint: str = "", value: Any = None, rule: str = "") -> None:
        self.add(Severity.NOTE, path, message, hint, value, rule)

    def is_bad(self, path: str) -> bool:
        """True when the decoder already reported the value at ``path`` (or above it)."""
        return any(path == b or path.startswith(b + ".") or path.startswith(b + "[") for b in self.bad)

    # Accessors of the decoded Experiment (types are guaranteed by the decoder).
    @property
    def spec(self) -> dict[str, Any]:
        return as_map(self.exp.get("spec"))

    @property
    def objective(self) -> dict[str, Any] | None:
        value = self.spec.get("objective")
        return value if isinstance(value, dict) else None

    @property
    def algorithm_name(self) -> str:
        return as_str(as_map(self.spec.get("algorithm")).get("algorithmName"))

    @property
    def trial_template(self) -> dict[str, Any] | None:
        value = self.spec.get("trialTemplate")
        return value if isinstance(value, dict) else None

    @property
    def collector_kind(self) -> str:
        return as_str(as_map(as_map(self.spec.get("metricsCollectorSpec")).get("collector")).get("kind"))

    @property
    def collector_path(self) -> str:
        source = as_map(as_map(self.spec.get("metricsCollectorSpec")).get("source"))
        return as_str(as_map(source.get("fileSystemPath")).get("path"))

    @property
    def collector_format(self) -> str:
        source = as_map(as_map(self.spec.get("metricsCollectorSpec")).get("source"))
        return as_str(as_map(source.get("fileSystemPath")).get("format"))

    def int_field(self, name: str) -> int | None:
        return as_int(self.spec.get(name))


def objective_metric_names(ctx: Ctx) -> list[tuple[str, str]] | None:
    """(field path, name) of the objective metric and every additional metric; None when unchecked."""
    objective = ctx.objective
    if objective is None or "objective" in ctx.skip:
        return None
    names = [("spec.objective.objectiveMetricName", as_str(objective.get("objectiveMetricName")))]
    names += [(child("spec.objective.additionalMetricNames", i), n)
              for i, n in enumerate(as_list(objective.get("additionalMetricNames")))]
    return names
