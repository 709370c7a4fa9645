"""Why a trial's objective is missing or unusable, in the user's terms (``Collection.problems``).

Katib only says "Metrics are not available". Looking at what the trial did print finds the usual causes:
``val_accuracy: 0.9`` where Katib needs ``name=value``, a near-miss name (``val_acc`` for ``val_accuracy``),
``nan`` values read as empty strings, JSON numbers where Katib reads only strings, event tags that do not
match, or an empty log.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Sequence

from katib_hp.local.collect import (
    DEFAULT_FILTER,
    CollectorKind,
    CollectorSpec,
    MetricLog,
    clip_text,
    parse_float,
)
from katib_hp.results import Objective


def diagnose(spec: CollectorSpec, objective: Objective, lines: Sequence[str], logs: Sequence[MetricLog],
             tags: Sequence[str] = ()) -> list[str]:
    """Plain-language reasons the objective is missing or unusable (empty when all is well)."""
    name = objective.metric
    found = [log for log in logs if log.name == name]
    problems: list[str] = []
    if spec.file_format == "JSON":
        problems.extend(_json_numbers(lines, (name, *objective.additional)))
    empty = [log for log in found if parse_float(log.value) is None or not math.isfinite(parse_float(log.value) or 0.0)]
    if empty:
        shown = empty[0].value or "<empty>"
        problems.append(f"{len(empty)} value(s) of {name!r} are not finite numbers (got {shown!r}): Katib's regex "
                        f"reads '{name}=nan' or 'inf' as an empty value and stores it as is; print only finite values")
    if found:
        return problems
    where = {CollectorKind.STDOUT: "the trial's output", CollectorKind.FILE: f"the metrics file {spec.path}",
             CollectorKind.TFEVENT: f"the event files under {spec.path}"}[spec.kind]
    if spec.kind is CollectorKind.TFEVENT:
        if not tags:
            problems.append(f"no event file with scalars was found under {spec.path}")
        else:
            problems.append(f"the objective {name!r} matched no tag in {where} (tags: {', '.join(sorted(tags))}); "
                            "a bare name matches tags that start with it in any folder, 'dir/name' only in "
                            "folders ending with dir" + _closest(name.split("/")[-1], tags, " (did you mean {!r}?)"))
        return problems
    text = [line for line in lines if line.strip()]
    if not text:
        problems.append(f"{where} is empty: nothing was printed")
        return problems
    if spec.file_format == "JSON":
        keys = sorted({k for line in text for k in _json_keys(line)})
        problems.append(f"no line of {where} has the key {name!r} with a string value"
                        + _closest(name, keys, " (did you mean {!r}?)"))
        return problems
    colon = next((line for line in text if re.search(rf"['\"]?{re.escape(name)}['\"]?\s*:\s*[-+.\d]", line)), None)
    if colon is not None and not spec.filters:
        problems.append(f"lines look like {clip_text(colon.strip(), 80)!r}: Katib needs {name}=<number> (or a "
                        "filter.metricsFormat regex that reads this form)")
        return problems
    printed = _printed_names(text)
    close = _closest(name, printed, "")
    if close:
        example = next(line for line in text if close in line)
        problems.append(f"the trial printed {clip_text(example.strip(), 80)!r} but the objective is {name!r}; the "
                        "metric name must match exactly")
    elif any(name in line for line in text):
        example = next(line for line in text if name in line)
        problems.append(f"{name!r} appears in {where} but never as {name}=<number> (e.g. "
                        f"{clip_text(example.strip(), 80)!r}); names may use only letters, digits, '_', '-' and '|'")
    else:
        pattern = "filter.metricsFormat" if spec.filters else f"'{name}=<number>'"
        problems.append(f"nothing printed matched {pattern} for the objective {name!r}"
                        + (f" (metric names seen: {', '.join(printed[:8])})" if printed else ""))
    return problems


def _printed_names(lines: Iterable[str]) -> list[str]:
    regex = re.compile(DEFAULT_FILTER, re.ASCII)
    names: dict[str, None] = {}
    for line in lines:
        for match in regex.finditer(line):
            if match.group(2):
                names[match.group(1)] = None
    return list(names)


def _closest(name: str, options: Sequence[str], template: str) -> str:
    options = [o for o in options if o != name]
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if not close:
        close = [o for o in options if o.startswith(name) or name.startswith(o)][:1]
    if not close:
        return ""
    return template.format(close[0]) if template else close[0]


def _json_keys(line: str) -> list[str]:
    try:
        obj = json.loads(line)
    except ValueError:
        return []
    return [str(k) for k in obj] if isinstance(obj, dict) else []


def _json_numbers(lines: Sequence[str], names: Sequence[str]) -> list[str]:
    for line in lines:
        try:
            obj = json.loads(line) if line else None
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        for name in names:
            value = obj.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return [f"{name!r} is written as a JSON number ({value}); Katib's JSON collector reads only string "
                        f"values (\"{name}\": \"{value}\") and silently ignores numbers"]
    return []
