"""katib_hp.space: KerasTuner semantics, Katib string parsing, exact round trips, clear errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from katib_hp.errors import SpaceError
from katib_hp.space import (
    Boolean,
    Choice,
    Condition,
    Fixed,
    Float,
    Int,
    SearchSpace,
    format_value,
)
from trainer.hyperparameters import builtin_space


def test_builder_returns_defaults_like_kerastuner() -> None:
    hp = SearchSpace()
    assert hp.Int("units", 32, 512, step=32) == 32
    assert hp.Float("lr", 1e-4, 1e-2, sampling="log", default=1e-3) == 1e-3
    assert hp.Choice("act", ["relu", "tanh"]) == "relu"
    assert hp.Boolean("bn") is False
    assert hp.Fixed("epochs", 5) == 5
    assert hp.names == ["units", "lr", "act", "bn", "epochs"]


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        (Int(name="n", min_value=6, max_value=12), (6, 7, 8, 9, 10, 11, 12)),
        (Int(name="n", min_value=6, max_value=13, step=3), (6, 9, 12)),
        (Int(name="bs", min_value=2, max_value=32, step=2, sampling="log"), (2, 4, 8, 16, 32)),
        (Float(name="d", min_value=0.0, max_value=0.7, step=0.1), (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)),
        (Float(name="lr", min_value=1e-4, max_value=1e-1, step=10, sampling="log"), (1e-4, 1e-3, 1e-2, 1e-1)),
        (Boolean(name="b"), (False, True)),
        (Fixed(name="f", value="x"), ("x",)),
    ],
    ids=["int-linear", "int-step", "int-log-step-multiplies", "float-step", "float-log-step", "bool", "fixed"],
)
def test_grid_follows_kerastuner_step_semantics(param: Int, expected: tuple[object, ...]) -> None:
    assert param.grid() == expected


def test_size_counts_without_building_the_grid() -> None:
    seed = Int(name="seed", min_value=0, max_value=2**31 - 1)
    assert seed.size() == 2**31
    assert Float(name="d", min_value=0.0, max_value=0.7, step=0.05).size() == 15


def test_continuous_parameters_have_no_grid() -> None:
    assert Float(name="lr", min_value=1e-5, max_value=1.0, sampling="log").grid() is None
    assert Int(name="n", min_value=1, max_value=1000, sampling="log").grid() is None


@pytest.mark.parametrize(
    ("param", "text", "value"),
    [
        (Float(name="lr", min_value=1e-6, max_value=1.0, sampling="log"), "1e-05", 1e-05),
        (Float(name="lr", min_value=1e-6, max_value=1.0, sampling="log"), "0.0001", 0.0001),
        (Int(name="units", min_value=8, max_value=512), "64", 64),
        (Int(name="units", min_value=8, max_value=512), "64.0", 64),
        (Boolean(name="bn"), "true", True),
        (Boolean(name="bn"), "False", False),
        (Boolean(name="bn"), "1", True),
        (Boolean(name="bn"), "0", False),
        (Choice(name="k", values=(3, 5, 7)), "5", 5),
        (Choice(name="opt", values=("adam", "sgd")), "sgd", "sgd"),
    ],
)
def test_parse_katib_strings(param: Int, text: str, value: object) -> None:
    parsed = param.parse(text)
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize(
    ("param", "text", "message"),
    [
        (Float(name="lr", min_value=1e-6, max_value=1.0, sampling="log"), "2", r"a number in \[1e-06, 1.0\]"),
        (Float(name="lr", min_value=1e-6, max_value=1.0), "nan", "a number in"),
        (Int(name="units", min_value=8, max_value=512), "64.5", "an integer in"),
        (Int(name="units", min_value=8, max_value=512), "abc", "an integer in"),
        (Boolean(name="bn"), "yes", "true or false"),
        (Choice(name="opt", values=("adam", "sgd")), "Adam", "one of: adam, sgd"),
    ],
)
def test_parse_rejects_with_what_is_allowed(param: Int, text: str, message: str) -> None:
    with pytest.raises(SpaceError, match=message) as info:
        param.parse(text)
    assert info.value.path == f"space '{param.name}'"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Float(name="learning_rate", min_value=0.0, max_value=1.0, sampling="log"),
         r"space 'learning_rate': min_value must be > 0 with sampling=log \(got 0.0\)"),
        (lambda: Int(name="n", min_value=5, max_value=1), "min_value must be < max_value"),
        (lambda: Int(name="n", min_value=1, max_value=64, step=1, sampling="log"), "step multiplies"),
        (lambda: Int(name="n", min_value=1.5, max_value=4), "min_value must be an integer"),
        (lambda: Float(name="x", min_value=0, max_value=1, sampling="cubic"), "sampling must be"),
        (lambda: Choice(name="c", values=()), "non-empty"),
        (lambda: Choice(name="c", values=("a", "a")), "must not repeat"),
        (lambda: Choice(name="c", values=("a", 1)), "must all be numbers, all strings"),
        (lambda: Choice(name="c", values=("a", "b"), default_value="z"), "value must be one of"),
        (lambda: Int(name="n", min_value=1, max_value=4, default_value=9), "value must be an integer"),
    ],
)
def test_bad_declarations_name_parameter_and_field(build: object, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        build()  # type: ignore[operator]


def test_conditions_and_activity() -> None:
    hp = SearchSpace()
    hp.Choice("optimizer", ["adam", "sgd"])
    with hp.conditional_scope("optimizer", "sgd"):
        hp.Float("momentum", 0.0, 0.99)
        hp.Boolean("nesterov")
        with hp.conditional_scope("nesterov", [True]):
            hp.Float("extra", 0.0, 1.0)
    assert hp["momentum"].conditions == (Condition("optimizer", ("sgd",)),)
    assert hp.inactive({"optimizer": "adam", "nesterov": True}) == ["momentum", "nesterov", "extra"]
    assert hp.inactive({"optimizer": "sgd", "nesterov": False}) == ["extra"]
    assert hp.inactive({"optimizer": "sgd", "nesterov": True}) == []


def test_kerastuner_parent_keywords() -> None:
    hp = SearchSpace()
    hp.Int("layers", 1, 3)
    hp.Int("units_2", 8, 64, parent_name="layers", parent_values=[3])
    assert hp["units_2"].conditions == (Condition("layers", (3,)),)


def test_condition_errors() -> None:
    hp = SearchSpace()
    with pytest.raises(SpaceError, match="unknown parent 'optimizer'"):
        hp.Float("momentum", 0.0, 1.0, parent_name="optimizer", parent_values=["sgd"])
    hp.Choice("optimizer", ["adam", "sgd"])
    with pytest.raises(SpaceError, match="'nadam' is not a value of parent 'optimizer'"):
        hp.Float("momentum", 0.0, 1.0, parent_name="optimizer", parent_values=["nadam"])
    with pytest.raises(SpaceError, match="declared twice"):
        hp.Choice("optimizer", ["adam"])


def test_builtin_space_round_trips_exactly_through_yaml_and_json() -> None:
    space = builtin_space()
    assert SearchSpace.loads(space.to_yaml()) == space
    assert SearchSpace.loads(space.to_json()) == space
    assert SearchSpace.loads(space.to_yaml()).to_yaml() == space.to_yaml()


def test_load_errors_point_at_file_line_and_key(tmp_path: object) -> None:
    with pytest.raises(SpaceError, match=r"space.yaml:\d+: invalid YAML"):
        SearchSpace.loads("parameters:\n- name: a\n  type: [int\n", "space.yaml")
    with pytest.raises(SpaceError, match=r"unknown key 'max' for type int; did you mean 'max_value'\?"):
        SearchSpace.loads("parameters:\n- {name: a, type: int, min_value: 1, max: 3}\n")
    with pytest.raises(SpaceError, match=r"unknown type 'integer'; did you mean 'int'\?"):
        SearchSpace.loads("parameters:\n- {name: a, type: integer}\n")
    with pytest.raises(SpaceError, match="'max_value' is required for type float"):
        SearchSpace.loads("parameters:\n- {name: a, type: float, min_value: 1}\n")


def test_yaml_reads_exponent_floats_without_a_dot() -> None:
    space = SearchSpace.loads("parameters:\n- {name: lr, type: float, min_value: 1e-5, max_value: 1e-1}\n")
    assert space["lr"].min_value == 1e-5  # type: ignore[attr-defined]


def test_select_keeps_order_and_drops_conditions_on_unselected_parents() -> None:
    space = builtin_space().select(["momentum", "learning_rate", "optimizer"])
    assert space.names == ["optimizer", "learning_rate", "momentum"]
    assert space["momentum"].conditions
    alone = builtin_space().select(["momentum"])
    assert alone["momentum"].conditions == ()
    with pytest.raises(SpaceError, match="did you mean 'learning_rate'"):
        builtin_space().select(["learning_rat"])


@given(st.data())
def test_every_grid_value_formats_and_parses_back(data: st.DataObject) -> None:
    space = builtin_space()
    param = data.draw(st.sampled_from([p for p in space if (p.size() or 10**6) < 10**4]))
    grid = param.grid()
    assert grid is not None
    value = data.draw(st.sampled_from(grid))
    assert param.parse(format_value(value)) == value


@given(st.floats(min_value=1e-6, max_value=10.0))
def test_float_values_in_range_survive_text(value: float) -> None:
    param = builtin_space()["learning_rate"]
    parsed = param.parse(format_value(value))
    assert isinstance(parsed, float)
    assert math.isclose(parsed, value)
