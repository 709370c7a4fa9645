"""Collectors read a trial as Katib's would, and say why the objective is missing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from katib_hp.local.collect import (
    CollectorKind,
    CollectorSpec,
    Follower,
    LineParser,
    MetricLog,
    collect,
    observe,
)
from katib_hp.local.errors import UnsupportedError
from katib_hp.local.tfevent import matches
from katib_hp.results import Objective

OBJ = Objective("val_accuracy", "maximize", additional=("loss",), strategies={"val_accuracy": "max", "loss": "min"})
STDOUT = CollectorSpec(CollectorKind.STDOUT)


def run(tmp_path: Path, text: str, spec: CollectorSpec = STDOUT, objective: Objective = OBJ):
    log = tmp_path / "log.txt"
    log.write_text(text)
    return collect(spec, objective, source=log, log_path=log)


def test_default_regex_reads_several_metrics_per_line_with_exact_names(tmp_path: Path) -> None:
    found = run(tmp_path, "epoch=1 loss = 1.2e-3 val_accuracy=.90\n"
                          "epoch=2 loss=0.5 val_accuracy_top5=0.99 val_accuracy=0.80\n")
    assert found.available
    assert found.series("val_accuracy") == (0.9, 0.8)  # val_accuracy_top5 is another name
    assert found.objective == 0.9
    assert found.metrics["loss"].min == pytest.approx(1.2e-3)
    assert found.metrics["loss"].latest == 0.5
    assert found.metrics["val_accuracy"].latest == 0.8


def test_lines_without_a_declared_name_are_not_parsed() -> None:
    parser = LineParser(["val_accuracy"])
    assert parser.parse("accuracy=0.5") == []
    assert parser.parse("x=1 val_accuracy=0.5") == [MetricLog("val_accuracy", "0.5")]


def test_latest_follows_rfc3339_timestamps_not_line_order(tmp_path: Path) -> None:
    found = run(tmp_path, "2026-01-02T03:04:06Z val_accuracy=0.7\n"
                          "2026-01-02T03:04:05.123456789Z val_accuracy=0.9\n")
    assert found.metrics["val_accuracy"].latest == 0.7
    latest = Objective("val_accuracy", strategies={"val_accuracy": "latest"})
    assert run(tmp_path, "val_accuracy=0.3\nval_accuracy=0.2\n", objective=latest).objective == 0.2


def test_strategy_min_for_a_minimized_objective(tmp_path: Path) -> None:
    objective = Objective("loss", "minimize")
    found = run(tmp_path, "loss=0.5\nloss=0.2\nloss=0.4\n", objective=objective)
    assert (found.objective, found.metrics["loss"].max, found.metrics["loss"].latest) == (0.2, 0.5, 0.4)


def test_missing_objective_reports_only_unavailable(tmp_path: Path) -> None:
    found = run(tmp_path, "loss=0.5\n")
    assert not found.available
    assert found.objective is None
    assert found.metrics["loss"].latest is None  # Katib drops every metric then


def test_nan_matches_with_an_empty_value_and_is_reported(tmp_path: Path) -> None:
    found = run(tmp_path, "epoch=1 val_accuracy=nan loss=inf\n")
    assert found.available  # Katib stores the empty value and calls it available
    assert found.objective is None
    assert "not finite" in found.explanation and "nan" in found.explanation


@pytest.mark.parametrize(("text", "expected"), [
    ("epoch 1: loss: 0.3 - val_accuracy: 0.9\n", "Katib needs val_accuracy=<number>"),
    ("epoch=1 val_acc=0.91\n", "printed 'epoch=1 val_acc=0.91' but the objective is 'val_accuracy'"),
    ("", "nothing was printed"),
    ("hello world\nloss=0.3\n", "nothing printed matched 'val_accuracy=<number>'"),
    ("val_accuracy is great\n", "'val_accuracy' appears in the trial's output but never as val_accuracy=<number>"),
], ids=["colon", "wrong-name", "empty", "no-match", "mentioned"])
def test_explains_why_the_objective_is_missing(tmp_path: Path, text: str, expected: str) -> None:
    found = run(tmp_path, text)
    assert not found.available
    assert expected in found.explanation


def test_custom_filter_replaces_the_default_and_needs_two_groups(tmp_path: Path) -> None:
    spec = CollectorSpec(CollectorKind.STDOUT, filters=(r"([\w|-]+)\s*:\s*((-?\d+)(\.\d+)?)", r"(val_accuracy)"))
    found = run(tmp_path, "val_accuracy: 0.75\nval_accuracy=0.99\n", spec)
    assert found.series("val_accuracy") == (0.75,)
    assert any("has 1 group(s)" in p for p in found.problems)


def test_log_tail_holds_the_last_lines(tmp_path: Path) -> None:
    found = run(tmp_path, "".join(f"line {i}\n" for i in range(30)))
    assert found.log_tail[-1] == "line 29" and len(found.log_tail) == 20


def test_json_reads_string_values_and_timestamps(tmp_path: Path) -> None:
    spec = CollectorSpec(CollectorKind.FILE, "/var/log/katib/metrics.json", "JSON")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"val_accuracy": "0.5", "timestamp": 1700000010}) + "\n\n"
                       + json.dumps({"val_accuracy": "0.8", "timestamp": "2023-11-14T22:13:20Z"}) + "\n")
    found = collect(spec, OBJ, source=metrics, log_path=tmp_path / "log.txt")
    assert found.series("val_accuracy") == (0.5, 0.8)
    assert found.metrics["val_accuracy"].latest == 0.5  # its timestamp is newer


def test_json_numbers_are_ignored_as_katib_does(tmp_path: Path) -> None:
    spec = CollectorSpec(CollectorKind.FILE, "/m/metrics.json", "JSON")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"val_accuracy": 0.9}) + "\n")
    found = collect(spec, OBJ, source=metrics, log_path=tmp_path / "log.txt")
    assert not found.available
    assert "JSON number" in found.explanation and '"val_accuracy": "0.9"' in found.explanation


def test_a_non_json_line_is_fatal(tmp_path: Path) -> None:
    spec = CollectorSpec(CollectorKind.FILE, "/m/metrics.json", "JSON")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"val_accuracy": "0.9"}) + "\nval_accuracy=0.9\n")
    found = collect(spec, OBJ, source=metrics, log_path=tmp_path / "log.txt")
    assert not found.available
    assert "not JSON" in found.fatal and "trial fails" in found.fatal


def test_a_missing_metrics_file_is_fatal(tmp_path: Path) -> None:
    spec = CollectorSpec(CollectorKind.FILE, "/var/log/katib/metrics.log")
    found = collect(spec, OBJ, source=tmp_path / "nope.log", log_path=tmp_path / "log.txt")
    assert "never written" in found.fatal


def test_follower_parses_only_complete_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    follower = Follower(path, LineParser(["val_accuracy"]))
    assert follower.poll() == []
    path.write_text("val_accuracy=0.1\nval_accur")
    assert [log.value for log in follower.poll()] == ["0.1"]
    with open(path, "a") as handle:
        handle.write("acy=0.2\n")
    assert [log.value for log in follower.poll()] == ["0.2"]
    assert follower.poll() == []


def test_observe_falls_back_to_latest_when_nothing_parses() -> None:
    _, value, available = observe([MetricLog("val_accuracy", "high")], OBJ)
    assert available and value is None


@pytest.mark.parametrize(("kind", "word"), [("Push", "katib-db-manager"), ("Custom", "container image"),
                                            ("PrometheusMetric", "HTTP"), ("None", "unknown")])
def test_cluster_only_collectors_are_refused(kind: str, word: str) -> None:
    with pytest.raises(UnsupportedError, match=word) as info:
        CollectorSpec.from_spec({"metricsCollectorSpec": {"collector": {"kind": kind}}})
    assert "StdOut" in str(info.value) and "TensorFlowEvent" in str(info.value)


def test_collector_defaults() -> None:
    file = CollectorSpec.from_spec({"metricsCollectorSpec": {"collector": {"kind": "File"}}})
    assert (file.path, file.file_format, file.mount_dir) == ("/var/log/katib/metrics.log", "TEXT", "/var/log/katib")
    events = CollectorSpec.from_spec({"metricsCollectorSpec": {"collector": {"kind": "TensorFlowEvent"}}})
    assert events.mount_dir == "/var/log/katib/tfevent" and not events.live


# --- TensorFlowEvent ------------------------------------------------------------------------------------


def test_tag_rules() -> None:
    assert matches("epoch_accuracy", "validation/epoch_accuracy", "/x/logs/validation/events.out")
    assert not matches("epoch_accuracy", "validation/epoch_accuracy", "/x/logs/train/events.out")
    assert matches("epoch_accuracy", "epoch_accuracy", "/x/logs/train/events.out")
    assert matches("accuracy_top1", "accuracy", "/x/events.out")  # a prefix of the tag is enough
    assert not matches("val_accuracy", "accuracy", "/x/events.out")


def _write_events(folder: Path, tag: str, values: list[float], *, tensor: bool) -> None:
    tensorboard = pytest.importorskip("tensorboard")
    del tensorboard
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    writer = EventFileWriter(str(folder))
    for step, value in enumerate(values):
        if tensor:
            metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
                plugin_name="scalars"))
            item = summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(value),
                                             metadata=metadata)
        else:
            item = summary_pb2.Summary.Value(tag=tag, simple_value=value)
        writer.add_event(event_pb2.Event(wall_time=time.time() + step, step=step,
                                         summary=summary_pb2.Summary(value=[item])))
    writer.close()


def test_tfevent_reads_tensors_and_legacy_scalars_by_folder(tmp_path: Path) -> None:
    _write_events(tmp_path / "logs" / "train", "epoch_accuracy", [0.99, 0.98], tensor=True)
    _write_events(tmp_path / "logs" / "validation", "epoch_accuracy", [0.5, 0.7], tensor=False)
    spec = CollectorSpec(CollectorKind.TFEVENT, "/logs")
    scoped = Objective("validation/epoch_accuracy", "maximize", strategies={})
    found = collect(spec, scoped, source=tmp_path / "logs", log_path=tmp_path / "log.txt")
    assert found.series("validation/epoch_accuracy") == pytest.approx((0.5, 0.7))
    assert found.objective == pytest.approx(0.7)
    bare = Objective("epoch_accuracy", "maximize")
    mixed = collect(spec, bare, source=tmp_path / "logs", log_path=tmp_path / "log.txt")
    assert sorted(mixed.series("epoch_accuracy")) == pytest.approx([0.5, 0.7, 0.98, 0.99])  # train values mix in


def test_tfevent_explains_a_tag_mismatch(tmp_path: Path) -> None:
    _write_events(tmp_path / "logs" / "validation", "epoch_accuracy", [0.5], tensor=False)
    spec = CollectorSpec(CollectorKind.TFEVENT, "/logs")
    found = collect(spec, Objective("val_accuracy"), source=tmp_path / "logs", log_path=tmp_path / "log.txt")
    assert not found.available
    assert "epoch_accuracy" in found.explanation
    missing = collect(spec, Objective("val_accuracy"), source=tmp_path / "none", log_path=tmp_path / "log.txt")
    assert "never created" in missing.explanation
