"""Metric lines, files and event files exactly as Katib's metrics collectors read them."""

from __future__ import annotations

import io
import json
import math
import re
import struct
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.metrics import (
    KATIB_METRIC_REGEX,
    EpochMetrics,
    MetricsEmitter,
    MetricsFileWriter,
    NonFiniteMetricError,
    format_metric_value,
    is_rfc3339,
    order_metrics,
    parse_json_line,
    parse_katib_line,
    sanitize_metric_name,
)

ROOT = Path(__file__).resolve().parents[2]
# Katib's value group, anchored: a formatted value must be matched in full, never partially.
VALUE = re.compile(r"[+-]?\d*(\.\d+)?([Ee][+-]?\d+)?")
# Go's time.RFC3339Nano as the trainer writes it (UTC, 'Z').
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
KERAS_LOGS = {"loss": 0.4123, "accuracy": 0.871, "val_loss": 0.398, "val_accuracy": 0.88}
DECLARED = ["loss", "accuracy", "val_loss", "val_accuracy", "lr"]


def _as_float32(number: float) -> float | None:
    try:
        return struct.unpack("<f", struct.pack("<f", number))[0]
    except OverflowError:
        return None


def test_metric_line_is_read_by_katib_as_exactly_the_declared_metrics():
    line = EpochMetrics.create(3, KERAS_LOGS, lr=0.001).line()
    parsed = parse_katib_line(line, DECLARED)
    assert parsed is not None
    assert [name for name, _ in parsed.metrics] == DECLARED
    assert parsed.as_dict() == {"loss": "0.4123", "accuracy": "0.871", "val_loss": "0.398",
                                "val_accuracy": "0.88", "lr": "0.001"}
    assert parsed.timestamp is not None and TIMESTAMP.match(parsed.timestamp)
    # Nothing else on the line: the timestamp, then name=value tokens each matched in full by Katib's regex.
    tokens = line.split(" ")
    assert tokens[0] == parsed.timestamp
    assert tokens[1] == "epoch=3"
    for token in tokens[1:]:
        assert re.fullmatch(KATIB_METRIC_REGEX, token, re.ASCII), token


def test_metric_line_format():
    line = EpochMetrics.create(1, {"loss": 0.5, "val_loss": 0.25, "accuracy": 0.75, "learning_rate": 0.1},
                               lr=1e-05, timestamp="2026-01-02T03:04:05.123456Z").line()
    assert line == "2026-01-02T03:04:05.123456Z epoch=1 loss=0.5 accuracy=0.75 val_loss=0.25 lr=1e-05"


def test_float32_metrics_are_printed_short():
    assert format_metric_value(_as_float32(0.1)) == "0.1"
    assert format_metric_value(_as_float32(0.001)) == "0.001"
    assert format_metric_value(0.1 + 0.2) == repr(0.1 + 0.2)  # a float64 keeps its full repr
    assert format_metric_value(3) == "3.0"
    assert format_metric_value(1e20) == "1e+20"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad):
    with pytest.raises(NonFiniteMetricError):
        format_metric_value(bad, "loss")
    with pytest.raises(NonFiniteMetricError) as info:
        EpochMetrics.create(2, {**KERAS_LOGS, "val_loss": bad})
    assert info.value.name == "val_loss"


def test_non_finite_epoch_writes_nothing(tmp_path):
    out = io.StringIO()
    emitter = MetricsEmitter(out, MetricsFileWriter(tmp_path / "m.log"))
    with pytest.raises(NonFiniteMetricError):
        emitter.emit(EpochMetrics.create(1, {"loss": math.nan}))
    assert out.getvalue() == ""
    assert not (tmp_path / "m.log").exists()


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.floats(width=32) | st.integers(-10**30, 10**30))
def test_any_number_formats_to_a_full_katib_match_or_is_refused(number):
    value = float(number)
    if not math.isfinite(value):
        with pytest.raises(NonFiniteMetricError):
            format_metric_value(number)
        return
    text = format_metric_value(number)
    assert VALUE.fullmatch(text), text
    assert "nan" not in text.lower() and "inf" not in text.lower()
    parsed = float(text)
    if _as_float32(value) == value:
        assert _as_float32(parsed) == value
    else:
        assert parsed == value
    # Katib captures the whole value when it sits in a line.
    got = parse_katib_line(f"2026-01-02T03:04:05.000001Z epoch=1 loss={text} lr=0.1", ["loss"])
    assert got is not None and got.as_dict() == {"loss": text}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.floats(allow_nan=True, allow_infinity=True),
                       min_size=1, max_size=6))
def test_no_line_ever_contains_a_non_finite_value(logs):
    try:
        metrics = EpochMetrics.create(1, logs)
    except NonFiniteMetricError:
        assert any(not math.isfinite(v) for k, v in logs.items() if k not in ("learning_rate", "lr"))
        return
    line = metrics.line()
    parsed = parse_katib_line(line)
    assert parsed is not None
    for name, text in parsed.metrics:
        assert text != "" and math.isfinite(float(text)), (name, line)
    for name in metrics.values:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", name)


@given(st.text(min_size=1, max_size=30))
def test_sanitised_names_are_captured_whole_by_katib(raw):
    name = sanitize_metric_name(raw)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", name)
    parsed = parse_katib_line(f"{name}=0.5")
    assert parsed is not None and parsed.metrics == [(name, "0.5")]


def test_why_names_are_sanitised_and_nan_refused():
    # What Katib would make of unsanitised names and non-finite values.
    assert parse_katib_line("val.acc=0.9").metrics == [("acc", "0.9")]
    assert parse_katib_line("loss=nan", ["loss"]).metrics == [("loss", "")]
    assert sanitize_metric_name("val.acc") == "val_acc"


def test_katib_skips_lines_without_declared_names_and_reads_only_declared_ones():
    assert parse_katib_line("trainer: data: digits, 1438 training", ["val_accuracy"]) is None
    line = EpochMetrics.create(1, KERAS_LOGS).line()
    assert parse_katib_line(line, ["accuracy"]).metrics == [("accuracy", "0.871")]
    assert parse_katib_line(line, ["val_accuracy"]).metrics == [("val_accuracy", "0.88")]


def test_order_metrics():
    logs = {"val_accuracy": 1, "accuracy": 2, "val_loss": 3, "learning_rate": 4, "loss": 5, "top.5": 6}
    assert list(order_metrics(logs)) == ["loss", "accuracy", "top_5", "val_loss", "val_accuracy"]


def test_timestamps_are_rfc3339_utc():
    stamp = EpochMetrics.create(1, {"loss": 1.0}).timestamp
    assert TIMESTAMP.match(stamp) and is_rfc3339(stamp)
    when = datetime.fromisoformat(stamp)
    assert when.tzinfo is not None and abs((datetime.now(UTC) - when).total_seconds()) < 60
    assert not is_rfc3339("epoch=1")
    assert not is_rfc3339("2026-13-45T99:00:00Z")


def test_text_metrics_file_appends_the_stdout_lines(tmp_path):
    path = tmp_path / "sub" / "metrics.log"
    out = io.StringIO()
    emitter = MetricsEmitter(out, MetricsFileWriter(path, "text"))
    for epoch in (1, 2):
        emitter.emit(EpochMetrics.create(epoch, KERAS_LOGS, lr=0.01))
        # Flushed at once: readable before the next epoch.
        assert path.read_text().count("\n") == epoch
    assert path.read_text() == out.getvalue()


def test_json_metrics_file_has_string_values_and_timestamp(tmp_path):
    path = tmp_path / "metrics.json"
    writer = MetricsFileWriter(path, "json")
    writer.write(EpochMetrics.create(1, KERAS_LOGS, lr=0.01))
    writer.write(EpochMetrics.create(2, KERAS_LOGS, lr=0.005))
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        record = json.loads(line)
        assert all(isinstance(v, str) for v in record.values()), record
        assert is_rfc3339(record["timestamp"])
        assert parse_json_line(line, DECLARED) == {**KERAS_LOGS, "lr": pytest.approx(float(record["lr"]))}
    assert json.loads(lines[1])["epoch"] == "2" and json.loads(lines[1])["lr"] == "0.005"


def test_tensorboard_layout(tmp_path):
    tf = pytest.importorskip("tensorflow")
    from trainer.metrics import TensorBoardWriter

    writer = TensorBoardWriter(tmp_path)
    assert not writer.has_events()
    writer.write(EpochMetrics.create(1, KERAS_LOGS, lr=0.01))
    writer.write(EpochMetrics.create(2, {k: v / 2 for k, v in KERAS_LOGS.items()}, lr=0.01))
    writer.close()
    assert writer.has_events()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train", "validation"]
    found: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for split in ("train", "validation"):
        for path in sorted((tmp_path / split).glob("events.out.tfevents.*")):
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                for value in event.summary.value:
                    number = float(tf.make_ndarray(value.tensor))
                    found.setdefault(split, {}).setdefault(value.tag, []).append((event.step, number))
    assert set(found["train"]) == {"loss", "accuracy", "lr"}
    assert set(found["validation"]) == {"val_loss", "val_accuracy"}
    assert found["validation"]["val_accuracy"] == [(1, pytest.approx(0.88)), (2, pytest.approx(0.44))]
    # Katib's bare name `accuracy` matches tags starting with it: only training values do.
    assert not any(tag.startswith("accuracy") for tag in found["validation"])
    assert not any(tag.startswith("val_") for tag in found["train"])


def test_metrics_module_does_not_import_tensorflow():
    code = ("import sys, trainer.metrics, trainer.args, trainer.__main__; "
            "sys.exit(1 if 'tensorflow' in sys.modules or 'keras' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
