"""Printing results, shared by the cluster and the local commands: progress lines, trial tables, the best trial.

Both backends hand over ``ExperimentStatus`` / ``TrialResult``; this module is the only one that turns them
into text, so ``katib-hp trials`` looks the same for a cluster experiment and a local run.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from typing import Any

import click

from katib_hp.results import ExperimentStatus, Objective, TrialResult, trial_rows

OUTPUT_FORMATS = ("table", "json", "yaml", "csv")


class Progress:
    """Live progress on stderr: one rewritten line on a terminal, a new line per change otherwise."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = ""
        self._said: set[str] = set()

    def update(self, status: ExperimentStatus, diagnostics: Sequence[str] = ()) -> None:
        for line in diagnostics:
            if line not in self._said:
                self._said.add(line)
                self._write(f"! {line}", final=True)
        text = status.progress_line()
        if text != self._last:
            self._last = text
            self._write(text, final=not self.live)

    def _write(self, text: str, *, final: bool) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self._last:
            self.stream.write("\n")
            self.stream.flush()
        self._last = ""


def echo_trials(trials: Sequence[TrialResult], objective: Objective, fmt: str) -> None:
    from katib_hp.output import render

    if fmt in ("json", "yaml"):
        click.echo(render([t.to_dict() for t in trials], fmt), nl=False)
    else:
        click.echo(render(trial_rows(trials, objective), fmt), nl=False)


def echo_best(best: TrialResult, objective: Objective, args: Sequence[str], fmt: str) -> None:
    from katib_hp.output import render_mapping

    if fmt == "args":
        click.echo(shlex.join(args))
        return
    if fmt in ("json", "yaml"):
        data = best.to_dict()
        data["args"] = list(args)
        click.echo(render_mapping(data, fmt), nl=False)
        return
    record: dict[str, Any] = {"trial": best.name, objective.metric: best.objective}
    record.update(best.parameters)
    for name, value in best.metrics.items():
        if name != objective.metric:
            record[name] = value.value(objective.strategy(name))
    if fmt == "csv":
        from katib_hp.output import render

        click.echo(render([record], "csv"), nl=False)
        return
    click.echo(render_mapping(record), nl=False)
    click.echo(f"\nretrain with:  {shlex.join(args)}")


def echo_status(status: ExperimentStatus, fmt: str) -> None:
    from katib_hp.output import render_mapping

    click.echo(render_mapping(status.summary(), fmt), nl=False)
