"""Which parameter assignments to try next, with the libraries and settings of Katib v0.19's services.

| algorithmName | library here | Katib's service |
|---|---|---|
| random, tpe | hyperopt ``rand.suggest`` / ``tpe.suggest`` | hyperopt |
| grid, multivariate-tpe | optuna ``GridSampler`` / ``TPESampler(multivariate, constant_liar)`` | optuna |
| cmaes, sobol | optuna ``CmaEsSampler`` / ``QMCSampler(sobol)`` | goptuna (Go) |
| bayesianoptimization | scikit-optimize ``Optimizer`` | skopt |
| hyperband | ``katib_hp.local.hyperband`` (every bracket) | Katib's own |

Each library is imported only when its algorithm is chosen. Differences from the cluster are listed in the
suggester's ``notes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from katib_hp.algorithms import ALGORITHMS
from katib_hp.local.suggest_base import (
    Observation,
    Suggester,
    Suggestion,
    SuggestionError,
    maximizing,
    parse_parameters,
    read_settings,
    seed_of,
)

__all__ = ["SUPPORTED", "Observation", "Suggester", "Suggestion", "SuggestionError", "make_suggester"]

SUPPORTED = ("random", "tpe", "grid", "multivariate-tpe", "cmaes", "sobol", "bayesianoptimization", "hyperband")

_VERSION_NOTE = ("{name}: the same random_state does not reproduce the cluster's exact points (the library "
                 "version here differs from the one in Katib's image)")


def make_suggester(spec: Mapping[str, Any], *, seed: int | None = None) -> Suggester:
    """Build the suggester for an Experiment's ``spec`` (camelCase, after Katib's defaulting).

    Args:
        spec: the Experiment's ``spec``; reads ``algorithm``, ``parameters``, ``objective``,
            ``maxTrialCount`` and ``parallelTrialCount``.
        seed: seed used when the ``random_state`` setting is absent (the setting wins).

    Raises:
        SuggestionError: an algorithm run-local cannot run, refused settings (named by their path, as Katib's
            ValidateAlgorithmSettings would refuse them), or a search space the algorithm fails on.
    """
    algorithm = spec.get("algorithm") or {}
    name = algorithm.get("algorithmName") if isinstance(algorithm, Mapping) else None
    if name not in SUPPORTED:
        known = name in ALGORITHMS
        raise SuggestionError(
            f"{'run-local cannot run' if known else 'unknown'} algorithm '{name}'",
            path="spec.algorithm.algorithmName", value=name,
            hint="run-local supports " + ", ".join(SUPPORTED) + (
                "; run it on a Katib cluster instead" if known else ""))
    settings, warnings = read_settings(algorithm.get("algorithmSettings"), ALGORITHMS[name],
                                       "spec.algorithm.algorithmSettings")
    params = parse_parameters(spec)
    maximize = maximizing(spec)
    chosen_seed = seed_of(settings, seed)
    max_trials = _count(spec, "maxTrialCount")
    suggester: Suggester
    if name in ("random", "tpe"):
        from katib_hp.local.suggest_hyperopt import HyperoptSuggester

        suggester = HyperoptSuggester(name, params, maximize, settings, chosen_seed)
    elif name == "bayesianoptimization":
        from katib_hp.local.suggest_skopt import SkoptSuggester

        suggester = SkoptSuggester(params, maximize, settings, chosen_seed)
    elif name == "hyperband":
        from katib_hp.local.hyperband import HyperbandSuggester

        suggester = HyperbandSuggester(params, maximize, settings, seed, _count(spec, "parallelTrialCount"),
                                       max_trials)
    else:
        from katib_hp.local.suggest_optuna import OptunaSuggester

        suggester = OptunaSuggester(name, params, maximize, settings, chosen_seed, max_trials)
    if "random_state" in settings and name not in ("cmaes", "sobol"):
        suggester.notes.append(_VERSION_NOTE.format(name=name))
    suggester.notes.extend(warnings)
    return suggester


def _count(spec: Mapping[str, Any], key: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise SuggestionError(f"{key} must be an integer", path=f"spec.{key}", value=value) from exc
