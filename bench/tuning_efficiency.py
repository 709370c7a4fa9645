"""Epochs and wall time until a target validation accuracy: katib-hp's local search against KerasTuner's.

One problem for every method: the built-in model as an MLP on digits, tuning ``learning_rate``
(log-uniform over 1e-5..1e-1: a bad rate leaves accuracy low), ``dense_units_0`` (any integer in 32..256),
``dropout_rate_0`` (0..0.5, step 0.1) and ``optimizer`` (adam, rmsprop, sgd, adagrad: only the first two
get there in 9 epochs), 9 epochs per trial, at most 40 trials; a search stops as soon as one trial reaches
the target, val_accuracy >= 0.983 (Katib's objective ``goal``; KerasTuner is stopped the same way). Few
random configurations reach it (with 0.98 and no optimizer choice, about one in three did: random search
needed a median of 2 trials and no method could beat it by much). Methods:

* ``run-local random / bayesianoptimization / hyperband``: ``katib_hp.local.runner.LocalRun`` with the warm
  trial worker (its one-time start is not counted, like KerasTuner's TensorFlow import), as ``katib-hp
  run-local`` runs them; hyperband with r_l=9, eta=3 on ``epochs`` (all brackets, promoted trials continue
  from their parent's checkpoint, 9 trials in parallel as Katib requires) and ``learning_rate`` as the
  9-value log list Katib's hyperband needs (``step: 3``);
* ``KerasTuner RandomSearch / BayesianOptimization / Hyperband`` (max_epochs=9, factor=3) in one process of
  the trainer environment, on the same model (``trainer.model.build_model``) and data.

Bayesian optimisation starts from 3 random points on both sides. For each seed, "epochs" is the sum of the
epochs trained by every trial finished when the first one reaches the target, and "wall" the seconds from
the start of the search to that moment; a search that never reaches it counts as infinitely costly. Medians over seeds; ratios against
run-local random search. Targets: run-local bayesianoptimization and hyperband need at most half the epochs
of random search, and no more than their KerasTuner counterparts.

Run: .venv/bin/python bench/tuning_efficiency.py [--seeds 5] [--quick] [--json PATH] (5 seeds: ~16 minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TRAINER_PYTHON = ROOT / ".venv-trainer" / "bin" / "python"
TARGET = 0.983
EPOCHS = 9
MAX_TRIALS = 40
ETA = 3
INITIAL_POINTS = 3
HYPERBAND_TRIALS = 23
LR = (1e-5, 1e-1)
UNITS = (32, 256)
DROPOUT = (0.0, 0.5, 0.1)
OPTIMIZERS = ["adam", "rmsprop", "sgd", "adagrad"]
FIXED = {"num_conv_layers": 0}
OURS = ("random", "bayesianoptimization", "hyperband")
KERAS_TUNER = ("RandomSearch", "BayesianOptimization", "Hyperband")


@dataclass
class Search:
    """One search: what each finished trial cost and scored, in the order they finished."""

    method: str
    seed: int
    epochs: list[int]
    scores: list[float | None]
    finished_at: list[float]  # seconds since the search started
    parameters: list[dict[str, str]]

    def to_target(self, target: float) -> tuple[int, float, bool]:
        """Epochs and seconds spent when a trial first reached ``target`` (or in all, and False)."""
        spent = 0
        for epochs, score, at in zip(self.epochs, self.scores, self.finished_at, strict=True):
            spent += epochs
            if score is not None and score >= target:
                return spent, at, True
        return spent, max(self.finished_at, default=0.0), False


# -- KerasTuner (runs inside the trainer environment) -----------------------------------------------------------

def kerastuner_child(methods: list[str], seeds: list[int], target: float, max_trials: int) -> None:
    """Print one JSON line per (method, seed) search."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import keras_tuner as kt

    from bench.local_overhead import tuner_class
    from trainer.args import parse_args
    from trainer.data import load_arrays
    from trainer.model import build_model

    config, _ = parse_args([f"--{k}={v}" for k, v in FIXED.items()] + [f"--epochs={EPOCHS}"])
    x, y, x_val, y_val, classes = load_arrays(config)
    steps = -(-len(x) // config.batch_size)

    def build(hp: Any) -> Any:
        hparams = {**config.hparams,
                   "learning_rate": hp.Float("learning_rate", *LR, sampling="log"),
                   "dense_units_0": hp.Int("dense_units_0", UNITS[0], UNITS[1]),
                   "dropout_rate_0": hp.Float("dropout_rate_0", DROPOUT[0], DROPOUT[1], step=DROPOUT[2]),
                   "optimizer": hp.Choice("optimizer", OPTIMIZERS)}
        keras.utils.set_random_seed(config.seed)  # as the trainer does before it builds
        return build_model(hparams, tuple(x.shape[1:]), classes, steps_per_epoch=steps, config=config)

    for method in methods:
        for seed in seeds:
            record = Search(method=f"KerasTuner {method}", seed=seed, epochs=[], scores=[], finished_at=[],
                            parameters=[])
            options: dict[str, Any] = {"max_trials": max_trials}
            if method == "Hyperband":
                options = {"max_epochs": EPOCHS, "factor": ETA, "hyperband_iterations": 1}
            elif method == "BayesianOptimization":
                options["num_initial_points"] = INITIAL_POINTS
            with tempfile.TemporaryDirectory() as tmp:
                tuner = recording(tuner_class(getattr(kt, method)))(
                    build, objective=kt.Objective("val_accuracy", "max"), seed=seed, directory=tmp,
                    project_name="search", overwrite=True, **options)
                tuner.record, tuner.target, tuner.started = record, target, time.perf_counter()
                with contextlib.suppress(Reached):
                    tuner.search(x, y, epochs=EPOCHS, batch_size=config.batch_size, validation_data=(x_val, y_val),
                                 verbose=0)
            keras.backend.clear_session()
            print(json.dumps(asdict(record)), flush=True)


class Reached(Exception):
    """Ends a KerasTuner search once a trial reached the target (as Katib's goal ends an Experiment)."""


def recording(base: Any) -> Any:
    """A subclass of the tuner class ``base`` that records each finished trial into ``self.record``."""

    class Recording(base):  # type: ignore[misc, valid-type]
        record: Search
        target: float
        started: float

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            values = trial.hyperparameters.values
            # Hyperband continues a promoted trial from its parent's weights: only the new epochs count.
            self.record.epochs.append(int(values.get("tuner/epochs", EPOCHS)) - int(values.get("tuner/initial_epoch", 0)))
            self.record.scores.append(None if trial.score is None else float(trial.score))
            self.record.finished_at.append(time.perf_counter() - self.started)
            self.record.parameters.append({k: str(v) for k, v in values.items() if not k.startswith("tuner/")})
            if trial.score is not None and trial.score >= self.target:
                raise Reached

    return Recording


def kerastuner(methods: list[str], seeds: list[int], target: float, max_trials: int) -> list[Search]:
    argv = [str(TRAINER_PYTHON), __file__, "--kerastuner-child", f"--methods={','.join(methods)}",
            f"--seed-list={','.join(map(str, seeds))}", f"--target={target}", f"--max-trials={max_trials}"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                               env=_env())
    assert process.stdout is not None
    searches = []
    for line in process.stdout:
        search = Search(**json.loads(line))
        searches.append(search)
        _progress(search, target)
    if process.wait() != 0:
        raise SystemExit(f"the KerasTuner searches failed (exit {process.returncode}); run: {' '.join(argv)}")
    return searches


# -- run-local ------------------------------------------------------------------------------------------------------

def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("VIRTUAL_ENV", None)
    return env


def experiment(algorithm: str, target: float | None, max_trials: int) -> dict[str, Any]:
    from katib_hp.compile import compile as compile_config
    from katib_hp.config import parse_config
    from katib_hp.manifest import to_manifest

    learning_rate: dict[str, Any] = {"min_value": LR[0], "max_value": LR[1], "sampling": "log"}
    settings: dict[str, Any] = {}
    budget: dict[str, Any] = {"max_trials": max_trials, "parallel_trials": 1, "max_failed_trials": max_trials}
    fixed: dict[str, Any] = {**FIXED, "epochs": EPOCHS}
    if algorithm == "hyperband":
        learning_rate["step"] = 3  # Katib's hyperband samples doubles uniformly: a log list instead
        settings = {"r_l": EPOCHS, "eta": ETA, "resource_name": "epochs"}
        budget = {"parallel_trials": ETA ** round(math.log(EPOCHS, ETA))}
        del fixed["epochs"]
    elif algorithm == "bayesianoptimization":
        settings = {"n_initial_points": INITIAL_POINTS}
    objective: dict[str, Any] = {"metric": "val_accuracy", "type": "maximize"}
    if target is not None:
        objective["goal"] = target
    config = {
        "name": f"efficiency-{algorithm[:10]}", "objective": objective,
        "algorithm": {"name": algorithm, "settings": settings}, "budget": budget, "space": "builtin",
        "tune": {"learning_rate": learning_rate,
                 "dense_units_0": {"min_value": UNITS[0], "max_value": UNITS[1], "step": 1},
                 "dropout_rate_0": dict(zip(("min_value", "max_value", "step"), DROPOUT, strict=True)),
                 "optimizer": {"values": OPTIMIZERS}},
        "fixed": fixed,
        "trial": {"image": "katib-hp-trainer:0.1.0-cpu", "args": ["--dataset=digits"],
                  "resources": {"cpu": "1", "memory": "1Gi", "gpus": 0}},
    }
    [compiled] = compile_config(parse_config(config, source="tuning_efficiency", base_dir=ROOT))
    manifest = to_manifest(compiled.experiment)
    if algorithm == "hyperband":
        # The compiler keeps a cluster Experiment to the first bracket (all Katib v0.19 completes reliably);
        # run-local runs every bracket (23 trials for r_l=9, eta=3), as KerasTuner's one Hyperband iteration.
        manifest["spec"]["maxTrialCount"] = HYPERBAND_TRIALS
    return manifest


def local_run(algorithm: str, seed: int, target: float | None, max_trials: int, launcher: Any, work: Path) -> Search:
    from katib_hp.local.runner import LocalRun

    run = LocalRun(experiment(algorithm, target, max_trials), work_dir=work, launcher=launcher,
                   python=str(TRAINER_PYTHON), seed=seed, base_dir=ROOT, environ=_env())
    status = run.run()
    assert status.start_time is not None
    done = sorted((t for t in status.trials if t.completion_time is not None), key=lambda t: t.completion_time)
    return Search(method=f"run-local {algorithm}", seed=seed,
                  epochs=[len(t.series.get("val_accuracy", ())) for t in done],
                  scores=[t.objective for t in done],
                  finished_at=[(t.completion_time - status.start_time).total_seconds() for t in done],
                  parameters=[dict(t.parameters) for t in done])


def ours(methods: list[str], seeds: list[int], target: float, max_trials: int) -> list[Search]:
    from katib_hp.local.zygote import ZygoteLauncher

    warnings: list[str] = []
    launcher = ZygoteLauncher(str(TRAINER_PYTHON), warn=warnings.append)
    searches = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Start the warm worker with a trial's own environment before anything is timed.
            local_run("random", 0, None, 1, launcher, Path(tmp) / "warm-up")
            for method in methods:
                for seed in seeds:
                    search = local_run(method, seed, target, max_trials, launcher, Path(tmp) / f"{method}-{seed}")
                    searches.append(search)
                    _progress(search, target)
    finally:
        launcher.close()
    if warnings:
        raise SystemExit(f"the warm trial worker was not used throughout: {warnings[0]}")
    return searches


# -- report ---------------------------------------------------------------------------------------------------------

def _progress(search: Search, target: float) -> None:
    epochs, wall, reached = search.to_target(target)
    print(f"  {search.method:34} seed {search.seed}: {len(search.epochs):2} trials, {epochs:3} epochs, "
          f"{wall:6.1f} s{'' if reached else ', target NOT reached'}", file=sys.stderr, flush=True)


def summarize(searches: list[Search], target: float) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for search in searches:
        epochs, wall, reached = search.to_target(target)
        row = table.setdefault(search.method, {"epochs": [], "wall": [], "reached": 0, "trials": []})
        # A search that never reached the target ranks after every one that did (infinite cost).
        row["epochs"].append(epochs if reached else math.inf)
        row["wall"].append(wall if reached else math.inf)
        row["trials"].append(len(search.epochs))
        row["reached"] += reached
    for row in table.values():
        row["median_epochs"] = statistics.median(row["epochs"])
        row["median_wall"] = statistics.median(row["wall"])
    return table


def _ratio(value: float, base: dict[str, Any] | None, key: str) -> str:
    if base is None or math.isinf(base[key]):
        return "-"
    return f"{value / base[key]:.2f}"


def report(table: dict[str, dict[str, Any]], seeds: int, target: float) -> None:
    base = table.get("run-local random")
    print(f"\nTuning efficiency: epochs and seconds until val_accuracy >= {target} (digits MLP; medians of "
          f"{seeds} seed(s); {os.cpu_count()} CPUs)\n")
    print(f"{'method':34} {'reached':>8} {'epochs':>7} {'vs random':>10} {'wall s':>7} {'vs random':>10}  "
          "epochs per seed")
    for method, row in table.items():
        ratio_e, ratio_w = _ratio(row["median_epochs"], base, "median_epochs"), _ratio(row["median_wall"], base,
                                                                                         "median_wall")
        per_seed = ["-" if math.isinf(e) else int(e) for e in row["epochs"]]
        print(f"{method:34} {row['reached']:>4}/{len(row['epochs']):<3} {row['median_epochs']:7.1f} {ratio_e:>10} "
              f"{row['median_wall']:7.1f} {ratio_w:>10}  {per_seed}")
    print("('-': target not reached within the budget; such a search counts as infinitely costly)")
    print()
    for ours_name, theirs in (("bayesianoptimization", "BayesianOptimization"), ("hyperband", "Hyperband")):
        mine, kt = table.get(f"run-local {ours_name}"), table.get(f"KerasTuner {theirs}")
        if mine is None:
            continue
        if base is not None:
            half = not math.isinf(mine["median_epochs"]) and mine["median_epochs"] <= 0.5 * base["median_epochs"]
            print(f"target: run-local {ours_name} <= half the epochs of random search: "
                  f"{mine['median_epochs']:.1f} vs {base['median_epochs']:.1f}, {'met' if half else 'NOT met'}")
        if kt is not None:
            fewer = not math.isinf(mine["median_epochs"]) and mine["median_epochs"] <= kt["median_epochs"]
            print(f"target: run-local {ours_name} <= KerasTuner {theirs} epochs: "
                  f"{mine['median_epochs']:.1f} vs {kt['median_epochs']:.1f}, {'met' if fewer else 'NOT met'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="searches per method (seeds 1..N)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, at most 8 trials")
    parser.add_argument("--target", type=float, default=TARGET, help="validation accuracy to reach")
    parser.add_argument("--methods", default=",".join([*OURS, *KERAS_TUNER]),
                        help="comma-separated subset of: " + ", ".join([*OURS, *KERAS_TUNER]))
    parser.add_argument("--json", type=Path, help="also write every search and the summary here")
    parser.add_argument("--kerastuner-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed-list", help=argparse.SUPPRESS)
    parser.add_argument("--max-trials", type=int, default=MAX_TRIALS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    if args.kerastuner_child:
        kerastuner_child(methods, [int(s) for s in args.seed_list.split(",")], args.target, args.max_trials)
        return 0
    unknown = set(methods) - {*OURS, *KERAS_TUNER}
    if unknown:
        parser.error(f"unknown method(s) {sorted(unknown)}")
    if not TRAINER_PYTHON.exists():
        raise SystemExit(f"needs the trainer environment at {TRAINER_PYTHON} (make setup)")
    seeds = [1] if args.quick else list(range(1, args.seeds + 1))
    max_trials = 8 if args.quick else args.max_trials

    started = time.perf_counter()
    searches = ours([m for m in methods if m in OURS], seeds, args.target, max_trials)
    kt_methods = [m for m in methods if m in KERAS_TUNER]
    if kt_methods:
        searches += kerastuner(kt_methods, seeds, args.target, max_trials)
    table = summarize(searches, args.target)
    report(table, len(seeds), args.target)
    print(f"\n(bench time {time.perf_counter() - started:.0f} s)")
    if args.json:
        finite = {method: {k: ([None if math.isinf(x) else x for x in v] if isinstance(v, list) else
                                (None if isinstance(v, float) and math.isinf(v) else v)) for k, v in row.items()}
                  for method, row in table.items()}  # JSON has no infinity: null is "not reached"
        args.json.write_text(json.dumps({"target": args.target, "seeds": seeds, "summary": finite,
                                         "searches": [asdict(s) for s in searches]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
