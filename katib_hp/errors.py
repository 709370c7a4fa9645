"""One exception hierarchy for the whole package.

Every error a user can cause carries the place it happened (``path``: a file, a field path or a flag), the
value received, and a hint that says how to fix it. The CLI prints ``str(error)`` as one line and exits with
``exit_code``.
"""

from __future__ import annotations

from typing import Any


class KatibHPError(Exception):
    """Base class of every error katib-hp raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, path: str = "", value: Any = None, hint: str = "") -> None:
        self.message = message
        self.path = path
        self.value = value
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.hint:
            text = f"{text}; {self.hint}"
        return text


class SpaceError(KatibHPError, ValueError):
    """A search space is malformed (bad bounds, unknown sampling, a value outside the space...)."""

    exit_code = 2


class ConfigError(KatibHPError, ValueError):
    """A tuning config or manifest file cannot be read or has invalid content."""

    exit_code = 2


def did_you_mean(word: str, options: Any) -> str:
    """Return ``"did you mean 'x'?"`` for the closest option, or a list of the valid ones."""
    import difflib

    choices = sorted(str(o) for o in options)
    lowered = word.lower()
    close = [c for c in choices if c.lower() == lowered] or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close and len(word) >= 3:
        close = [c for c in choices if c.lower().startswith(lowered) or lowered.startswith(c.lower())][:1]
    if close:
        return f"did you mean '{close[0]}'?"
    return "valid: " + ", ".join(choices)
