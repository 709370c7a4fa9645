"""Katib's medianstop rule, checked against hand-computed cases."""

from __future__ import annotations

import pytest

from katib_hp.local.earlystop import MedianStop, median_stop_from_spec
from katib_hp.local.suggest import SuggestionError

# Averages of the first 2 reports: 0.6, 0.4, 0.5 -> threshold (their mean) 0.5.
COMPLETED = [[0.5, 0.7, 0.9], [0.3, 0.5], [0.4, 0.6, 0.1]]


def rule(goal: str = "maximize", min_trials: str = "3", start_step: str = "2") -> MedianStop:
    return MedianStop({"min_trials_required": min_trials, "start_step": start_step}, goal)


def test_threshold_is_the_mean_of_the_early_averages() -> None:
    assert rule().threshold(COMPLETED) == pytest.approx(0.5)
    # A skewed set shows it is a mean, not a median: averages 0.1, 0.2, 0.9 -> 0.4 (the median would be 0.2).
    assert rule().threshold([[0.1, 0.1], [0.2, 0.2], [0.9, 0.9]]) == pytest.approx(0.4)


@pytest.mark.parametrize(("reported", "stopped"), [
    ([0.2, 0.4], True),  # best 0.4 < 0.5
    ([0.6, 0.2], False),  # best so far 0.6
    ([0.5, 0.5], False),  # equal never stops
    ([0.2], False),  # fewer than start_step reports
    ([0.2, 0.4, 0.9], True),  # decided at the 2nd report, as Katib's collector does
])
def test_maximize(reported: list[float], stopped: bool) -> None:
    assert rule("maximize").should_stop(reported, COMPLETED) is stopped


@pytest.mark.parametrize(("reported", "stopped"), [
    ([0.9, 0.6], True),  # best (lowest) 0.6 > 0.5
    ([0.9, 0.3], False),
    ([0.5, 0.7], False),  # equal never stops
    ([0.9, 0.8, 0.1], True),
])
def test_minimize(reported: list[float], stopped: bool) -> None:
    assert rule("minimize").should_stop(reported, COMPLETED) is stopped


def test_too_few_completed_trials_never_stop() -> None:
    assert rule(min_trials="4").threshold(COMPLETED) is None
    assert not rule(min_trials="4").should_stop([0.0, 0.0], COMPLETED)
    assert rule(min_trials="3").should_stop([0.0, 0.0], COMPLETED)


def test_start_step_sets_how_many_reports_are_averaged_and_awaited() -> None:
    # start_step 1: averages are the first values 0.5, 0.3, 0.4 -> 0.4
    assert rule(start_step="1").threshold(COMPLETED) == pytest.approx(0.4)
    assert rule(start_step="1").should_stop([0.35], COMPLETED)
    # start_step 3: a two-report trial averages what it has (0.4); threshold (0.7 + 0.4 + 11/30) / 3
    assert rule(start_step="3").threshold(COMPLETED) == pytest.approx((0.7 + 0.4 + 1.1 / 3) / 3)
    assert not rule(start_step="3").should_stop([0.1, 0.1], COMPLETED)
    assert rule(start_step="3").should_stop([0.1, 0.1, 0.1], COMPLETED)


def test_trials_without_reports_are_not_counted() -> None:
    assert rule().threshold([*COMPLETED[:2], []]) is None


def test_katib_defaults() -> None:
    median = MedianStop({}, "maximize")
    assert (median.min_trials_required, median.start_step) == (3, 4)


@pytest.mark.parametrize(("settings", "message"), [
    ({"min_trials_required": "0"}, r"\[0\]: 'min_trials_required' must be an integer > 0"),
    ({"start_step": "2", "start_step_": "0"}, r"\[1\]: 'start_step_' is not a setting of medianstop"),
    ({"start_step": "1.5"}, r"\[0\]: 'start_step' must be an integer"),
])
def test_refused_settings_name_their_path(settings: dict[str, str], message: str) -> None:
    with pytest.raises(SuggestionError, match=r"^spec.earlyStopping.algorithmSettings" + message):
        MedianStop(settings, "maximize")


def test_goal_must_be_maximize_or_minimize() -> None:
    with pytest.raises(SuggestionError, match=r"spec\.objective\.type"):
        MedianStop({}, "max")


def test_from_spec() -> None:
    assert median_stop_from_spec({"objective": {"type": "minimize"}}) is None
    median = median_stop_from_spec({
        "objective": {"type": "minimize"},
        "earlyStopping": {"algorithmName": "medianstop",
                          "algorithmSettings": [{"name": "start_step", "value": "2"}]},
    })
    assert median is not None and median.start_step == 2 and not median.maximize
    with pytest.raises(SuggestionError, match=r"spec\.earlyStopping\.algorithmName: unknown early stopping"):
        median_stop_from_spec({"objective": {"type": "minimize"}, "earlyStopping": {"algorithmName": "asha"}})
