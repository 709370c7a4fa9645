"""One training run: data, model, ``fit`` with the callbacks Katib and Kubernetes need, and a summary.

What the loop guarantees:

* one metric line per epoch on stdout (and ``--metrics-file``, ``--tensorboard-dir``), flushed at once;
* a NaN/inf loss in any batch, or any non-finite epoch metric, stops training with exit code 4 and one
  stderr line; nothing non-finite is ever written as a metric;
* with ``--checkpoint-dir``, a checkpoint after every epoch (atomically); a restarted pod resumes from it;
* SIGTERM stops at the end of the current batch, saves a checkpoint and exits with 143.

Checkpoint directory layout (``--checkpoint-dir``, also what ``--resume-from`` reads)::

    state.json            {"format": 1, "epoch": <epochs completed>, "model": "model-0003.keras",
                           "partial": false, "finished": false, "hparams": {...}, "metrics": [...],
                           "best": {...}, "callbacks": {...}, ...}
    model-0003.keras      the model after epoch 3, optimizer state included (Keras format)

``state.json`` is replaced (write to a temporary file, then rename) only after its model file is complete,
so it always names a whole model. A checkpoint written on SIGTERM holds the weights at the interrupting
batch (``model-0003-partial.keras``, ``"partial": true``); the epoch after ``epoch`` is then run again in
full.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from katib_hp.space import Value
from trainer.args import (
    EXIT_FAILURE,
    EXIT_MODEL,
    EXIT_NONFINITE,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    TrainConfig,
    TrainerError,
    describe_assignment,
)
from trainer.metrics import (
    LEARNING_RATE,
    EpochMetrics,
    MetricsEmitter,
    MetricsFileWriter,
    NonFiniteMetricError,
    TensorBoardWriter,
)
from trainer.signals import StopRequest

STATE_FILE = "state.json"
STATE_FORMAT = 1
# Metric-name fragments for which lower is better (everything else: higher is better).
_LOWER_IS_BETTER = ("loss", "error", "mse", "mae", "mape", "msle", "crossentropy", "hinge")


def log(message: str) -> None:
    print(f"trainer: {message}", file=sys.stderr, flush=True)


# -- process start time -------------------------------------------------------------------------------

def process_start_time() -> float | None:
    """Wall-clock time at which this process was launched (Linux /proc), or None if unknown."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - max(age, 0.0)


# -- stop requests --------------------------------------------------------------------------------------

class Terminated(Exception):
    """Raised inside ``fit`` (from a callback) when a stop was requested."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


class NonFinite(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- checkpoints -------------------------------------------------------------------------------------------

def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class Checkpoints:
    """A checkpoint directory: ``state.json`` plus the model file it names."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    def load_state(self) -> dict[str, Any] | None:
        """The saved state, or None when the directory holds no checkpoint."""
        path = self.state_path
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TrainerError(f"{path}: unreadable checkpoint state ({exc}); delete the directory to start "
                               "over", EXIT_USAGE) from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or "model" not in state:
            raise TrainerError(f"{path}: not a trainer checkpoint state (format {STATE_FORMAT})", EXIT_USAGE)
        if not (self.directory / str(state["model"])).is_file():
            raise TrainerError(f"{path}: names {state['model']}, which is missing", EXIT_USAGE)
        return state

    def model_path(self, state: Mapping[str, Any]) -> Path:
        return self.directory / str(state["model"])

    def save(self, model: Any, state: dict[str, Any], partial: bool = False) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"model-{int(state['epoch']):04d}{'-partial' if partial else ''}.keras"
        tmp = self.directory / f".tmp-{name}"
        model.save(str(tmp))
        os.replace(tmp, self.directory / name)
        state = {**state, "format": STATE_FORMAT, "model": name, "partial": partial,
                 "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_atomic(self.state_path, json.dumps(state, indent=1))
        for old in self.directory.glob("model-*.keras"):
            if old.name != name:
                with contextlib.suppress(OSError):
                    old.unlink()
        return self.directory / name


def restore_model(model: Any, path: Path, input_shape: tuple[int, ...]) -> None:
    """Load weights and optimizer state from a ``.keras`` checkpoint into a freshly built model."""
    try:
        if not model.built:
            model.build((None, *input_shape))
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(str(path))
    except Exception as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise TrainerError(f"cannot restore {path} into the model these hyperparameters build ({reason})",
                           EXIT_MODEL) from None
    for warning in caught:
        text = " ".join(str(warning.message).split())
        if "Skipping variable loading for optimizer" in text:
            log(f"warning: optimizer state not restored from {path} (the optimizer differs); it starts fresh")
        else:
            log(f"warning: {text[:300]}")


# -- metrics helpers --------------------------------------------------------------------------------------

def lower_is_better(name: str) -> bool:
    return any(part in name for part in _LOWER_IS_BETTER)


def best_metrics(lines: list[EpochMetrics]) -> dict[str, dict[str, float | int]]:
    """Per metric, its best value (min for losses and errors, max otherwise) and the epoch it came from."""
    best: dict[str, dict[str, float | int]] = {}
    for line in lines:
        for name, value in line.numbers().items():
            if name == LEARNING_RATE:
                continue
            current = best.get(name)
            better = current is None or (
                value < current["value"] if lower_is_better(name) else value > current["value"]
            )
            if better:
                best[name] = {"value": value, "epoch": line.epoch}
    return best


def current_learning_rate(model: Any) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except Exception:
        return None


def device_name() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    try:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name") or "GPU"
    except Exception:
        name = "GPU"
    return f"{name} x{len(gpus)}" if len(gpus) > 1 else str(name)


def _epoch_record(line: EpochMetrics) -> dict[str, Any]:
    return {"epoch": line.epoch, "timestamp": line.timestamp, "values": line.values}


def _epoch_from_record(record: Mapping[str, Any]) -> EpochMetrics:
    return EpochMetrics(epoch=int(record["epoch"]), values=dict(record["values"]),
                        timestamp=str(record["timestamp"]))


# -- callbacks --------------------------------------------------------------------------------------------

class _ResumableCounters:
    """Restores a Keras callback's counters from a checkpoint at train begin; ``snapshot`` saves them."""

    _int_fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, resume: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resume = dict(resume or {})

    def on_train_begin(self, logs: Any = None) -> None:
        super().on_train_begin(logs)  # type: ignore[misc]
        if self._resume:
            self.best = self._resume.get("best")
            for name in ("wait", *self._int_fields):
                setattr(self, name, int(self._resume.get(name, 0)))

    def snapshot(self) -> dict[str, Any]:
        best = getattr(self, "best", None)
        state: dict[str, Any] = {"best": None if best is None else float(best)}
        state.update({name: int(getattr(self, name)) for name in ("wait", *self._int_fields)})
        return state


class EarlyStoppingWithState(_ResumableCounters, keras.callbacks.EarlyStopping):
    """EarlyStopping whose counters survive a restart from a checkpoint."""

    _int_fields = ("best_epoch",)


class PlateauWithState(_ResumableCounters, keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters survive a restart (the rate itself is in the optimizer state)."""

    _int_fields = ("cooldown_counter",)


class EpochMetricsCallback(keras.callbacks.Callback):
    """Checks every batch loss and epoch metric for NaN/inf, then emits the epoch's metric line.

    Runs first at epoch end (before early stopping and plateau callbacks), so ``lr`` is the rate the epoch
    trained with. The batch-end check is safe to run on Keras's callback thread (``async_safe``), which
    keeps Keras's asynchronous batch dispatch; the main thread acts on its finding at the next batch.
    """

    async_safe = True

    def __init__(self, run: TrainingRun) -> None:
        super().__init__()
        self.run = run
        self._epoch = 0
        self._bad_batch: tuple[str, float, int] | None = None

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._epoch = epoch
        self._bad_batch = None
        self.run.check_stop(f"the start of epoch {epoch + 1}")

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        if self.run.first_step_time is None:
            self.run.first_step_time = time.time()
        self._raise_if_bad()
        self.run.check_stop(f"epoch {self._epoch + 1}, batch {batch}")
        self.run.batches_since_checkpoint += 1  # this batch runs now

    def on_test_batch_begin(self, batch: int, logs: Any = None) -> None:
        self.run.check_stop(f"the validation of epoch {self._epoch + 1}")

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        # May run on Keras's callback thread: record, and let the main thread raise. Per batch only losses
        # count (a batch metric may legitimately be undefined); every epoch metric is checked at epoch end.
        for name, value in (logs or {}).items():
            if "loss" in name and isinstance(value, (int, float)) and not math.isfinite(value) \
                    and self._bad_batch is None:
                self._bad_batch = (name, float(value), batch)

    def _raise_if_bad(self) -> None:
        if self._bad_batch is not None:
            name, value, batch = self._bad_batch
            raise NonFinite(f"{name} is {value} at epoch {self._epoch + 1}, batch {batch + 1}; training "
                            "stopped (a lower learning_rate or gradient clipping usually helps)")

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._raise_if_bad()
        try:
            line = EpochMetrics.create(epoch + 1, logs or {}, lr=current_learning_rate(self.model))
        except NonFiniteMetricError as exc:
            raise NonFinite(f"{exc.name} is {exc.value} at the end of epoch {epoch + 1}; training stopped "
                            "(a lower learning_rate or gradient clipping usually helps)") from None
        self.run.record(line)


class CheckpointCallback(keras.callbacks.Callback):
    """Runs last at epoch end: saves the checkpoint (with the other callbacks' updated state)."""

    def __init__(self, run: TrainingRun) -> None:
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.run.save_checkpoint(epoch + 1)
        self.run.check_stop(f"the end of epoch {epoch + 1}")


# -- the run ----------------------------------------------------------------------------------------------

class TrainingRun:
    """State of one ``run(config)``; see :func:`run`."""

    def __init__(self, config: TrainConfig, stop: StopRequest | None = None,
                 launch_time: float | None = None) -> None:
        self.config = config
        self.started = time.time()
        self.launch_time = launch_time or process_start_time() or self.started
        self._own_stop = stop is None
        self.stop = stop if stop is not None else StopRequest()
        self.first_step_time: float | None = None
        self.model: Any = None
        self.data: Any = None
        self.user: Any = None
        self.lines: list[EpochMetrics] = []  # every metric line this run printed (re-printed ones included)
        self.inherited: list[EpochMetrics] = []  # --resume-from history, kept in checkpoints, not printed
        self.epochs_run = 0
        self.initial_epoch = 0
        self.last_epoch = 0
        self.batches_since_checkpoint = 0
        self.resumed_from: str | None = None
        self.early_stopping: EarlyStoppingWithState | None = None
        self.plateau: PlateauWithState | None = None
        self.stop_reason: str | None = None
        self.status = "failed"
        self.exit_code = EXIT_FAILURE
        self.emitter = MetricsEmitter()
        self.checkpoints = Checkpoints(config.checkpoint_dir) if config.checkpoint_dir else None

    # -- hooks used by the callbacks --------------------------------------------------------------------
    def check_stop(self, where: str) -> None:
        if self.stop.requested:
            raise Terminated(where)

    def record(self, line: EpochMetrics) -> None:
        self.emitter.emit(line)
        self.lines.append(line)
        self.epochs_run += 1
        self.last_epoch = line.epoch

    def _state(self, epoch: int, finished: bool = False) -> dict[str, Any]:
        callbacks = {}
        if self.early_stopping is not None:
            callbacks["early_stopping"] = self.early_stopping.snapshot()
        if self.plateau is not None:
            callbacks["plateau"] = self.plateau.snapshot()
        history = self.inherited + self.lines
        return {
            "epoch": epoch,
            "epochs": self.config.epochs,
            "finished": finished,
            "stop_reason": self.stop_reason,
            "hparams": self.config.hparams,
            "metrics": [_epoch_record(line) for line in history],
            "best": best_metrics(history),
            "callbacks": callbacks,
        }

    def save_checkpoint(self, epoch: int, partial: bool = False, finished: bool = False) -> None:
        if self.checkpoints is None or self.model is None:
            return
        self.checkpoints.save(self.model, self._state(epoch, finished), partial=partial)
        self.batches_since_checkpoint = 0

    # -- the steps ---------------------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        if self._own_stop:
            self.stop.install()
        try:
            self._execute()
            self.status = "stopped_early" if self.stop_reason else "completed"
            self.exit_code = EXIT_OK
        except Terminated as exc:
            self.status, self.exit_code = "terminated", EXIT_TERMINATED
            self.stop_reason = f"{self.stop.signal_name} at {exc.where}"
            raise TrainerError(self._terminated(exc.where), EXIT_TERMINATED) from None
        except NonFinite as exc:
            self.status, self.exit_code = "non_finite", EXIT_NONFINITE
            self.stop_reason = exc.message
            raise TrainerError(exc.message, EXIT_NONFINITE) from None
        except TrainerError as exc:
            self.status, self.exit_code = "error", exc.exit_code
            raise
        finally:
            self.emitter.close()
            summary = self.summary()
            if self.config.summary_file is not None:
                self.config.summary_file.parent.mkdir(parents=True, exist_ok=True)
                _write_atomic(self.config.summary_file, json.dumps(summary, indent=2) + "\n")
            if self._own_stop:
                self.stop.uninstall()
        return summary

    def _terminated(self, where: str) -> str:
        text = f"terminated by {self.stop.signal_name} at {where}"
        if self.checkpoints is None:
            return text + "; no --checkpoint-dir, so the progress is lost"
        if self.model is not None and self.batches_since_checkpoint > 0:
            self.save_checkpoint(self.last_epoch, partial=True)
            saved = f"saved a checkpoint (after epoch {self.last_epoch} plus the interrupted one's batches)"
        elif self.checkpoints.state_path.exists():
            saved = f"the checkpoint after epoch {self.last_epoch} is kept"
        else:
            return text + "; nothing trained yet, no checkpoint"
        return f"{text}; {saved} in {self.checkpoints.directory}; the same command resumes from it"

    def _check_settings(self) -> None:
        config = self.config
        if config.save_model is not None and config.save_model.suffix != ".keras":
            raise TrainerError(f"--save-model={config.save_model}: the file name must end in .keras",
                               EXIT_USAGE)
        if config.checkpoint_dir is not None and config.resume_from is not None and \
                Path(config.checkpoint_dir).resolve() == Path(config.resume_from).resolve():
            raise TrainerError("--resume-from and --checkpoint-dir must be different directories", EXIT_USAGE)

    def _log_hyperparameters(self) -> None:
        config = self.config
        label = f"hypermodel {config.hypermodel}" if config.hypermodel else "built-in model"
        log(f"{label}: {describe_assignment(config.active_hparams())}")
        ignored = config.inactive()
        if ignored:
            log(f"inactive (ignored): {', '.join(ignored)}")

    def _setup_outputs(self) -> None:
        config = self.config
        if config.metrics_file is not None:
            self.emitter.file_writer = MetricsFileWriter(config.metrics_file, config.metrics_format)
        if config.tensorboard_dir is not None:
            self.emitter.tensorboard = TensorBoardWriter(config.tensorboard_dir)

    def _load_data(self, arrays: bool) -> Any:
        from trainer.data import load_arrays, load_data

        if arrays:
            x_train, y_train, x_val, y_val, num_classes = load_arrays(self.config)
            self.data = {
                "x": x_train, "y": y_train, "x_val": x_val, "y_val": y_val, "num_classes": num_classes,
                "input_shape": tuple(int(d) for d in x_train.shape[1:]), "train_size": len(x_train),
                "val_size": len(x_val), "steps_per_epoch": math.ceil(len(x_train) / self.config.batch_size),
            }
        else:
            data = load_data(self.config)
            self.data = {"train": data.train, "val": data.val, "num_classes": data.num_classes,
                         "input_shape": tuple(data.input_shape), "train_size": data.train_size,
                         "val_size": data.val_size, "steps_per_epoch": data.steps_per_epoch}
        d = self.data
        log(f"data: {self.config.dataset}, {d['train_size']} training / {d['val_size']} validation samples, "
            f"input {d['input_shape']}, {d['num_classes']} classes")
        return self.data

    def _build(self) -> Any:
        config = self.config
        d = self.data
        if config.hypermodel:
            from trainer.hypermodel import build_user

            self.user = build_user(config.hypermodel, config.active_hparams())
            model = self.user.model
        else:
            from trainer.model import build_model

            model = build_model(config.hparams, d["input_shape"], d["num_classes"],
                                steps_per_epoch=d["steps_per_epoch"], config=config)
        if config.xla and not model.jit_compile:
            model.jit_compile = True
        return model

    def _resume_state(self) -> tuple[dict[str, Any] | None, Checkpoints | None, bool]:
        """(state, where it is, whether it is this run's own checkpoint)."""
        config = self.config
        if self.checkpoints is not None:
            state = self.checkpoints.load_state()
            if state is not None:
                saved = state.get("hparams", {})
                changed = sorted(k for k in set(saved) | set(config.hparams)
                                 if k != "epochs" and saved.get(k) != config.hparams.get(k))
                if changed:
                    raise TrainerError(
                        f"--checkpoint-dir={self.checkpoints.directory} holds a checkpoint of a run with "
                        f"other hyperparameters ({', '.join(changed[:5])}); use an empty directory",
                        EXIT_USAGE)
                return state, self.checkpoints, True
        if config.resume_from is not None:
            source = Checkpoints(config.resume_from)
            state = source.load_state()
            if state is None:
                raise TrainerError(f"--resume-from={config.resume_from}: no checkpoint there ({STATE_FILE} "
                                   "missing)", EXIT_USAGE)
            return state, source, False
        return None, None, False

    def _execute(self) -> None:
        config = self.config
        self._check_settings()
        self._log_hyperparameters()
        self._setup_outputs()
        keras.utils.set_random_seed(config.seed)
        keras.mixed_precision.set_global_policy("mixed_float16" if config.mixed_precision else "float32")
        custom_fit = False
        if config.hypermodel:
            from trainer.hypermodel import load_hypermodel, overrides_fit

            custom_fit = overrides_fit(load_hypermodel(config.hypermodel))
        self._load_data(arrays=custom_fit)
        state, source, own = self._resume_state()
        self.check_stop("start-up")
        self.model = self._build()
        if state is not None and source is not None:
            self._resume(state, source, own)
        self.check_stop("start-up")
        callbacks = self._callbacks(state if own else None)
        done = own and state is not None and state.get("finished") and state.get("epochs") == config.epochs
        if self.initial_epoch < config.epochs and not done:
            self._fit(callbacks)
            if self.early_stopping is not None and self.early_stopping.stopped_epoch > 0:
                es = self.early_stopping
                self.stop_reason = (f"early stopping: no improvement of {es.monitor} for {es.patience} "
                                    f"epochs (best at epoch {es.best_epoch + 1}, weights restored)")
                log(self.stop_reason)
        else:
            log(f"nothing to train: the checkpoint's run finished ({self.initial_epoch} of {config.epochs} "
                "epochs)")
            self.stop_reason = (state or {}).get("stop_reason")
        self.save_checkpoint(self.last_epoch or self.initial_epoch, finished=True)
        if config.save_model is not None:
            config.save_model.parent.mkdir(parents=True, exist_ok=True)
            self.model.save(str(config.save_model))
            log(f"model saved to {config.save_model}")

    def _resume(self, state: dict[str, Any], source: Checkpoints, own: bool) -> None:
        config = self.config
        saved_epoch = int(state["epoch"])
        history = [_epoch_from_record(r) for r in state.get("metrics", [])]
        path = source.model_path(state)
        restore_model(self.model, path, self.data["input_shape"])
        if own:
            self.initial_epoch = saved_epoch
            self.last_epoch = saved_epoch
            partial = " (with part of the next epoch)" if state.get("partial") else ""
            log(f"resuming from {path} at epoch {saved_epoch}{partial} of {config.epochs}")
            # A restarted container starts a fresh stdout: print the earlier epochs again (same timestamps),
            # so the collector sees the whole run. Files and event directories that survived keep theirs.
            writer, events = self.emitter.file_writer, self.emitter.tensorboard
            write_file = writer is not None and writer.is_empty()
            write_events = events is not None and not events.has_events()
            for line in history:
                self.emitter.emit(line, file=write_file, events=write_events)
                self.lines.append(line)
        else:
            self.initial_epoch = config.initial_epoch or saved_epoch
            if self.initial_epoch >= config.epochs:
                raise TrainerError(
                    f"--resume-from={source.directory}: the checkpoint is at epoch {saved_epoch}; "
                    f"--epochs={config.epochs} leaves nothing to train (pass --initial-epoch or raise "
                    "--epochs)",
                    EXIT_USAGE)
            self.last_epoch = self.initial_epoch
            self.inherited = [line for line in history if line.epoch <= self.initial_epoch]
            self.resumed_from = str(source.directory)
            note = "" if self.initial_epoch == saved_epoch else f" (checkpoint of epoch {saved_epoch})"
            log(f"continuing {path} from epoch {self.initial_epoch}{note} to epoch {config.epochs}")

    def _callbacks(self, own_state: Mapping[str, Any] | None) -> list[Any]:
        config = self.config
        hp = config.hparams
        saved = dict((own_state or {}).get("callbacks", {}))
        callbacks: list[Any] = [EpochMetricsCallback(self)]
        patience = int(hp.get("early_stopping_patience", 0) or 0)
        if patience > 0:
            self.early_stopping = EarlyStoppingWithState(
                monitor=config.monitor, patience=patience, restore_best_weights=True,
                resume=saved.get("early_stopping"))
            callbacks.append(self.early_stopping)
        if hp.get("lr_schedule") == "plateau" and "plateau_factor" in hp and "plateau_patience" in hp:
            self.plateau = PlateauWithState(
                monitor=config.monitor, factor=float(hp["plateau_factor"]),
                patience=int(hp["plateau_patience"]), resume=saved.get("plateau"))
            callbacks.append(self.plateau)
        callbacks.append(CheckpointCallback(self))
        return callbacks

    def _fit(self, callbacks: list[Any]) -> None:
        config = self.config
        d = self.data
        common = {"epochs": config.epochs, "initial_epoch": self.initial_epoch, "verbose": config.verbose}
        with _keras_warnings_to_log():
            if self.user is not None and self.user.custom_fit:
                from trainer.hypermodel import fit_user

                result = fit_user(self.user, d["x"], d["y"], validation_data=(d["x_val"], d["y_val"]),
                                  callbacks=callbacks, batch_size=config.batch_size, **common)
                if not self.lines and isinstance(result, Mapping):
                    # A custom fit that trains without model.fit reports its metrics by returning them.
                    try:
                        line = EpochMetrics.create(config.epochs, result)
                    except NonFiniteMetricError as exc:
                        raise NonFinite(f"{exc.name} is {exc.value} (returned by the hypermodel's fit)") \
                            from None
                    self.record(line)
            else:
                # The pipeline reshuffles every epoch itself (shuffle=True would only warn).
                self.model.fit(d["train"], validation_data=d["val"], callbacks=callbacks, shuffle=False,
                               **common)

    # -- summary ------------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        config = self.config
        final = self.lines[-1].numbers() if self.lines else {}
        first_step = None
        if self.first_step_time is not None:
            first_step = round(self.first_step_time - self.launch_time, 3)
        d = self.data or {}
        inactive = config.space.inactive(config.hparams)
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "hyperparameters": _plain(config.active_hparams()),
            "all_hyperparameters": _plain(config.hparams),
            "inactive": inactive,
            "inactive_explicit": config.inactive(),
            "hypermodel": config.hypermodel,
            "hypermodel_values": _plain(self.user.used_values()) if self.user is not None else None,
            "metrics": final,
            "best_metrics": {k: v["value"] for k, v in best_metrics(self.lines).items()},
            "best_epochs": {k: v["epoch"] for k, v in best_metrics(self.lines).items()},
            "history": [_epoch_record(line) for line in self.lines],
            "epochs": config.epochs,
            "initial_epoch": self.initial_epoch,
            "epochs_run": self.epochs_run,
            "last_epoch": self.last_epoch,
            "stopped_early": self.stop_reason is not None,
            "stop_reason": self.stop_reason,
            "resumed_from": self.resumed_from,
            "checkpoint_dir": str(config.checkpoint_dir) if config.checkpoint_dir else None,
            "duration_s": round(time.time() - self.started, 3),
            "time_to_first_step_s": first_step,
            "first_step_time": self.first_step_time,
            "launch_time": round(self.launch_time, 3),
            "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__,
            "device": device_name(),
            "mixed_precision": config.mixed_precision,
            "xla": config.xla,
            "dataset": {
                "name": config.dataset,
                "train_size": d.get("train_size"),
                "val_size": d.get("val_size"),
                "input_shape": list(d["input_shape"]) if "input_shape" in d else None,
                "num_classes": d.get("num_classes"),
            },
        }


def _plain(values: Mapping[str, Value] | None) -> dict[str, Value] | None:
    return None if values is None else {k: v for k, v in values.items()}


@contextlib.contextmanager
def _keras_warnings_to_log() -> Iterator[None]:
    """Keras's Python warnings (e.g. a missing monitor metric) as one ``trainer: warning:`` line each."""
    seen: set[str] = set()

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
        if issubclass(category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
            previous(message, category, filename, lineno, file, line)  # for developers, not for users
            return
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            log(f"warning: {text[:300]}")

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def run(
    config: TrainConfig, *, stop: StopRequest | None = None, launch_time: float | None = None
) -> dict[str, Any]:
    """Train as ``config`` says and return the summary (also written to ``--summary-file``).

    Raises:
        TrainerError: with the exit code of the failure: EXIT_DATA (3) for data problems, EXIT_NONFINITE (4)
            for a NaN/inf loss or metric, EXIT_MODEL (5) for a model that cannot be built or restored,
            EXIT_TERMINATED (143) after SIGTERM, EXIT_USAGE (2) for inconsistent settings.
    """
    return TrainingRun(config, stop=stop, launch_time=launch_time).execute()


__all__ = ["Checkpoints", "StopRequest", "TrainingRun", "restore_model", "run"]
