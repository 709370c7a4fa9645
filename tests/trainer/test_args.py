"""trainer.args: every hyperparameter is a flag with the space's range; Katib strings parse; bad input stops."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from katib_hp.space import Boolean, Choice, Float, Int, format_value
from trainer.args import UsageError, build_parser, parse_args
from trainer.hyperparameters import builtin_space

SPACE = builtin_space()


def _option(name: str) -> object:
    parser = build_parser(SPACE)
    return next(a for a in parser._actions if f"--{name}" in a.option_strings)


@pytest.mark.parametrize("param", list(SPACE), ids=lambda p: p.name)
def test_every_parameter_has_a_flag_with_the_same_range(param: Int) -> None:
    action = _option(param.name)
    assert param.describe() in action.help  # type: ignore[attr-defined]
    if "_" in param.name:
        assert f"--{param.name.replace('_', '-')}" in action.option_strings  # type: ignore[attr-defined]
    # Both ends of the range (or every choice) are accepted; just outside is refused.
    if isinstance(param, (Int, Float)):
        for edge in (param.min_value, param.max_value):
            config, _ = parse_args([f"--{param.name}={format_value(edge)}", "--epochs=1000"]
                                   if param.name != "epochs" else [f"--epochs={edge}"])
            assert config.hparams[param.name] == edge
        below = param.min_value - (1 if isinstance(param, Int) else abs(param.min_value) * 0.5 + 1e-3)
        with pytest.raises(UsageError, match=f"--{param.name}="):
            parse_args([f"--{param.name}={format_value(below)}"])
    elif isinstance(param, (Choice, Boolean)):
        for value in param.grid():
            config, _ = parse_args([f"--{param.name}={format_value(value)}"])
            assert config.hparams[param.name] == value


def test_defaults_come_from_the_space() -> None:
    config, _ = parse_args([])
    assert config.hparams == SPACE.defaults()
    assert config.epochs == SPACE["epochs"].default


@pytest.mark.parametrize(
    ("argv", "name", "value"),
    [
        (["--learning_rate=1e-05"], "learning_rate", 1e-05),
        (["--learning-rate", "0.0001"], "learning_rate", 0.0001),
        (["--dense_units_0=64"], "dense_units_0", 64),
        (["--batch_norm=True"], "batch_norm", True),
        (["--batch_norm=0"], "batch_norm", False),
        (["--batch_norm"], "batch_norm", True),
        (["--nesterov=false"], "nesterov", False),
        (["--conv_kernel_size_0=5"], "conv_kernel_size_0", 5),
    ],
)
def test_katib_style_strings(argv: list[str], name: str, value: object) -> None:
    config, _ = parse_args(argv)
    assert config.hparams[name] == value
    assert type(config.hparams[name]) is type(value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--learning_rate=20"], r"--learning_rate=20: must be a number in \[1e-06, 10.0\]"),
        (["--learning_rate=abc"], "--learning_rate=abc: must be a number"),
        (["--optimizer=nadam"], "--optimizer=nadam: must be one of: adam, sgd"),
        (["--num_dense_layers=2.5"], r"--num_dense_layers=2.5: must be an integer in \[0, 4\]"),
        (["--batch_norm=yes"], "--batch_norm=yes: must be true or false"),
        (["--epochs=3", "--resume-from=/tmp/x", "--initial-epoch=3"], "--initial-epoch=3: must be < --epochs=3"),
        (["--initial-epoch=1"], "--initial-epoch needs --resume-from"),
        (["--dataset=folder"], "--dataset=folder needs --data-dir"),
        (["--validation-split=1.5"], "--validation-split=1.5: must be in"),
        (["--no-such-flag=1"], "unrecognized arguments: --no-such-flag=1"),
    ],
)
def test_bad_values_name_flag_value_and_allowed(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_args(argv)


def test_inactive_parameters_are_accepted_and_reported() -> None:
    config, _ = parse_args(["--optimizer=sgd", "--beta_1=0.8", "--momentum=0.9", "--num_dense_layers=1",
                            "--dense_units_3=64"])
    assert config.hparams["beta_1"] == 0.8
    assert config.inactive() == ["dense_units_3", "beta_1"]
    assert "beta_1" not in config.active_hparams()
    assert config.active_hparams()["momentum"] == 0.9


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_in_range_value_as_katib_text_is_accepted(data: st.DataObject) -> None:
    param = data.draw(st.sampled_from([p for p in SPACE if p.name != "epochs"]))
    if isinstance(param, Float):
        value: object = data.draw(st.floats(param.min_value, param.max_value))
    elif isinstance(param, Int):
        value = data.draw(st.integers(param.min_value, param.max_value))
    else:
        value = data.draw(st.sampled_from(param.grid()))
    config, _ = parse_args([f"--{param.name}={format_value(value)}"])  # type: ignore[arg-type]
    assert config.hparams[param.name] == value


def test_bad_flag_exits_2_with_one_line_and_no_tensorflow() -> None:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "trainer", "--learning_rate=20"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["trainer: error: --learning_rate=20: must be a number in [1e-06, 10.0] (log sampling)"]
    assert proc.stdout == ""
    assert time.monotonic() - start < 2.0, "a bad flag must fail before TensorFlow is imported"
