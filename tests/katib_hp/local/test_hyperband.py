"""Hyperband run locally: every bracket, promotions with their parent, Katib's settings checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from katib_hp.local.hyperband import HyperbandSuggester
from katib_hp.local.suggest import Observation, Suggestion, SuggestionError, make_suggester


def spec(r_l: str = "9", eta: str = "3", parallel: int = 9, goal: str = "maximize",
         extra_settings: Sequence[tuple[str, str]] = (), **overrides: Any) -> dict[str, Any]:
    settings = [("r_l", r_l), ("resource_name", "epochs"), ("eta", eta), *extra_settings]
    return {
        "algorithm": {"algorithmName": "hyperband",
                      "algorithmSettings": [{"name": n, "value": v} for n, v in settings]},
        "objective": {"type": goal, "objectiveMetricName": "accuracy"},
        "parallelTrialCount": parallel,
        "parameters": [
            {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.001", "max": "0.1"}},
            {"name": "epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "9"}},
            {"name": "units", "parameterType": "int", "feasibleSpace": {"min": "8", "max": "64"}},
            {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["adam", "sgd", "rmsprop"]}},
            {"name": "batch", "parameterType": "discrete", "feasibleSpace": {"list": ["16", "32", "64"]}},
        ],
        **overrides,
    }


def make(**kwargs: Any) -> HyperbandSuggester:
    suggester = make_suggester(spec(**kwargs), seed=0)
    assert isinstance(suggester, HyperbandSuggester)
    return suggester


class Runner:
    """Plays the local runner: creates trials from suggestions, finishes them with a score."""

    def __init__(self, score: Callable[[Suggestion], float]) -> None:
        self.score = score
        self.history: list[Observation] = []
        self.suggestions: dict[str, Suggestion] = {}

    def create(self, suggestions: list[Suggestion]) -> list[str]:
        names = []
        for suggestion in suggestions:
            name = f"t{len(self.history)}"
            self.history.append(Observation(name, suggestion.assignments, "Running", None))
            self.suggestions[name] = suggestion
            names.append(name)
        return names

    def finish(self, names: list[str], states: dict[str, str] | None = None) -> None:
        states = states or {}
        for index, observation in enumerate(self.history):
            if observation.name in names:
                value = self.score(self.suggestions[observation.name])
                self.history[index] = Observation(observation.name, observation.assignments,
                                                  states.get(observation.name, "Succeeded"), value)


def lr_score(suggestion: Suggestion) -> float:
    return float(suggestion.assignments["lr"])


def test_brackets_and_rungs_for_r_l_9_eta_3() -> None:
    assert make().brackets == [[(9, 1), (3, 3), (1, 9)], [(5, 3), (2, 9)], [(3, 9)]]


def test_first_rung_is_random_points_at_the_smallest_resource_then_it_waits() -> None:
    suggester = make()
    runner = Runner(lr_score)
    first = suggester.ask(20, runner.history)
    assert len(first) == 9
    for suggestion in first:
        values = suggestion.assignments
        assert values["epochs"] == "1"
        assert suggestion.parent is None and suggestion.parent_resource is None
        assert 0.001 <= float(values["lr"]) <= 0.1
        assert str(int(values["units"])) == values["units"] and 8 <= int(values["units"]) <= 64
        assert values["optimizer"] in ("adam", "sgd", "rmsprop")
        assert values["batch"] in ("16", "32", "64")
    names = runner.create(first)
    assert suggester.ask(5, runner.history) == []  # the rung is still running
    runner.finish(names[:8])
    assert suggester.ask(5, runner.history) == []  # one trial still running
    assert not suggester.finished


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
def test_the_best_third_is_promoted_with_its_parent(goal: str) -> None:
    suggester = make(goal=goal)
    runner = Runner(lr_score)
    names = runner.create(suggester.ask(9, runner.history))
    runner.finish(names)

    promoted = suggester.ask(9, runner.history)

    ranked = sorted(names, key=lambda n: lr_score(runner.suggestions[n]), reverse=goal == "maximize")
    assert [p.parent for p in promoted] == ranked[:3]
    for suggestion in promoted:
        parent = runner.suggestions[suggestion.parent or ""]
        assert suggestion.parent_resource == 1
        assert suggestion.assignments == {**parent.assignments, "epochs": "3"}


def test_failed_trials_are_never_promoted() -> None:
    suggester = make()
    runner = Runner(lr_score)
    names = runner.create(suggester.ask(9, runner.history))
    ranked = sorted(names, key=lambda n: lr_score(runner.suggestions[n]), reverse=True)
    # The two best by value failed (one even reported a value), one was early stopped.
    runner.finish(names, {ranked[0]: "Failed", ranked[1]: "MetricsUnavailable", ranked[2]: "EarlyStopped"})

    promoted = suggester.ask(9, runner.history)

    assert [p.parent for p in promoted] == ranked[3:6]


def test_a_rung_without_successes_ends_its_bracket() -> None:
    suggester = make()
    runner = Runner(lr_score)
    names = runner.create(suggester.ask(9, runner.history))
    runner.finish(names, dict.fromkeys(names, "Failed"))

    following = suggester.ask(9, runner.history)

    assert len(following) == 5  # bracket s=1 starts: 5 new configurations at 3 epochs
    assert {s.assignments["epochs"] for s in following} == {"3"}
    assert all(s.parent is None for s in following)


def test_every_bracket_runs_to_the_end() -> None:
    suggester = make()
    runner = Runner(lr_score)
    rungs = []
    while not suggester.finished:
        batch = suggester.ask(4, runner.history)  # fewer slots than a rung: the rest comes on the next ask
        assert batch, "the suggester waits although every trial is done"
        rungs.append([(s.assignments["epochs"], s.parent_resource) for s in batch])
        runner.finish(runner.create(batch))

    assert suggester.ask(4, runner.history) == []
    epochs = [e for rung in rungs for e, _ in rung]
    assert len(runner.history) == 9 + 3 + 1 + 5 + 2 + 3
    assert epochs == ["1"] * 9 + ["3"] * 3 + ["9"] + ["3"] * 5 + ["9"] * 2 + ["9"] * 3
    parents = [r for rung in rungs for _, r in rung]
    assert parents == [None] * 9 + [1] * 3 + [3] + [None] * 5 + [3] * 2 + [None] * 3
    assert len(rungs[0]) == 4  # never more than asked


def test_the_same_seed_gives_the_same_schedule() -> None:
    def run(seed: int) -> list[dict[str, str]]:
        suggester = make_suggester(spec(), seed=seed)
        runner = Runner(lr_score)
        while not suggester.finished:
            runner.finish(runner.create(suggester.ask(9, runner.history)))
        return [dict(o.assignments) for o in runner.history]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_notes_say_katib_runs_only_the_first_bracket() -> None:
    notes = " ".join(make(maxTrialCount=12).notes)
    assert "all 3 brackets" in notes and "only the first bracket" in notes
    assert "n = ceil((s_max+1)/(s+1) * eta^s)" in notes
    assert "maxTrialCount=12" in notes


def test_parallel_trial_count_must_cover_the_first_rung() -> None:
    with pytest.raises(SuggestionError, match=r"spec.parallelTrialCount: parallelTrialCount must be not less "
                                              r"than 9"):
        make(parallel=8)


@pytest.mark.parametrize(("settings", "message"), [
    ({"r_l": "-1"}, r"spec.algorithm.algorithmSettings\[0\]: 'r_l' must be a number >= 1"),
    ({"eta": "x"}, r"spec.algorithm.algorithmSettings\[2\]: 'eta' must be a number"),
    ({"extra_settings": [("eta", "2")]}, r"'eta' is set twice"),
])
def test_refused_settings_name_their_path(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SuggestionError, match=message):
        make(**settings)


def test_resource_name_must_be_a_parameter() -> None:
    custom = spec()
    custom["algorithm"]["algorithmSettings"][1]["value"] = "steps"
    with pytest.raises(SuggestionError, match="resource_name 'steps' is not a parameter"):
        make_suggester(custom)


def test_discrete_values_must_be_integers() -> None:
    custom = spec()
    custom["parameters"][4]["feasibleSpace"]["list"] = ["0.5", "1.5"]
    with pytest.raises(SuggestionError, match=r"spec.parameters\[4\].feasibleSpace.list: 'batch': hyperband needs "
                                              r"integer discrete values"):
        make_suggester(custom)


def test_a_small_r_l_gives_one_bracket_of_full_trials() -> None:
    suggester = make(r_l="2", parallel=1)
    assert suggester.brackets == [[(1, 2)]]
    runner = Runner(lr_score)
    runner.create(suggester.ask(3, runner.history))
    assert suggester.finished


def test_a_resumed_run_with_the_same_seed_continues_the_schedule() -> None:
    first = make_suggester(spec(), seed=4)
    runner = Runner(lr_score)
    for _ in range(2):  # the first rung, then its promotions
        runner.finish(runner.create(first.ask(9, runner.history)))
    done = len(runner.history)
    assert done == 9 + 3

    resumed = make_suggester(spec(), seed=4)
    following = resumed.ask(9, runner.history)

    assert [s.assignments["epochs"] for s in following] == ["9"]
    best = max(runner.history[9:], key=lambda o: o.objective or 0.0)
    assert following[0].parent == best.name
    assert following[0].parent_resource == 3
