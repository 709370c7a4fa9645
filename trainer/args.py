"""argv -> TrainConfig, without TensorFlow.

Every hyperparameter of the space is a flag named exactly like the parameter (``--learning_rate=1e-05``,
also ``--learning-rate``), so a Katib trial template can pass ``--name=${trialParameters.name}``. Values are
the strings Katib substitutes; each is parsed and range-checked by the space's own parameter. A bad value
stops before anything heavy is imported: one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from katib_hp.errors import SpaceError
from katib_hp.space import Boolean, SearchSpace, Value, format_value
from trainer.hyperparameters import EPOCHS, builtin_space

# Exit codes, documented in the README (trainer section).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_NONFINITE = 4
EXIT_MODEL = 5
EXIT_TERMINATED = 143  # 128 + SIGTERM, after saving a checkpoint

DATASETS = ("digits", "shapes", "mnist", "fashion_mnist", "cifar10", "folder", "npz")


class UsageError(Exception):
    """A bad flag or value: reported as one line, exit code 2."""


class TrainerError(Exception):
    """An error with its own exit code and a one-line message (data, model, non-finite loss...)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class TrainConfig:
    """Everything one training run needs: hyperparameter values plus run settings."""

    hparams: dict[str, Value]
    space: SearchSpace
    explicit: set[str] = field(default_factory=set)
    dataset: str = "digits"
    data_dir: Path | None = None
    data_file: Path | None = None
    cache_dir: Path | None = None
    validation_split: float = 0.2
    max_samples: int = 0
    shapes_samples: int = 2000
    shapes_size: int = 32
    shapes_channels: int = 3
    shapes_classes: int = 4
    base_weights: str = "imagenet"
    monitor: str = "val_loss"
    mixed_precision: bool = False
    xla: bool = False
    metrics_file: Path | None = None
    metrics_format: str = "text"
    tensorboard_dir: Path | None = None
    summary_file: Path | None = None
    checkpoint_dir: Path | None = None
    resume_from: Path | None = None
    initial_epoch: int = 0
    save_model: Path | None = None
    hypermodel: str | None = None
    verbose: int = 0

    @property
    def epochs(self) -> int:
        return int(self.hparams.get(EPOCHS, 10))

    @property
    def seed(self) -> int:
        return int(self.hparams.get("seed", 42))

    @property
    def batch_size(self) -> int:
        return int(self.hparams.get("batch_size", 32))

    def inactive(self) -> list[str]:
        """Parameters given on the command line that the other values make irrelevant."""
        return [name for name in self.space.inactive(self.hparams) if name in self.explicit]

    def active_hparams(self) -> dict[str, Value]:
        off = set(self.space.inactive(self.hparams))
        return {k: v for k, v in self.hparams.items() if k not in off}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _settings_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m trainer", add_help=False, allow_abbrev=False)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="digits")
    g.add_argument("--data-dir", type=Path, help="image folder with one sub-folder per class (--dataset=folder)")
    g.add_argument("--data-file", type=Path, help=".npz with x_train/y_train[/x_val/y_val] or x/y")
    g.add_argument("--cache-dir", type=Path, help="download cache for mnist/fashion_mnist/cifar10 and weights")
    g.add_argument("--validation-split", type=float, default=0.2)
    g.add_argument("--max-samples", type=int, default=0, help="use at most this many training samples (0: all)")
    g.add_argument("--shapes-samples", type=int, default=2000)
    g.add_argument("--shapes-size", type=int, default=32)
    g.add_argument("--shapes-channels", type=int, choices=(1, 3), default=3)
    g.add_argument("--shapes-classes", type=int, choices=(2, 3, 4), default=4)
    g = p.add_argument_group("model")
    g.add_argument("--hypermodel", help="package.module:Name of a KerasTuner HyperModel or build(hp) function")
    g.add_argument("--base-weights", default="imagenet",
                   help="imagenet (download or cache), random (explicit random init), or a local weights file")
    g.add_argument("--monitor", default="val_loss", help="metric for early stopping and plateau schedules")
    g.add_argument("--mixed-precision", action="store_true", help="mixed_float16 compute (GPU)")
    g.add_argument("--xla", action="store_true", help="compile the train step with XLA")
    g = p.add_argument_group("outputs")
    g.add_argument("--metrics-file", type=Path, help="also write metrics here (Katib File collector)")
    g.add_argument("--metrics-format", choices=("text", "json"), default="text")
    g.add_argument("--tensorboard-dir", type=Path, help="event files for Katib's TensorFlowEvent collector")
    g.add_argument("--summary-file", type=Path, help="JSON summary written at the end")
    g.add_argument("--checkpoint-dir", type=Path, help="save every epoch; a restarted pod resumes from here")
    g.add_argument("--resume-from", type=Path, help="continue from a checkpoint directory of another run")
    g.add_argument("--initial-epoch", type=int, default=None, help="epoch to continue from with --resume-from")
    g.add_argument("--save-model", type=Path, help="write the trained model (.keras)")
    g.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0, help="Keras progress output")
    g = p.add_argument_group("space")
    g.add_argument("--print-space", action="store_true", help="print the search space and exit")
    g.add_argument("--space-format", choices=("yaml", "json"), default="yaml")
    g.add_argument("-h", "--help", action="store_true")
    return p


def _add_space_flags(parser: argparse.ArgumentParser, space: SearchSpace) -> None:
    group = parser.add_argument_group("hyperparameters (each also as --name-with-dashes)")
    for param in space:
        names = [f"--{param.name}"]
        if "_" in param.name:
            names.append(f"--{param.name.replace('_', '-')}")
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if isinstance(param, Boolean) else {}
        text = f"{param.describe()}; default {format_value(param.default)}"
        if param.help:
            text = f"{param.help}: {text}"
        group.add_argument(*names, dest=f"hp:{param.name}", metavar="VALUE", default=None, help=text, **extra)


def build_parser(space: SearchSpace) -> argparse.ArgumentParser:
    parser = _settings_parser()
    _add_space_flags(parser, space)
    return parser


SpaceLoader = Callable[[str], SearchSpace]


def parse_args(
    argv: Sequence[str], space: SearchSpace | None = None, load_hypermodel_space: SpaceLoader | None = None
) -> tuple[TrainConfig, argparse.Namespace]:
    """Parse argv into a TrainConfig; raise UsageError with a one-line message on any bad flag.

    ``space`` defaults to the built-in model's; with ``--hypermodel`` it comes from
    ``load_hypermodel_space`` (which imports the user's code, and so TensorFlow).
    """
    settings, _ = _settings_parser().parse_known_args(argv)
    if space is None:
        if settings.hypermodel:
            if load_hypermodel_space is None:
                raise UsageError("--hypermodel needs the trainer environment (TensorFlow and KerasTuner)")
            space = load_hypermodel_space(settings.hypermodel)
        else:
            space = builtin_space()
    parser = build_parser(space)
    ns = parser.parse_args(argv)
    hparams, explicit = _hparams(space, ns)
    config = TrainConfig(hparams=hparams, space=space, explicit=explicit)
    for key, value in vars(ns).items():
        if not key.startswith("hp:") and hasattr(config, key):
            setattr(config, key, value)
    _check_settings(config, ns)
    return config, ns


def _hparams(space: SearchSpace, ns: argparse.Namespace) -> tuple[dict[str, Value], set[str]]:
    values = space.defaults()
    explicit: set[str] = set()
    for param in space:
        text = getattr(ns, f"hp:{param.name}")
        if text is None:
            continue
        try:
            values[param.name] = param.parse(text)
        except SpaceError as exc:
            raise UsageError(f"--{param.name}={text}: {exc.message.split(' (got')[0]}") from None
        explicit.add(param.name)
    return values, explicit


def _check_settings(config: TrainConfig, ns: argparse.Namespace) -> None:
    if not 0.0 < config.validation_split < 1.0:
        raise UsageError(f"--validation-split={config.validation_split}: must be in (0, 1)")
    if config.max_samples < 0:
        raise UsageError(f"--max-samples={config.max_samples}: must be >= 0")
    if config.shapes_samples < 10:
        raise UsageError(f"--shapes-samples={config.shapes_samples}: must be >= 10")
    if not 8 <= config.shapes_size <= 1024:
        raise UsageError(f"--shapes-size={config.shapes_size}: must be in [8, 1024]")
    if config.dataset == "folder" and config.data_dir is None:
        raise UsageError("--dataset=folder needs --data-dir=PATH")
    if config.dataset == "npz" and config.data_file is None:
        raise UsageError("--dataset=npz needs --data-file=PATH")
    if ns.initial_epoch is not None and config.resume_from is None:
        raise UsageError("--initial-epoch needs --resume-from=DIR (a checkpoint directory)")
    initial = ns.initial_epoch or 0
    if initial < 0:
        raise UsageError(f"--initial-epoch={initial}: must be >= 0")
    if initial >= config.epochs:
        raise UsageError(f"--initial-epoch={initial}: must be < --epochs={config.epochs}")
    config.initial_epoch = initial


def describe_assignment(values: Mapping[str, Value]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in values.items())


def fail(message: str, code: int) -> NoReturn:
    """Print one line on stderr and exit: the trainer's only way to report a user mistake."""
    print(f"trainer: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)
