"""The contract every local suggestion algorithm keeps, and how an Experiment's spec is read for it.

A suggester is asked for parameter assignments again and again with the whole trial history, as Katib's
controller asks its suggestion service. It keeps its own state between calls (as Katib's services do), so
the same seed and the same sequence of calls give the same suggestions.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from katib_hp.algorithms import Algorithm, check_settings
from katib_hp.errors import KatibHPError
from katib_hp.results import TrialState


class SuggestionError(KatibHPError, ValueError):
    """The algorithm, its settings or the parameters cannot be run (Katib's Suggestion would fail)."""

    exit_code = 2


@dataclass(frozen=True)
class Observation:
    """One trial the runner knows about, in creation order."""

    name: str
    assignments: Mapping[str, str]
    state: str  # a Katib trial condition, e.g. "Succeeded"
    objective: float | None  # the objective per its metric strategy; None when unavailable
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Suggestion:
    """Assignments for a new trial, every value a string formatted the way Katib's service formats it."""

    assignments: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    parent: str | None = None  # Hyperband: the trial whose checkpoint this one continues
    parent_resource: int | None = None  # Hyperband: the resource value (e.g. epochs) the parent ran with


class Suggester(Protocol):
    """What the local runner asks for new trials."""

    notes: list[str]  # differences from Katib's cluster behaviour, shown to the user once

    @property
    def finished(self) -> bool:
        """True when nothing more will ever be suggested."""
        ...

    def ask(self, count: int, history: Sequence[Observation]) -> list[Suggestion]:
        """Up to ``count`` new suggestions (fewer, or none, when the search must wait or is exhausted)."""
        ...


class ParamType(StrEnum):
    INT = "int"
    DOUBLE = "double"
    CATEGORICAL = "categorical"
    DISCRETE = "discrete"


DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")


@dataclass(frozen=True)
class Param:
    """One ``spec.parameters`` entry, parsed. Numbers keep Katib's meaning (``step=None``: no step given)."""

    index: int
    name: str
    type: ParamType
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    values: tuple[str, ...] = ()
    distribution: str = "uniform"

    @property
    def path(self) -> str:
        return f"spec.parameters[{self.index}]"

    @property
    def numeric(self) -> bool:
        return self.type in (ParamType.INT, ParamType.DOUBLE)

    def parse(self, text: str) -> int | float | str | None:
        """A trial's string value in this parameter's type, or None when it does not fit."""
        try:
            if self.type is ParamType.INT:
                return int(text)
            if self.type is ParamType.DOUBLE:
                return float(text)
        except ValueError:
            return None
        return text if text in self.values else None


def parse_parameters(spec: Mapping[str, Any]) -> tuple[Param, ...]:
    """Read ``spec.parameters`` (Katib's camelCase, values as strings) into ``Param`` objects."""
    raw = spec.get("parameters")
    if not isinstance(raw, list) or not raw:
        raise SuggestionError("no parameters to search", path="spec.parameters",
                              hint="add at least one entry with name, parameterType and feasibleSpace")
    params: list[Param] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"spec.parameters[{index}]"
        if not isinstance(item, Mapping):
            raise SuggestionError("must be a mapping", path=path, value=item)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise SuggestionError("has no name", path=path, hint="add name: <parameter name>")
        if name in seen:
            raise SuggestionError(f"parameter name '{name}' is used twice", path=f"{path}.name", value=name,
                                  hint="give every parameter its own name")
        seen.add(name)
        try:
            kind = ParamType(str(item.get("parameterType")))
        except ValueError as exc:
            raise SuggestionError(f"'{name}': unsupported parameterType", path=f"{path}.parameterType",
                                  value=item.get("parameterType"),
                                  hint="use one of int, double, categorical, discrete") from exc
        space = item.get("feasibleSpace") or {}
        distribution = str(space.get("distribution") or "uniform")
        if distribution == "unknown":
            distribution = "uniform"  # Katib's services read the unset/unknown enum as uniform
        if distribution not in DISTRIBUTIONS:
            raise SuggestionError(f"'{name}': unknown distribution", path=f"{path}.feasibleSpace.distribution",
                                  value=distribution, hint="use one of " + ", ".join(DISTRIBUTIONS))
        if kind in (ParamType.CATEGORICAL, ParamType.DISCRETE):
            values = tuple(str(v) for v in space.get("list") or ())
            if not values:
                raise SuggestionError(f"'{name}': {kind} needs a non-empty list", path=f"{path}.feasibleSpace.list")
            params.append(Param(index, name, kind, values=values, distribution=distribution))
            continue
        low = _number(space, "min", kind, f"{path}.feasibleSpace", name)
        high = _number(space, "max", kind, f"{path}.feasibleSpace", name)
        step = _number(space, "step", kind, f"{path}.feasibleSpace", name) if _given(space.get("step")) else None
        if low is None or high is None:
            raise SuggestionError(f"'{name}': {kind} needs min and max", path=f"{path}.feasibleSpace")
        if low > high:
            raise SuggestionError(f"'{name}': min must be <= max (got min={_text(low)}, max={_text(high)})",
                                  path=f"{path}.feasibleSpace", hint="swap the bounds")
        if step is not None and step <= 0:
            raise SuggestionError(f"'{name}': step must be > 0", path=f"{path}.feasibleSpace.step", value=step)
        params.append(Param(index, name, kind, low, high, step, distribution=distribution))
    return tuple(params)


def _given(value: Any) -> bool:
    return value is not None and str(value) != ""


def _number(space: Mapping[str, Any], key: str, kind: ParamType, path: str, name: str) -> float | None:
    value = space.get(key)
    if not _given(value):
        return None
    text = str(value).strip()
    try:
        number = float(int(text)) if kind is ParamType.INT else float(text)
    except ValueError as exc:
        wanted = "an integer" if kind is ParamType.INT else "a number"
        raise SuggestionError(f"'{name}': {key} must be {wanted}", path=f"{path}.{key}", value=value) from exc
    if not math.isfinite(number):
        raise SuggestionError(f"'{name}': {key} must be finite", path=f"{path}.{key}", value=value)
    return number


def _text(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def maximizing(spec: Mapping[str, Any]) -> bool:
    """True for ``objective.type: maximize``; raises for anything but maximize/minimize."""
    objective = spec.get("objective") or {}
    kind = objective.get("type") if isinstance(objective, Mapping) else None
    if kind not in ("maximize", "minimize"):
        raise SuggestionError("objective type must be maximize or minimize", path="spec.objective.type", value=kind)
    return bool(kind == "maximize")


def read_settings(items: Any, algorithm: Algorithm, base: str) -> tuple[dict[str, str], list[str]]:
    """Check ``[{name, value}, ...]`` like the service's ValidateAlgorithmSettings; return them and warnings.

    Raises:
        SuggestionError: naming ``<base>[i]`` of the first refused setting (the others are listed too).
    """
    pairs: list[tuple[str, str]] = []
    for index, item in enumerate(items or []):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise SuggestionError("must be a mapping with name and value", path=f"{base}[{index}]", value=item)
        value = item.get("value")
        pairs.append((item["name"], "" if value is None else str(value)))
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    for problem in check_settings(algorithm, pairs):
        where = f"{base}[{problem.index}]" if problem.index is not None else base
        got = f" (got '{problem.value}')" if problem.value is not None else ""
        text = f"{where} '{problem.name}' {problem.message}{got}" + (f"; {problem.hint}" if problem.hint else "")
        (errors if problem.severity == "error" else warnings).append((where, text))
    if errors:
        first_path, first = errors[0]
        others = "".join(f"; also {text}" for _, text in errors[1:])
        raise SuggestionError(first.removeprefix(f"{first_path} ") + others, path=first_path)
    return dict(pairs), [text for _, text in warnings]


def seed_of(settings: Mapping[str, str], seed: int | None) -> int | None:
    """The ``random_state`` setting wins over the runner's seed."""
    return int(settings["random_state"]) if "random_state" in settings else seed


def learnable(history: Iterable[Observation]) -> list[Observation]:
    """The trials Katib's Python services learn from: Succeeded or EarlyStopped, with an objective value."""
    return [o for o in history
            if o.state in (TrialState.SUCCEEDED, TrialState.EARLY_STOPPED)
            and o.objective is not None and not math.isnan(o.objective)]


def key_of(assignments: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(assignments.items()))


T = TypeVar("T")


class Ledger(Generic[T]):
    """Ties the runner's trial names to the suggestions issued, by their assignments (as Katib's services do).

    The runner names trials after the suggester answers, so a trial is recognised by its assignments; equal
    assignments are matched first in, first out. Trials that match nothing issued (e.g. from an earlier run
    being resumed) can be claimed later by a suggestion with the same assignments, which then is not
    suggested again.
    """

    def __init__(self) -> None:
        self._pending: defaultdict[tuple[tuple[str, str], ...], deque[T]] = defaultdict(deque)
        self._unclaimed: defaultdict[tuple[tuple[str, str], ...], deque[str]] = defaultdict(deque)
        self._matched: dict[str, T] = {}
        self._seen: set[str] = set()

    def issue(self, assignments: Mapping[str, str], item: T) -> None:
        self._pending[key_of(assignments)].append(item)

    def sync(self, history: Iterable[Observation]) -> list[Observation]:
        """Match trials seen for the first time; return those that match no issued suggestion."""
        strangers = []
        for observation in history:
            if observation.name in self._seen:
                continue
            self._seen.add(observation.name)
            key = key_of(observation.assignments)
            queue = self._pending.get(key)
            if queue:
                self._matched[observation.name] = queue.popleft()
            else:
                self._unclaimed[key].append(observation.name)
                strangers.append(observation)
        return strangers

    def claim(self, assignments: Mapping[str, str], item: T) -> str | None:
        """The name of an unmatched trial with these assignments, now tied to ``item``; None when there is none."""
        queue = self._unclaimed.get(key_of(assignments))
        if not queue:
            return None
        name = queue.popleft()
        self._matched[name] = item
        return name

    def get(self, name: str) -> T | None:
        return self._matched.get(name)

    def matched(self) -> dict[str, T]:
        return dict(self._matched)
