"""Metric lines and files in the formats Katib's metrics collectors read, without TensorFlow.

One line per epoch on stdout (Katib's StdOut collector), optionally the same to a file in ``text`` or
``json`` format (the File collector), and TensorBoard event files (the TensorFlowEvent collector)::

    2026-01-02T03:04:05.123456Z epoch=3 loss=0.412 accuracy=0.871 val_loss=0.398 val_accuracy=0.88 lr=0.001

What Katib requires, and how this module guarantees it:

* The collector matches ``([\\w|-]+)\\s*=\\s*([+-]?\\d*(\\.\\d+)?([Ee][+-]?\\d+)?)`` and a captured name
  must equal the declared metric name, so names are reduced to ``[A-Za-z0-9_-]`` (``val.acc`` would be
  read as ``acc``).
* ``loss=nan`` matches with an empty value and breaks the collector, so a non-finite value is never
  formatted: :func:`format_metric_value` raises :class:`NonFiniteMetricError` instead.
* The first space-separated token, an RFC 3339 timestamp with a ``Z``, is the sample's time.
* JSON lines carry every value as a string (numbers are silently ignored by Katib) and a ``timestamp``.
* Katib redirects stdout to a file, so every line is flushed as soon as it is written.
"""

from __future__ import annotations

import json
import math
import re
import struct
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

# Katib's default metrics-collector regex (pkg/metricscollector/v1beta1/common/const.go).
KATIB_METRIC_REGEX = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
# Go's RE2 `\w` is ASCII-only; Python's is Unicode unless told otherwise.
_KATIB_PATTERN = re.compile(KATIB_METRIC_REGEX, re.ASCII)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")

EPOCH = "epoch"
LEARNING_RATE = "lr"
TIMESTAMP_KEY = "timestamp"
# Keys Keras callbacks put in the epoch logs that are not metrics of the run (the rate is reported as `lr`).
_NOT_METRICS = frozenset({"learning_rate", LEARNING_RATE, EPOCH, TIMESTAMP_KEY})
VALIDATION_PREFIX = "val_"
# Every name the built-in model prints on its metric lines (the linter checks objectives against these).
BUILTIN_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", LEARNING_RATE, EPOCH)


class NonFiniteMetricError(ValueError):
    """A metric is NaN or infinite: it must never reach a metrics collector."""

    def __init__(self, name: str, value: Any) -> None:
        super().__init__(f"{name} is {value!r}")
        self.name = name
        self.value = value


def sanitize_metric_name(name: str) -> str:
    """Reduce a metric name to ``[A-Za-z0-9_-]`` so Katib's regex captures it whole.

    >>> sanitize_metric_name("val.top-5 acc")
    'val_top-5_acc'
    """
    cleaned = _BAD_NAME_CHARS.sub("_", str(name)).strip("_")
    return cleaned or "metric"


def _float32_shortest(number: float) -> str | None:
    """The shortest decimal that rounds to the same float32, when ``number`` is a float32 value."""
    try:
        packed = struct.pack("<f", number)
    except OverflowError:
        return None
    if struct.unpack("<f", packed)[0] != number:
        return None
    for digits in range(1, 10):
        text = f"{number:.{digits}g}"
        try:
            if struct.pack("<f", float(text)) == packed:
                return text
        except OverflowError:  # rounded up past the float32 range
            continue
    return None


def format_metric_value(value: Any, name: str = "value") -> str:
    """Format a finite number as Katib's regex reads it; raise NonFiniteMetricError otherwise.

    The text is always a Python ``float`` repr (``0.25``, ``1e-05``, ``3.0``, ``1.5e+20``), which the
    collector's regex matches in full. Metrics that Keras computed in float32 are shortened to the
    shortest decimal that identifies the same float32 (``0.1``, not ``0.10000000149011612``).
    """
    if isinstance(value, bool):
        raise TypeError(f"{name}: a boolean is not a metric value")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: not a number: {value!r}") from None
    if not math.isfinite(number):
        raise NonFiniteMetricError(name, number)
    short = _float32_shortest(number)
    if short is not None:
        number = float(short)
    return repr(number)


def order_metrics(logs: Mapping[str, Any]) -> dict[str, Any]:
    """Training metrics first (``loss`` leading), then validation metrics (``val_loss`` leading).

    Names are sanitised; keys that are not metrics (``learning_rate`` added by Keras callbacks) dropped.
    """
    train: dict[str, Any] = {}
    val: dict[str, Any] = {}
    for raw, value in logs.items():
        if raw in _NOT_METRICS:
            continue
        name = sanitize_metric_name(raw)
        (val if name.startswith(VALIDATION_PREFIX) else train)[name] = value
    ordered: dict[str, Any] = {}
    for group, lead in ((train, "loss"), (val, "val_loss")):
        if lead in group:
            ordered[lead] = group.pop(lead)
        ordered.update(group)
    return ordered


def rfc3339_now() -> str:
    """Current UTC time as RFC 3339 with microseconds and ``Z`` (Go parses it as RFC3339Nano)."""
    return format_timestamp(datetime.now(UTC))


def format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_rfc3339(text: str) -> bool:
    """Whether Katib would take ``text`` (a line's first token) as the sample's timestamp."""
    if not _RFC3339.match(text):
        return False
    try:
        datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch's metrics, checked and formatted once, ready for every sink."""

    epoch: int
    values: dict[str, str]  # sanitised name -> formatted finite number, in line order
    timestamp: str

    @classmethod
    def create(
        cls, epoch: int, metrics: Mapping[str, Any], lr: float | None = None, timestamp: str | None = None
    ) -> EpochMetrics:
        """Check (NonFiniteMetricError on NaN/inf) and format every value before anything is written."""
        values = {name: format_metric_value(value, name) for name, value in order_metrics(metrics).items()}
        if lr is not None:
            values[LEARNING_RATE] = format_metric_value(lr, LEARNING_RATE)
        return cls(epoch=int(epoch), values=values, timestamp=timestamp or rfc3339_now())

    def numbers(self) -> dict[str, float]:
        return {name: float(text) for name, text in self.values.items()}

    def line(self) -> str:
        return format_metric_line(self)

    def json_line(self) -> str:
        return format_json_line(self)


def format_metric_line(metrics: EpochMetrics) -> str:
    """``<timestamp> epoch=<n> name=value ...``: the StdOut collector's (and TEXT file) format."""
    parts = [metrics.timestamp, f"{EPOCH}={metrics.epoch}"]
    parts.extend(f"{name}={text}" for name, text in metrics.values.items())
    return " ".join(parts)


def format_json_line(metrics: EpochMetrics) -> str:
    """One JSON object, every value a string, with ``timestamp``: the File collector's JSON format."""
    record = {TIMESTAMP_KEY: metrics.timestamp, EPOCH: str(metrics.epoch), **metrics.values}
    return json.dumps(record, separators=(", ", ": "))


@dataclass(frozen=True)
class KatibLine:
    """What Katib's text collector reads from one line."""

    timestamp: str | None
    metrics: list[tuple[str, str]]  # (name, value text); an empty value text is what breaks Katib

    def as_dict(self) -> dict[str, str]:
        return dict(self.metrics)


def parse_katib_line(line: str, metric_names: Iterable[str] | None = None) -> KatibLine | None:
    """Read a line the way Katib's StdOut/TEXT collector does.

    With ``metric_names`` (the declared objective and additional metrics), a line containing none of
    them is skipped (None) and only pairs whose captured name equals a declared name are kept, as in
    Katib. Without it every ``name=value`` pair is returned. Values are returned as text: an empty one
    is what Katib chokes on (``loss=nan``).
    """
    line = line.rstrip("\r\n")
    names = None if metric_names is None else set(metric_names)
    if names is not None and not any(name in line for name in names):
        return None
    first = line.split(" ", 1)[0]
    timestamp = first if is_rfc3339(first) else None
    pairs = []
    for match in _KATIB_PATTERN.finditer(line):
        name, value = match.group(1).strip(), match.group(2).strip()
        if names is None or name in names:
            pairs.append((name, value))
    return KatibLine(timestamp=timestamp, metrics=pairs)


def parse_json_line(line: str, metric_names: Iterable[str]) -> dict[str, float]:
    """Read a JSON metrics line the way Katib's File collector (JSON format) does: string values only."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("a metrics JSON line must be an object")
    found = {}
    for name in metric_names:
        value = record.get(name)
        if isinstance(value, str):
            found[name] = float(value)
    return found


class MetricsFileWriter:
    """Appends each epoch to ``--metrics-file`` (``text``: the stdout line; ``json``: a JSON line)."""

    def __init__(self, path: Path, fmt: str = "text") -> None:
        if fmt not in ("text", "json"):
            raise ValueError(f"unknown metrics format {fmt!r}")
        self.path = Path(path)
        self.format = fmt
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def is_empty(self) -> bool:
        try:
            return self.path.stat().st_size == 0
        except FileNotFoundError:
            return True

    def write(self, metrics: EpochMetrics) -> None:
        text = metrics.json_line() if self.format == "json" else metrics.line()
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()


class TensorBoardWriter:
    """Scalars for Katib's TensorFlowEvent collector: ``<dir>/train`` and ``<dir>/validation``.

    Each tag is the stdout metric name (``loss``, ``accuracy``, ``lr`` under ``train``; ``val_loss``,
    ``val_accuracy`` under ``validation``), so a bare Katib metric name ``val_accuracy`` only matches
    validation values and ``accuracy`` only training ones. The step is the epoch number.

    Values are TF2 scalar summaries (float32 tensors with the ``scalars`` plugin metadata, what
    ``tf.summary.scalar`` writes), written with ``tf.summary.write`` so that the ``tensorboard`` package
    is not needed in the training image.
    """

    TRAIN = "train"
    VALIDATION = "validation"

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self._writers: dict[str, Any] = {}

    def has_events(self) -> bool:
        return any(self.log_dir.rglob("events.out.tfevents.*")) if self.log_dir.exists() else False

    def _writer(self, split: str) -> Any:
        if split not in self._writers:
            import tensorflow as tf

            self._writers[split] = tf.summary.create_file_writer(str(self.log_dir / split))
        return self._writers[split]

    @staticmethod
    def _scalar_metadata() -> bytes:
        from tensorflow.core.framework import summary_pb2

        metadata = summary_pb2.SummaryMetadata()
        metadata.plugin_data.plugin_name = "scalars"
        metadata.plugin_data.content = b""  # tensorboard's ScalarPluginData(version=0), serialised
        metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
        return bytes(metadata.SerializeToString())

    def write(self, metrics: EpochMetrics) -> None:
        import tensorflow as tf

        metadata = self._scalar_metadata()
        splits: dict[str, dict[str, float]] = {}
        for name, number in metrics.numbers().items():
            split = self.VALIDATION if name.startswith(VALIDATION_PREFIX) else self.TRAIN
            splits.setdefault(split, {})[name] = number
        for split, values in splits.items():
            writer = self._writer(split)
            with writer.as_default():
                for name, number in values.items():
                    tf.summary.write(name, tf.constant(number, tf.float32), step=metrics.epoch,
                                     metadata=metadata)
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class MetricsEmitter:
    """Sends each epoch to stdout and the optional file and TensorBoard sinks, flushing every line."""

    def __init__(
        self,
        stream: TextIO | None = None,
        file_writer: MetricsFileWriter | None = None,
        tensorboard: TensorBoardWriter | None = None,
    ) -> None:
        self._stream = stream
        self.file_writer = file_writer
        self.tensorboard = tensorboard

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def emit(
        self, metrics: EpochMetrics, *, stdout: bool = True, file: bool = True, events: bool = True
    ) -> None:
        if stdout:
            self.stream.write(metrics.line() + "\n")
            self.stream.flush()
        if file and self.file_writer is not None:
            self.file_writer.write(metrics)
        if events and self.tensorboard is not None:
            self.tensorboard.write(metrics)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
