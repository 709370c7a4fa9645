"""Epochs and wall time until a target validation accuracy: katib-hp's local search against KerasTuner's.

One problem for every method: the built-in model as an MLP on digits (``regularization=l2``), tuning eight
dimensions (``SPACE``), several of which ruin a trial when set badly: ``learning_rate`` log 1e-5..1e-1,
``l2`` log 1e-6..1e-1 (strong weight decay underfits), ``batch_size`` 16..512 in powers of two (large
batches take few steps in 9 epochs), ``num_dense_layers`` 1..3, ``dense_units_0`` 16..512 step 16,
``dropout_rate_0`` 0..0.6 step 0.1, ``activation`` {relu, tanh, selu, gelu} and ``optimizer`` {adam,
rmsprop, sgd, adagrad}. Both sides are written from the same table: KerasTuner's ``hp.*`` calls and the
katib-hp ``tune`` entries use the same names, ranges, steps and scales, and each name is the trainer's flag.

Each trial trains 9 epochs; a search stops as soon as one trial reaches val_accuracy >= 0.9708 (Katib's
objective ``goal``; KerasTuner is stopped the same way), or after 40 trials. The target lies between two
steps of the 359-sample validation accuracy (348/359 and 349/359). In a pilot of 80 random configurations
(two seeds, through the trainer) 5% reached it, so random search needs about 20 trials and model-based
search has room to do better. Methods:

* ``run-local random / bayesianoptimization / hyperband``: ``katib_hp.local.runner.LocalRun`` with the warm
  trial worker (its one-time start is not counted, like KerasTuner's TensorFlow import), as ``katib-hp
  run-local`` runs them; hyperband with r_l=9, eta=3 on ``epochs`` (all brackets, promoted trials continue
  from their parent's checkpoint, 9 trials in parallel as Katib requires) and the log-scaled doubles as
  log lists (``step: 3``), since Katib's hyperband samples doubles uniformly;
* ``KerasTuner RandomSearch / BayesianOptimization / Hyperband`` (max_epochs=9, factor=3, one iteration) in
  one process of the trainer environment, on the same model (``trainer.model.build_model``) and data, each
  trial fitting with its own batch size.

Bayesian optimisation starts from 5 random points on both sides. For each seed, "epochs" is the sum of the
epochs trained by every trial finished when the first one reaches the target, and "wall" the seconds from
the start of the search to that moment; a search that never reaches it counts as infinitely costly in the
medians over seeds; the mean over seeds with unreached searches capped at their budget shows the spread.
Ratios against run-local random search. Targets: run-local bayesianoptimization and hyperband need at most
half the epochs of random search, and no more than their KerasTuner counterparts.

Run: .venv/bin/python bench/tuning_efficiency.py [--seeds 5] [--quick] [--json PATH] (5 seeds: ~25 minutes).
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
TARGET = 0.9708  # between 348/359 = 0.9694 and 349/359 = 0.9721: 349 of the 359 validation digits right
EPOCHS = 9
MAX_TRIALS = 40
ETA = 3
INITIAL_POINTS = 5
HYPERBAND_TRIALS = 23
# The one search space, as (name, kind, range or values); both sides are written from it.
SPACE: list[tuple[str, str, Any]] = [
    ("learning_rate", "log-float", (1e-5, 1e-1)),
    ("l2", "log-float", (1e-6, 1e-1)),
    ("batch_size", "log-int", (16, 512, 2)),  # step 2 on a log scale: 16, 32, ..., 512
    ("num_dense_layers", "int", (1, 3, 1)),
    ("dense_units_0", "int", (16, 512, 16)),
    ("dropout_rate_0", "float", (0.0, 0.6, 0.1)),
    ("activation", "choice", ["relu", "tanh", "selu", "gelu"]),
    ("optimizer", "choice", ["adam", "rmsprop", "sgd", "adagrad"]),
]
FIXED: dict[str, Any] = {"num_conv_layers": 0, "regularization": "l2"}
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

    class Model(kt.HyperModel):  # type: ignore[misc]
        def build(self, hp: Any) -> Any:
            hparams = {**config.hparams, **{name: keras_tuner_hp(hp, name, kind, spec) for name, kind, spec in SPACE}}
            keras.utils.set_random_seed(config.seed)  # as the trainer does before it builds
            steps = -(-len(x) // int(hparams["batch_size"]))
            return build_model(hparams, tuple(x.shape[1:]), classes, steps_per_epoch=steps, config=config)

        def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            # The batch size is tuned: each trial trains with its own, as the trainer does with its flag.
            return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)

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
                    Model(), objective=kt.Objective("val_accuracy", "max"), seed=seed, directory=tmp,
                    project_name="search", overwrite=True, **options)
                tuner.record, tuner.target, tuner.started = record, target, time.perf_counter()
                with contextlib.suppress(Reached):
                    tuner.search(x, y, epochs=EPOCHS, validation_data=(x_val, y_val), verbose=0)
            keras.backend.clear_session()
            print(json.dumps(asdict(record)), flush=True)


def keras_tuner_hp(hp: Any, name: str, kind: str, spec: Any) -> Any:
    """Declare one dimension of ``SPACE`` on KerasTuner's ``hp``."""
    if kind == "log-float":
        return hp.Float(name, spec[0], spec[1], sampling="log")
    if kind == "log-int":
        return hp.Int(name, spec[0], spec[1], step=spec[2], sampling="log")
    if kind == "int":
        return hp.Int(name, spec[0], spec[1], step=spec[2])
    if kind == "float":
        return hp.Float(name, spec[0], spec[1], step=spec[2])
    return hp.Choice(name, spec)


def katib_hp_tune(kind: str, spec: Any, algorithm: str) -> dict[str, Any]:
    """The same dimension as a katib-hp ``tune`` entry (KerasTuner's own fields)."""
    if kind == "log-int":
        return {"min_value": spec[0], "max_value": spec[1], "step": spec[2], "sampling": "log"}
    if kind == "log-float":
        entry: dict[str, Any] = {"min_value": spec[0], "max_value": spec[1], "sampling": "log"}
        if algorithm == "hyperband":
            entry["step"] = 3  # Katib's hyperband samples doubles uniformly: a log list (x3 steps) instead
        return entry
    if kind in ("int", "float"):
        return dict(zip(("min_value", "max_value", "step"), spec, strict=True))
    return {"values": list(spec)}


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

    settings: dict[str, Any] = {}
    budget: dict[str, Any] = {"max_trials": max_trials, "parallel_trials": 1, "max_failed_trials": max_trials}
    fixed: dict[str, Any] = {**FIXED, "epochs": EPOCHS}
    if algorithm == "hyperband":
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
        "tune": {name: katib_hp_tune(kind, spec, algorithm) for name, kind, spec in SPACE},
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
        row = table.setdefault(search.method, {"epochs": [], "wall": [], "reached": 0, "trials": [], "capped": []})
        # A search that never reached the target ranks after every one that did (infinite cost).
        row["epochs"].append(epochs if reached else math.inf)
        row["wall"].append(wall if reached else math.inf)
        row["trials"].append(len(search.epochs))
        row["capped"].append(epochs)  # unreached: every epoch the budget allowed
        row["reached"] += reached
    for row in table.values():
        row["median_epochs"] = statistics.median(row["epochs"])
        row["median_wall"] = statistics.median(row["wall"])
        row["mean_capped"] = statistics.fmean(row["capped"])
    return table


def _ratio(value: float, base: dict[str, Any] | None, key: str) -> str:
    if base is None or math.isinf(base[key]):
        return "-"
    return f"{value / base[key]:.2f}"


def report(table: dict[str, dict[str, Any]], seeds: int, target: float) -> None:
    base = table.get("run-local random")
    print(f"\nTuning efficiency: epochs and seconds until val_accuracy >= {target} (digits MLP; medians of "
          f"{seeds} seed(s); {os.cpu_count()} CPUs)\n")
    print(f"{'method':34} {'reached':>8} {'epochs':>7} {'vs random':>10} {'wall s':>7} {'vs random':>10} "
          f"{'mean capped':>12} {'vs random':>10}  epochs per seed")
    for method, row in table.items():
        ratio_e, ratio_w = _ratio(row["median_epochs"], base, "median_epochs"), _ratio(row["median_wall"], base,
                                                                                         "median_wall")
        per_seed = ["-" if math.isinf(e) else int(e) for e in row["epochs"]]
        ratio_c = _ratio(row["mean_capped"], base, "mean_capped")
        print(f"{method:34} {row['reached']:>4}/{len(row['epochs']):<3} {row['median_epochs']:7.1f} {ratio_e:>10} "
              f"{row['median_wall']:7.1f} {ratio_w:>10} {row['mean_capped']:12.1f} {ratio_c:>10}  {per_seed}")
    print("space: " + "; ".join(f"{name} {kind} {spec}" for name, kind, spec in SPACE)
          + f"; fixed: {FIXED}")
    print("(epochs, wall s: medians over seeds, where a search that did not reach the target within its budget "
          "counts as infinitely costly, '-' in the list;\n mean capped: mean over seeds of the epochs spent until the "
          "target, counting an unreached search at every epoch its budget allowed: a lower bound on its cost)")
    print(f"settings: {EPOCHS} epochs per trial, at most {MAX_TRIALS} trials per random/BO search; BO from "
          f"{INITIAL_POINTS} random points on both sides; Hyperband max_epochs = r_l = {EPOCHS}, factor = eta = {ETA}, "
          f"one iteration\n (all brackets: {HYPERBAND_TRIALS} trials; run-local runs up to {ETA ** round(math.log(EPOCHS, ETA))} of them at once "
          f"on {os.cpu_count()} CPUs, as Katib requires, so its wall time is not one-at-a-time like the others')")
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
