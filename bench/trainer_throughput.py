"""Trainer overhead: training throughput against a plain ``model.fit``, and start-up time.

Run with ``.venv-trainer/bin/python bench/trainer_throughput.py`` (about 1-2 minutes on 2 CPU cores).

(a) Throughput. For each workload, the trainer's own path (``trainer.train.run``: tf.data pipeline, metric
    lines, NaN guard, SIGTERM checks) and a plain ``model.fit`` on the same numpy arrays, with the model
    built the same way (``trainer.model.build_model``, same seed), both with validation. Steps/s come from
    epoch-to-epoch wall time, skipping the first epoch (tracing, cache filling); runs alternate
    trainer/plain and the medians are compared. Target: trainer/plain >= 1.0.
(b) Start-up. Time from launching ``python -m trainer`` to its first training step (the summary's
    ``first_step_time``) against launching ``python -c "import tensorflow"`` to the end of that import.
    Target: overhead < 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class Workload:
    name: str
    argv: list[str]
    epochs: int


WORKLOADS = [
    # Overhead-bound: a tiny MLP, ~45 steps of ~1 ms per epoch.
    Workload("digits MLP (bs 32)", ["--num_conv_layers=0", "--dense_units_0=64"], 12),
    # Compute-bound: the default 2-layer CNN on 24x24 RGB shapes.
    Workload("shapes CNN 24px (bs 32)", ["--dataset=shapes", "--shapes-samples=2000", "--shapes-size=24"], 5),
]


def _config(workload: Workload) -> Any:  # a TrainConfig (trainer.args is imported lazily)
    from trainer.args import parse_args

    config, _ = parse_args([*workload.argv, f"--epochs={workload.epochs}"])
    return config


def _steady_steps_per_s(epoch_ends: list[float], steps: int) -> float:
    gaps = [b - a for a, b in pairwise(epoch_ends)]
    return steps / statistics.median(gaps)


def trainer_rate(workload: Workload) -> tuple[float, int]:
    import contextlib
    import io

    from trainer.train import run

    config = _config(workload)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        summary = run(config)
    ends = [datetime.fromisoformat(record["timestamp"]).timestamp() for record in summary["history"]]
    steps = -(-summary["dataset"]["train_size"] // config.batch_size)
    return _steady_steps_per_s(ends, steps), steps


def plain_rate(workload: Workload) -> float:
    import keras

    from trainer.data import load_arrays
    from trainer.model import build_model

    config = _config(workload)
    keras.utils.set_random_seed(config.seed)
    x, y, x_val, y_val, classes = load_arrays(config)
    steps = -(-len(x) // config.batch_size)
    model = build_model(config.hparams, tuple(x.shape[1:]), classes, steps_per_epoch=steps, config=config)
    ends: list[float] = []

    class EpochEnds(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            ends.append(time.time())

    model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs, validation_data=(x_val, y_val),
              shuffle=True, verbose=0, callbacks=[EpochEnds()])
    return _steady_steps_per_s(ends, steps)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def trainer_startup(tmp: Path) -> float:
    summary = tmp / "summary.json"
    started = time.time()
    subprocess.run([sys.executable, "-m", "trainer", "--epochs=1", "--num_conv_layers=0",
                    f"--summary-file={summary}"], check=True, capture_output=True, env=_env(), cwd=ROOT)
    return float(json.loads(summary.read_text())["first_step_time"]) - started


def tensorflow_import() -> float:
    started = time.time()
    out = subprocess.run([sys.executable, "-c", "import tensorflow, time; print(repr(time.time()))"],
                         check=True, capture_output=True, text=True, env=_env(), cwd=ROOT).stdout
    return float(out.strip().splitlines()[-1]) - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="alternating trainer/plain runs per workload")
    parser.add_argument("--startup-repeats", type=int, default=3)
    args = parser.parse_args()

    rows = []
    for workload in WORKLOADS:
        ours, plain = [], []
        for _ in range(args.repeats):
            rate, steps = trainer_rate(workload)
            ours.append(rate)
            plain.append(plain_rate(workload))
        ratio = statistics.median(ours) / statistics.median(plain)
        rows.append((workload.name, steps, statistics.median(ours), statistics.median(plain), ratio))
        runs = f"trainer {[round(r) for r in ours]} steps/s, plain {[round(r) for r in plain]}"
        print(f"  {workload.name}: {runs}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        starts = [trainer_startup(Path(tmp)) for _ in range(args.startup_repeats)]
    imports = [tensorflow_import() for _ in range(args.startup_repeats)]
    start_median, import_median = statistics.median(starts), statistics.median(imports)
    overhead = start_median - import_median

    import tensorflow as tf

    print(f"\nTrainer throughput and start-up (TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, "
          f"{args.repeats} runs per side, medians)\n")
    print(f"{'workload':26} {'steps/epoch':>11} {'trainer steps/s':>16} {'plain fit steps/s':>18} "
          f"{'ratio':>6}  target >= 1.0")
    for name, steps, ours_rate, plain_rate_, ratio in rows:
        verdict = "met" if ratio >= 1.0 else ("within noise (>= 0.97)" if ratio >= 0.97 else "NOT met")
        print(f"{name:26} {steps:>11} {ours_rate:>16.0f} {plain_rate_:>18.0f} {ratio:>6.3f}  {verdict}")
    print(f"\n{'start-up':26} {'median s':>11}  runs")
    print(f"{'python -m trainer -> first step':26} {start_median:>8.2f}     {[round(s, 2) for s in starts]}")
    print(f"{'python -c import tensorflow':26} {import_median:>8.2f}     {[round(s, 2) for s in imports]}")
    print(f"{'overhead':26} {overhead:>8.2f}     target < 1.0 s: {'met' if overhead < 1.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
