"""The local suggestion algorithms: valid points, Katib's settings checks, reproducibility, learning, grid."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from katib_hp.local.suggest import Observation, Suggester, SuggestionError, make_suggester

LEARNING = ("random", "tpe", "multivariate-tpe", "cmaes", "sobol", "bayesianoptimization")


def spec(algorithm: str, settings: Sequence[tuple[str, str]] = (), parameters: list[dict[str, Any]] | None = None,
         goal: str = "minimize", **extra: Any) -> dict[str, Any]:
    return {
        "algorithm": {"algorithmName": algorithm,
                      "algorithmSettings": [{"name": n, "value": v} for n, v in settings]},
        "objective": {"type": goal, "objectiveMetricName": "loss"},
        "parameters": parameters if parameters is not None else space(),
        "parallelTrialCount": 3,
        **extra,
    }


def space(double_step: str | None = None) -> list[dict[str, Any]]:
    lr: dict[str, Any] = {"min": "0.0001", "max": "0.1", "distribution": "logUniform"}
    if double_step:
        lr = {"min": "0.1", "max": "0.3", "step": double_step, "distribution": "uniform"}
    return [
        {"name": "lr", "parameterType": "double", "feasibleSpace": lr},
        {"name": "units", "parameterType": "int", "feasibleSpace": {"min": "2", "max": "10", "step": "2",
                                                                    "distribution": "uniform"}},
        {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["adam", "sgd"]}},
        {"name": "batch", "parameterType": "discrete", "feasibleSpace": {"list": ["16", "32"]}},
    ]


def drive(suggester: Suggester, trials: int, objective: Callable[[dict[str, str]], float], batch: int = 1,
          state: str = "Succeeded") -> list[Observation]:
    """Ask ``batch`` at a time, finishing each batch with ``objective``, until ``trials`` exist."""
    history: list[Observation] = []
    while len(history) < trials:
        new = suggester.ask(min(batch, trials - len(history)), history)
        if not new:
            break
        for suggestion in new:
            value = objective(suggestion.assignments)
            history.append(Observation(f"t{len(history)}", suggestion.assignments, state, value))
    return history


def units_objective(assignments: dict[str, str]) -> float:
    return float(assignments["units"])


@pytest.mark.parametrize("algorithm", [*LEARNING, "grid"])
def test_every_point_lies_in_the_space(algorithm: str) -> None:
    parameters = space(double_step="0.05") if algorithm == "grid" else space()
    history = drive(make_suggester(spec(algorithm, parameters=parameters), seed=3), 10, units_objective, batch=3)

    assert len(history) == 10
    for observation in history:
        values = observation.assignments
        assert set(values) == {"lr", "units", "optimizer", "batch"}
        lr = float(values["lr"])
        assert (0.1 <= lr <= 0.3) if algorithm == "grid" else (0.0001 <= lr <= 0.1)
        assert str(int(values["units"])) == values["units"]  # "4", never "4.0"
        assert 2 <= int(values["units"]) <= 10
        assert values["optimizer"] in ("adam", "sgd")
        assert values["batch"] in ("16", "32")
    odd = [o for o in history if int(o.assignments["units"]) % 2]
    # Katib's skopt service makes ints Integer(min, max): the step is ignored there and only there.
    assert bool(odd) == (algorithm == "bayesianoptimization")


def test_goptuna_algorithms_never_write_exponents() -> None:
    parameters = [{"name": n, "parameterType": "double", "feasibleSpace": {"min": "0.000001", "max": "0.00001"}}
                  for n in ("a", "b")]
    for algorithm in ("cmaes", "sobol"):
        history = drive(make_suggester(spec(algorithm, parameters=parameters), seed=1), 6, lambda a: 0.0, batch=2)
        for observation in history:
            assert all("e" not in v and 0.000001 <= float(v) <= 0.00001 for v in observation.assignments.values())


@pytest.mark.parametrize("algorithm", [*LEARNING, "grid"])
def test_the_same_seed_reproduces_the_same_suggestions(algorithm: str) -> None:
    parameters = space(double_step="0.05") if algorithm == "grid" else space()

    def run(seed: int) -> list[dict[str, str]]:
        history = drive(make_suggester(spec(algorithm, parameters=parameters), seed=seed), 8, units_objective, 2)
        return [dict(o.assignments) for o in history]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_random_state_setting_wins_over_the_seed() -> None:
    def run(seed: int) -> list[dict[str, str]]:
        suggester = make_suggester(spec("tpe", [("random_state", "5")]), seed=seed)
        return [dict(o.assignments) for o in drive(suggester, 6, units_objective, 2)]

    assert run(1) == run(2)


def quadratic(assignments: dict[str, str]) -> float:
    return (float(assignments["x"]) - 0.3) ** 2


def best_distance(algorithm: str, seed: int, trials: int, goal: str = "minimize",
                  settings: Sequence[tuple[str, str]] = ()) -> float:
    parameters = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "1"}}]
    sign = -1.0 if goal == "maximize" else 1.0
    suggester = make_suggester(spec(algorithm, settings, parameters, goal=goal), seed=seed)
    history = drive(suggester, trials, lambda a: sign * quadratic(a))
    return min(abs(float(o.assignments["x"]) - 0.3) for o in history)


def test_tpe_learns_from_a_maximized_history_and_beats_random() -> None:
    tpe = [best_distance("tpe", seed, 25, goal="maximize") for seed in range(6)]
    random = [best_distance("random", seed, 25, goal="maximize") for seed in range(6)]
    assert max(tpe) < 0.05
    assert sum(tpe) < sum(random)


def test_multivariate_tpe_concentrates_near_the_optimum() -> None:
    found = [best_distance("multivariate-tpe", seed, 25, settings=[("n_startup_trials", "5")]) for seed in range(4)]
    assert max(found) < 0.05


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
def test_bayesianoptimization_moves_toward_the_best_region(goal: str) -> None:
    parameters = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "1"}}]
    sign = -1.0 if goal == "maximize" else 1.0
    history = [Observation(f"t{i}", {"x": str(x)}, "Succeeded", sign * (x - 0.3) ** 2)
               for i, x in enumerate([0.01, 0.017, 0.028, 0.046, 0.077, 0.13, 0.22, 0.36, 0.6, 1.0])]
    suggester = make_suggester(spec("bayesianoptimization", parameters=parameters, goal=goal), seed=0)
    # After its 10 initial points the model proposes; a wrong sign would send it to an end of the range.
    x = float(suggester.ask(1, history)[0].assignments["x"])
    assert 0.2 < x < 0.6


def test_trials_that_failed_are_not_learned_from() -> None:
    parameters = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "1"}}]
    suggester = make_suggester(spec("tpe", parameters=parameters), seed=0)
    failed = drive(suggester, 20, quadratic, state="Failed")
    unavailable = drive(make_suggester(spec("tpe", parameters=parameters), seed=0), 20, quadratic,
                        state="MetricsUnavailable")
    learned = drive(make_suggester(spec("tpe", parameters=parameters), seed=0), 20, quadratic)
    # With nothing to learn from, tpe keeps drawing from its prior: the same points for either kind of failure.
    assert [o.assignments for o in failed] == [o.assignments for o in unavailable]
    assert [o.assignments for o in failed] != [o.assignments for o in learned]


def test_grid_enumerates_katibs_combinations_once_and_finishes() -> None:
    parameters = [
        {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "5", "step": "2"}},
        {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.3", "step": "0.1"}},
        {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["adam", "sgd"]}},
    ]
    suggester = make_suggester(spec("grid", parameters=parameters, maxTrialCount=18), seed=0)
    history: list[Observation] = []
    for round_ in range(10):
        new = suggester.ask(4, history)
        assert len(new) <= 4
        state = "Failed" if round_ == 1 else "Succeeded"  # failed points are not tried again either
        history += [Observation(f"t{len(history)}", s.assignments, state, 1.0) for s in new]

    # np.arange(0.1, 0.4, 0.1) as Katib builds it, printed with str(): the third point is 0.30000000000000004.
    expected = set(itertools.product(["1", "3", "5"], ["0.1", "0.2", "0.30000000000000004"], ["adam", "sgd"]))
    seen = [(o.assignments["n"], o.assignments["lr"], o.assignments["opt"]) for o in history]
    assert len(seen) == 18
    assert set(seen) == expected
    assert suggester.finished
    assert suggester.ask(3, history) == []


def test_grid_refuses_more_trials_than_combinations_with_katibs_message() -> None:
    parameters = [{"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}}]
    with pytest.raises(SuggestionError, match=r"spec.maxTrialCount: Max Trial Count: 4 > all possible search "
                                              r"combinations: 3") as caught:
        make_suggester(spec("grid", parameters=parameters, maxTrialCount=4))
    assert caught.value.exit_code == 2


def test_grid_needs_a_step_on_doubles() -> None:
    with pytest.raises(SuggestionError, match=r"spec.parameters\[0\].feasibleSpace.step: 'lr': grid needs a step"):
        make_suggester(spec("grid"))


def test_bayesianoptimization_refuses_a_double_from_zero() -> None:
    parameters = [{"name": "dropout", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "0.5"}}]
    with pytest.raises(SuggestionError, match=r"spec.parameters\[0\].feasibleSpace.min: 'dropout'.*log-uniformly, "
                                              r"so min must be > 0"):
        make_suggester(spec("bayesianoptimization", parameters=parameters))


def test_bayesianoptimization_refuses_acquisitions_that_need_run_times() -> None:
    with pytest.raises(SuggestionError, match="acq_func EIps needs each trial's run time"):
        make_suggester(spec("bayesianoptimization", [("acq_func", "EIps")]))


@pytest.mark.parametrize(("algorithm", "settings", "message"), [
    ("tpe", [("random_state", "1"), ("gamma", "1.5")], r"\[1\]: 'gamma' must be a number > 0 and < 1 \(got '1.5'\)"),
    ("tpe", [("n_ei_candidates", "5")], r"\[0\]: 'n_ei_candidates' is not a setting of tpe .*; did you "
                                        r"mean 'n_EI_candidates'\?"),
    ("random", [("random_state", "-1")], r"\[0\]: 'random_state' must be an integer >= 0"),
    ("multivariate-tpe", [("n_startup_trials", "ten")], r"\[0\]: 'n_startup_trials' must be an integer"),
    ("bayesianoptimization", [("base_estimator", "XGB")], r"\[0\]: 'base_estimator' must be one of GP, RF, ET, GBRT"),
    ("hyperband", [("resource_name", "units")], r": 'r_l' is required by hyperband"),
], ids=["tpe-gamma", "tpe-case", "random-negative", "mtpe-text", "skopt-estimator", "hyperband-r_l"])
def test_refused_settings_name_their_path(algorithm: str, settings: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(SuggestionError, match=r"^spec.algorithm.algorithmSettings" + message):
        make_suggester(spec(algorithm, settings))


def test_unsupported_algorithms_list_what_run_local_supports() -> None:
    with pytest.raises(SuggestionError, match=r"spec.algorithm.algorithmName: run-local cannot run algorithm 'pbt'; "
                                              r"run-local supports random, tpe, grid, .*hyperband"):
        make_suggester(spec("pbt"))


def test_cmaes_needs_two_numeric_parameters() -> None:
    parameters = [space()[0], space()[2]]
    with pytest.raises(SuggestionError, match="two or more dimensional continuous search space"):
        make_suggester(spec("cmaes", parameters=parameters))


def test_optuna_algorithms_refuse_normal_distributions() -> None:
    parameters = [{"name": "x", "parameterType": "double",
                   "feasibleSpace": {"min": "0", "max": "1", "distribution": "normal"}}]
    with pytest.raises(SuggestionError, match=r"spec.parameters\[0\].feasibleSpace.distribution: 'x': normal"):
        make_suggester(spec("multivariate-tpe", parameters=parameters))


def test_hyperopt_log_distributions_need_a_positive_min() -> None:
    parameters = [{"name": "x", "parameterType": "double",
                   "feasibleSpace": {"min": "0", "max": "1", "distribution": "logUniform"}}]
    with pytest.raises(SuggestionError, match=r"spec.parameters\[0\].feasibleSpace.min: 'x': logUniform needs min > 0"):
        make_suggester(spec("random", parameters=parameters))


def test_notes_explain_differences_from_the_cluster() -> None:
    cmaes = " ".join(make_suggester(spec("cmaes", [("restart_strategy", "ipop")])).notes)
    assert "goptuna" in cmaes and "restart_strategy 'ipop' is ignored" in cmaes
    uniform_double = {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "1"}}
    bayes = " ".join(make_suggester(spec("bayesianoptimization", parameters=[*space()[1:], uniform_double])).notes)
    assert "log-uniformly" in bayes


def test_trials_from_an_earlier_run_are_learned_by_optuna() -> None:
    parameters = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "1"}}]
    earlier = [Observation(f"old-{i}", {"x": str(0.01 + i * 0.05)}, "Succeeded", (0.01 + i * 0.05 - 0.3) ** 2)
               for i in range(20)]
    for seed in range(3):
        suggester = make_suggester(spec("multivariate-tpe", [("n_startup_trials", "5")], parameters), seed=seed)
        assert abs(float(suggester.ask(1, earlier)[0].assignments["x"]) - 0.3) < 0.05


def test_asking_for_nothing_returns_nothing() -> None:
    for algorithm in LEARNING:
        suggester = make_suggester(spec(algorithm), seed=0)
        assert suggester.ask(0, []) == []
        assert not suggester.finished


def test_a_resumed_grid_runs_only_the_points_not_yet_run() -> None:
    parameters = [{"name": "n", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "6"}},
                  {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["adam", "sgd"]}}]
    earlier = drive(make_suggester(spec("grid", parameters=parameters), seed=1), 5, units_objective_n, batch=2)
    earlier[-1] = Observation(earlier[-1].name, earlier[-1].assignments, "Failed", None)

    resumed = make_suggester(spec("grid", parameters=parameters), seed=2)  # another order of the same grid
    rest = resumed.ask(20, earlier)

    points = [tuple(sorted(o.assignments.items())) for o in earlier]
    points += [tuple(sorted(s.assignments.items())) for s in rest]
    assert len(rest) == 7
    assert len(set(points)) == 12
    assert resumed.finished


def units_objective_n(assignments: dict[str, str]) -> float:
    return float(assignments["n"])
