"""``random`` and ``tpe`` with hyperopt, as Katib's hyperopt suggestion service runs them.

The search space is built the way the service builds it: ints always carry a step (1 when none is given) and
become ``quniform``/``qloguniform``/``qnormal``/``qlognormal``; doubles use the q-variant only with a step;
``logUniform`` and ``logNormal`` work on ``[ln min, ln max]``; ``normal``/``logNormal`` have mu at the middle
of the range and sigma a sixth of it, so they are not bounded by min and max; categorical and discrete
parameters are ``hp.choice`` over the list. Finished trials (Succeeded or EarlyStopped, with a value) are
inserted as done hyperopt trials, their value negated when maximizing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import hyperopt
import numpy as np

from katib_hp.local.suggest_base import (
    Observation,
    Param,
    ParamType,
    Suggestion,
    SuggestionError,
    learnable,
)

_SETTING_TYPES = {"gamma": float, "prior_weight": float, "n_EI_candidates": int}


def _expression(param: Param) -> Any:
    hp = hyperopt.hp
    if param.type in (ParamType.CATEGORICAL, ParamType.DISCRETE):
        return hp.choice(param.name, list(param.values))
    # Katib gives every int a step of 1 when none is set, so ints never reach uniformint.
    step = param.step if param.step is not None else (1.0 if param.type is ParamType.INT else None)
    low, high = param.low, param.high
    if param.distribution in ("logUniform", "logNormal"):
        if low <= 0:
            raise SuggestionError(
                f"'{param.name}': {param.distribution} needs min > 0 (got min={low:g})",
                path=f"{param.path}.feasibleSpace.min", value=low,
                hint="Katib's hyperopt service takes ln(min) and fails; raise min or use distribution: uniform")
        low, high = math.log(low), math.log(high)
    if param.distribution == "logUniform":
        return hp.qloguniform(param.name, low, high, step) if step else hp.loguniform(param.name, low, high)
    if param.distribution in ("normal", "logNormal"):
        mu, sigma = (low + high) / 2, (high - low) / 6
        if param.distribution == "normal":
            return hp.qnormal(param.name, mu, sigma, step) if step else hp.normal(param.name, mu, sigma)
        return hp.qlognormal(param.name, mu, sigma, step) if step else hp.lognormal(param.name, mu, sigma)
    return hp.quniform(param.name, low, high, step) if step else hp.uniform(param.name, low, high)


class HyperoptSuggester:
    """Katib's ``random`` (``hyperopt.rand.suggest``) and ``tpe`` (``hyperopt.tpe.suggest``)."""

    def __init__(self, algorithm: str, params: Sequence[Param], maximize: bool, settings: Mapping[str, str],
                 seed: int | None) -> None:
        self._algorithm = algorithm
        self._params = tuple(params)
        self._maximize = maximize
        self._conf: dict[str, Any] = {k: _SETTING_TYPES[k](v) for k, v in settings.items() if k in _SETTING_TYPES}
        self._domain = hyperopt.Domain(None, {p.name: _expression(p) for p in self._params},
                                       pass_expr_memo_ctrl=None)
        self._trials = hyperopt.Trials()
        self._rstate = np.random.RandomState(seed)
        self._recorded: set[str] = set()
        self._first_run = True
        self.notes: list[str] = []
        if algorithm == "tpe":
            self.notes.append(
                "tpe: a later request for several trials gets one TPE draw per trial here; Katib's service reuses "
                "one seed for the whole request and so returns the same point several times")
        if any(p.distribution in ("normal", "logNormal") for p in self._params):
            self.notes.append(
                f"{algorithm}: normal and logNormal parameters are not bounded by min/max (as in Katib's service)")

    @property
    def finished(self) -> bool:
        return False

    def ask(self, count: int, history: Sequence[Observation]) -> list[Suggestion]:
        if count <= 0:
            return []
        self._record(history)
        new_ids = self._trials.new_trial_ids(count)
        seed = int(self._rstate.randint(2**31 - 1))
        if self._algorithm == "random":
            docs = hyperopt.rand.suggest(new_ids, self._domain, self._trials, seed)
        elif self._first_run and len(self._recorded) < count:
            # Katib's first request is random: n_startup_jobs is the size of the request.
            docs = hyperopt.tpe.suggest(new_ids, self._domain, self._trials, seed, n_startup_jobs=count,
                                        verbose=False, **self._conf)
        else:
            docs = []
            for index, new_id in enumerate(new_ids):
                point_seed = seed if index == 0 else int(self._rstate.randint(2**31 - 1))
                docs.extend(hyperopt.tpe.suggest([new_id], self._domain, self._trials, point_seed,
                                                 n_startup_jobs=count, verbose=False, **self._conf)[:1])
        self._first_run = False
        return [Suggestion(self._format(doc["misc"]["vals"])) for doc in docs]

    def _format(self, vals: Mapping[str, Sequence[Any]]) -> dict[str, str]:
        assignments = {}
        for param in self._params:
            value = vals[param.name][0]
            if param.type is ParamType.INT:
                assignments[param.name] = str(int(value))
            elif param.type is ParamType.DOUBLE:
                assignments[param.name] = str(float(value))
            else:
                assignments[param.name] = param.values[int(value)]
        return assignments

    def _record(self, history: Sequence[Observation]) -> None:
        """Insert newly finished trials as done hyperopt trials (each trial once, as Katib does)."""
        tids, specs, results, miscs = [], [], [], []
        for observation in learnable(history):
            if observation.name in self._recorded:
                continue
            vals = self._vals(observation.assignments)
            objective = observation.objective
            if vals is None or objective is None:
                continue  # not a point of this space (Katib's service would fail on it)
            self._recorded.add(observation.name)
            tid = self._trials.new_trial_ids(1)[0]
            tids.append(tid)
            specs.append({"trial-name": observation.name})
            loss = -objective if self._maximize else objective
            results.append({"loss": loss, "status": hyperopt.STATUS_OK})
            miscs.append({"tid": tid, "cmd": self._domain.cmd, "workdir": self._domain.workdir,
                          "idxs": {name: [tid] for name in vals}, "vals": vals})
        if not tids:
            return
        docs = hyperopt.Trials().new_trial_docs(tids=tids, specs=specs, results=results, miscs=miscs)
        for doc in docs:
            doc["state"] = hyperopt.JOB_STATE_DONE
        self._trials.insert_trial_docs(docs)
        self._trials.refresh()

    def _vals(self, assignments: Mapping[str, str]) -> dict[str, list[Any]] | None:
        vals: dict[str, list[Any]] = {}
        for param in self._params:
            value = param.parse(assignments.get(param.name, ""))
            if value is None:
                return None
            vals[param.name] = [param.values.index(str(value)) if isinstance(value, str) else value]
        return vals
