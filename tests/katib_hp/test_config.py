"""katib_hp.config: every schema field, the defaults, and errors that name the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from katib_hp.config import (
    Budget,
    CollectorConfig,
    Resources,
    TuningConfig,
    Volume,
    is_builtin_command,
    load_config,
    parse_config,
)
from katib_hp.errors import ConfigError
from katib_hp.experiment import CollectorKind, MetricStrategy, ObjectiveType, ResumePolicy, TrialKind
from katib_hp.space import Boolean, Choice, Float, Int, Sampling

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"


def make(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "exp", "tune": ["learning_rate"]}
    data.update(fields)
    return data


def parse(**fields: Any) -> TuningConfig:
    return parse_config(make(**fields), "config.yaml")


def error_of(**fields: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse(**fields)
    assert info.value.exit_code == 2
    return str(info.value)


# -- every field ------------------------------------------------------------------------------------------
def test_full_config_reads_every_field() -> None:
    config = load_config(CONFIGS / "full.yaml")
    assert config.name == "full-config" and config.namespace == "ml-team"
    assert config.labels == (("team", "vision"), ("app.kubernetes.io/part-of", "katib-hp"))
    objective = config.objective
    assert (objective.metric, objective.type, objective.goal) == ("val_loss", ObjectiveType.MINIMIZE, 0.05)
    assert objective.additional_metrics == ("val_accuracy", "loss")
    assert objective.strategies == (("val_loss", MetricStrategy.MIN), ("val_accuracy", MetricStrategy.MAX),
                                    ("loss", MetricStrategy.LATEST))
    assert config.algorithm.name == "tpe"
    assert config.algorithm.settings == (("gamma", "0.2"), ("prior_weight", "1.5"), ("n_EI_candidates", "12"),
                                         ("random_state", "3"))
    assert config.early_stopping is not None
    assert config.early_stopping.settings == (("min_trials_required", "4"), ("start_step", "2"))
    assert config.budget == Budget(40, 5, 4)
    assert config.space_source == "builtin" and len(config.space) == 62
    assert config.tune == ("dense_units_0", "dropout_rate_0", "optimizer", "learning_rate", "batch_size")
    assert config.fixed == (("epochs", 7), ("seed", 1))
    assert config.resume_policy is ResumePolicy.LONG_RUNNING
    trial = config.trial
    assert trial.image == "registry.example.com/katib-hp-trainer:0.1.0" and trial.image_pull_policy == "Always"
    assert trial.command == ("katib-hp-trainer",) and trial.builtin_trainer
    assert trial.args == ("--dataset=mnist", "--cache-dir=/data/keras")
    assert trial.resources == Resources("3", "6Gi", 2)
    assert trial.node_selector == (("nvidia.com/gpu.product", "NVIDIA-H100"),)
    assert trial.tolerations == ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)
    assert trial.service_account == "trainer"
    assert trial.env == (("TF_CPP_MIN_LOG_LEVEL", "2"), ("TF_FORCE_GPU_ALLOW_GROWTH", "true"))
    assert trial.volumes == (
        Volume("keras-cache", "/data", pvc="keras-cache", read_only=True),
        Volume("scratch", "/scratch", empty_dir=True, empty_dir_medium="Memory", empty_dir_size_limit="2Gi"),
        Volume("settings", "/etc/trainer", config_map="trainer-settings"),
    )
    assert trial.kind is TrialKind.JOB and trial.workers == 1
    assert trial.metrics_collector.kind is CollectorKind.FILE
    assert trial.metrics_collector.path == "/var/log/katib/run/metrics.log"
    assert len(trial.metrics_collector.filters) == 1
    assert trial.retain is True and trial.active_deadline_seconds == 1800
    assert config.source.endswith("full.yaml")


def test_defaults() -> None:
    config = parse()
    assert config.namespace is None and config.labels == ()
    assert config.objective.metric == "val_accuracy" and config.objective.type is ObjectiveType.MAXIMIZE
    # Built-in trainer: the other printed metrics, each with its own strategy.
    assert config.objective.additional_metrics == ("loss", "accuracy", "val_loss")
    assert dict(config.objective.strategies) == {"val_accuracy": MetricStrategy.MAX, "loss": MetricStrategy.MIN,
                                                 "accuracy": MetricStrategy.MAX, "val_loss": MetricStrategy.MIN}
    assert config.algorithm.name == "random" and config.early_stopping is None
    assert (config.budget.max, config.budget.parallel, config.budget.max_failed) == (12, 3, 3)
    assert Budget(max_trials=2).max_failed == 2
    assert config.resume_policy is ResumePolicy.NEVER and config.split is None
    trial = config.trial
    assert trial.image == "katib-hp-trainer:0.1.0" and trial.image_pull_policy == "IfNotPresent"
    assert trial.command == ("python", "-u", "-m", "trainer")
    assert trial.resources == Resources("2", "4Gi", 1)
    assert trial.metrics_collector == CollectorConfig()
    assert trial.kind is TrialKind.JOB and not trial.retain


@pytest.mark.parametrize(("metric", "expected"), [("val_loss", ObjectiveType.MINIMIZE),
                                                  ("loss", ObjectiveType.MINIMIZE),
                                                  ("accuracy", ObjectiveType.MAXIMIZE)])
def test_objective_type_follows_the_metric_name(metric: str, expected: ObjectiveType) -> None:
    config = parse(objective={"metric": metric})
    assert config.objective.type is expected
    assert metric not in config.objective.additional_metrics


def test_custom_command_gets_no_default_additional_metrics() -> None:
    config = parse(trial={"command": ["python", "train.py"]})
    assert config.objective.additional_metrics == ()
    assert not config.trial.builtin_trainer


@pytest.mark.parametrize(("command", "builtin"), [
    (["python", "-u", "-m", "trainer"], True), (["python3", "-m", "trainer"], True),
    (["katib-hp-trainer"], True), (["/usr/local/bin/katib-hp-trainer"], True),
    (["python", "-m", "mytrainer"], False), (["sh", "-c", "python -m trainer"], False),
])
def test_builtin_trainer_detection(command: list[str], builtin: bool) -> None:
    assert is_builtin_command(command) is builtin


def test_algorithm_and_collector_accept_a_bare_name() -> None:
    config = parse(algorithm="grid", trial={"metrics_collector": "TensorFlowEvent"})
    assert config.algorithm.name == "grid"
    assert config.trial.metrics_collector.kind is CollectorKind.TENSORFLOW_EVENT
    assert config.trial.metrics_collector.resolved_path == "/var/log/katib/tfevent"
    assert CollectorConfig(CollectorKind.FILE).resolved_path == "/var/log/katib/metrics.log"


def test_settings_are_stringified_like_katib_expects() -> None:
    config = parse(algorithm={"name": "tpe", "settings": {"gamma": 0.25, "random_state": 42, "x": True}})
    assert config.algorithm.settings == (("gamma", "0.25"), ("random_state", "42"), ("x", "true"))


# -- space sources ----------------------------------------------------------------------------------------
def test_space_file_is_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the config's directory
    config = load_config(CONFIGS / "custom-space.yaml")
    assert config.space_source == str(CONFIGS / "small-space.yaml")
    assert config.tune == ("units", "lr", "activation", "use_bn", "epochs")  # default: every parameter


def test_inline_space_and_default_tune_skip_fixed_names() -> None:
    space = {"parameters": [{"name": "units", "type": "int", "min_value": 8, "max_value": 64},
                            {"name": "epochs", "type": "int", "min_value": 1, "max_value": 50}]}
    config = parse_config({"name": "x", "space": space, "fixed": {"epochs": 3}})
    assert config.space_source == "inline" and config.tune == ("units",)
    assert config.fixed == (("epochs", 3),)


def test_missing_space_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nspace: {file: nowhere.yaml}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: space\.file: 'nowhere\.yaml' does not exist"):
        load_config(path)


def test_bad_space_file_content_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("parameters:\n  - {name: u, type: int, min_value: 9, max_value: 1}\n")
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nspace: {file: s.yaml}\n")
    with pytest.raises(ConfigError, match="min_value must be < max_value"):
        load_config(path)


def test_tune_is_required_for_the_builtin_space() -> None:
    message = error_of(tune=None)
    assert message.startswith("config.yaml: tune: is required with `space: builtin` (it has 62 parameters)")


# -- file-level errors ------------------------------------------------------------------------------------
def test_yaml_error_gives_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ntune: [learning_rate\nfixed: {epochs: 5}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:3: invalid YAML: expected .,. or .\]."):
        load_config(path)


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="the config is empty"):
        load_config(empty)


# -- unknown keys and types -------------------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "expected"), [
    ({"nmae": "x"}, "config.yaml: nmae: unknown key 'nmae'; did you mean 'name'?"),
    ({"budget": {"max_trial": 3}}, "config.yaml: budget.max_trial: unknown key 'max_trial'; did you mean 'max_trials'?"),
    ({"objective": {"metrics": "loss"}}, "config.yaml: objective.metrics: unknown key 'metrics'; did you mean 'metric'?"),
    ({"trial": {"resources": {"gpu": 1}}},
     "config.yaml: trial.resources.gpu: unknown key 'gpu'; did you mean 'gpus'?"),
    ({"trial": {"volumes": [{"name": "v", "mount_path": "/d", "pvc": "c", "readonly": True}]}},
     "config.yaml: trial.volumes[0].readonly: unknown key 'readonly'; did you mean 'read_only'?"),
    ({"trial": {"tolerations": [{"key": "k", "operater": "Exists"}]}},
     "config.yaml: trial.tolerations[0].operater: unknown key 'operater'; did you mean 'operator'?"),
    ({"trial": {"metrics_collector": {"kind": "File", "fromat": "json"}}},
     "config.yaml: trial.metrics_collector.fromat: unknown key 'fromat' for kind File; did you mean 'format'?"),
    ({"tune": {"learning_rate": {"max": 0.1}}},
     "config.yaml: tune.learning_rate.max: unknown key 'max'; did you mean 'max_value'?"),
    ({"algorithm": {"name": "tpe", "setting": {}}},
     "config.yaml: algorithm.setting: unknown key 'setting'; did you mean 'settings'?"),
])
def test_unknown_keys_name_the_full_path_and_a_suggestion(fields: dict[str, Any], expected: str) -> None:
    assert error_of(**fields) == expected


def test_collector_keys_of_another_kind_are_explained() -> None:
    message = error_of(trial={"metrics_collector": {"kind": "StdOut", "path": "/x"}})
    assert "trial.metrics_collector.path: unknown key 'path' for kind StdOut; StdOut takes only kind, filters" \
        in message


@pytest.mark.parametrize(("fields", "expected"), [
    ({"budget": {"max_trials": "ten"}}, "budget.max_trials: expected a positive integer (got 'ten')"),
    ({"budget": {"parallel_trials": 0}}, "budget.parallel_trials: expected a positive integer (got 0)"),
    ({"budget": {"max_failed_trials": -1}}, "budget.max_failed_trials: expected an integer >= 0 (got -1)"),
    ({"objective": {"goal": "high"}}, "objective.goal: expected a number (got 'high')"),
    ({"objective": {"type": "maximise"}}, "objective.type: expected one of minimize, maximize (got 'maximise')"),
    ({"objective": {"additional_metrics": "loss"}}, "objective.additional_metrics: expected a list (got 'loss')"),
    ({"trial": {"retain": "yes"}}, "trial.retain: expected true or false (got 'yes')"),
    ({"trial": {"command": "python -m trainer"}}, "trial.command: expected a list (got 'python -m trainer')"),
    ({"trial": {"resources": {"memory": "4 GB"}}}, "trial.resources.memory: '4 GB' is not a Kubernetes quantity"),
    ({"trial": {"resources": {"gpus": 1.5}}}, "trial.resources.gpus: expected an integer >= 0 (got 1.5)"),
    ({"trial": {"kind": "PyTorchJob"}}, "trial.kind: expected one of Job, TFJob (got 'PyTorchJob')"),
    ({"trial": {"env": {"1BAD": "x"}}}, "trial.env.1BAD: '1BAD' is not a valid environment variable name"),
    ({"trial": {"env": {"A": [1]}}}, "trial.env.A: expected a string, number or boolean (got a list)"),
    ({"trial": {"metrics_collector": {"kind": "None"}}}, "'None' was renamed to 'Push' in Katib v0.18"),
    ({"trial": {"metrics_collector": {"kind": "File", "path": "metrics.log"}}},
     "trial.metrics_collector.path: 'metrics.log' must be an absolute path"),
    ({"trial": {"workers": 3}}, "trial.workers: applies to kind: TFJob only"),
    ({"trial": {"volumes": [{"name": "v", "mount_path": "/d"}]}},
     "trial.volumes[0]: needs exactly one of pvc, empty_dir, config_map"),
    ({"trial": {"volumes": [{"name": "v", "mount_path": "d", "pvc": "c"}]}},
     "trial.volumes[0].mount_path: 'd' must be an absolute path"),
    ({"trial": {"volumes": [{"name": "metrics-volume", "mount_path": "/d", "pvc": "c"}]}},
     "already used by Katib's metrics collector"),
    ({"trial": {"tolerations": [{"key": "k", "effect": "NoRun"}]}},
     "trial.tolerations[0].effect: expected one of NoSchedule, PreferNoSchedule, NoExecute (got 'NoRun')"),
    ({"resume_policy": "Sometimes"}, "resume_policy: expected one of Never, LongRunning, FromVolume"),
    ({"algorithm": {"name": "bayesian"}}, "algorithm.name: unknown algorithm 'bayesian'"),
    ({"algorithm": {"name": "pbt"}}, "pbt is not a search over a KerasTuner space"),
    ({"algorithm": {"name": "tpe", "settings": [{"name": "gamma", "value": "0.2"}]}},
     "algorithm.settings: expected a mapping of setting name to value (got a list)"),
    ({"early_stopping": {"name": "hyperband"}}, "early_stopping.name: expected one of medianstop"),
    ({"labels": {"team": "a b"}}, "labels.team: 'a b' is not a valid Kubernetes label value"),
    ({"namespace": "Team_A"}, "namespace: 'Team_A' is not a valid namespace name"),
    ({"space": "keras"}, "space: expected `builtin`, {file: ...} or {parameters: [...]} (got 'keras')"),
])
def test_type_errors_name_the_field_and_what_it_expects(fields: dict[str, Any], expected: str) -> None:
    assert expected in error_of(**fields)


# -- names ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["digits", "a", "a-1", "x" * 40])
def test_valid_names(name: str) -> None:
    assert parse(name=name).name == name


@pytest.mark.parametrize(("name", "expected"), [
    ("Digits", "is not a valid Experiment name"), ("1digits", "is not a valid Experiment name"),
    ("digits-", "is not a valid Experiment name"), ("digits_bayes", "is not a valid Experiment name"),
    ("x" * 41, "is 41 characters long; Katib allows at most 40"),
])
def test_invalid_names(name: str, expected: str) -> None:
    message = error_of(name=name)
    assert message.startswith("config.yaml: name: ") and expected in message


def test_name_is_required() -> None:
    with pytest.raises(ConfigError, match=r"config\.yaml: name: is required"):
        parse_config({"tune": ["learning_rate"]}, "config.yaml")


# -- objective --------------------------------------------------------------------------------------------
def test_objective_may_not_repeat_itself_in_additional_metrics() -> None:
    assert "contains the objective metric 'val_accuracy'" in error_of(
        objective={"additional_metrics": ["val_accuracy", "loss"]})


def test_strategies_must_name_a_metric_of_the_objective() -> None:
    message = error_of(objective={"strategies": {"val_los": "min"}})
    assert "objective.strategies.val_los: 'val_los' is not a metric of the objective; did you mean 'val_loss'?" \
        in message
    assert "expected one of min, max, latest" in error_of(objective={"strategies": {"loss": "lowest"}})


# -- tune: narrowing --------------------------------------------------------------------------------------
def test_tune_narrows_numbers_and_keeps_the_default_inside() -> None:
    config = parse(tune={"learning_rate": {"min_value": 1e-4, "max_value": 1e-1},
                         "dense_units_0": {"min_value": 64, "max_value": 512, "step": 64}})
    lr = config.tuned["learning_rate"]
    assert isinstance(lr, Float) and (lr.min_value, lr.max_value) == (1e-4, 1e-1)
    assert lr.sampling is Sampling.LOG and lr.default == 1e-3
    units = config.tuned["dense_units_0"]
    assert isinstance(units, Int) and (units.min_value, units.max_value, units.step) == (64, 512, 64)
    assert units.default == 128


def test_tune_moves_a_default_that_falls_outside_the_narrowed_range() -> None:
    config = parse(tune={"learning_rate": {"min_value": 0.01, "max_value": 0.1}})
    assert config.tuned["learning_rate"].default == 0.01


def test_tune_sampling_change_resets_the_step() -> None:
    config = parse(tune={"dense_units_0": {"sampling": "log", "min_value": 8, "max_value": 512}})
    units = config.tuned["dense_units_0"]
    assert isinstance(units, Int) and units.sampling is Sampling.LOG and units.step is None
    config = parse(tune={"dense_units_0": {"sampling": "log", "step": 2, "min_value": 8, "max_value": 512}})
    assert config.tuned["dense_units_0"].grid() == (8, 16, 32, 64, 128, 256, 512)


def test_tune_choice_values_must_be_a_subset() -> None:
    config = parse(tune={"optimizer": {"values": ["sgd", "adam"]}})
    optimizer = config.tuned["optimizer"]
    assert isinstance(optimizer, Choice) and optimizer.values == ("sgd", "adam") and optimizer.default == "adam"
    message = error_of(tune={"optimizer": {"values": ["adam", "nadam"]}})
    assert message == ("config.yaml: tune.optimizer.values: nadam is not among the declared values; pick a subset "
                       "of: adam, sgd, rmsprop, adagrad, adadelta, adamw")
    numbers = parse(tune={"conv_kernel_size_0": {"values": [3, 5]}}).tuned["conv_kernel_size_0"]
    assert isinstance(numbers, Choice) and numbers.values == (3, 5)


@pytest.mark.parametrize(("override", "expected"), [
    ({"max_value": 20.0}, "config.yaml: tune.learning_rate.max_value: 20.0 is outside the declared range "
                          "[1e-06, 10.0]; tune can only narrow a parameter: keep max_value inside [1e-06, 10.0]"),
    ({"min_value": 1e-7}, "tune.learning_rate.min_value: 1e-07 is outside the declared range [1e-06, 10.0]"),
    ({"min_value": 0.1, "max_value": 0.01}, "tune.learning_rate: min_value must be < max_value"),
    ({"min_value": "small"}, "tune.learning_rate.min_value: expected a number (got 'small')"),
    ({"sampling": "exp"}, "tune.learning_rate.sampling: expected one of linear, log, reverse_log (got 'exp')"),
    ({"values": [0.1]}, "tune.learning_rate.values: unknown key 'values'"),
])
def test_narrowing_errors_name_the_field_and_the_allowed_range(override: dict[str, Any], expected: str) -> None:
    assert expected in error_of(tune={"learning_rate": override})


def test_int_narrowing_must_stay_integer_and_inside() -> None:
    assert "tune.dense_units_0.max_value: 4096 is outside the declared range [8, 2048]" in error_of(
        tune={"dense_units_0": {"max_value": 4096}})
    assert "tune.dense_units_0: min_value must be an integer (got 9.5)" in error_of(
        tune={"dense_units_0": {"min_value": 9.5}})


def test_booleans_take_no_overrides() -> None:
    message = error_of(tune={"batch_norm": {"values": [True]}})
    assert "tune.batch_norm.values: a boolean parameter takes no overrides; to use a single value, move " \
           "batch_norm to fixed" in message
    assert isinstance(parse(tune={"batch_norm": {}}).tuned["batch_norm"], Boolean)


@pytest.mark.parametrize(("tune", "expected"), [
    ({"learning_rat": {}}, "tune.learning_rat: 'learning_rat' is not a parameter of the space; did you mean "
                           "'learning_rate'?"),
    (["learning_rate", "learning_rate"], "tune.learning_rate: is listed twice"),
    ([], "tune: is empty"),
    ("learning_rate", "tune: expected a list of names or a mapping"),
])
def test_tune_names(tune: Any, expected: str) -> None:
    assert expected in error_of(tune=tune)


# -- conditions -------------------------------------------------------------------------------------------
def test_conditions_are_kept_where_the_parent_is_tuned_and_narrowed_with_it() -> None:
    config = parse(tune={"optimizer": {"values": ["adam", "sgd"]}, "momentum": {}, "learning_rate": {}})
    (condition,) = config.tuned["momentum"].conditions
    assert condition.parent == "optimizer" and condition.values == ("sgd",)  # rmsprop is not tuned


def test_conditions_on_untuned_parents_are_dropped_when_they_hold() -> None:
    config = parse(tune=["dropout_rate_0", "dense_units_0"])  # num_dense_layers=1, dropout_placement=after_dense
    assert config.tuned["dropout_rate_0"].conditions == ()
    config = parse(tune=["momentum"], fixed={"optimizer": "sgd"})
    assert config.tuned["momentum"].conditions == ()


def test_a_tuned_parameter_that_would_never_be_active_is_an_error() -> None:
    message = error_of(tune=["momentum"])
    assert message == ("config.yaml: tune.momentum: 'momentum' is active only when optimizer is one of [sgd, "
                       "rmsprop], but optimizer is left at its default adam, so the trainer would ignore it; "
                       "tune optimizer too, fix it to one of [sgd, rmsprop], or drop momentum")
    assert "optimizer is fixed to adamw" in error_of(tune=["momentum"], fixed={"optimizer": "adamw"})
    assert "and the tuned optimizer (one of: adam) never is" in error_of(
        tune={"optimizer": {"values": ["adam"]}, "momentum": {}})


# -- fixed ------------------------------------------------------------------------------------------------
def test_fixed_values_are_checked_and_parsed_by_the_space() -> None:
    config = parse(fixed={"epochs": "5", "batch_norm": "true", "optimizer": "sgd", "dropout_rate_0": 0.3})
    assert dict(config.fixed) == {"epochs": 5, "batch_norm": True, "optimizer": "sgd", "dropout_rate_0": 0.3}


@pytest.mark.parametrize(("fixed", "expected"), [
    ({"epochs": 0}, "config.yaml: fixed.epochs: 0 is not allowed: must be an integer in [1, 1000]"),
    ({"optimizer": "nadam"}, "fixed.optimizer: 'nadam' is not allowed: must be one of: adam, sgd"),
    ({"epoch": 5}, "fixed.epoch: 'epoch' is not a parameter of the space; did you mean 'epochs'? (other trainer "
                   "flags go in trial.args)"),
    ({"learning_rate": 0.1}, "fixed.learning_rate: 'learning_rate' is both tuned and fixed"),
])
def test_fixed_errors(fixed: dict[str, Any], expected: str) -> None:
    assert expected in error_of(fixed=fixed)


# -- split ------------------------------------------------------------------------------------------------
def test_split_must_be_a_tuned_choice_or_boolean() -> None:
    assert parse(tune=["optimizer", "learning_rate"], split="optimizer").split == "optimizer"
    assert parse(tune=["batch_norm", "learning_rate"], split="batch_norm").split == "batch_norm"
    assert "split: 'optimizer' is not a tuned parameter" in error_of(split="optimizer")
    assert "split: 'learning_rate' is a float parameter; split needs a Choice or Boolean" in error_of(
        split="learning_rate")
