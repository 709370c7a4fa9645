"""Hyperband, every bracket, with promoted trials continuing from their parent's checkpoint.

Settings as Katib's hyperband service reads them: ``r_l`` (the largest resource, e.g. epochs),
``resource_name`` (the parameter that carries it) and ``eta`` (``int(float(eta))``, 3 when <= 0), with
s_max = floor(ln r_l / ln eta). Brackets run s = s_max ... 0. Bracket s starts n = ceil((s_max+1)/(s+1) *
eta^s) random configurations at resource int(r_l * eta^-s); each rung keeps the best ceil(n_i/eta) Succeeded
trials and runs them on with resource int(r * eta^i). New configurations are drawn the way Katib's service
draws them: uniform on [min, max] (ints rounded), discrete values snapped to the nearest, categorical values
uniformly; the resource parameter is always set to the rung's resource.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from katib_hp.algorithms import hyperband_plan
from katib_hp.local.suggest_base import (
    Ledger,
    Observation,
    Param,
    ParamType,
    Suggestion,
    SuggestionError,
)
from katib_hp.results import TrialState

_TERMINAL = frozenset(state.value for state in TrialState if state.is_terminal)


@dataclass
class _Member:
    """One trial of the current rung."""

    assignments: dict[str, str]
    parent: str | None = None
    parent_resource: int | None = None
    issued: bool = False
    name: str | None = None  # the runner's trial name, once it shows up in the history


class HyperbandSuggester:
    """The full Hyperband schedule; ``ask`` waits (returns ``[]``) while a rung's trials are still running."""

    def __init__(self, params: Sequence[Param], maximize: bool, settings: Mapping[str, str], seed: int | None,
                 parallel_trial_count: int | None, max_trial_count: int | None) -> None:
        self._params = tuple(params)
        self._maximize = maximize
        self._resource_name = settings["resource_name"]
        if self._resource_name not in {p.name for p in self._params}:
            raise SuggestionError(
                f"resource_name '{self._resource_name}' is not a parameter",
                path="spec.algorithm.algorithmSettings", value=self._resource_name,
                hint="set it to the name of the spec.parameters entry that carries the epochs "
                     "(Katib: 'value of resource_name setting must be in parameters')")
        for param in self._params:
            if param.type is ParamType.DISCRETE and any(_int_or_none(v) is None for v in param.values):
                raise SuggestionError(
                    f"'{param.name}': hyperband needs integer discrete values", path=f"{param.path}.feasibleSpace.list",
                    value=list(param.values), hint="Katib's hyperband service calls int() on them; use categorical")
        if float(settings["r_l"]) < 1:
            raise SuggestionError("r_l must be >= 1 (the largest resource, e.g. epochs)",
                                  path="spec.algorithm.algorithmSettings", value=settings["r_l"],
                                  hint="set r_l to the epochs of the longest trial")
        eta = int(float(settings.get("eta", "3")))
        self._plan = hyperband_plan(float(settings["r_l"]), eta if eta > 0 else 3)
        parallel = 3 if parallel_trial_count is None else parallel_trial_count
        if parallel < self._plan.min_parallel:
            raise SuggestionError(
                f"parallelTrialCount must be not less than {self._plan.min_parallel}",
                path="spec.parallelTrialCount", value=parallel,
                hint=f"r_l={settings['r_l']} and eta={self._plan.eta} give s_max={self._plan.s_max}; raise "
                     f"parallelTrialCount to {self._plan.min_parallel} or lower r_l")
        s_max, eta = self._plan.s_max, self._plan.eta
        first = math.ceil(float(s_max + 1) * (float(eta**s_max) / float(s_max + 1)))
        self._brackets = self._plan.brackets(first)
        self._rng = np.random.RandomState(seed)
        self._ledger: Ledger[_Member] = Ledger()
        self._bracket = 0
        self._rung_index = 0
        self._done = False
        self._rung = self._sample(self._brackets[0][0][0], self._brackets[0][0][1])
        total = sum(count for rungs in self._brackets for count, _ in rungs)
        self.notes = [
            f"hyperband: run-local runs all {len(self._brackets)} brackets (s = {s_max} ... 0, at most {total} "
            "trials); Katib v0.19 reliably runs only the first bracket",
            "hyperband: bracket sizes follow Hyperband's n = ceil((s_max+1)/(s+1) * eta^s); Katib sizes the first "
            "bracket by the number of trials it requests (parallelTrialCount)",
        ]
        if max_trial_count is not None and max_trial_count < total:
            self.notes.append(f"hyperband: maxTrialCount={max_trial_count} ends the run before the schedule's "
                              f"{total} trials")

    @property
    def brackets(self) -> list[list[tuple[int, int]]]:
        """Every bracket's rungs as (configurations, resource)."""
        return [list(rungs) for rungs in self._brackets]

    @property
    def finished(self) -> bool:
        if self._done:
            return True
        last_bracket = self._bracket == len(self._brackets) - 1
        last_rung = self._rung_index == len(self._brackets[self._bracket]) - 1
        return last_bracket and last_rung and all(m.issued for m in self._rung)

    def ask(self, count: int, history: Sequence[Observation]) -> list[Suggestion]:
        self._ledger.sync(history)
        latest = {o.name: o for o in history}
        out: list[Suggestion] = []
        while len(out) < count:
            waiting = [m for m in self._rung if not m.issued]
            if waiting:
                for member in waiting[: count - len(out)]:
                    member.issued = True
                    member.name = self._ledger.claim(member.assignments, member)
                    if member.name is not None:
                        continue  # it ran before (a resumed run with the same seed): not again
                    self._ledger.issue(member.assignments, member)
                    out.append(Suggestion(dict(member.assignments), parent=member.parent,
                                          parent_resource=member.parent_resource))
                continue
            if self.finished or not self._rung_done(latest):
                break
            self._advance(latest)
        return out

    def _rung_done(self, latest: Mapping[str, Observation]) -> bool:
        self._name_members()
        for member in self._rung:
            observation = latest.get(member.name) if member.name else None
            if observation is None or observation.state not in _TERMINAL:
                return False
        return True

    def _name_members(self) -> None:
        for name, member in self._ledger.matched().items():
            member.name = name

    def _advance(self, latest: Mapping[str, Observation]) -> None:
        rungs = self._brackets[self._bracket]
        if self._rung_index + 1 < len(rungs):
            keep, resource = rungs[self._rung_index + 1]
            parent_resource = rungs[self._rung_index][1]
            ranked = self._ranked(latest)[:keep]
            if ranked:
                self._rung_index += 1
                self._rung = [self._promote(m, resource, parent_resource) for m in ranked]
                return
        if self._bracket + 1 >= len(self._brackets):
            self._done = True
            return
        self._bracket += 1
        self._rung_index = 0
        count, resource = self._brackets[self._bracket][0]
        self._rung = self._sample(count, resource)

    def _ranked(self, latest: Mapping[str, Observation]) -> list[_Member]:
        """Succeeded members with a value, best first (ties keep creation order)."""
        scored = []
        for member in self._rung:
            observation = latest[member.name] if member.name else None
            if observation is None or observation.state != TrialState.SUCCEEDED:
                continue
            if observation.objective is None or math.isnan(observation.objective):
                continue
            scored.append((-observation.objective if self._maximize else observation.objective, member))
        return [member for _, member in sorted(scored, key=lambda pair: pair[0])]

    def _promote(self, member: _Member, resource: int, parent_resource: int) -> _Member:
        assignments = dict(member.assignments)
        assignments[self._resource_name] = str(resource)
        return _Member(assignments, parent=member.name, parent_resource=parent_resource)

    def _sample(self, count: int, resource: int) -> list[_Member]:
        return [_Member(self._draw(resource)) for _ in range(count)]

    def _draw(self, resource: int) -> dict[str, str]:
        """One configuration drawn like Katib's service: one uniform vector over all dimensions."""
        low: list[float] = []
        high: list[float] = []
        for param in self._params:
            if param.type is ParamType.CATEGORICAL:  # one-hot: one [0, 1) dimension per value
                low += [0.0] * len(param.values)
                high += [1.0] * len(param.values)
            elif param.type is ParamType.DISCRETE:
                values = [int(v) for v in param.values]
                low.append(min(values))
                high.append(max(values))
            else:
                low.append(param.low)
                high.append(param.high)
        vector = self._rng.uniform(low, high, size=(1, len(low)))[0]
        assignments: dict[str, str] = {}
        at = 0
        for param in self._params:
            if param.type is ParamType.CATEGORICAL:
                width = len(param.values)
                assignments[param.name] = param.values[int(np.argmax(vector[at: at + width]))]
                at += width
                continue
            x = float(vector[at])
            at += 1
            if param.type is ParamType.INT:
                assignments[param.name] = str(round(x))
            elif param.type is ParamType.DOUBLE:
                assignments[param.name] = str(x)
            else:
                values = [int(v) for v in param.values]
                assignments[param.name] = str(values[int(np.argmin(np.abs(np.subtract(values, x))))])
        assignments[self._resource_name] = str(resource)
        return assignments


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
