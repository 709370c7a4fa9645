"""``katib-hp run-local``: the same Experiment on this machine, with Katib's algorithms and metric rules."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from katib_hp.cli import cli, echo_problems
from katib_hp.cli_results import OUTPUT_FORMATS, Progress, echo_trials
from katib_hp.errors import KatibHPError
from katib_hp.problems import Severity


class LocalRunFailed(KatibHPError):
    """The local run ended without a usable result."""

    exit_code = 1


@cli.command(name="run-local")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where trials and results are kept (default: runs/<experiment name>).")
@click.option("--python", "python", metavar="PATH",
              help="Interpreter for the trials' `python` (default: $KATIB_HP_PYTHON, then .venv-trainer/bin/python).")
@click.option("--resume", is_flag=True, help="Continue an interrupted or finished run in the work directory.")
@click.option("--seed", type=int, help="Seed for trial names and the suggestion service (random_state wins).")
@click.option("--cold", is_flag=True, help="Start a fresh process per trial instead of the warm trainer worker.")
@click.option("-o", "--output", "fmt", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True,
              help="Format of the trials table printed at the end.")
def run_local(source: Path, work_dir: Path | None, python: str | None, resume: bool, seed: int | None,
              cold: bool, fmt: str) -> None:
    """Run a Katib Experiment (a tuning config or any Experiment manifest) here, before cluster GPUs.

    Each trial is a local process started from the trial template's command and args, substituted as Katib
    does; metrics are collected the way the configured collector would; suggestions come from the libraries
    Katib's own suggestion services use. Results are kept in the work directory as trials finish; Ctrl-C
    stops cleanly and `--resume` continues.

    \b
    Example:
      katib-hp run-local examples/digits-quick.yaml
      katib-hp run-local manifests/cpu/digits-hyperband-cpu.yaml --work-dir runs/hb
      katib-hp best runs/digits-quick -o args
    """
    from katib_hp.api import prepare_experiments, run_local

    prepared = prepare_experiments(source)
    for item in prepared:
        echo_problems(item.problems, min_severity=Severity.WARNING)
    name = prepared[0].name
    directory = work_dir or Path("runs") / name
    progress = Progress()

    def notes(lines: list[str]) -> None:
        for line in lines:
            click.echo(f"note: {line}", err=True)
        click.echo(f"running {name!r} locally; results in {directory}", err=True)

    try:
        status = run_local(prepared[0] if len(prepared) == 1 else source, work_dir=directory,
                           python=python, resume=resume, seed=seed, warm=not cold, on_update=progress.update,
                           on_notes=notes)
    finally:
        progress.close()
    echo_trials(status.trials, status.objective, fmt)
    ok, reason = status.outcome()
    if not ok:
        raise LocalRunFailed(reason, hint=f"see `katib-hp trials {directory}` and the logs in {directory}/trials/")
    from katib_hp.client import best_of
    from katib_hp.substitute import trial_args

    best = best_of(status, local_dir=str(directory))
    args = trial_args(prepared[0].manifest.get("spec") or {}, best.parameters, trial_name=best.name)
    click.echo(f"\nbest trial {best.name}: {status.objective.metric}={best.objective:.6g}", err=True)
    click.echo(f"  retrain with:   {shlex.join(['python', '-m', 'trainer', *_flags(args)])}", err=True)
    click.echo(f"  on a cluster:   katib-hp submit {shlex.quote(str(source))} -n <namespace> --label-namespace "
               "--watch", err=True)


def _flags(args: list[str]) -> list[str]:
    return [a for a in args if a.startswith("--")]
