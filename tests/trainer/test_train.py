"""The trainer end to end, as Katib runs it: flags in; metric lines, files, checkpoints and exit codes out."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from katib_hp.space import SearchSpace
from trainer.__main__ import main
from trainer.hyperparameters import builtin_space
from trainer.metrics import KATIB_METRIC_REGEX, is_rfc3339, parse_json_line, parse_katib_line

ROOT = Path(__file__).resolve().parents[2]
DECLARED = ["loss", "accuracy", "val_loss", "val_accuracy", "lr"]
# A small, fast model for the digits dataset (8x8 images, 10 classes).
MLP = ["--num_conv_layers=0", "--dense_units_0=64"]
# A combination that reliably diverges to NaN within the first epoch (checked: loss is nan at batch 4).
DIVERGES = ["--num_conv_layers=0", "--num_dense_layers=3", "--activation=selu", "--optimizer=sgd",
            "--learning_rate=10", "--momentum=0.99"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def trainer(*args: str, timeout: float = 120, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trainer", *args], capture_output=True, text=True,
                          timeout=timeout, env=_env(), cwd=cwd)


def metric_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if " epoch=" in line]


def epochs_of(stdout: str) -> list[int]:
    return [int(re.search(r" epoch=(\d+)", line).group(1)) for line in metric_lines(stdout)]


def katib_values(line: str) -> dict[str, float]:
    """What Katib's StdOut collector reads from a line for the declared metrics (checked strictly)."""
    parsed = parse_katib_line(line, DECLARED)
    assert parsed is not None, line
    names = [name for name, _ in parsed.metrics]
    assert names == DECLARED, line  # each declared name exactly once, nothing else captured as them
    assert parsed.timestamp is not None and is_rfc3339(parsed.timestamp)
    for token in line.split(" ")[1:]:
        assert re.fullmatch(KATIB_METRIC_REGEX, token, re.ASCII), token
    return {name: float(text) for name, text in parsed.metrics}


def summary_of(path: Path) -> dict:
    return json.loads(path.read_text())


# -- flags: fast, one line, no TensorFlow ------------------------------------------------------------------

@pytest.mark.parametrize(("args", "words"), [
    (["--learning_rate=abc"], "--learning_rate=abc: must be a number in [1e-06, 10.0]"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--optimizer=nadam"], "--optimizer=nadam: must be one of"),
    (["--dataset=folder"], "--dataset=folder needs --data-dir"),
    (["--epochs=3", "--initial-epoch=1"], "--initial-epoch needs --resume-from"),
])
def test_bad_flag_is_one_line_exit_2_and_fast(args, words):
    started = time.monotonic()
    result = trainer(*args, timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trainer: error: ") and words in lines[0], result.stderr
    assert result.stdout == ""
    assert elapsed < 2.0, f"a bad flag took {elapsed:.2f}s (TensorFlow imported?)"


def test_help():
    result = trainer("--help", timeout=30)
    assert result.returncode == 0
    assert "--learning_rate" in result.stdout and "--checkpoint-dir" in result.stdout


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_print_space_is_the_builtin_space(fmt):
    started = time.monotonic()
    result = trainer("--print-space", f"--space-format={fmt}", timeout=30)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 2.0
    assert SearchSpace.loads(result.stdout) == builtin_space()
    if fmt == "json":
        json.loads(result.stdout)


# -- a full run, as a Katib trial ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    args = [*MLP, "--epochs=4", "--momentum=0.5", f"--metrics-file={out / 'metrics.json'}",
            "--metrics-format=json", f"--tensorboard-dir={out / 'tb'}",
            f"--summary-file={out / 'summary.json'}", f"--save-model={out / 'model.keras'}",
            f"--checkpoint-dir={out / 'ckpt'}"]
    result = trainer(*args)
    assert result.returncode == 0, result.stderr
    return out, result


def test_every_stdout_line_is_a_katib_metric_line(digits_run):
    _, result = digits_run
    lines = result.stdout.splitlines()
    assert lines == metric_lines(result.stdout)  # nothing else on stdout
    assert epochs_of(result.stdout) == [1, 2, 3, 4]
    values = [katib_values(line) for line in lines]
    assert values[-1]["val_accuracy"] > 0.8  # chance is 0.1
    assert values[-1]["val_loss"] < values[0]["val_loss"]
    assert all(v["lr"] == 0.001 for v in values)


def test_metrics_file_json_matches_stdout(digits_run):
    out, result = digits_run
    file_lines = (out / "metrics.json").read_text().splitlines()
    assert len(file_lines) == 4
    for line, stdout_line in zip(file_lines, result.stdout.splitlines(), strict=True):
        record = json.loads(line)
        assert all(isinstance(value, str) for value in record.values())
        assert record["timestamp"] == stdout_line.split(" ")[0]
        assert parse_json_line(line, DECLARED) == katib_values(stdout_line)


def test_tensorboard_events(digits_run):
    tf = pytest.importorskip("tensorflow")
    out, _ = digits_run
    tags: dict[str, dict[str, list[int]]] = {}
    for split in ("train", "validation"):
        for path in (out / "tb" / split).glob("events.out.tfevents.*"):
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                for value in event.summary.value:
                    assert value.metadata.plugin_data.plugin_name == "scalars"
                    tags.setdefault(split, {}).setdefault(value.tag, []).append(event.step)
    assert tags["train"] == {"loss": [1, 2, 3, 4], "accuracy": [1, 2, 3, 4], "lr": [1, 2, 3, 4]}
    assert tags["validation"] == {"val_loss": [1, 2, 3, 4], "val_accuracy": [1, 2, 3, 4]}


def test_summary_file(digits_run):
    out, result = digits_run
    summary = summary_of(out / "summary.json")
    last = katib_values(result.stdout.splitlines()[-1])
    assert summary["status"] == "completed" and summary["exit_code"] == 0
    assert summary["metrics"] == last
    every = [katib_values(line) for line in result.stdout.splitlines()]
    assert summary["best_metrics"]["val_accuracy"] == max(v["val_accuracy"] for v in every)
    assert summary["best_metrics"]["val_loss"] == min(v["val_loss"] for v in every)
    assert "lr" not in summary["best_metrics"]
    assert summary["hyperparameters"]["dense_units_0"] == 64 and "momentum" not in summary["hyperparameters"]
    assert summary["all_hyperparameters"]["momentum"] == 0.5
    assert summary["inactive_explicit"] == ["momentum"] and "conv_filters_0" in summary["inactive"]
    assert (summary["epochs"], summary["initial_epoch"], summary["epochs_run"]) == (4, 0, 4)
    assert summary["stopped_early"] is False and summary["stop_reason"] is None
    assert summary["dataset"] == {"name": "digits", "train_size": 1438, "val_size": 359,
                                  "input_shape": [8, 8, 1], "num_classes": 10}
    assert 0 < summary["time_to_first_step_s"] < 60 and summary["duration_s"] > 0
    assert summary["tensorflow_version"] and summary["device"]
    assert "trainer: inactive (ignored): momentum" in result.stderr
    assert "dense_units_0=64" in result.stderr


def test_checkpoint_layout(digits_run):
    out, _ = digits_run
    state = json.loads((out / "ckpt" / "state.json").read_text())
    assert (state["epoch"], state["finished"], state["partial"]) == (4, True, False)
    assert sorted(p.name for p in (out / "ckpt").iterdir()) == ["model-0004.keras", "state.json"]
    assert [m["epoch"] for m in state["metrics"]] == [1, 2, 3, 4]


def test_saved_model_loads_and_predicts(digits_run):
    keras = pytest.importorskip("keras")
    from trainer.args import parse_args
    from trainer.data import load_arrays

    out, result = digits_run
    model = keras.models.load_model(out / "model.keras")
    config, _ = parse_args([])
    _, _, x_val, y_val, _ = load_arrays(config)
    accuracy = float((model.predict(x_val, verbose=0).argmax(axis=1) == y_val).mean())
    assert accuracy == pytest.approx(katib_values(result.stdout.splitlines()[-1])["val_accuracy"], abs=1e-3)


def test_shapes_dataset_learns(tmp_path, capsys):
    summary = tmp_path / "s.json"
    code = main(["--dataset=shapes", "--shapes-samples=600", "--shapes-size=16", "--epochs=5",
                 f"--summary-file={summary}"])
    assert code == 0, capsys.readouterr().err
    assert summary_of(summary)["metrics"]["val_accuracy"] > 0.5  # chance is 0.25


# -- failures ----------------------------------------------------------------------------------------------

def test_nan_loss_exits_4_and_prints_no_nan(tmp_path):
    summary = tmp_path / "s.json"
    result = trainer(*DIVERGES, "--epochs=3", f"--summary-file={summary}", f"--metrics-file={tmp_path / 'm'}")
    assert result.returncode == 4, result.stderr
    assert not re.search(r"nan|inf", result.stdout, re.IGNORECASE)
    assert not re.search(r"nan|inf", (tmp_path / "m").read_text() if (tmp_path / "m").exists() else "",
                         re.IGNORECASE)
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r"trainer: error: loss is (nan|inf) at epoch 1, batch \d+; training stopped", last), last
    assert "Traceback" not in result.stderr
    assert summary_of(summary)["status"] == "non_finite" and summary_of(summary)["exit_code"] == 4


def test_missing_data_dir_exits_3(tmp_path, capsys):
    code = main(["--dataset=folder", f"--data-dir={tmp_path / 'nowhere'}", "--epochs=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert err[-1].startswith(f"trainer: error: --data-dir={tmp_path / 'nowhere'}: no such directory")
    assert "Traceback" not in "\n".join(err)


def test_save_model_needs_keras_suffix(tmp_path, capsys):
    assert main([*MLP, "--epochs=1", f"--save-model={tmp_path / 'model.h5'}"]) == 2
    assert "must end in .keras" in capsys.readouterr().err


# -- early stopping and plateau -----------------------------------------------------------------------------

def test_early_stopping_and_plateau(tmp_path, capsys):
    summary = tmp_path / "s.json"
    # At a learning rate of 1e-6 the validation accuracy does not move: patience runs out.
    code = main([*MLP, "--learning_rate=1e-6", "--monitor=val_accuracy", "--early_stopping_patience=2",
                 "--lr_schedule=plateau", "--plateau_patience=1", "--plateau_factor=0.5", "--epochs=8",
                 f"--summary-file={summary}"])
    out = capsys.readouterr().out
    assert code == 0
    result = summary_of(summary)
    assert result["stopped_early"] is True and result["status"] == "stopped_early"
    assert result["stop_reason"].startswith("early stopping: no improvement of val_accuracy for 2 epochs")
    assert result["epochs_run"] == len(metric_lines(out)) < 8
    rates = [katib_values(line)["lr"] for line in metric_lines(out)]
    assert rates[0] == 1e-6 and rates[-1] < rates[0]  # ReduceLROnPlateau halved it


# -- checkpoints, resume, SIGTERM ---------------------------------------------------------------------------

def test_resume_from_and_initial_epoch_continue_training(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert main([*MLP, "--epochs=2", f"--checkpoint-dir={first}"]) == 0
    before = [katib_values(line) for line in metric_lines(capsys.readouterr().out)]
    summary = tmp_path / "s.json"
    code = main([*MLP, "--epochs=4", f"--resume-from={first}", "--initial-epoch=2",
                 f"--checkpoint-dir={second}", f"--summary-file={summary}"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert epochs_of(captured.out) == [3, 4]  # only the new epochs are this trial's metrics
    after = [katib_values(line) for line in metric_lines(captured.out)]
    assert after[0]["val_loss"] < before[0]["val_loss"]  # continued from trained weights, not from scratch
    result = summary_of(summary)
    assert (result["initial_epoch"], result["epochs_run"], result["last_epoch"]) == (2, 2, 4)
    assert result["resumed_from"] == str(first)
    state = json.loads((second / "state.json").read_text())
    assert state["epoch"] == 4 and [m["epoch"] for m in state["metrics"]] == [1, 2, 3, 4]
    assert "continuing" in captured.err


def test_resume_from_an_empty_directory_is_a_usage_error(tmp_path, capsys):
    code = main([*MLP, "--epochs=3", f"--resume-from={tmp_path}", "--initial-epoch=1"])
    assert code == 2
    assert "no checkpoint there" in capsys.readouterr().err


def test_restarted_run_with_a_finished_checkpoint_reprints_its_metrics(tmp_path, capsys):
    args = [*MLP, "--epochs=2", f"--checkpoint-dir={tmp_path / 'ckpt'}"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main([*args, f"--summary-file={tmp_path / 's.json'}"]) == 0
    captured = capsys.readouterr()
    assert captured.out == first  # same lines, same timestamps: the collector sees the whole run
    assert "nothing to train" in captured.err
    assert summary_of(tmp_path / "s.json")["epochs_run"] == 0
    # A checkpoint of other hyperparameters is never silently reused.
    assert main([*MLP, "--epochs=2", "--learning_rate=0.01", f"--checkpoint-dir={tmp_path / 'ckpt'}"]) == 2
    assert "other hyperparameters (learning_rate)" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_same_command_resumes(tmp_path):
    ckpt, summary = tmp_path / "ckpt", tmp_path / "summary.json"
    args = [*MLP, "--epochs=30", "--max-samples=300", "--batch_size=8", f"--checkpoint-dir={ckpt}",
            f"--summary-file={summary}"]
    process = subprocess.Popen([sys.executable, "-m", "trainer", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    try:
        first_line = process.stdout.readline()
        assert " epoch=1 " in first_line, process.stderr.read() if process.poll() is not None else first_line
        process.send_signal(signal.SIGTERM)
        rest, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err
    last = err.strip().splitlines()[-1]
    # At the next batch, or at the end of the epoch when the signal came during its checkpoint.
    assert re.match(r"trainer: terminated by SIGTERM at (the end of |the start of |the validation of )?epoch",
                    last), last
    assert "the same command resumes from it" in last and "Traceback" not in err
    state = json.loads((ckpt / "state.json").read_text())
    saved_epoch = state["epoch"]
    assert 1 <= saved_epoch < 30
    assert (ckpt / state["model"]).is_file()
    assert summary_of(summary)["status"] == "terminated" and summary_of(summary)["exit_code"] == 143
    printed_before = epochs_of(first_line + rest)

    result = trainer(*args)
    assert result.returncode == 0, result.stderr
    assert f"resuming from {ckpt / state['model']} at epoch {saved_epoch}" in result.stderr
    resumed = summary_of(summary)
    assert resumed["initial_epoch"] == saved_epoch > 0
    assert resumed["last_epoch"] == 30 and resumed["epochs_run"] == 30 - saved_epoch
    # The restarted container's stdout carries the whole run: earlier epochs re-printed, then the rest.
    assert epochs_of(result.stdout) == list(range(1, 31))
    assert metric_lines(result.stdout)[:saved_epoch] == metric_lines(first_line + rest)[:saved_epoch]
    assert printed_before[:saved_epoch] == list(range(1, saved_epoch + 1))
    assert resumed["metrics"]["val_accuracy"] > 0.8


class _StopAfter:
    """A stop request that turns on after the training loop has looked at it ``checks`` times."""

    signal_name = "SIGTERM"

    def __init__(self, checks: int) -> None:
        self.left = checks

    @property
    def requested(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_stop_mid_epoch_saves_a_partial_checkpoint_and_resumes(tmp_path, capsys):
    from trainer.args import EXIT_TERMINATED, TrainerError, parse_args
    from trainer.train import run

    ckpt = tmp_path / "ckpt"
    config, _ = parse_args([*MLP, "--epochs=3", "--batch_size=64", f"--checkpoint-dir={ckpt}"])
    # digits: 23 training and 6 validation batches of 64. The loop checks twice at start-up, at each epoch's
    # start and end, and before every batch: 34 checks reach epoch 2's first batch.
    with pytest.raises(TrainerError) as info:
        run(config, stop=_StopAfter(34 + 10))
    assert info.value.exit_code == EXIT_TERMINATED
    assert re.search(r"at epoch 2, batch \d+; saved a checkpoint", str(info.value)), str(info.value)
    state = json.loads((ckpt / "state.json").read_text())
    assert (state["epoch"], state["partial"], state["model"]) == (1, True, "model-0001-partial.keras")
    assert sorted(p.name for p in ckpt.iterdir()) == ["model-0001-partial.keras", "state.json"]
    first = capsys.readouterr()
    assert epochs_of(first.out) == [1]

    config, _ = parse_args([*MLP, "--epochs=3", "--batch_size=64", f"--checkpoint-dir={ckpt}"])
    summary = run(config)
    captured = capsys.readouterr()
    assert "(with part of the next epoch)" in captured.err
    assert epochs_of(captured.out) == [1, 2, 3]
    assert (summary["initial_epoch"], summary["epochs_run"], summary["status"]) == (1, 2, "completed")
    assert json.loads((ckpt / "state.json").read_text())["partial"] is False


def test_flag_parsing_and_print_space_never_import_tensorflow():
    code = ("import sys, contextlib, io\n"
            "from trainer.__main__ import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            "    assert main(['--print-space']) == 0\n"
            "    assert main(['--learning_rate=-1']) == 2\n"
            "    assert main(['--help']) == 0\n"
            "sys.exit(1 if 'tensorflow' in sys.modules else 0)\n")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), timeout=30).returncode == 0
