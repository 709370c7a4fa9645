"""Katib's ``medianstop`` early stopping, as its service and metrics collector apply it.

The service averages the first ``start_step`` reported objective values of every Succeeded trial; once at
least ``min_trials_required`` such trials exist, the threshold is the arithmetic mean of those averages
(called "median", but a mean). The collector of a running trial keeps the best value reported so far and
compares it with the threshold once, at the ``start_step``-th report: a maximized objective is stopped when
it is below the threshold, a minimized one when it is above (equal values never stop).

Katib fixes the threshold when it creates the trial. To match it, pass ``completed`` as it was when the
trial started; passing the current list instead lets newer results tighten the rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from katib_hp.algorithms import MEDIANSTOP
from katib_hp.local.suggest_base import SuggestionError, read_settings

_BASE = "spec.earlyStopping.algorithmSettings"


class MedianStop:
    """The median stopping rule for one experiment.

    Args:
        settings: ``min_trials_required`` (int > 0, default 3) and ``start_step`` (int >= 1, default 4).
        goal_type: ``"maximize"`` or ``"minimize"``, the objective's type.

    Raises:
        SuggestionError: for an unknown setting or a value Katib refuses.
    """

    def __init__(self, settings: Mapping[str, str], goal_type: str) -> None:
        checked, _ = read_settings([{"name": k, "value": v} for k, v in settings.items()], MEDIANSTOP, _BASE)
        if goal_type not in ("maximize", "minimize"):
            raise SuggestionError("objective type must be maximize or minimize", path="spec.objective.type",
                                  value=goal_type)
        self.min_trials_required = int(checked.get("min_trials_required", "3"))
        self.start_step = int(checked.get("start_step", "4"))
        self.maximize = goal_type == "maximize"

    def threshold(self, completed: Sequence[Sequence[float]]) -> float | None:
        """The stopping threshold from the objective series of Succeeded trials, or None while too few."""
        averages = [sum(series[: self.start_step]) / len(series[: self.start_step])
                    for series in completed if len(series) > 0]
        if len(averages) < self.min_trials_required:
            return None
        return sum(averages) / len(averages)

    def should_stop(self, reported: Sequence[float], completed: Sequence[Sequence[float]]) -> bool:
        """Whether the running trial with these objective reports (in order) is stopped.

        Katib's collector decides once, at the ``start_step``-th report, on the best of the first
        ``start_step`` values; calling this later with more reports gives that same decision.
        """
        if len(reported) < self.start_step:
            return False
        limit = self.threshold(completed)
        if limit is None:
            return False
        first = reported[: self.start_step]
        best = max(first) if self.maximize else min(first)
        return best < limit if self.maximize else best > limit


def median_stop_from_spec(spec: Mapping[str, Any]) -> MedianStop | None:
    """The rule of ``spec.earlyStopping``, or None when the experiment has none.

    Raises:
        SuggestionError: for an early-stopping algorithm other than medianstop, or refused settings.
    """
    early = spec.get("earlyStopping")
    if not early:
        return None
    name = early.get("algorithmName") if isinstance(early, Mapping) else None
    if name != "medianstop":
        raise SuggestionError(f"unknown early stopping algorithm '{name}'", path="spec.earlyStopping.algorithmName",
                              value=name, hint="Katib has only medianstop")
    settings, _ = read_settings(early.get("algorithmSettings"), MEDIANSTOP, _BASE)
    objective = spec.get("objective") or {}
    return MedianStop(settings, str(objective.get("type") if isinstance(objective, Mapping) else ""))
