"""Time a local trial costs beyond its training: katib-hp's local paths against KerasTuner in one process.

The same N trials (the built-in model as an MLP on digits, a grid over ``dense_units_0``, E epochs each,
one at a time) run five ways:

(a) KerasTuner ``GridSearch`` in one process, building the model with ``trainer.model.build_model`` and
    training on arrays already in memory (the baseline; it runs in the trainer environment and times itself,
    so its interpreter start and TensorFlow import do not count);
(b) ``SubprocessLauncher``: one cold ``python -u -m trainer`` per trial;
(c) ``ZygoteLauncher``: trials forked from the warm worker (its start-up, once, is counted);
(d) ``LocalRun`` (what ``katib-hp run-local`` does: suggestions, metrics collection, checkpoints, status
    files) over a grid Experiment with the warm worker, and (e) the same with cold processes.

Reported: seconds per trial, seconds added per trial against (a), and the ratio. Target: (d) adds at most
1.5 s per trial. Run: .venv/bin/python bench/local_overhead.py [--trials 6] [--epochs 2] (about 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TRAINER_PYTHON = ROOT / ".venv-trainer" / "bin" / "python"
TARGET_ADDED_S = 1.5
FIXED = {"num_conv_layers": 0, "learning_rate": 0.003}
UNITS_STEP = 32


def units(trials: int) -> list[int]:
    return [UNITS_STEP * (i + 1) for i in range(trials)]


def trainer_flags(unit: int, epochs: int) -> list[str]:
    return ["--dataset=digits", f"--epochs={epochs}", *(f"--{k}={v}" for k, v in FIXED.items()),
            f"--dense_units_0={unit}"]


# -- (a) KerasTuner, in the trainer environment ---------------------------------------------------------------

def tuner_class(base: Any) -> Any:
    """``base``, or where TensorBoard is not installed, ``base`` without its per-trial TensorBoard set-up.

    With the TensorFlow backend a KerasTuner tuner imports ``tensorboard`` in every trial, for a TensorBoard
    callback this bench does not pass; tensorflow-cpu does not bring it.
    """
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        class WithoutTensorBoard(base):  # type: ignore[misc, valid-type]
            def _configure_tensorboard_dir(self, callbacks: Any, trial: Any, execution: int = 0) -> None:
                return None

        return WithoutTensorBoard
    return base


def kerastuner_child(trials: int, epochs: int) -> dict[str, Any]:
    """Runs inside the trainer environment: a KerasTuner grid search over the same trials, timed from inside."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import keras_tuner as kt

    from trainer.args import parse_args
    from trainer.data import load_arrays
    from trainer.model import build_model

    config, _ = parse_args(trainer_flags(UNITS_STEP, epochs))
    x, y, x_val, y_val, classes = load_arrays(config)
    steps = -(-len(x) // config.batch_size)
    fits: list[float] = []

    class FitTime(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_train_end(self, logs: Any = None) -> None:
            fits.append(time.perf_counter() - self.started)

    def build(hp: Any) -> Any:
        hparams = {**config.hparams, "dense_units_0": hp.Int("dense_units_0", UNITS_STEP, UNITS_STEP * trials,
                                                             step=UNITS_STEP)}
        keras.utils.set_random_seed(config.seed)  # as the trainer does before it builds
        return build_model(hparams, tuple(x.shape[1:]), classes, steps_per_epoch=steps, config=config)

    with tempfile.TemporaryDirectory() as tmp:
        tuner = tuner_class(kt.GridSearch)(build, objective="val_accuracy", max_trials=trials, directory=tmp,
                                           project_name="overhead", overwrite=True)
        started = time.perf_counter()
        tuner.search(x, y, epochs=epochs, batch_size=config.batch_size, validation_data=(x_val, y_val),
                     verbose=0, callbacks=[FitTime()])
        total = time.perf_counter() - started
        done = len(tuner.oracle.get_best_trials(num_trials=trials))
    return {"total": total, "trials": done, "fit": fits}


def kerastuner(trials: int, epochs: int) -> dict[str, Any]:
    out = subprocess.run([str(TRAINER_PYTHON), __file__, "--kerastuner-child", f"--trials={trials}",
                          f"--epochs={epochs}"], check=True, capture_output=True, text=True, cwd=ROOT,
                         env=_env())
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- (b), (c) launchers ----------------------------------------------------------------------------------------

def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("VIRTUAL_ENV", None)
    return env


def through_launcher(launcher: Any, trials: int, epochs: int, work: Path) -> list[float]:
    """Run the trials one after another; return each one's wall time (start call to exit seen)."""
    python = str(TRAINER_PYTHON)
    times = []
    for unit in units(trials):
        cwd = work / f"u{unit}"
        cwd.mkdir(parents=True)
        started = time.perf_counter()
        trial = launcher.start([python, "-u", "-m", "trainer", *trainer_flags(unit, epochs)], env=_env(), cwd=cwd,
                               log_path=cwd / "log.txt")
        while (code := trial.poll()) is None:
            time.sleep(0.005)
        times.append(time.perf_counter() - started)
        log = (cwd / "log.txt").read_text()
        if code != 0 or log.count(" epoch=") != epochs:
            raise SystemExit(f"trial dense_units_0={unit} failed (exit {code}):\n{log[-2000:]}")
    return times


# -- (d), (e) LocalRun ---------------------------------------------------------------------------------------------

def experiment(trials: int, epochs: int) -> dict[str, Any]:
    from katib_hp.compile import compile as compile_config
    from katib_hp.config import parse_config
    from katib_hp.manifest import to_manifest

    config = {
        "name": "local-overhead", "objective": {"metric": "val_accuracy", "type": "maximize"},
        "algorithm": {"name": "grid"}, "budget": {"max_trials": trials, "parallel_trials": 1},
        "space": "builtin", "fixed": {"epochs": epochs, **FIXED},
        "tune": {"dense_units_0": {"min_value": UNITS_STEP, "max_value": UNITS_STEP * trials, "step": UNITS_STEP}},
        "trial": {"image": "katib-hp-trainer:0.1.0-cpu", "args": ["--dataset=digits"],
                  "resources": {"cpu": "1", "memory": "1Gi", "gpus": 0}},
    }
    [compiled] = compile_config(parse_config(config, source="bench", base_dir=ROOT))
    return to_manifest(compiled.experiment)


def through_local_run(launcher: Any, trials: int, epochs: int, work: Path) -> float:
    from katib_hp.local.runner import LocalRun
    from katib_hp.results import TrialState

    started = time.perf_counter()
    run = LocalRun(experiment(trials, epochs), work_dir=work, launcher=launcher, python=str(TRAINER_PYTHON),
                   seed=1, base_dir=ROOT, environ=_env())
    status = run.run()
    elapsed = time.perf_counter() - started
    ok = [t for t in status.trials if t.state is TrialState.SUCCEEDED]
    if len(ok) != trials:
        raise SystemExit(f"LocalRun: {len(ok)} of {trials} trials succeeded ({status.reason}: {status.message})")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--kerastuner-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kerastuner_child:
        print(json.dumps(kerastuner_child(args.trials, args.epochs)))
        return 0
    if not TRAINER_PYTHON.exists():
        raise SystemExit(f"needs the trainer environment at {TRAINER_PYTHON} (make setup)")

    from katib_hp.local.launch import SubprocessLauncher
    from katib_hp.local.zygote import ZygoteLauncher

    n, epochs = args.trials, args.epochs
    kt = kerastuner(n, epochs)
    if kt["trials"] != n:
        raise SystemExit(f"KerasTuner ran {kt['trials']} of {n} trials")
    print(f"  (a) KerasTuner done: {kt['total']:.1f} s", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cold = through_launcher(SubprocessLauncher(), n, epochs, work / "cold")
        print(f"  (b) cold processes done: {sum(cold):.1f} s", file=sys.stderr, flush=True)
        zygote = ZygoteLauncher(str(TRAINER_PYTHON))
        try:
            warm = through_launcher(zygote, n, epochs, work / "warm")
        finally:
            zygote.close()
        print(f"  (c) warm worker done: {sum(warm):.1f} s", file=sys.stderr, flush=True)
        zygote = ZygoteLauncher(str(TRAINER_PYTHON))
        try:
            run_warm = through_local_run(zygote, n, epochs, work / "run-warm")
        finally:
            zygote.close()
        print(f"  (d) LocalRun, warm worker done: {run_warm:.1f} s", file=sys.stderr, flush=True)
        run_cold = through_local_run(SubprocessLauncher(), n, epochs, work / "run-cold")
        print(f"  (e) LocalRun, cold processes done: {run_cold:.1f} s", file=sys.stderr, flush=True)

    base = kt["total"] / n
    fit = sum(kt["fit"]) / len(kt["fit"])
    rows = [
        ("(a) KerasTuner GridSearch, in-process (baseline)", kt["total"]),
        ("(b) SubprocessLauncher: python -m trainer per trial", sum(cold)),
        ("(c) ZygoteLauncher (worker start-up included)", sum(warm)),
        ("(d) LocalRun + ZygoteLauncher (katib-hp run-local)", run_warm),
        ("(e) LocalRun + SubprocessLauncher (run-local --cold)", run_cold),
    ]
    print(f"\nLocal trial overhead: {n} trials x {epochs} epochs, digits MLP, one at a time ({os.cpu_count()} CPUs)\n")
    print(f"{'path':54} {'total s':>8} {'s/trial':>8} {'added s/trial':>14} {'ratio':>6}")
    for name, total in rows:
        per = total / n
        print(f"{name:54} {total:8.2f} {per:8.2f} {per - base:14.2f} {per / base:6.2f}")
    print(f"\nKerasTuner's model.fit alone: {fit:.2f} s/trial; its own overhead {base - fit:.2f} s/trial")
    print(f"warm worker, trials after the first: {[round(t, 2) for t in warm[1:]]} s "
          f"(first, with the worker's imports: {warm[0]:.2f} s)")
    print(f"cold processes: {[round(t, 2) for t in cold]} s")
    added = run_warm / n - base
    verdict = "met" if added <= TARGET_ADDED_S else "NOT met"
    print(f"target: run-local (d) adds <= {TARGET_ADDED_S} s per trial vs KerasTuner: {added:.2f} s, {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
