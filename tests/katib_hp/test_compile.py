"""katib_hp.compile: per-algorithm lowering (never silent), Katib's arithmetic, and the trial template."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest

from katib_hp.algorithms import hyperband_plan
from katib_hp.compile import Compiled, CompileError, _katib_grid_doubles, compile
from katib_hp.config import load_config, parse_config
from katib_hp.experiment import CollectorKind, Distribution, ParameterType
from katib_hp.manifest import to_manifest
from katib_hp.problems import Severity

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"
ALGORITHMS = ["random", "tpe", "multivariate-tpe", "grid", "cmaes", "sobol", "bayesianoptimization", "hyperband"]
CUSTOM = {"command": ["python", "train.py"], "resources": {"gpus": 0}}
EPOCHS = {"name": "epochs", "type": "int", "min_value": 1, "max_value": 100}
AUX = [{"name": "aux_a", "type": "float", "min_value": 0.0, "max_value": 1.0, "step": 0.5},
       {"name": "aux_b", "type": "float", "min_value": 0.0, "max_value": 1.0, "step": 0.5}]


# -- helpers ----------------------------------------------------------------------------------------------
def builtin(**fields: Any) -> list[Compiled]:
    data: dict[str, Any] = {"name": "exp", "tune": ["learning_rate"]}
    data.update(fields)
    return compile(parse_config(data, "c.yaml"))


def one(**fields: Any) -> Compiled:
    (compiled,) = builtin(**fields)
    return compiled


def manifest(**fields: Any) -> dict[str, Any]:
    return to_manifest(one(**fields).experiment)


def failure(**fields: Any) -> CompileError:
    with pytest.raises(CompileError) as info:
        builtin(**fields)
    assert info.value.exit_code == 2
    return info.value


def notes(compiled: Compiled, severity: Severity | None = None) -> list[str]:
    return [n.render() for n in compiled.notes if severity is None or n.severity is severity]


def _config(param: dict[str, Any], algorithm: str, **extra: Any) -> dict[str, Any]:
    params: list[dict[str, Any]] = [param]
    settings: dict[str, Any] = {}
    budget: dict[str, Any] = {}
    if algorithm == "hyperband":
        params.append(EPOCHS)
        settings = {"r_l": 9, "eta": 3}
    if algorithm == "cmaes":
        params += AUX
    if algorithm == "grid":
        budget = {"max_trials": 1, "parallel_trials": 1}
    data = {"name": "t", "algorithm": {"name": algorithm, "settings": settings}, "budget": budget,
            "space": {"parameters": params}, "trial": CUSTOM}
    data.update(extra)
    return data


def lower(param: dict[str, Any], algorithm: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The manifest parameter Katib gets for ``param`` under ``algorithm``, and the notes about it."""
    (compiled,) = compile(parse_config(_config(param, algorithm), "c.yaml"))
    name = param["name"]
    spec = next((p for p in to_manifest(compiled.experiment)["spec"]["parameters"] if p["name"] == name), None)
    return spec, [n.message for n in compiled.notes if f"'{name}'" in n.path]


def lowering_error(param: dict[str, Any], algorithm: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        compile(parse_config(_config(param, algorithm), "c.yaml"))
    return info.value


def int_param(low: int, high: int, **more: Any) -> dict[str, Any]:
    return {"name": "x", "type": "int", "min_value": low, "max_value": high, **more}


def float_param(low: float, high: float, **more: Any) -> dict[str, Any]:
    return {"name": "x", "type": "float", "min_value": low, "max_value": high, **more}


def numeric(kind: str, low: str, high: str, step: str | None = None, dist: str = "uniform") -> dict[str, Any]:
    space = {"min": low, "max": high}
    if step is not None:
        space["step"] = step
    space["distribution"] = dist
    return {"name": "x", "parameterType": kind, "feasibleSpace": space}


def listed(kind: str, *values: str) -> dict[str, Any]:
    return {"name": "x", "parameterType": kind, "feasibleSpace": {"list": list(values)}}


# -- the lowering matrix ----------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_int_with_step_one_is_a_plain_int_everywhere(algorithm: str) -> None:
    spec, messages = lower(int_param(1, 10), algorithm)
    assert spec == numeric("int", "1", "10")
    assert messages == []


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_int_with_a_step_aligned_to_zero(algorithm: str) -> None:
    spec, messages = lower(int_param(8, 64, step=8), algorithm)
    if algorithm in ("bayesianoptimization", "hyperband"):
        # hyperband draws a discrete list uniformly between its ends: a categorical list keeps values equally likely
        kind = "categorical" if algorithm == "hyperband" else "discrete"
        assert spec == listed(kind, "8", "16", "24", "32", "40", "48", "56", "64")
        assert messages[0].startswith(f"{algorithm} ignores step on int parameters → explicit list "
                                      "[8, 16, 24, 32, 40, 48, 56, 64]")
    else:
        assert spec == numeric("int", "8", "64", "8")
        assert messages == []


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_int_with_an_offset_step(algorithm: str) -> None:
    spec, messages = lower(int_param(12, 100, step=8), algorithm)
    values = [str(v) for v in range(12, 101, 8)]
    if algorithm in ("random", "tpe"):
        assert spec == listed("discrete", *values)
        assert messages == [f"{algorithm} (hyperopt) rounds to multiples of the step (round(x/8)*8), which differ "
                            "from KerasTuner's 12 + k*8 → explicit list [12, 20, 28, 36, ..., 92, 100] (12 values)"]
    elif algorithm in ("bayesianoptimization", "hyperband"):
        assert spec == listed("categorical" if algorithm == "hyperband" else "discrete", *values)
    else:
        assert spec == numeric("int", "12", "100", "8")


@pytest.mark.parametrize("algorithm", ["multivariate-tpe", "grid", "cmaes", "sobol"])
def test_int_step_that_does_not_divide_the_range(algorithm: str) -> None:
    spec, messages = lower(int_param(12, 99, step=8), algorithm)
    if algorithm == "multivariate-tpe":
        assert spec is not None and spec["parameterType"] == "discrete"
        assert spec["feasibleSpace"]["list"][-1] == "92"
        assert "optuna needs max - min to be a multiple of the step (99 - 12 is not)" in messages[0]
    else:
        assert spec == numeric("int", "12", "99", "8")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_int_log_without_step(algorithm: str) -> None:
    param = int_param(1, 1000, sampling="log")
    if algorithm in ("random", "tpe", "multivariate-tpe"):
        spec, messages = lower(param, algorithm)
        assert spec == numeric("int", "1", "1000", dist="logUniform") and messages == []
    elif algorithm == "grid":
        spec, messages = lower(param, algorithm)
        assert spec == numeric("int", "1", "1000")
        assert messages == ["grid enumerates every integer in [1, 1000]; log sampling does not apply to a grid"]
    else:
        error = lowering_error(param, algorithm)
        assert str(error) == (
            f"c.yaml: tune.x: {algorithm} does not sample integers log-uniformly, and a uniform x in [1, 1000] would "
            "rarely try small values; add a step (KerasTuner multiplies: `step: 2` gives an explicit list 8, 16, "
            "32, ...) or choose random, tpe or multivariate-tpe")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_multiplicative_steps_become_explicit_lists_everywhere(algorithm: str) -> None:
    spec, messages = lower(int_param(8, 64, sampling="log", step=2), algorithm)
    # hyperband would draw a discrete list uniformly between 8 and 64 (mostly 32 and 64): categorical instead
    assert spec == listed("categorical" if algorithm == "hyperband" else "discrete", "8", "16", "32", "64")
    assert messages[0].startswith("KerasTuner's multiplicative step (×2 under log sampling) → explicit list "
                                  "[8, 16, 32, 64]")
    spec, messages = lower(float_param(1e-4, 1e-1, sampling="log", step=10), algorithm)
    kind = "categorical" if algorithm == "hyperband" else "discrete"
    assert spec == listed(kind, "0.0001", "0.001", "0.01", "0.1")
    assert "×10 under log sampling" in messages[0]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float_linear_without_step(algorithm: str) -> None:
    param = float_param(0.0, 0.7)
    if algorithm == "bayesianoptimization":
        assert str(lowering_error(param, algorithm)) == (
            "c.yaml: tune.x: bayesianoptimization samples every double log-uniformly, so a uniform x in [0.0, 0.7] "
            "cannot be searched faithfully (it cannot even sample 0); add a step to get an explicit grid of "
            "values, or use tpe, random or multivariate-tpe")
    elif algorithm == "grid":
        assert str(lowering_error(param, algorithm)) == (
            "c.yaml: tune.x: grid needs a step on doubles (x in [0.0, 0.7] has none); add a step, e.g. "
            "`step: 0.01`")
    else:
        spec, messages = lower(param, algorithm)
        assert spec == numeric("double", "0.0", "0.7") and messages == []


def test_bayesian_refuses_positive_uniform_doubles_too() -> None:
    message = str(lowering_error(float_param(0.5, 0.999), "bayesianoptimization"))
    assert "samples every double log-uniformly" in message and "cannot even sample 0" not in message


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float_with_a_clean_step(algorithm: str) -> None:
    spec, messages = lower(float_param(0.0, 0.5, step=0.1), algorithm)
    values = ("0.0", "0.1", "0.2", "0.3", "0.4", "0.5")
    if algorithm == "bayesianoptimization":
        assert spec == listed("discrete", *values)
        assert messages == ["bayesianoptimization ignores step and samples doubles log-uniformly → explicit list "
                            "[0.0, 0.1, 0.2, 0.3, 0.4, 0.5] (bayesianoptimization treats a list as unordered "
                            "categories)"]
    elif algorithm == "hyperband":
        assert spec == listed("categorical", *values)
        assert "(categorical, each value drawn with equal chance: hyperband would int() a discrete list of " \
               "fractions)" in messages[0]
    else:
        assert spec == numeric("double", "0.0", "0.5", "0.1") and messages == []


def test_grid_double_whose_numpy_range_drops_the_maximum_becomes_a_list() -> None:
    spec, messages = lower(float_param(0.0, 0.7, step=0.05), "grid")
    assert spec is not None and spec["parameterType"] == "discrete"
    assert len(spec["feasibleSpace"]["list"]) == 15 and spec["feasibleSpace"]["list"][-1] == "0.7"
    assert messages[0].startswith("Katib's grid (numpy.arange) would give 14 values, not KerasTuner's 15 "
                                  "(binary rounding drops 0.7)")


@pytest.mark.parametrize(("low", "high", "step"), [(0.0, 0.7, 0.05), (0.0, 0.5, 0.1), (0.01, 0.99, 0.01),
                                                   (0.1, 0.9, 0.2), (1.0, 3.0, 0.25), (0.0, 0.9, 0.05)])
def test_grid_double_arithmetic_matches_numpy_arange(low: float, high: float, step: float) -> None:
    numpy = pytest.importorskip("numpy")
    expected = numpy.arange(low, high + step, step)
    if expected[-1] > high:
        expected = expected[:-1]
    assert _katib_grid_doubles(low, high, step) == [float(v) for v in expected]


@pytest.mark.parametrize("algorithm", ["random", "tpe", "multivariate-tpe", "cmaes"])
def test_float_step_offset_from_zero(algorithm: str) -> None:
    spec, messages = lower(float_param(0.05, 0.95, step=0.1), algorithm)
    if algorithm in ("random", "tpe"):
        assert spec is not None and spec["parameterType"] == "discrete"
        assert spec["feasibleSpace"]["list"][:2] == ["0.05", "0.15"]
        assert f"{algorithm} (hyperopt) rounds to multiples of the step" in messages[0]
    else:
        assert spec == numeric("double", "0.05", "0.95", "0.1")


def test_multivariate_tpe_float_step_must_divide_the_range() -> None:
    spec, messages = lower(float_param(0.05, 1.0, step=0.1), "multivariate-tpe")
    assert spec is not None and spec["parameterType"] == "discrete"
    assert "optuna needs max - min to be a multiple of the step (1.0 - 0.05 is not)" in messages[0]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float_log_without_step(algorithm: str) -> None:
    param = float_param(1e-5, 1e-1, sampling="log")
    if algorithm in ("random", "tpe", "multivariate-tpe", "bayesianoptimization"):
        spec, messages = lower(param, algorithm)
        assert spec == numeric("double", "1e-05", "0.1", dist="logUniform") and messages == []
    else:
        assert str(lowering_error(param, algorithm)) == (
            f"c.yaml: tune.x: {algorithm} does not sample doubles log-uniformly: a uniform x in [1e-05, 0.1] would "
            "almost never try values near 1e-05; add `step: 10` to sample whole decades as an explicit list, or "
            "choose random, tpe, multivariate-tpe or bayesianoptimization (they honour logUniform)")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_reverse_log(algorithm: str) -> None:
    error = lowering_error(float_param(1e-3, 1.0, sampling="reverse_log"), algorithm)
    assert str(error) == (f"c.yaml: tune.x: no Katib algorithm samples reverse_log ({algorithm} included); add a "
                          "step (KerasTuner multiplies it) to get an explicit list, or use sampling: log")
    spec, _ = lower(float_param(1e-3, 1.0, sampling="reverse_log", step=10), algorithm)
    assert spec is not None and spec["feasibleSpace"]["list"] == ["1.0", "0.991", "0.901", "0.001"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_choices_booleans_and_fixed(algorithm: str) -> None:
    spec, messages = lower({"name": "x", "type": "choice", "values": ["relu", "tanh"]}, algorithm)
    assert spec == listed("categorical", "relu", "tanh") and messages == []
    spec, _ = lower({"name": "x", "type": "choice", "values": [1, 3, 5]}, algorithm)
    assert spec == listed("categorical" if algorithm == "hyperband" else "discrete", "1", "3", "5")
    spec, messages = lower({"name": "x", "type": "choice", "values": [0.1, 0.5]}, algorithm)
    if algorithm == "hyperband":
        assert spec == listed("categorical", "0.1", "0.5")
        assert messages == ["numbers → categorical [0.1, 0.5] (categorical, each value drawn with equal chance: "
                            "hyperband would int() a discrete list of fractions)"]
    else:
        assert spec == listed("discrete", "0.1", "0.5")
    spec, messages = lower({"name": "x", "type": "boolean"}, algorithm)
    assert spec == listed("categorical", "true", "false")
    assert messages == ["Boolean → categorical [true, false] (the trainer parses both)"]
    spec, messages = lower({"name": "x", "type": "fixed", "value": 7}, algorithm)
    assert spec is None and messages == ["Fixed(7) is not searched: passed as the argument --x=7"]


def test_lists_are_limited_to_a_thousand_values() -> None:
    error = lowering_error(int_param(0, 5000, step=2), "bayesianoptimization")
    assert str(error) == ("c.yaml: tune.x: x would become an explicit list of 2501 values; Katib lists are limited "
                          "here to 1000; use a coarser step or narrow the range under tune")


def test_list_values_must_survive_the_shell_wrapping() -> None:
    error = lowering_error({"name": "x", "type": "choice", "values": ["a b", "c"]}, "random")
    assert str(error) == ("c.yaml: tune.x: value 'a b' of x would not survive Katib's `sh -c` wrapping of the trial "
                          "command; use values made of letters, digits, '.', '_', '+' and '-'")


def test_a_single_valued_choice_is_a_fixed_argument() -> None:
    compiled = one(tune={"optimizer": {"values": ["sgd"]}, "momentum": {}})
    assert [p.name for p in compiled.experiment.parameters] == ["momentum"]
    args = compiled.experiment.trial_template.run_spec["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--optimizer=sgd" in args
    assert "note: c.yaml: tune.optimizer: a single value is not searched: passed as the argument --optimizer=sgd" \
        in notes(compiled)


def test_several_lowering_errors_are_reported_together() -> None:
    error = failure(algorithm="grid", tune=["beta_1", "learning_rate"], budget={"max_trials": 1})
    assert len(error.problems) == 2
    assert str(error).startswith("c.yaml: 2 problems: tune.learning_rate: grid does not sample doubles "
                                 "log-uniformly")
    assert " | tune.beta_1: grid needs a step on doubles (beta_1 in [0.5, 0.999] has none)" in str(error)
    assert all(p.severity is Severity.ERROR and p.source == "c.yaml" for p in error.problems)


# -- conditional parameters and split --------------------------------------------------------------------
def test_each_conditional_child_gets_a_note_naming_its_condition() -> None:
    compiled = one(algorithm="tpe", tune={"optimizer": {"values": ["adam", "sgd"]}, "beta_1": {}, "momentum": {},
                                          "learning_rate": {}})
    texts = notes(compiled)
    assert ("note: c.yaml: spec.parameters[2] 'beta_1': 'beta_1' is active only when optimizer is one of [adam]; "
            "Katib's search space is flat, so it is sampled in every trial and the trainer ignores it when inactive; "
            "`split: optimizer` compiles one Experiment per value, each without the inactive ones") in texts
    assert any("spec.parameters[3] 'momentum': 'momentum' is active only when optimizer is one of [sgd]" in t
               for t in texts)


def test_a_condition_every_tuned_value_satisfies_needs_no_note() -> None:
    compiled = one(algorithm="tpe", tune={"optimizer": {"values": ["sgd", "rmsprop"]}, "momentum": {},
                                          "learning_rate": {}})
    assert not any("active only when" in t for t in notes(compiled))


def test_split_compiles_one_experiment_per_value() -> None:
    adam, sgd = builtin(algorithm="tpe", split="optimizer", tune={
        "optimizer": {"values": ["adam", "sgd"]}, "learning_rate": {}, "beta_1": {}, "momentum": {}, "nesterov": {}})
    assert adam.experiment.name == "exp-adam" and sgd.experiment.name == "exp-sgd"
    assert [p.name for p in adam.experiment.parameters] == ["learning_rate", "beta_1"]
    assert [p.name for p in sgd.experiment.parameters] == ["learning_rate", "momentum", "nesterov"]
    for compiled, value in ((adam, "adam"), (sgd, "sgd")):
        args = compiled.experiment.trial_template.run_spec["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f"--optimizer={value}" in args
        assert not any("${trialParameters.optimizer}" in a for a in args)
        assert not any("active only when" in t for t in notes(compiled))
    assert "inactive when optimizer=adam, so not searched: momentum, nesterov" in "\n".join(notes(adam))
    assert "one Experiment per optimizer value: this one fixes --optimizer=sgd and gets the whole budget " \
           "(2 Experiments in all)" in "\n".join(notes(sgd))


def test_split_names_are_sanitised_and_must_fit() -> None:
    space = {"parameters": [{"name": "mode", "type": "choice", "values": ["Fast_Path", "slow"]},
                            {"name": "x", "type": "float", "min_value": 0.0, "max_value": 1.0}]}
    names = [c.experiment.name for c in compile(parse_config(
        {"name": "exp", "space": space, "split": "mode", "trial": CUSTOM}, "c.yaml"))]
    assert names == ["exp-fast-path", "exp-slow"]
    with pytest.raises(CompileError, match=r"c.yaml: name: the Experiment for mode=Fast_Path would be named "
                                           r"'x{36}-fast-path' \(46 characters\); Katib allows at most 40; "
                                           r"shorten name to at most 30 characters"):
        compile(parse_config({"name": "x" * 36, "space": space, "split": "mode", "trial": CUSTOM}, "c.yaml"))


def test_split_that_leaves_nothing_to_search() -> None:
    error = failure(tune=["optimizer"], split="optimizer")
    assert "splitting on optimizer leaves no parameter to search for optimizer=adam" in str(error)


def test_split_given_after_loading_is_checked_too() -> None:
    config = parse_config({"name": "exp", "tune": ["learning_rate", "optimizer"]}, "c.yaml")
    with pytest.raises(CompileError) as info:
        compile(dataclasses.replace(config, split="learning_rate"))
    assert str(info.value) == ("c.yaml: split: 'learning_rate' is not a tuned Choice or Boolean parameter; split on "
                               "one of: optimizer")
    assert len(compile(dataclasses.replace(config, split="optimizer"))) == 6


def test_split_on_a_boolean() -> None:
    names = [c.experiment.name for c in builtin(algorithm="tpe", tune=["batch_norm", "learning_rate"],
                                                split="batch_norm")]
    assert names == ["exp-false", "exp-true"]


# -- hyperband --------------------------------------------------------------------------------------------
HB_TUNE = {"optimizer": {"values": ["adam", "sgd"]}, "dropout_rate_0": {}}


def test_hyperband_uses_the_minimum_parallelism_and_runs_one_reliable_bracket() -> None:
    compiled = one(algorithm={"name": "hyperband", "settings": {"r_l": 27}}, tune=HB_TUNE)
    experiment = compiled.experiment
    assert (experiment.parallel, experiment.max, experiment.max_failed) == (27, 27, 0)
    assert experiment.algorithm.settings == (("r_l", "27"), ("resource_name", "epochs"), ("eta", "3"))
    resource = experiment.parameter("epochs")
    assert resource is not None and (resource.type, resource.min, resource.max) == (ParameterType.INT, "1", "27")
    texts = notes(compiled)
    assert texts[0] == (
        "warning: c.yaml: spec.algorithm: only the first bracket is reliable on Katib v0.19 (later rungs can "
        "stall, kubeflow/katib#1168, #1366): maxTrialCount = parallelTrialCount = 27 runs 27 random trials with "
        "1 epoch each; the full plan (trials×epochs per rung) would be s=3: 27×1 → 9×3 → 3×9 → 1×27; "
        "s=2: 12×3 → 4×9 → 2×27; s=1: 6×9 → 2×27; s=0: 4×27")
    assert ("note: c.yaml: spec.parallelTrialCount: r_l=27, eta=3 needs 27 trials in parallel (= 27 GPUs at 1 GPU "
            "per trial): parallelTrialCount = 27") in texts
    assert any("spec.parameters[2] 'epochs': hyperband's resource: added as int [1, 27]; Katib overwrites its "
               "value with int(r_l·eta^-s) epochs per rung" in t for t in texts)


def test_hyperband_parallelism_below_katibs_minimum_states_the_gpu_cost() -> None:
    error = failure(algorithm={"name": "hyperband", "settings": {"r_l": 27, "eta": 3}}, tune=HB_TUNE,
                    budget={"parallel_trials": 4})
    assert str(error) == (
        "c.yaml: budget.parallel_trials: r_l=27, eta=3 needs 27 trials in parallel = 27 GPUs at 1 GPU per trial "
        "(Katib requires parallelTrialCount >= ceil(eta^s_max) = 3^3); budget.parallel_trials is 4; lower r_l "
        "or raise eta, or set parallel_trials to 27")
    two_gpus = failure(algorithm={"name": "hyperband", "settings": {"r_l": 27}}, tune=HB_TUNE,
                       budget={"parallel_trials": 4}, trial={"resources": {"gpus": 2}})
    assert "needs 27 trials in parallel = 54 GPUs at 2 GPUs per trial" in str(two_gpus)
    cpu = failure(algorithm={"name": "hyperband", "settings": {"r_l": 27}}, tune=HB_TUNE,
                  budget={"parallel_trials": 4}, trial={"resources": {"gpus": 0}})
    assert "needs 27 trials in parallel = 27 pods at once" in str(cpu)


@pytest.mark.parametrize(("r_l", "eta"), [(2, 2), (8, 2), (9, 3), (10, 3), (26, 3), (27, 3), (81, 3), (100, 4),
                                          (30, 5)])
def test_hyperband_parallelism_is_computed_like_katib(r_l: int, eta: int) -> None:
    katib = math.ceil(eta ** int(math.log(r_l) / math.log(eta)))  # Katib: int(ceil(eta**s_max))
    compiled = one(algorithm={"name": "hyperband", "settings": {"r_l": r_l, "eta": eta}}, tune=HB_TUNE)
    assert compiled.experiment.parallel == compiled.experiment.max == katib == hyperband_plan(r_l, eta).min_parallel


def test_hyperband_accepts_enough_parallelism_and_replaces_the_budget_with_warnings() -> None:
    compiled = one(algorithm={"name": "hyperband", "settings": {"r_l": 9}}, tune=HB_TUNE,
                   budget={"parallel_trials": 10, "max_trials": 40, "max_failed_trials": 3})
    assert (compiled.experiment.parallel, compiled.experiment.max, compiled.experiment.max_failed) == (10, 10, 0)
    warnings = notes(compiled, Severity.WARNING)
    assert "budget.max_trials=40 replaced by 10 (= parallelTrialCount)" in warnings[0]
    assert "budget.max_failed_trials=3 replaced by 0" in warnings[1]


@pytest.mark.parametrize(("settings", "fields", "expected"), [
    ({}, {}, "c.yaml: algorithm.settings.r_l: is required by hyperband; add {name: r_l, value: ...} (a number >= 1)"),
    ({"r_l": 2}, {}, "algorithm.settings.r_l: r_l=2 with eta=3 gives a single rung (s_max=0): Hyperband would be a "
                     "random search; raise r_l to at least eta (3)"),
    ({"r_l": 2000}, {}, "algorithm.settings.r_l: hyperband would give epochs values from 2 to 2000, outside what the "
                        "trainer accepts (an integer in [1, 1000])"),
    ({"r_l": 9, "resource_name": "epoch"}, {},
     "algorithm.settings.resource_name: 'epoch' is not a parameter the trainer takes; did you mean 'epochs'?"),
    ({"r_l": 9, "resource_name": "learning_rate"}, {},
     "hyperband's resource 'learning_rate' must be an Int parameter (Katib assigns it int(r_l·eta^-s)); it is float"),
    ({"r_l": 9}, {"fixed": {"epochs": 5}}, "fixed.epochs: 'epochs' is hyperband's resource: Katib sets it for every "
                                           "trial; remove epochs from fixed (r_l=9 is its maximum)"),
    ({"r_l": 9, "eta": 1}, {}, "algorithm.settings.eta: must be a number >= 2"),
])
def test_hyperband_setting_errors(settings: dict[str, Any], fields: dict[str, Any], expected: str) -> None:
    assert expected in str(failure(algorithm={"name": "hyperband", "settings": settings}, tune=HB_TUNE, **fields))


def test_hyperband_replaces_a_tuned_resource_range() -> None:
    compiled = one(algorithm={"name": "hyperband", "settings": {"r_l": 9}},
                   tune={**HB_TUNE, "epochs": {"min_value": 2, "max_value": 5}})
    resource = compiled.experiment.parameter("epochs")
    assert resource is not None and (resource.min, resource.max) == ("1", "9")
    assert any("the tuned range is replaced by int [1, 9]" in t for t in notes(compiled))


# -- algorithm-wide rules ---------------------------------------------------------------------------------
GRID_TUNE = {"optimizer": {"values": ["adam", "sgd"]}, "num_dense_layers": {"min_value": 1, "max_value": 3}}


def test_grid_max_trials_may_not_exceed_the_combinations() -> None:
    error = failure(algorithm="grid", tune=GRID_TUNE, budget={"max_trials": 7})
    assert str(error) == (
        "c.yaml: budget.max_trials: the grid has only 6 combinations, but budget.max_trials is 7 (Katib fails the "
        "Suggestion: 'Max Trial Count > all possible search combinations'); set budget.max_trials to at most 6, "
        "or add values")


def test_grid_budget_defaults_to_the_combinations() -> None:
    compiled = one(algorithm="grid", tune=GRID_TUNE)
    assert (compiled.experiment.max, compiled.experiment.parallel) == (6, 3)
    assert "spec.maxTrialCount: the grid has 6 combinations: maxTrialCount set to 6" in "\n".join(notes(compiled))
    small = one(algorithm="grid", tune={"optimizer": {"values": ["adam", "sgd"]}})
    assert (small.experiment.max, small.experiment.parallel, small.experiment.max_failed) == (2, 2, 2)
    assert "parallelTrialCount lowered to maxTrialCount (2)" in "\n".join(notes(small))
    partial = one(algorithm="grid", tune=GRID_TUNE, budget={"max_trials": 4})
    assert "grid tries 4 of its 6 combinations" in "\n".join(notes(partial))


def test_grid_counts_doubles_like_katib() -> None:
    compiled = one(algorithm="grid", tune={"aug_zoom": {"max_value": 0.2, "step": 0.1}}, budget={"max_trials": 3})
    assert compiled.experiment.parameters[0].step == "0.1"  # 0.0, 0.1, 0.2: native


def test_cmaes_needs_two_numeric_parameters_after_lowering() -> None:
    error = failure(algorithm="cmaes", tune={"beta_1": {}, "optimizer": {"values": ["adam", "sgd"]},
                                             "batch_size": {}})
    assert str(error) == (
        "c.yaml: algorithm.name: CMA-ES needs at least two int/double parameters; after lowering only beta_1 is "
        "numeric (optimizer, batch_size became lists); tune more numeric parameters (without a log-scale step), "
        "or choose another algorithm")
    assert one(algorithm="cmaes", tune=["beta_1", "beta_2"]).experiment.algorithm.name == "cmaes"


def test_algorithm_settings_are_checked_and_every_problem_listed() -> None:
    error = failure(algorithm={"name": "bayesianoptimization",
                               "settings": {"n_initial_point": 5, "acq_func": "UCB"}})
    assert len(error.problems) == 2
    assert "algorithm.settings.n_initial_point: is not a setting of bayesianoptimization (did you mean " \
           "'n_initial_points'?)" in str(error)
    assert "algorithm.settings.acq_func: must be one of gp_hedge, LCB, EI, PI, EIps, PIps" in str(error)


def test_settings_a_service_ignores_are_warnings() -> None:
    compiled = one(algorithm={"name": "cmaes", "settings": {"popsize": 8}}, tune=["beta_1", "beta_2"])
    assert "warning: c.yaml: spec.algorithm.algorithmSettings.popsize: is ignored by cmaes" in notes(compiled)[0]


def test_medianstop_settings_and_collector() -> None:
    error = failure(early_stopping={"settings": {"start_step": 0}})
    assert "early_stopping.settings.start_step: must be an integer >= 1" in str(error)
    error = failure(early_stopping={}, trial={"metrics_collector": {"kind": "TensorFlowEvent"}})
    assert "early_stopping: medianstop works only with the StdOut and File collectors, not TensorFlowEvent" \
        in str(error)
    compiled = one(early_stopping={"settings": {"min_trials_required": 2}})
    assert compiled.experiment.early_stopping is not None
    assert compiled.experiment.early_stopping.settings == (("min_trials_required", "2"),)


# -- objective and collectors -----------------------------------------------------------------------------
def test_builtin_trainer_metrics_are_checked() -> None:
    error = failure(objective={"metric": "val_acc"})
    assert str(error) == ("c.yaml: objective.metric: the built-in trainer does not report 'val_acc'; did you mean "
                          "'val_accuracy'? (it reports loss, accuracy, val_loss, val_accuracy, lr, epoch)")
    error = failure(objective={"additional_metrics": ["precision"]})
    assert "objective.additional_metrics[0]: the built-in trainer does not report 'precision'" in str(error)


def test_metric_names_must_be_capturable() -> None:
    error = failure(objective={"metric": "val.acc"}, trial={"command": ["python", "t.py"]})
    assert "objective.metric: metric name 'val.acc' has characters Katib's collector cannot capture" in str(error)
    compiled = one(objective={"metric": "validation/accuracy"},
                   trial={"command": ["python", "t.py"], "metrics_collector": {"kind": "TensorFlowEvent"}})
    assert compiled.experiment.objective.metric == "validation/accuracy"


def test_strategies_are_written_for_every_metric_with_the_reason() -> None:
    compiled = one()
    assert dict(compiled.experiment.objective.strategies) == {"val_accuracy": "max", "loss": "min",
                                                               "accuracy": "max", "val_loss": "min"}
    assert any(t.endswith("Katib would otherwise give every additional metric the objective's 'max'")
               for t in notes(compiled))


def test_stdout_filters_go_to_metrics_format_and_need_two_groups() -> None:
    regex = r"(\w+)=(\d+\.\d+)"
    spec = manifest(trial={"metrics_collector": {"filters": [regex]}})["spec"]["metricsCollectorSpec"]
    assert spec == {"collector": {"kind": "StdOut"}, "source": {"filter": {"metricsFormat": [regex]}}}
    error = failure(trial={"metrics_collector": {"filters": [r"loss=(\d+)"]}})
    assert "trial.metrics_collector.filters[0]: needs two groups: the metric name, then its value" in str(error)
    assert "is not a valid regular expression" in str(failure(trial={"metrics_collector": {"filters": ["(a"]}}))


def _args(compiled: Compiled) -> list[str]:
    run = compiled.experiment.trial_template.run_spec
    if run["kind"] == "Job":
        return list(run["spec"]["template"]["spec"]["containers"][0]["args"])
    return list(run["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["args"])


def test_file_collector() -> None:
    compiled = one(trial={"metrics_collector": {"kind": "File", "format": "json"}})
    assert to_manifest(compiled.experiment)["spec"]["metricsCollectorSpec"] == {
        "collector": {"kind": "File"},
        "source": {"fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File", "format": "JSON"}}}
    assert _args(compiled)[:2] == ["--metrics-file=/var/log/katib/metrics.log", "--metrics-format=json"]
    error = failure(trial={"metrics_collector": {"kind": "File", "format": "json", "filters": ["(a)(b)"]}})
    assert "trial.metrics_collector.filters: filters cannot be used with format: json" in str(error)
    custom = one(trial={"command": ["python", "t.py"], "metrics_collector": {"kind": "File", "path": "/out/m.log"}})
    assert not any(a.startswith("--metrics") for a in _args(custom))
    assert "your program must write its metrics to /out/m.log (text)" in "\n".join(notes(custom))


def test_tensorflow_event_collector() -> None:
    compiled = one(trial={"metrics_collector": {"kind": "TensorFlowEvent"}})
    assert to_manifest(compiled.experiment)["spec"]["metricsCollectorSpec"] == {
        "collector": {"kind": "TensorFlowEvent"},
        "source": {"fileSystemPath": {"path": "/var/log/katib/tfevent", "kind": "Directory"}}}
    assert _args(compiled)[0] == "--tensorboard-dir=/var/log/katib/tfevent"
    assert compiled.experiment.collector.kind is CollectorKind.TENSORFLOW_EVENT
    error = failure(objective={"metric": "epoch"}, trial={"metrics_collector": {"kind": "TensorFlowEvent"}})
    assert "the built-in trainer does not report 'epoch'" in str(error)


def test_push_collector() -> None:
    error = failure(trial={"metrics_collector": {"kind": "Push"}})
    assert str(error) == ("c.yaml: trial.metrics_collector.kind: the built-in trainer does not push metrics to "
                          "Katib; use StdOut, File or TensorFlowEvent (Push needs code that calls "
                          "kubeflow.katib.report_metrics)")
    compiled = one(trial={"command": ["python", "t.py"], "metrics_collector": {"kind": "Push"},
                          "args": ["--note=a b"]})
    assert to_manifest(compiled.experiment)["spec"]["metricsCollectorSpec"] == {"collector": {"kind": "Push"}}
    assert "must call kubeflow.katib.report_metrics()" in "\n".join(notes(compiled))


def test_a_volume_may_not_hide_the_metrics_directory() -> None:
    error = failure(trial={"volumes": [{"name": "logs", "mount_path": "/var/log/katib", "empty_dir": True}]})
    assert "trial.volumes[0].mount_path: /var/log/katib is where Katib mounts its metrics volume" in str(error)


# -- budget -----------------------------------------------------------------------------------------------
def test_budget_is_always_explicit() -> None:
    spec = manifest()["spec"]
    assert (spec["parallelTrialCount"], spec["maxTrialCount"], spec["maxFailedTrialCount"]) == (3, 12, 3)
    spec = manifest(budget={"max_trials": 2})["spec"]
    assert (spec["parallelTrialCount"], spec["maxTrialCount"], spec["maxFailedTrialCount"]) == (2, 2, 2)


def test_budget_errors() -> None:
    assert str(failure(budget={"max_trials": 4, "parallel_trials": 5})) == (
        "c.yaml: budget.parallel_trials: parallel_trials (5) is more than max_trials (4); Katib refuses it (V6); "
        "set parallel_trials to at most 4")
    assert "budget.max_failed_trials: max_failed_trials (9) is more than max_trials (4); Katib refuses it (V5)" in \
        str(failure(budget={"max_trials": 4, "max_failed_trials": 9}))


# -- trial template ---------------------------------------------------------------------------------------
def test_job_template() -> None:
    compiled = one(algorithm="tpe", tune=["learning_rate", "batch_norm", "dropout_rate_0"],
                   fixed={"epochs": 5}, trial={"args": ["--dataset=digits"], "env": {"A": 1},
                                               "service_account": "sa", "node_selector": {"gpu": "h100"},
                                               "active_deadline_seconds": 600})
    template = compiled.experiment.trial_template
    assert template.primary_container_name == "training-container"
    assert (template.success_condition, template.failure_condition) == (
        'status.conditions.#(type=="Complete")#|#(status=="True")#',
        'status.conditions.#(type=="Failed")#|#(status=="True")#')
    assert [(p.name, p.reference) for p in template.trial_parameters] == [
        ("dropout_rate_0", "dropout_rate_0"), ("batch_norm", "batch_norm"), ("learning_rate", "learning_rate")]
    run = template.run_spec
    assert (run["apiVersion"], run["kind"]) == ("batch/v1", "Job")
    assert "metadata" not in run
    assert run["spec"]["backoffLimit"] == 0 and run["spec"]["activeDeadlineSeconds"] == 600
    pod = run["spec"]["template"]
    assert pod["metadata"] == {"annotations": {"sidecar.istio.io/inject": "false"}}
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["serviceAccountName"] == "sa"
    assert spec["nodeSelector"] == {"gpu": "h100"}
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                       "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = spec["containers"]
    assert container["name"] == "training-container" and container["image"] == "katib-hp-trainer:0.1.0"
    assert container["command"] == ["python", "-u", "-m", "trainer"]
    assert container["args"] == ["--dataset=digits", "--epochs=5", "--dropout_rate_0=${trialParameters.dropout_rate_0}",
                                 "--batch_norm=${trialParameters.batch_norm}",
                                 "--learning_rate=${trialParameters.learning_rate}"]
    assert container["env"] == [{"name": "A", "value": "1"}]
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"},
                                      "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": 1}}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                            "runAsNonRoot": True}


@pytest.mark.parametrize("stem_fields", [
    {"algorithm": "tpe", "tune": ["learning_rate", "optimizer", "batch_size", "dense_units_0", "batch_norm"]},
    {"algorithm": {"name": "hyperband", "settings": {"r_l": 9}}, "tune": HB_TUNE},
    {"algorithm": "random", "tune": ["learning_rate"], "trial": {"kind": "TFJob", "workers": 3}},
])
def test_every_search_parameter_is_referenced_exactly_once_per_container(stem_fields: dict[str, Any]) -> None:
    compiled = one(**stem_fields)
    names = [p.name for p in compiled.experiment.parameters]
    assert [p.name for p in compiled.experiment.trial_template.trial_parameters] == names
    run = compiled.experiment.trial_template.run_spec
    pods = ([run["spec"]["template"]] if run["kind"] == "Job"
            else [r["template"] for r in run["spec"]["tfReplicaSpecs"].values()])
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        placeholders = [a for a in container["args"] if "${" in a]
        assert placeholders == [f"--{n}=${{trialParameters.{n}}}" for n in names]


def test_gpu_limits_only_when_gpus_are_requested() -> None:
    container = one(trial={"resources": {"gpus": 0, "cpu": None}}).experiment.trial_template.run_spec[
        "spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"memory": "4Gi"}, "limits": {"memory": "4Gi"}}


def test_volumes_in_the_pod() -> None:
    spec = one(trial={"volumes": [
        {"name": "cache", "mount_path": "/data", "pvc": "keras-cache", "read_only": True},
        {"name": "tmp", "mount_path": "/tmp/x", "empty_dir": True},
        {"name": "cfg", "mount_path": "/etc/x", "config_map": "settings"}]}).experiment.trial_template.run_spec[
        "spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "cache", "persistentVolumeClaim": {"claimName": "keras-cache",
                                                                          "readOnly": True}},
                               {"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "settings"}}]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "cache", "mountPath": "/data", "readOnly": True},
                                                     {"name": "tmp", "mountPath": "/tmp/x"},
                                                     {"name": "cfg", "mountPath": "/etc/x"}]


def test_tfjob_template() -> None:
    compiled = one(trial={"kind": "TFJob", "workers": 3, "resources": {"gpus": 2},
                          "metrics_collector": {"kind": "File"}, "active_deadline_seconds": 60})
    template = compiled.experiment.trial_template
    assert template.primary_container_name == "tensorflow"
    assert template.primary_pod_labels == (("training.kubeflow.org/job-role", "master"),)
    assert template.success_condition == 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
    run = template.run_spec
    assert (run["apiVersion"], run["kind"]) == ("kubeflow.org/v1", "TFJob")
    assert run["spec"]["runPolicy"] == {"backoffLimit": 0, "activeDeadlineSeconds": 60}
    replicas = run["spec"]["tfReplicaSpecs"]
    assert list(replicas) == ["Chief", "Worker"]
    assert (replicas["Chief"]["replicas"], replicas["Worker"]["replicas"]) == (1, 2)
    for replica in replicas.values():
        assert replica["restartPolicy"] == "Never"
        (container,) = replica["template"]["spec"]["containers"]
        assert container["name"] == "tensorflow"
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
        assert replica["template"]["spec"]["securityContext"]["runAsUser"] == 1000
    chief_args = replicas["Chief"]["template"]["spec"]["containers"][0]["args"]
    worker_args = replicas["Worker"]["template"]["spec"]["containers"][0]["args"]
    assert "--metrics-file=/var/log/katib/metrics.log" in chief_args
    assert not any(a.startswith("--metrics-file") for a in worker_args)
    single = one(trial={"kind": "TFJob"}).experiment.trial_template.run_spec
    assert list(single["spec"]["tfReplicaSpecs"]) == ["Chief"]


@pytest.mark.parametrize(("trial", "expected"), [
    ({"args": ["--note=a b"]}, "trial.args[0]: '--note=a b' would not survive Katib's `sh -c` wrapping"),
    ({"args": ["--x=$(id)"]}, "trial.args[0]: '--x=$(id)' would not survive"),
    ({"command": ["python", "-c", "print(1)"]}, "trial.command[2]: 'print(1)' would not survive"),
    ({"args": ["--learning_rate=0.1"]}, "trial.args[0]: '--learning_rate=0.1' sets a hyperparameter that tune/fixed "
                                        "already set"),
    ({"args": ["--learning-rate=0.1"]}, "sets a hyperparameter that tune/fixed already set"),
    ({"args": ["--metrics-file=/x"], "metrics_collector": {"kind": "File"}},
     "trial.args[0]: '--metrics-file=/x' is set by the compiler for the File collector"),
])
def test_trial_argument_errors(trial: dict[str, Any], expected: str) -> None:
    assert expected in str(failure(trial=trial))


def test_fixed_string_values_must_survive_the_shell() -> None:
    space = {"parameters": [{"name": "tag", "type": "fixed", "value": "a b"},
                            {"name": "x", "type": "float", "min_value": 0.0, "max_value": 1.0}]}
    with pytest.raises(CompileError, match=r"fixed\.tag: 'a b' would not survive Katib's `sh -c` wrapping"):
        compile(parse_config({"name": "t", "space": space, "trial": CUSTOM}, "c.yaml"))


@pytest.mark.parametrize("stem", sorted(p.stem for p in CONFIGS.glob("*.yaml") if p.stem != "small-space"))
def test_notes_name_a_field_path_and_come_warnings_first(stem: str) -> None:
    for compiled in compile(load_config(CONFIGS / f"{stem}.yaml")):
        severities = [n.severity for n in compiled.notes]
        assert Severity.ERROR not in severities
        assert severities == sorted(severities, key=lambda s: 0 if s is Severity.WARNING else 1)
        pattern = re.compile(r"^(spec\.|metadata\.|tune\.|space ')")
        assert all(pattern.match(n.path) for n in compiled.notes), [n.path for n in compiled.notes]
        assert all(n.source.endswith(f"{stem}.yaml") and n.message for n in compiled.notes)


def test_distribution_is_explicit_on_numeric_parameters_only() -> None:
    compiled = one(algorithm="tpe", tune=["learning_rate", "optimizer"])
    by_name = {p.name: p for p in compiled.experiment.parameters}
    assert by_name["learning_rate"].distribution is Distribution.LOG_UNIFORM
    assert by_name["optimizer"].distribution is None
