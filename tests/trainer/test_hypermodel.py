"""Bring-your-own KerasTuner hypermodels: the discovered space, builds with flag values, training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("keras_tuner")

from katib_hp.space import Boolean, Choice, Condition, Float, Int, SearchSpace
from trainer.__main__ import main
from trainer.args import EXIT_MODEL, TrainerError
from trainer.hypermodel import (
    MAX_BUILDS,
    TRAINER_PARAMETERS,
    build_user,
    build_user_model,
    extract,
    extract_space,
)

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))


def _units(model):
    return [layer.units for layer in model.layers if layer.__class__.__name__ == "Dense"]


def test_build_function_space_types_ranges_and_probed_parameters():
    space = extract_space("sample_hypermodels:build_mlp")
    assert space["num_layers"] == Int(name="num_layers", min_value=1, max_value=3, step=1, default_value=1)
    assert space["units_0"] == Int(name="units_0", min_value=16, max_value=64, step=16, default_value=32)
    # units_1 and units_2 only exist for num_layers >= 2 and 3: found by building with num_layers=3.
    assert space["units_2"] == Int(name="units_2", min_value=16, max_value=64, step=16, default_value=32)
    assert space["activation"] == Choice(name="activation", values=("relu", "tanh"), default_value="relu")
    assert space["dropout"] == Boolean(name="dropout", default_value=False)
    # Only registered when dropout=True.
    assert space["dropout_rate"] == Float(name="dropout_rate", min_value=0.1, max_value=0.5, step=0.1,
                                          default_value=0.1)
    lr = space["learning_rate"]
    assert isinstance(lr, Float) and lr.sampling.value == "log" and lr.default == 0.01
    assert (lr.min_value, lr.max_value) == (1e-4, 1e-1)
    user = ["num_layers", "units_0", "activation", "units_1", "units_2", "dropout", "dropout_rate",
            "learning_rate"]
    assert sorted(space.names) == sorted(user + list(TRAINER_PARAMETERS))
    # The trainer's own settings join the space with the built-in ranges (epochs: the Hyperband resource).
    assert space["epochs"].default == 10 and space["batch_size"].default == 32


def test_hypermodel_subclass_conditions_loops_and_fit_parameters():
    space = extract_space("sample_hypermodels:ConditionalHyperModel")
    cnn = (Condition("model_type", ("cnn",)),)
    assert space["model_type"] == Choice(name="model_type", values=("mlp", "cnn"))
    assert space["units"].conditions == (Condition("model_type", ("mlp",)),)
    assert space["conv_layers"] == Int(name="conv_layers", min_value=1, max_value=2, conditions=cnn)
    assert space["filters_0"] == Choice(name="filters_0", values=(8, 16), conditions=cnn)
    assert space["filters_1"].conditions == cnn  # only built with conv_layers=2 under model_type=cnn
    # Declared in the fit() override, not in build().
    assert space["batch_size"] == Choice(name="batch_size", values=(16, 32, 64), default_value=32)
    assert space.inactive({**space.defaults()}) == ["conv_layers", "filters_0", "filters_1"]
    assert space.inactive({**space.defaults(), "model_type": "cnn"}) == ["units"]


def test_instances_and_name_scopes():
    by_class = extract_space("sample_hypermodels:ConditionalHyperModel")
    assert extract_space("sample_hypermodels:instance") == by_class
    space = extract_space("sample_hypermodels:ScopedHyperModel")
    assert "block_units" in space  # 'block/units' in KerasTuner
    model = build_user_model("sample_hypermodels:ScopedHyperModel", {"block_units": 32})
    assert _units(model)[0] == 32


def test_builds_are_bounded():
    result = extract("sample_hypermodels:wide_build")
    assert result.builds <= MAX_BUILDS
    assert all(f"choice_{i}" in result.space for i in range(20))


def test_build_uses_the_values_given():
    user = build_user("sample_hypermodels:build_mlp", {"num_layers": 3, "units_0": 16, "units_1": 48,
                                                        "units_2": 64, "activation": "tanh", "epochs": 3})
    assert _units(user.model) == [16, 48, 64, 10]
    assert user.model.layers[1].activation.__name__ == "tanh"
    # What the build actually asked for; trainer settings never reach the user's HyperParameters.
    assert user.used_values()["units_1"] == 48 and "epochs" not in user.hp.values
    assert not user.custom_fit


@pytest.mark.parametrize(("spec", "words"), [
    ("no_colon_here", "expected package.module:Name"),
    ("no_such_module_xyz:Thing", "cannot import no_such_module_xyz"),
    ("sample_hypermodels:Missing", "has no attribute Missing"),
    ("sample_hypermodels:NOT_A_HYPERMODEL", "neither a keras_tuner.HyperModel"),
    ("sample_hypermodels:NeedsArguments", "cannot create NeedsArguments() with no arguments"),
    ("sample_hypermodels:broken_build", "build(hp) failed: RuntimeError: this hypermodel is broken"),
])
def test_bad_hypermodels_are_one_clear_model_error(spec, words):
    with pytest.raises(TrainerError) as info:
        extract_space(spec)
    assert info.value.exit_code == EXIT_MODEL
    message = str(info.value)
    assert message.startswith(f"--hypermodel={spec}: ") and words in message
    assert "\n" not in message


def test_uncompiled_model_is_a_model_error():
    with pytest.raises(TrainerError, match="compiled model"):
        build_user_model("sample_hypermodels:uncompiled_build", {"units": 8})


def test_cli_reports_bad_hypermodel_without_traceback(capsys):
    assert main(["--hypermodel=sample_hypermodels:broken_build", "--epochs=1"]) == EXIT_MODEL
    err = capsys.readouterr().err.strip().splitlines()
    prefix = "trainer: error: --hypermodel=sample_hypermodels:broken_build: build(hp) failed:"
    assert err[-1].startswith(prefix)
    assert not any("Traceback" in line for line in err)


def test_print_space_of_a_hypermodel(capsys):
    assert main(["--hypermodel=sample_hypermodels:ConditionalHyperModel", "--print-space"]) == 0
    printed = SearchSpace.loads(capsys.readouterr().out)
    assert printed == extract_space("sample_hypermodels:ConditionalHyperModel")
    assert main(["--hypermodel=sample_hypermodels:build_mlp", "--print-space", "--space-format=json"]) == 0
    out = capsys.readouterr().out
    json.loads(out)
    assert SearchSpace.loads(out) == extract_space("sample_hypermodels:build_mlp")


def test_hypermodel_flags_are_checked_against_the_extracted_space(capsys):
    assert main(["--hypermodel=sample_hypermodels:ConditionalHyperModel", "--filters_0=12"]) == 2
    assert "--filters_0=12: must be one of: 8, 16" in capsys.readouterr().err


def test_train_with_a_fit_override_uses_the_flag_values(tmp_path, capsys):
    summary_path = tmp_path / "summary.json"
    code = main(["--hypermodel=sample_hypermodels:ConditionalHyperModel", "--model_type=cnn",
                 "--conv_layers=2", "--filters_1=16", "--batch_size=64", "--epochs=3", "--units=64",
                 f"--summary-file={summary_path}"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(summary_path.read_text())
    assert summary["hypermodel_values"] == {"model_type": "cnn", "conv_layers": 2, "filters_0": 8,
                                            "filters_1": 16, "lr": 0.005, "batch_size": 64}
    assert summary["inactive_explicit"] == ["units"]
    assert "trainer: inactive (ignored): units" in captured.err
    lines = [line for line in captured.out.splitlines() if "epoch=" in line]
    assert len(lines) == 3
    assert summary["metrics"]["val_accuracy"] > 0.8


def test_train_a_build_function_keeps_its_metric_names(tmp_path, capsys):
    summary_path = tmp_path / "summary.json"
    code = main(["--hypermodel=sample_hypermodels:build_mlp", "--num_layers=2", "--units_1=64", "--epochs=2",
                 f"--summary-file={summary_path}"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(summary_path.read_text())
    assert summary["hypermodel_values"]["units_1"] == 64
    assert set(summary["metrics"]) == {"loss", "sparse_categorical_accuracy", "val_loss",
                                       "val_sparse_categorical_accuracy", "lr"}
    assert "val_sparse_categorical_accuracy=" in out.splitlines()[-1]


def test_hypermodel_run_resumes_from_its_checkpoint(tmp_path, capsys):
    args = ["--hypermodel=sample_hypermodels:ConditionalHyperModel", "--units=64",
            f"--checkpoint-dir={tmp_path / 'ckpt'}", f"--summary-file={tmp_path / 's.json'}"]
    assert main([*args, "--epochs=1"]) == 0
    capsys.readouterr()
    # Raising --epochs continues the same run: the fit override gets initial_epoch from the trainer.
    assert main([*args, "--epochs=2"]) == 0
    captured = capsys.readouterr()
    assert "resuming from" in captured.err
    assert [line.split(" ")[1] for line in captured.out.splitlines()] == ["epoch=1", "epoch=2"]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["initial_epoch"], summary["epochs_run"], summary["last_epoch"]) == (1, 1, 2)
