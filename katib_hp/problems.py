"""What the linter and the compiler tell the user: a problem at a field path, with the fix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"  # Katib refuses it, or it fails after submission
    WARNING = "warning"  # it runs, but not the way the user most likely expects
    NOTE = "note"  # a rewrite the compiler made, or a fact worth knowing

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "note": 2}[self.value]


@dataclass(frozen=True)
class Problem:
    """One finding. ``path`` is a field path (``spec.parameters[2].feasibleSpace.min``) or a file/flag."""

    severity: Severity
    path: str
    message: str
    hint: str = ""
    value: Any = None
    rule: str = ""  # the REFERENCE rule it enforces: V1..V24 (webhook), E1..E9 (after admission)
    source: str = ""  # file (and document) the problem was found in

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self) -> str:
        where = f"{self.source}: {self.path}" if self.source else self.path
        text = f"{self.severity.value}: {where}: {self.message}"
        if self.value is not None:
            text += f" (got {self.value!r})"
        if self.hint:
            text += f"; {self.hint}"
        if self.rule:
            text += f" [{self.rule}]"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "source": self.source,
            "path": self.path,
            "message": self.message,
            "value": self.value,
            "hint": self.hint,
            "rule": self.rule,
        }


def error(path: str, message: str, hint: str = "", value: Any = None, rule: str = "") -> Problem:
    return Problem(Severity.ERROR, path, message, hint, value, rule)


def warning(path: str, message: str, hint: str = "", value: Any = None, rule: str = "") -> Problem:
    return Problem(Severity.WARNING, path, message, hint, value, rule)


def note(path: str, message: str, hint: str = "", value: Any = None, rule: str = "") -> Problem:
    return Problem(Severity.NOTE, path, message, hint, value, rule)


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Errors first, then warnings, then notes; stable within each severity."""
    return sorted(problems, key=lambda p: p.severity.rank)
