"""``katib-hp``: a thin command line over the library.

Data goes to stdout, notes and progress to stderr. A user mistake is one ``Error:`` line and a non-zero exit
code, never a traceback. Heavy modules are imported inside the commands that need them, so ``--help``,
``generate`` and ``validate`` stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from katib_hp.errors import KatibHPError
from katib_hp.problems import Problem, Severity


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KatibHPError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def echo_problems(problems: Sequence[Problem], *, min_severity: Severity = Severity.NOTE) -> None:
    for problem in problems:
        if problem.severity.rank <= min_severity.rank:
            click.echo(problem.render(), err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="katib-hp", prog_name="katib-hp")
def cli() -> None:
    """Tune Keras models on Kubernetes with Kubeflow Katib.

    \b
    Example:
      katib-hp generate examples/digits-bayes.yaml > experiment.yaml
      katib-hp validate experiment.yaml
      katib-hp estimate examples/digits-hyperband.yaml --epoch-seconds 40
    """


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="Manifest format.")
@click.option("--output", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the manifest to this file (whole or not at all) instead of stdout.")
@click.option("--split", "split", metavar="PARAMETER",
              help="One Experiment per value of this tuned choice (overrides the config's `split`).")
@click.option("-q", "--quiet", is_flag=True, help="Show warnings only, not the notes about each rewrite.")
def generate(config: Path, fmt: str, output: Path | None, split: str | None, quiet: bool) -> None:
    """Compile a tuning config into a Katib Experiment that `kubectl apply` accepts as-is.

    Every rewrite the compiler makes for the chosen algorithm is reported on stderr.

    \b
    Example:
      katib-hp generate examples/digits-bayes.yaml --output manifests/digits-bayes.yaml
      katib-hp generate examples/digits-tpe.yaml --split optimizer -o json
    """
    from katib_hp.api import generate_manifests

    manifests, notes = generate_manifests(config, split=split)
    echo_problems(notes, min_severity=Severity.WARNING if quiet else Severity.NOTE)
    text = serialise(manifests, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        from katib_hp.output import write_atomic

        write_atomic(str(output), text)
        click.echo(f"wrote {len(manifests)} Experiment(s) to {output}", err=True)


def serialise(manifests: Sequence[dict[str, Any]], fmt: str) -> str:
    from katib_hp.yamlio import dump_json, dump_yaml

    if fmt == "json":
        return dump_json(manifests[0] if len(manifests) == 1 else {"apiVersion": "v1", "kind": "List",
                                                                   "items": list(manifests)})
    return "---\n".join(dump_yaml(m) for m in manifests)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("-q", "--quiet", is_flag=True, help="Hide notes.")
def validate(files: tuple[Path, ...], fmt: str, strict: bool, quiet: bool) -> None:
    """Lint Katib Experiment YAML before it reaches a cluster (ours or hand-written, multi-document too).

    Applies Katib's defaulting, then the admission webhook's rules and the traps that only show after
    submission. Reports every problem in one pass; exit 0 without errors, 1 with errors.

    \b
    Example:
      katib-hp validate manifests/*.yaml
      katib-hp validate my-experiment.yaml -o json
    """
    from katib_hp.lint import validate_file

    problems: list[Problem] = []
    for path in files:
        problems.extend(validate_file(path))
    errors = sum(p.severity is Severity.ERROR for p in problems)
    warnings = sum(p.severity is Severity.WARNING for p in problems)
    if fmt == "json":
        from katib_hp.yamlio import dump_json

        click.echo(dump_json([p.to_dict() for p in problems]), nl=False)
    else:
        shown = [p for p in problems if not (quiet and p.severity is Severity.NOTE)]
        for problem in shown:
            click.echo(problem.render())
    click.echo(f"{errors} error(s), {warnings} warning(s) in {len(files)} file(s)", err=True)
    if errors or (strict and warnings):
        sys.exit(1)


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--epoch-seconds", type=click.FloatRange(min=0, min_open=True),
              help="Seconds one epoch takes on one trial's hardware, for GPU-hours.")
@click.option("-o", "fmt", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True)
def estimate(source: Path, epoch_seconds: float | None, fmt: str) -> None:
    """Trials, peak parallel pods and GPUs, total epochs and GPU-hours of a config or an Experiment.

    \b
    Example:
      katib-hp estimate examples/digits-hyperband.yaml --epoch-seconds 30
      katib-hp estimate manifests/digits-bayes.yaml -o json
    """
    from katib_hp.api import estimate_source
    from katib_hp.output import render, render_mapping

    rows = estimate_source(source, epoch_seconds=epoch_seconds)
    if fmt != "table":
        click.echo(render(rows, fmt), nl=False)
        return
    for index, row in enumerate(rows):
        record = {k: v for k, v in row.items() if k not in ("notes", "total_epochs_is_upper_bound")}
        if row.get("total_epochs_is_upper_bound") and record.get("total_epochs") is not None:
            record["total_epochs"] = f"up to {record['total_epochs']}"
        click.echo(("\n" if index else "") + render_mapping(record), nl=False)
        for line in row.get("notes") or ():
            click.echo(f"  - {line}")


# The other verbs register themselves on the group (imported here so `katib-hp --help` lists them).
from katib_hp import cli_cluster, cli_local  # noqa: E402, F401


def main(argv: Sequence[str] | None = None) -> None:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="katib-hp")
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
