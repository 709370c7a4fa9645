"""ZygoteLauncher: built-in trainer trials forked from a warm worker, everything else through the fallback."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from katib_hp.local.launch import SubprocessLauncher, TrialProcess
from katib_hp.local.zygote import LOST_EXIT_CODE, ZygoteLauncher, startup_environment, trainer_flags

ROOT = Path(__file__).resolve().parents[3]
TRAINER_PYTHON = ROOT / ".venv-trainer" / "bin" / "python"
PY = "/envs/trainer/bin/python"


@pytest.mark.parametrize(("argv", "flags"), [
    ([PY, "-u", "-m", "trainer", "--lr=0.1"], ["--lr=0.1"]),
    ([PY, "-m", "trainer"], []),
    (["/envs/trainer/bin/katib-hp-trainer", "--units=3"], ["--units=3"]),
    (["/envs/trainer/bin/../bin/python", "-m", "trainer", "--x=1"], ["--x=1"]),
    ([PY, "-u", "-m", "trainer.zygote"], None),
    ([PY, "-O", "-m", "trainer"], None),
    ([PY, "train.py"], None),
    (["/usr/bin/python3", "-m", "trainer"], None),  # another environment
    (["/other/bin/katib-hp-trainer"], None),
    (["sh", "-c", "python -m trainer"], None),
    ([], None),
], ids=["u", "plain", "script", "same-file", "other-module", "other-option", "script-file", "other-python",
        "other-script", "shell", "empty"])
def test_only_the_trainer_of_the_same_environment_is_forked(argv, flags):
    assert trainer_flags(argv, PY) == flags


def test_startup_environment_keeps_what_takes_effect_at_interpreter_start():
    env = {"PYTHONPATH": "/src", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": "/home/u", "KATIB_TRIAL_NAME": "t1",
           "PATH": "/bin", "OMP_NUM_THREADS": "2"}
    assert startup_environment(env) == {"PYTHONPATH": "/src", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": "/home/u",
                                        "OMP_NUM_THREADS": "2"}


class Recorder:
    """A fallback that records what it was asked to start (and, with ``real``, starts it as a subprocess)."""

    def __init__(self, real: bool = True) -> None:
        self.argvs: list[list[str]] = []
        self.closed = False
        self._real = SubprocessLauncher() if real else None

    def start(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path) -> TrialProcess:
        self.argvs.append(list(argv))
        if self._real is None:
            return SubprocessLauncher().start(["true"], env=env, cwd=cwd, log_path=log_path)
        return self._real.start(argv, env=env, cwd=cwd, log_path=log_path)

    def close(self) -> None:
        self.closed = True


def wait(trial: TrialProcess, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while (code := trial.poll()) is None:
        assert time.monotonic() < deadline, "trial did not finish"
        time.sleep(0.02)
    return code


def script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_other_commands_go_to_the_fallback_without_starting_a_worker(tmp_path):
    fallback, warnings = Recorder(), []
    launcher = ZygoteLauncher(str(tmp_path / "python"), fallback=fallback, warn=warnings.append)
    trial = launcher.start(["sh", "-c", "echo hello"], env={"PATH": os.environ["PATH"]}, cwd=tmp_path,
                           log_path=tmp_path / "t.log")
    assert wait(trial) == 0
    assert (tmp_path / "t.log").read_text() == "hello\n"
    assert fallback.argvs == [["sh", "-c", "echo hello"]]
    assert launcher.worker_pid is None and warnings == []
    launcher.close()
    assert fallback.closed


@pytest.mark.parametrize(("body", "reason"), [
    (None, "cannot run"),
    ("#!/bin/sh\necho 'ModuleNotFoundError: No module named tensorflow' >&2\nexit 1\n", "No module named tensorflow"),
    ("#!/bin/sh\nexec sleep 30\n", "no answer within 0.5 s"),
], ids=["missing", "crashes", "hangs"])
def test_worker_that_cannot_start_falls_back_with_one_warning(tmp_path, body, reason):
    python = str(tmp_path / "python") if body is None else script(tmp_path / "python", body)
    fallback, warnings = Recorder(real=False), []
    launcher = ZygoteLauncher(python, fallback=fallback, startup_timeout=0.5, warn=warnings.append)
    argv = [python, "-u", "-m", "trainer", "--epochs=1"]
    for name in ("a", "b"):
        launcher.start(argv, env={}, cwd=tmp_path, log_path=tmp_path / f"{name}.log")
    assert fallback.argvs == [argv, argv]
    assert len(warnings) == 1 and reason in warnings[0] and "own process" in warnings[0]
    assert launcher.worker_pid is None
    launcher.close()


# -- a stand-in worker: the real serving loop, run by the client interpreter, with a TensorFlow-free entry --

WORKER = """\
import os, signal, sys, time
sys.path.insert(0, {root!r})
from trainer.zygote import Zygote

def entry(argv):
    print("trial", os.environ.get("KATIB_TRIAL_NAME"), os.getcwd(), flush=True)
    if argv and argv[0].startswith("--sleep="):
        time.sleep(float(argv[0].split("=")[1]))
    return int(argv[-1]) if argv and argv[-1].isdigit() else 0

sys.exit(Zygote(entry=entry).serve())
"""


@pytest.fixture
def fake_python(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER.format(root=str(ROOT)))
    return script(tmp_path / "python", f"#!/bin/sh\nexec {sys.executable} {worker}\n")


def test_trials_are_forked_from_the_worker_with_their_env_cwd_and_exit_codes(tmp_path, fake_python):
    fallback, warnings = Recorder(), []
    launcher = ZygoteLauncher(fake_python, fallback=fallback, warn=warnings.append)
    env = {"PATH": os.environ["PATH"]}
    trials = {}
    for name, code in (("t1", "0"), ("t2", "3")):
        cwd = tmp_path / name
        cwd.mkdir()
        trials[name] = launcher.start([fake_python, "-u", "-m", "trainer", code],
                                      env={**env, "KATIB_TRIAL_NAME": name}, cwd=cwd, log_path=tmp_path / f"{name}.log")
    worker = launcher.worker_pid
    assert worker is not None and worker not in {t.pid for t in trials.values()}
    assert {name: wait(t) for name, t in trials.items()} == {"t1": 0, "t2": 3}
    for name in trials:
        assert (tmp_path / f"{name}.log").read_text() == f"trial {name} {tmp_path / name}\n"
    assert fallback.argvs == [] and warnings == []

    long = launcher.start([fake_python, "-m", "trainer", "--sleep=30"], env=env, cwd=tmp_path,
                          log_path=tmp_path / "long.log")
    assert long.poll() is None
    long.terminate()
    assert wait(long) == -signal.SIGTERM
    launcher.close()
    assert launcher.worker_pid is None and fallback.closed

    # A launcher used again after close() starts a new worker.
    again = launcher.start([fake_python, "-m", "trainer", "4"], env=env, cwd=tmp_path, log_path=tmp_path / "again.log")
    assert wait(again) == 4
    assert launcher.worker_pid not in (None, worker)
    launcher.close()
    assert fallback.argvs == [] and warnings == []


def test_a_trial_environment_that_differs_at_start_up_is_not_forked(tmp_path, fake_python):
    fallback, warnings = Recorder(), []
    launcher = ZygoteLauncher(fake_python, fallback=fallback, warn=warnings.append)
    argv = [fake_python, "-m", "trainer"]
    assert wait(launcher.start(argv, env={"PYTHONHASHSEED": "0"}, cwd=tmp_path, log_path=tmp_path / "a.log")) == 0
    for name in ("b", "c"):
        launcher.start(argv, env={"PYTHONHASHSEED": "1"}, cwd=tmp_path, log_path=tmp_path / f"{name}.log")
    assert fallback.argvs == [argv, argv]
    assert len(warnings) == 1 and "start-up environment" in warnings[0]
    launcher.close()


def test_worker_death_loses_no_trial_and_later_trials_fall_back(tmp_path, fake_python):
    fallback, warnings = Recorder(), []
    launcher = ZygoteLauncher(fake_python, fallback=fallback, warn=warnings.append)
    env = {"PATH": os.environ["PATH"]}
    trial = launcher.start([fake_python, "-m", "trainer", "--sleep=0.5"], env=env, cwd=tmp_path,
                           log_path=tmp_path / "t.log")
    worker = launcher.worker_pid
    assert worker is not None
    os.kill(worker, signal.SIGKILL)
    assert trial.poll() is None  # still running, now without its worker
    assert wait(trial) == LOST_EXIT_CODE
    assert "exit code is unknown" in (tmp_path / "t.log").read_text()

    argv = [fake_python, "-m", "trainer"]
    launcher.start(argv, env=env, cwd=tmp_path, log_path=tmp_path / "u.log")
    assert fallback.argvs == [argv]
    assert len(warnings) == 1 and "exited" in warnings[0]
    launcher.close()


# -- the real trainer environment ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not TRAINER_PYTHON.exists(), reason=f"no trainer environment at {TRAINER_PYTHON}")
def test_real_worker_trains_trials_and_stops_one_with_sigterm(tmp_path):
    fallback, warnings = Recorder(), []
    python = str(TRAINER_PYTHON)
    launcher = ZygoteLauncher(python, fallback=fallback, warn=warnings.append)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    mlp = ["--num_conv_layers=0", "--dense_units_0=32"]
    try:
        trials = [launcher.start([python, "-u", "-m", "trainer", *mlp, f"--epochs={n}"], env=env, cwd=tmp_path,
                                 log_path=tmp_path / f"{n}.log") for n in (1, 2)]
        assert [wait(t, timeout=120) for t in trials] == [0, 0]
        for n in (1, 2):
            epochs = [line for line in (tmp_path / f"{n}.log").read_text().splitlines() if " epoch=" in line]
            assert len(epochs) == n and all("val_accuracy=" in line for line in epochs)

        long = launcher.start([python, "-m", "trainer", *mlp, "--epochs=300"], env=env, cwd=tmp_path,
                              log_path=tmp_path / "long.log")
        deadline = time.monotonic() + 60
        while " epoch=" not in (tmp_path / "long.log").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        long.terminate()
        assert wait(long) == 143
        assert fallback.argvs == [] and warnings == []
    finally:
        launcher.close()
    assert launcher.worker_pid is None
