"""``bayesianoptimization`` with scikit-optimize, as Katib's skopt suggestion service runs it.

Every double is ``Real(min, max, "log-uniform")`` whatever its distribution (so min must be > 0), ints are
``Integer(min, max)`` (step ignored), categorical and discrete parameters are ``Categorical``. Each finished
trial (Succeeded or EarlyStopped, with a value) is told once, its value negated when maximizing; then
``ask(n_points=count)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import skopt

from katib_hp.local.suggest_base import (
    Observation,
    Param,
    ParamType,
    Suggestion,
    SuggestionError,
    learnable,
)


def _dimension(param: Param) -> Any:
    if param.type is ParamType.INT:
        return skopt.space.Integer(int(param.low), int(param.high), name=param.name)
    if param.type is ParamType.DOUBLE:
        if param.low <= 0:
            raise SuggestionError(
                f"'{param.name}': bayesianoptimization samples every double log-uniformly, so min must be > 0 "
                f"(got min={param.low:g})",
                path=f"{param.path}.feasibleSpace.min", value=param.low,
                hint="Katib's skopt service fails on this space; raise min above 0 (e.g. 1e-6), shift the "
                     "parameter, or use tpe or random")
        return skopt.space.Real(param.low, param.high, "log-uniform", name=param.name)
    return skopt.space.Categorical(list(param.values), name=param.name)


class SkoptSuggester:
    """Katib's ``bayesianoptimization``: one ``skopt.Optimizer`` told every finished trial once."""

    def __init__(self, params: Sequence[Param], maximize: bool, settings: Mapping[str, str],
                 seed: int | None) -> None:
        acq_func = settings.get("acq_func", "gp_hedge")
        if acq_func in ("EIps", "PIps"):
            raise SuggestionError(
                f"acq_func {acq_func} needs each trial's run time, which Katib's skopt service never passes",
                path="spec.algorithm.algorithmSettings", value=acq_func,
                hint="use EI or PI (Katib accepts the setting, then its Suggestion fails at the first result)")
        self._params = tuple(params)
        self._maximize = maximize
        self._optimizer = skopt.Optimizer(
            [_dimension(p) for p in self._params],
            base_estimator=settings.get("base_estimator", "GP"),
            n_initial_points=int(settings.get("n_initial_points", "10")),
            acq_func=acq_func,
            acq_optimizer=settings.get("acq_optimizer", "auto"),
            random_state=seed,
        )
        self._recorded: set[str] = set()
        self.notes: list[str] = []
        if any(p.type is ParamType.DOUBLE and p.distribution != "logUniform" for p in self._params):
            self.notes.append("bayesianoptimization: doubles are searched log-uniformly whatever their "
                              "distribution (as in Katib's skopt service)")
        if any(p.type is ParamType.INT and p.step not in (None, 1.0) for p in self._params):
            self.notes.append("bayesianoptimization: int steps are ignored (as in Katib's skopt service)")

    @property
    def finished(self) -> bool:
        return False

    def ask(self, count: int, history: Sequence[Observation]) -> list[Suggestion]:
        if count <= 0:
            return []
        points, losses = [], []
        for observation in learnable(history):
            if observation.name in self._recorded:
                continue
            point = [param.parse(observation.assignments.get(param.name, "")) for param in self._params]
            if observation.objective is None or any(v is None for v in point) or point not in self._optimizer.space:
                continue  # not a point of this space (Katib's service would fail on it)
            self._recorded.add(observation.name)
            points.append(point)
            losses.append(-observation.objective if self._maximize else observation.objective)
        if points:
            self._optimizer.tell(points, losses)
        # ask(n_points=1) refits a copy of the model twice for its lying strategy, to the same effect.
        with warnings.catch_warnings():
            # skopt warns (and draws a random point instead) when the model proposes an evaluated point, as it
            # does inside Katib's service; that is normal progress, not something to show on the terminal
            warnings.filterwarnings("ignore", message="The objective has been evaluated", category=UserWarning)
            points = [self._optimizer.ask()] if count == 1 else self._optimizer.ask(n_points=count)
        return [Suggestion(self._format(point)) for point in points]

    def _format(self, point: Sequence[Any]) -> dict[str, str]:
        assignments = {}
        for param, value in zip(self._params, point, strict=True):
            if param.type is ParamType.INT:
                assignments[param.name] = str(int(value))
            elif param.type is ParamType.DOUBLE:
                assignments[param.name] = str(float(value))
            else:
                assignments[param.name] = str(value)
        return assignments
