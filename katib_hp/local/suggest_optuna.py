"""``grid``, ``multivariate-tpe``, ``cmaes`` and ``sobol`` with optuna.

``grid`` and ``multivariate-tpe`` follow Katib's optuna service: the same distributions (log ints from
``max(1, min)``, log doubles from ``max(1e-10, min)`` without step), the same grid points, and finished
trials told with their value (optuna handles the direction). Trials that failed are never told, so optuna
keeps them as running: the grid never revisits them and the TPE's constant liar treats them as bad.

Katib serves ``cmaes`` and ``sobol`` from Go (goptuna); here optuna's ``CmaEsSampler`` and
``QMCSampler(qmc_type="sobol")`` stand in, over goptuna's search space (distribution ignored, steps kept)
and with goptuna's number format (``0.00001``, never ``1e-05``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState as OptunaState

from katib_hp.local.suggest_base import (
    Ledger,
    Observation,
    Param,
    ParamType,
    Suggestion,
    SuggestionError,
    learnable,
)
from katib_hp.results import TrialState

GOPTUNA = ("cmaes", "sobol")


def grid_points(params: Sequence[Param]) -> dict[str, list[Any]]:
    """The values of each parameter that Katib's grid enumerates (its ``convert_to_combinations``)."""
    points: dict[str, list[Any]] = {}
    for param in params:
        if param.type is ParamType.INT:
            points[param.name] = list(range(int(param.low), int(param.high) + 1, int(param.step or 1)))
        elif param.type is ParamType.DOUBLE:
            if param.step is None:
                raise SuggestionError(
                    f"'{param.name}': grid needs a step on every double parameter",
                    path=f"{param.path}.feasibleSpace.step",
                    hint="add step (Katib's grid fails with 'Param ... step is nil') or make it categorical")
            values = np.arange(param.low, param.high + param.step, param.step)
            if values[-1] > param.high:
                values = values[:-1]
            points[param.name] = [float(v) for v in values]
        else:
            points[param.name] = list(param.values)
    return points


def _katib_distribution(param: Param) -> BaseDistribution:
    """The distribution Katib's optuna service passes to ``study.ask``."""
    if param.type in (ParamType.CATEGORICAL, ParamType.DISCRETE):
        return CategoricalDistribution(list(param.values))
    if param.distribution in ("normal", "logNormal"):
        raise SuggestionError(
            f"'{param.name}': {param.distribution} is not supported by Katib's optuna service",
            path=f"{param.path}.feasibleSpace.distribution", value=param.distribution,
            hint="use uniform or logUniform (Katib v0.19.0 drops the parameter and every trial fails)")
    log = param.distribution == "logUniform"
    if param.type is ParamType.INT:
        if log:
            return IntDistribution(max(1, int(param.low)), int(param.high), log=True, step=1)
        return IntDistribution(int(param.low), int(param.high), step=int(param.step or 1))
    if log:
        return FloatDistribution(max(1e-10, param.low), param.high, log=True)
    return FloatDistribution(param.low, param.high, step=param.step)


def _goptuna_distribution(param: Param) -> BaseDistribution:
    """goptuna's search space: uniform whatever the distribution, with the step when there is one."""
    if param.type in (ParamType.CATEGORICAL, ParamType.DISCRETE):
        return CategoricalDistribution(list(param.values))
    if param.type is ParamType.INT:
        return IntDistribution(int(param.low), int(param.high), step=int(param.step or 1))
    return FloatDistribution(param.low, param.high, step=param.step)


def _goptuna_text(value: Any) -> str:
    if isinstance(value, float):
        return str(np.format_float_positional(value, trim="-"))  # Go's FormatFloat(v, 'f', -1, 64)
    return str(value)


class OptunaSuggester:
    """One optuna study, asked and told the way Katib's optuna (or goptuna) service does it."""

    def __init__(self, algorithm: str, params: Sequence[Param], maximize: bool, settings: Mapping[str, str],
                 seed: int | None, max_trial_count: int | None) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._algorithm = algorithm
        self._params = tuple(params)
        self.notes: list[str] = []
        self._grid_size: int | None = None
        convert = _goptuna_distribution if algorithm in GOPTUNA else _katib_distribution
        try:
            self._distributions = {p.name: convert(p) for p in self._params}
        except ValueError as exc:
            if isinstance(exc, SuggestionError):
                raise
            raise SuggestionError(f"{algorithm} cannot sample this space: {exc}", path="spec.parameters") from exc
        if algorithm in GOPTUNA and any(p.numeric and p.distribution != "uniform" for p in self._params):
            self.notes.append(f"{algorithm}: distributions are ignored, every number is sampled uniformly "
                              "(as in Katib's goptuna service)")
        if seed is not None:
            seed %= 2**32  # numpy seeds must be non-negative; goptuna takes any int64
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler = self._sampler(algorithm, settings, seed, max_trial_count)
            self._study = optuna.create_study(sampler=sampler, direction="maximize" if maximize else "minimize")
        self._ledger: Ledger[int] = Ledger()
        self._told: set[int] = set()
        self._asked = 0

    def _sampler(self, algorithm: str, settings: Mapping[str, str], seed: int | None,
                 max_trial_count: int | None) -> optuna.samplers.BaseSampler:
        if algorithm == "grid":
            points = grid_points(self._params)
            self._grid_size = math.prod(len(v) for v in points.values())
            if max_trial_count is not None and max_trial_count > self._grid_size:
                raise SuggestionError(
                    f"Max Trial Count: {max_trial_count} > all possible search combinations: {self._grid_size}",
                    path="spec.maxTrialCount", value=max_trial_count,
                    hint=f"lower maxTrialCount to {self._grid_size} or add grid points")
            return optuna.samplers.GridSampler(points, seed=seed)
        if algorithm == "multivariate-tpe":
            return optuna.samplers.TPESampler(
                n_startup_trials=int(settings.get("n_startup_trials", "10")),
                n_ei_candidates=int(settings.get("n_ei_candidates", "24")),
                seed=seed, multivariate=True, constant_liar=True)
        if algorithm == "cmaes":
            numeric = [p for p in self._params if p.numeric]
            if len(numeric) < 2:
                raise SuggestionError(
                    "CMA-ES only supports two or more dimensional continuous search space",
                    path="spec.parameters", value=[p.name for p in numeric],
                    hint="add another int or double parameter, or use bayesianoptimization or tpe")
            if settings.get("restart_strategy", "none") != "none":
                self.notes.append(
                    f"cmaes: restart_strategy '{settings['restart_strategy']}' is ignored here (optuna's CMA-ES "
                    "no longer restarts); Katib's goptuna service restarts with twice the population")
            self.notes.append("cmaes: Katib serves CMA-ES from Go (goptuna); run-local uses optuna's CmaEsSampler, "
                              "so the points differ from the cluster's")
            sigma = settings.get("sigma")
            return optuna.samplers.CmaEsSampler(
                sigma0=float(sigma) if sigma is not None else None, seed=seed, n_startup_trials=0,
                warn_independent_sampling=False)
        self.notes.append("sobol: Katib serves Sobol from Go (goptuna); run-local uses optuna's QMCSampler "
                          "(unscrambled Sobol), so the sequence differs from the cluster's")
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=False, seed=seed,
                                          warn_independent_sampling=False, warn_asynchronous_seeding=False)

    @property
    def finished(self) -> bool:
        return self._grid_size is not None and self._asked >= self._grid_size

    def ask(self, count: int, history: Sequence[Observation]) -> list[Suggestion]:
        text = _goptuna_text if self._algorithm in GOPTUNA else str
        suggestions: list[Suggestion] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._tell(history)
            claimed = False
            while len(suggestions) < count and not self.finished:
                trial = self._study.ask(fixed_distributions=self._distributions)
                assignments = {p.name: text(trial.params[p.name]) for p in self._params}
                self._asked += 1
                if self._grid_size is not None and self._ledger.claim(assignments, trial.number):
                    claimed = True  # this grid point ran before (a resumed run): never run it twice
                    continue
                self._ledger.issue(assignments, trial.number)
                suggestions.append(Suggestion(assignments))
            if claimed:
                self._tell(history)
        return suggestions

    def _tell(self, history: Sequence[Observation]) -> None:
        for stranger in self._ledger.sync(history):
            self._add_stranger(stranger)
        finished = {o.name for o in learnable(history)}
        for observation in history:
            number = self._ledger.get(observation.name)
            if number is None or number in self._told:
                continue
            state = self._state(observation, observation.name in finished)
            if state is None:
                continue
            self._told.add(number)
            if state is OptunaState.COMPLETE:
                self._study.tell(number, observation.objective)
            else:
                self._study.tell(number, state=state)

    def _state(self, observation: Observation, learnable_: bool) -> OptunaState | None:
        if self._algorithm not in GOPTUNA:
            # Katib's optuna service tells only finished trials with a value; the rest stay running.
            return OptunaState.COMPLETE if learnable_ else None
        if observation.state == TrialState.SUCCEEDED:
            return OptunaState.COMPLETE if learnable_ else OptunaState.FAIL
        if observation.state == TrialState.EARLY_STOPPED:
            return OptunaState.PRUNED  # goptuna records early-stopped trials as pruned, without a value
        if observation.state in (TrialState.CREATED, TrialState.RUNNING):
            return None
        return OptunaState.FAIL

    def _add_stranger(self, observation: Observation) -> None:
        """A finished trial this study did not suggest (e.g. from an earlier run): learn from it too.

        The grid instead claims such trials when it reaches their point (see ``ask``).
        """
        if self._grid_size is not None or not learnable([observation]):
            return
        params: dict[str, Any] = {}
        for param in self._params:
            value = param.parse(observation.assignments.get(param.name, ""))
            if value is None:
                return
            params[param.name] = value
        try:
            self._study.add_trial(optuna.trial.create_trial(
                params=params, distributions=self._distributions, value=observation.objective))
        except ValueError:
            return  # outside this search space
