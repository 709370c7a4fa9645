"""Reading a trial's metrics the way Katib's collectors read them (REFERENCE §4), and saying why not.

StdOut parses the trial's log and File parses ``fileSystemPath`` (TEXT: the regex filter, one line at a time;
JSON: one object per line, string values only). TensorFlowEvent walks a directory of event files
(``tfevent.py``). The metric logs then become an observation as Katib's trial controller builds it: min, max
and latest per metric, ``latest`` by timestamp (ties: the later line), the objective per its strategy, and
only ``{objective: "unavailable"}`` when the objective never appeared. ``Follower`` parses a growing file for
live early stopping and progress. When the objective is missing, ``Collection.problems`` says why.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from katib_hp.local.errors import LocalRunError, UnsupportedError
from katib_hp.results import UNAVAILABLE, MetricValue, Objective

DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
DEFAULT_METRICS_FILE = "/var/log/katib/metrics.log"
DEFAULT_TFEVENT_DIR = "/var/log/katib/tfevent/"
TAIL_LINES = 20
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_ZERO_TIME = datetime.min.replace(tzinfo=UTC)


class CollectorKind(StrEnum):
    STDOUT = "StdOut"
    FILE = "File"
    TFEVENT = "TensorFlowEvent"
    PROMETHEUS = "PrometheusMetric"
    CUSTOM = "Custom"
    PUSH = "Push"


LOCAL_KINDS = (CollectorKind.STDOUT, CollectorKind.FILE, CollectorKind.TFEVENT)


@dataclass(frozen=True)
class CollectorSpec:
    """``spec.metricsCollectorSpec`` after Katib's defaulting; ``path`` is the path inside the container."""

    kind: CollectorKind = CollectorKind.STDOUT
    path: str = ""
    file_format: str = "TEXT"
    filters: tuple[str, ...] = ()

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> CollectorSpec:
        """Read an Experiment spec; raises ``UnsupportedError`` for kinds only a cluster can collect."""
        mc = spec.get("metricsCollectorSpec") or {}
        raw = (mc.get("collector") or {}).get("kind") or "StdOut"
        where = "spec.metricsCollectorSpec.collector.kind"
        try:
            kind = CollectorKind(raw)
        except ValueError as exc:
            raise UnsupportedError("unknown metrics collector kind", path=where, value=raw,
                                   hint="use StdOut, File or TensorFlowEvent") from exc
        if kind not in LOCAL_KINDS:
            why = {CollectorKind.PUSH: "Push needs katib-db-manager to receive report_metrics() calls",
                   CollectorKind.CUSTOM: "a Custom collector is a container image that runs next to the trial",
                   CollectorKind.PROMETHEUS: "PrometheusMetric scrapes the pod over HTTP"}[kind]
            raise UnsupportedError(f"the {kind} collector cannot run locally ({why})", path=where, value=raw,
                                   hint="run-local supports StdOut, File (TEXT or JSON) and TensorFlowEvent; "
                                        "switch the collector to try the experiment here")
        source = mc.get("source") or {}
        fs = source.get("fileSystemPath") or {}
        default = {CollectorKind.FILE: DEFAULT_METRICS_FILE, CollectorKind.TFEVENT: DEFAULT_TFEVENT_DIR}
        path = str(fs.get("path") or default.get(kind, ""))
        file_format = str(fs.get("format") or "TEXT")
        if kind is CollectorKind.FILE and file_format not in ("TEXT", "JSON"):
            raise LocalRunError("format must be TEXT or JSON", path="spec.metricsCollectorSpec.source."
                                "fileSystemPath.format", value=file_format)
        filters = tuple(str(f) for f in (source.get("filter") or {}).get("metricsFormat") or ())
        return cls(kind, path, file_format if kind is CollectorKind.FILE else "TEXT", filters)

    @property
    def mount_dir(self) -> str | None:
        """The container directory Katib mounts its emptyDir on (File: the file's folder; TFEvent: the path)."""
        if self.kind is CollectorKind.FILE:
            return str(Path(self.path).parent)
        if self.kind is CollectorKind.TFEVENT:
            return self.path.rstrip("/") or "/"
        return None

    @property
    def live(self) -> bool:
        """Katib parses StdOut and File lines live (early stopping); event files only at the end."""
        return self.kind is not CollectorKind.TFEVENT


@dataclass(frozen=True)
class MetricLog:
    """One reported value, as Katib stores it: a string, with a timestamp (None: Go's zero time)."""

    name: str
    value: str
    timestamp: datetime | None = None


class CollectorFatal(Exception):
    """The collector would exit with a fatal error (the trial's pod then fails)."""


class LineParser:
    """Turns one line of a TEXT or JSON metrics source into metric logs, as the file collector does."""

    def __init__(self, metrics: Sequence[str], *, filters: Sequence[str] = (), file_format: str = "TEXT") -> None:
        self.metrics = tuple(metrics)
        self.file_format = file_format
        self.problems: list[str] = []
        self.regexes: list[re.Pattern[str]] = []
        for text in filters or (DEFAULT_FILTER,):
            try:
                regex = re.compile(text, re.ASCII)
            except re.error as exc:
                self.problems.append(f"filter regex {text!r} does not compile ({exc}); Katib's collector would "
                                     "crash on it")
                continue
            if regex.groups < 2:
                self.problems.append(f"filter regex {text!r} has {regex.groups} group(s); Katib needs two "
                                     "(name, value) and ignores its matches")
            self.regexes.append(regex)

    def parse(self, line: str) -> list[MetricLog]:
        return self._json(line) if self.file_format == "JSON" else self._text(line)

    def _text(self, line: str) -> list[MetricLog]:
        # only lines naming a declared metric are parsed, and a match counts only for an exact name
        if not any(m in line for m in self.metrics):
            return []
        stamp = text_timestamp(line)
        logs: list[MetricLog] = []
        for regex in self.regexes:
            if regex.groups < 2:
                continue
            for match in regex.finditer(line):
                name, value = (match.group(1) or "").strip(), (match.group(2) or "").strip()
                if name in self.metrics:
                    logs.append(MetricLog(name, value, stamp))
        return logs

    def _json(self, line: str) -> list[MetricLog]:
        if line == "":
            return []
        try:
            obj = json.loads(line, parse_constant=_reject_constant)
        except ValueError as exc:
            raise CollectorFatal(f"a line of the JSON metrics file is not JSON ({exc}): {clip_text(line)!r}; Katib's "
                                 "collector exits with 'failed to parse the json object' and the trial fails") from exc
        if not isinstance(obj, dict):
            raise CollectorFatal(f"a line of the JSON metrics file is not a JSON object: {clip_text(line)!r}; "
                                 "Katib's collector exits with an error and the trial fails")
        stamp = json_timestamp(obj.get("timestamp"))
        logs = []
        for name in self.metrics:
            value = obj.get(name)
            if isinstance(value, str):
                logs.append(MetricLog(name, value, stamp))
        return logs


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def clip_text(text: str, width: int = 120) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def text_timestamp(line: str) -> datetime | None:
    """The first space-separated token as an RFC3339(Nano) time, else None (Katib: zero time)."""
    first, sep, _ = line.partition(" ")
    return _rfc3339(first) if sep else None


def _rfc3339(text: str) -> datetime | None:
    if not _RFC3339.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None


def json_timestamp(value: Any) -> datetime | None:
    """A JSON line's ``timestamp``: an RFC3339Nano string or epoch seconds."""
    if isinstance(value, str):
        return _rfc3339(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(value, UTC)
    return None


def parse_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class Collection:
    """What the collector reported for one trial, and why the objective is missing when it is."""

    objective_name: str
    logs: tuple[MetricLog, ...] = ()
    metrics: Mapping[str, MetricValue] = field(default_factory=dict)
    objective: float | None = None
    available: bool = False
    problems: tuple[str, ...] = ()
    fatal: str = ""
    log_tail: tuple[str, ...] = ()

    def series(self, name: str) -> tuple[float, ...]:
        """The finite values of one metric in the order they were reported."""
        values = (_finite(parse_float(log.value)) for log in self.logs if log.name == name)
        return tuple(v for v in values if v is not None)

    @property
    def all_series(self) -> dict[str, tuple[float, ...]]:
        names = dict.fromkeys(log.name for log in self.logs)
        return {name: self.series(name) for name in names}

    @property
    def explanation(self) -> str:
        return " ".join(self.problems)


def observe(logs: Sequence[MetricLog], objective: Objective) -> tuple[dict[str, MetricValue], float | None, bool]:
    """Katib's observation from metric logs: (metrics, objective value per its strategy, available)."""
    names = (objective.metric, *objective.additional)
    if not any(log.name == objective.metric for log in logs):
        # the collector then reports only {objective: "unavailable"}; every metric is unavailable
        return {n: MetricValue(n) for n in names}, None, False
    raw: dict[str, list[str]] = {n: [UNAVAILABLE] * 3 for n in names}  # min, max, latest
    stamps: dict[str, datetime] = {}
    for log in logs:
        entry = raw.get(log.name)
        if entry is None:
            continue
        number = parse_float(log.value)
        if number is not None:
            if entry[0] == UNAVAILABLE:
                entry[0] = entry[1] = log.value
            elif number < float(entry[0]):
                entry[0] = log.value
            elif number > float(entry[1]):
                entry[1] = log.value
        stamp = log.timestamp or _ZERO_TIME
        if log.name not in stamps or stamp >= stamps[log.name]:
            stamps[log.name], entry[2] = stamp, log.value
    metrics = {n: MetricValue(n, *(_finite(parse_float(v)) if v != UNAVAILABLE else None for v in raw[n])) for n in names}
    low, high, latest = raw[objective.metric]
    strategy = objective.strategy(objective.metric)
    # as Katib's status code: min/max fall back to latest when no value parsed as a number
    chosen = {"min": low, "max": high}.get(strategy, latest)
    chosen = latest if chosen == UNAVAILABLE else chosen
    return metrics, _finite(parse_float(chosen)), latest != UNAVAILABLE


def read_lines(path: Path) -> list[str]:
    """A text file split on newlines as Katib splits it (a missing file reads as no lines)."""
    try:
        return path.read_bytes().decode("utf-8", "replace").split("\n")
    except FileNotFoundError:
        return []


def tail(path: Path, count: int = TAIL_LINES) -> tuple[str, ...]:
    """The last non-empty lines of a log."""
    lines = [line.rstrip("\r") for line in read_lines(path) if line.strip()]
    return tuple(lines[-count:])


class Follower:
    """Parses a growing TEXT/JSON file incrementally: only complete lines, from where it stopped."""

    def __init__(self, path: Path, parser: LineParser) -> None:
        self.path = path
        self.parser = parser
        self.fatal = ""
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[MetricLog]:
        """New metric logs since the last call (nothing after the collector would have died)."""
        if self.fatal:
            return []
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        logs: list[MetricLog] = []
        for line in lines:
            try:
                logs.extend(self.parser.parse(line.decode("utf-8", "replace")))
            except CollectorFatal as exc:
                self.fatal = str(exc)
                break
        return logs


def collect(spec: CollectorSpec, objective: Objective, *, source: Path, log_path: Path) -> Collection:
    """Read a finished trial: ``source`` is the local file (StdOut: the log) or the event directory."""
    names = (objective.metric, *objective.additional)
    problems: list[str] = []
    fatal = ""
    lines: list[str] = []
    if spec.kind is CollectorKind.TFEVENT:
        from katib_hp.local.tfevent import read_event_dir

        logs, problems, tags = read_event_dir(source, names)
    else:
        parser = LineParser(names, filters=spec.filters, file_format=spec.file_format)
        problems.extend(parser.problems)
        tags = []
        logs = []
        if spec.kind is CollectorKind.FILE and not source.exists():
            fatal = (f"the metrics file {spec.path} was never written (looked for {source}); Katib's collector "
                     "fails to open it and the trial fails")
        lines = read_lines(source)
        for line in lines:
            try:
                logs.extend(parser.parse(line))
            except CollectorFatal as exc:
                fatal = str(exc)
                logs = []
                break
    from katib_hp.local.diagnose import diagnose

    metrics, value, available = observe(logs, objective)
    problems.extend(diagnose(spec, objective, lines, logs, tags))
    if fatal:
        problems.insert(0, fatal)
    return Collection(objective.metric, tuple(logs), metrics, value, available and not fatal, tuple(problems),
                      fatal, tail(log_path))
