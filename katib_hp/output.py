"""One renderer for every command's data: table, json, yaml or csv on stdout."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from katib_hp.yamlio import dump_yaml

FORMATS = ("table", "json", "yaml", "csv")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value)
    if isinstance(value, Mapping):
        return " ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def render(rows: Sequence[Mapping[str, Any]], fmt: str = "table", columns: Sequence[str] | None = None) -> str:
    """Render rows (dicts with the same keys) in ``fmt``; the text ends with a newline."""
    cols = list(columns or (rows[0].keys() if rows else []))
    if fmt == "json":
        return json.dumps([dict(r) for r in rows], indent=2, default=str) + "\n"
    if fmt == "yaml":
        return dump_yaml([dict(r) for r in rows])
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _cell(row.get(c)) for c in cols})
        return buffer.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown output format {fmt!r}")
    if not rows:
        return "(none)\n"
    table = [[c.upper().replace("_", " ") for c in cols]] + [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() + "\n"
                   for line in table)


def render_mapping(data: Mapping[str, Any], fmt: str = "table") -> str:
    """Render one record: a two-column table, or the mapping itself for json/yaml."""
    if fmt == "json":
        return json.dumps(dict(data), indent=2, default=str) + "\n"
    if fmt == "yaml":
        return dump_yaml(dict(data))
    if fmt == "csv":
        return render([data], "csv")
    width = max((len(k) for k in data), default=0)
    return "".join(f"{k.replace('_', ' ').ljust(width)}  {_cell(v)}\n" for k, v in data.items())


def write_atomic(path: str, text: str) -> None:
    """Write the whole text or nothing: a temp file in the same folder, then a rename."""
    import os
    import tempfile
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
