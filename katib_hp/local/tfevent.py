"""Katib's TensorFlowEvent collector on a local directory (REFERENCE §4.4).

Every file under the directory (recursively) is loaded with TensorBoard's ``EventAccumulator``, reading TF2
tensor summaries and legacy scalars. A metric ``a/b`` takes tags starting with ``b`` from files whose folder
ends with ``a``; a bare ``b`` takes tags starting with ``b`` from any folder. Files that cannot be read are
skipped with a note, as Katib does. Needs the ``tensorboard`` package (no TensorFlow).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from katib_hp.local.collect import MetricLog
from katib_hp.local.errors import LocalRunError


def _modules() -> tuple[Any, Any]:
    try:
        accumulator = importlib.import_module("tensorboard.backend.event_processing.event_accumulator")
        tensor_util = importlib.import_module("tensorboard.util.tensor_util")
    except ImportError as exc:
        raise LocalRunError("the TensorFlowEvent collector needs the tensorboard package to read event files",
                            hint="pip install 'katib-hp[local]' tensorboard (protobuf stays compatible with "
                                 "tensorboard<2.21)") from exc
    return accumulator, tensor_util


def matches(tag: str, metric: str, event_file: str) -> bool:
    """Katib's tag rule: ``tag`` starts with the metric's last part, and ``a/b`` also needs folder ``…a``."""
    parts = metric.split("/")
    folder = os.path.dirname(event_file)
    wanted = os.path.dirname(metric) if len(parts) >= 2 else folder
    return tag.startswith(parts[-1]) and folder.endswith(wanted)


def read_event_dir(directory: Path, metrics: Sequence[str]) -> tuple[list[MetricLog], list[str], list[str]]:
    """(metric logs, problems, every scalar tag seen) for the event files under ``directory``."""
    logs: list[MetricLog] = []
    problems: list[str] = []
    tags_seen: list[str] = []
    if not directory.is_dir():
        return logs, [f"the event directory {directory} was never created"], tags_seen
    accumulator, tensor_util = _modules()
    guidance = {accumulator.TENSORS: 0, accumulator.SCALARS: 0}
    for root, _dirs, files in sorted(os.walk(directory)):
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                events = accumulator.EventAccumulator(path, size_guidance=guidance)
                events.Reload()
                tags = events.Tags()
                for tag in tags[accumulator.TENSORS]:
                    tags_seen.append(tag)
                    for metric in metrics:
                        if matches(tag, metric, path):
                            logs.extend(MetricLog(metric, str(float(tensor_util.make_ndarray(e.tensor_proto))),
                                                  _time(e.wall_time)) for e in events.Tensors(tag))
                for tag in tags[accumulator.SCALARS]:
                    tags_seen.append(tag)
                    for metric in metrics:
                        if matches(tag, metric, path):
                            logs.extend(MetricLog(metric, str(e.value), _time(e.wall_time))
                                        for e in events.Scalars(tag))
            except Exception as exc:  # Katib skips a file it cannot parse with a warning
                problems.append(f"skipped {path}: {exc}")
    return logs, problems, sorted(set(tags_seen))


def _time(wall_time: float) -> datetime:
    return datetime.fromtimestamp(wall_time, UTC)
