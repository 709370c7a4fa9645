"""``katib-hp run-local``: the same Experiment on this machine, with Katib's algorithms and metric rules."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

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
      katib-hp run-local examples/local/digits-bayes.yaml
      katib-hp run-local manifests/cpu/digits-hyperband.yaml --work-dir runs/hb
      katib-hp best runs/digits-bayes -o args
    """
    from katib_hp.api import prepare_experiments

    prepared = prepare_experiments(source)
    if len(prepared) > 1:
        names = ", ".join(p.name for p in prepared)
        raise KatibHPError(f"{source} holds {len(prepared)} Experiments ({names}); run-local runs one at a time",
                           path=str(source), hint="split the file, or set `split:` off in the config")
    item = prepared[0]
    echo_problems(item.problems, min_severity=Severity.WARNING)
    status = _run(item.manifest, work_dir or Path("runs") / item.name, python=python, resume=resume, seed=seed,
                  cold=cold)
    echo_trials(status.trials, status.objective, fmt)
    ok, reason = status.outcome()
    if not ok:
        raise LocalRunFailed(reason, hint=f"see the logs in {work_dir or Path('runs') / item.name}/trials/")
    best = status.best
    assert best is not None  # outcome() is ok only with a best trial
    from katib_hp.client import trial_args

    args = trial_args(item.manifest.get("spec") or {}, best)
    click.echo(f"\nbest trial {best.name}: {status.objective.metric}={best.objective:.6g}", err=True)
    click.echo(f"  retrain with:   {shlex.join(['python', '-m', 'trainer', *_flags(args)])}", err=True)
    click.echo(f"  on a cluster:   katib-hp submit {shlex.quote(str(source))} -n <namespace> --label-namespace "
               "--watch", err=True)


def _flags(args: list[str]) -> list[str]:
    return [a for a in args if a.startswith("--")]


def _run(manifest: dict[str, Any], work_dir: Path, *, python: str | None, resume: bool, seed: int | None,
         cold: bool) -> Any:
    from katib_hp.local.launch import Launcher, SubprocessLauncher
    from katib_hp.local.runner import LocalRun, default_python

    interpreter = python or default_python()
    launcher: Launcher
    if cold:
        launcher = SubprocessLauncher()
    else:
        from katib_hp.local.zygote import ZygoteLauncher

        launcher = ZygoteLauncher(interpreter, fallback=SubprocessLauncher())
    progress = Progress()
    try:
        run = LocalRun(manifest, work_dir=work_dir, launcher=launcher, python=interpreter, seed=seed, resume=resume)
        for line in run.notes:
            click.echo(f"note: {line}", err=True)
        click.echo(f"running {manifest['metadata']['name']!r} locally; results in {work_dir}", err=True)
        return run.run(on_update=progress.update)
    finally:
        progress.close()
        launcher.close()
