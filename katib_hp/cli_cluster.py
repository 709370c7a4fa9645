"""Cluster verbs of ``katib-hp``: submit, watch, status, list, trials, best, logs, delete, resume.

``status``, ``trials`` and ``best`` also read a local run's work directory (``katib-hp run-local``): pass the
directory, or the experiment name with ``--local``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from katib_hp.cli import cli, echo_problems
from katib_hp.cli_results import OUTPUT_FORMATS, Progress, echo_best, echo_status, echo_trials
from katib_hp.problems import Severity

if TYPE_CHECKING:
    from katib_hp.client import Client
    from katib_hp.results import ExperimentStatus

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_WORK_ROOT = Path("runs")


def cluster_options(func: F) -> F:
    """-n/--namespace, --kubeconfig and --context, resolved the way kubectl resolves them."""

    @click.option("--context", help="Kubeconfig context (default: the current context).")
    @click.option("--kubeconfig", type=click.Path(dir_okay=False),
                  help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).")
    @click.option("-n", "--namespace", help="Namespace (default: the context's namespace, else 'default').")
    @functools.wraps(func)
    def wrapper(*args: Any, namespace: str | None, kubeconfig: str | None, context: str | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        ctx.meta["katib_hp.connect"] = {"namespace": namespace, "kubeconfig": kubeconfig, "context": context}
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _client() -> Client:
    from katib_hp.client import Client

    options = click.get_current_context().meta.get("katib_hp.connect", {})
    return Client.connect(**options)


def local_dir(name: str, local: bool) -> Path | None:
    """The work directory behind NAME: a directory holding a local run, or runs/NAME with --local."""
    candidate = Path(name)
    if (candidate / "experiment.yaml").is_file():
        return candidate
    if local:
        path = DEFAULT_WORK_ROOT / name
        if not (path / "experiment.yaml").is_file():
            from katib_hp.errors import ConfigError

            raise ConfigError(f"no local run in {path}", path=str(path),
                              hint="start one with `katib-hp run-local`, or pass its --work-dir")
        return path
    return None


def _local_status(path: Path) -> tuple[dict[str, Any], ExperimentStatus]:
    from katib_hp.local.workdir import load

    manifest, status = load(path)
    return manifest, status


_LOCAL = click.option("--local", is_flag=True, help="Read the local run in runs/NAME (katib-hp run-local).")
_FMT = click.option("-o", "--output", "fmt", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True)


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the exact manifest; never contact the cluster.")
@click.option("--server-dry-run", is_flag=True, help="Let the API server and Katib's webhook judge it (dryRun=All).")
@click.option("--watch", "follow", is_flag=True, help="Continue into `katib-hp watch`.")
@click.option("--overwrite", is_flag=True, help="Delete an existing experiment of the same name first.")
@click.option("--label-namespace", is_flag=True, help="Add Katib's metrics-collector injection label if missing.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="With --watch: give up after seconds.")
@cluster_options
def submit(source: Path, dry_run: bool, server_dry_run: bool, follow: bool, overwrite: bool,
           label_namespace: bool, timeout: float | None) -> None:
    """Lint, then create the Experiment(s) of a tuning config or a manifest file.

    Refuses on linter errors and shows the warnings. The admission webhook's own words are shown when it
    denies the Experiment.

    \b
    Example:
      katib-hp submit examples/digits-bayes.yaml -n tuning --label-namespace
      katib-hp submit manifests/gpu/digits-bayes.yaml --dry-run > experiment.yaml
      katib-hp submit examples/digits-hyperband.yaml --server-dry-run
    """
    from katib_hp.api import prepare_experiments

    if dry_run:
        from katib_hp.cli import serialise

        prepared = prepare_experiments(source)
        for each in prepared:
            echo_problems(each.problems, min_severity=Severity.WARNING)
        click.echo(serialise([p.manifest for p in prepared], "yaml"), nl=False)
        return
    client = _client()
    submissions = client.submit(source, server_dry_run=server_dry_run, overwrite=overwrite,
                                label_namespace=label_namespace)
    for item in submissions:
        echo_problems(item.problems, min_severity=Severity.WARNING)
        verb = "accepted by the API server (dry run, not stored)" if server_dry_run else "created"
        click.echo(f"experiment {item.name!r} {verb} in namespace {item.namespace!r}", err=True)
    if follow and not server_dry_run:
        for item in submissions:
            _watch(client, item.name, timeout)


def _watch(client: Client, name: str, timeout: float | None, interval: float = 5.0) -> None:
    from katib_hp.client import ExperimentUnsuccessful

    progress = Progress()
    try:
        status = client.wait(name, timeout=timeout, interval=interval, on_update=progress.update)
    except ExperimentUnsuccessful as exc:
        progress.close()
        for line in exc.diagnostics[1:]:  # the first one becomes the error's hint
            click.echo(f"! {line}", err=True)
        raise
    finally:
        progress.close()
    best = status.best
    if best is not None:
        click.echo(f"best trial {best.name}: {status.objective.metric}={best.objective:.6g}", err=True)


@cli.command()
@click.argument("name")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Give up after this many seconds.")
@click.option("--interval", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Seconds between refreshes.")
@cluster_options
def watch(name: str, timeout: float | None, interval: float) -> None:
    """Follow an experiment live on stderr until it ends.

    Exit 0 only when it succeeded and at least one trial succeeded (Katib marks an experiment whose trials
    all failed "Succeeded" when maxFailedTrialCount is unset); 1 otherwise, with the reason; 10 on timeout.

    \b
    Example:
      katib-hp watch digits-bayes -n tuning
    """
    _watch(_client(), name, timeout, interval)


@cli.command()
@click.argument("name")
@_LOCAL
@click.option("-o", "--output", "fmt", type=click.Choice(("table", "json", "yaml")), default="table",
              show_default=True)
@cluster_options
def status(name: str, local: bool, fmt: str) -> None:
    """An experiment's condition, budget, counters and best trial (cluster, or a local run's directory).

    \b
    Example:
      katib-hp status digits-bayes -n tuning
      katib-hp status runs/digits-bayes
    """
    path = local_dir(name, local)
    snapshot = _local_status(path)[1] if path else _client().status(name)
    echo_status(snapshot, fmt)


@cli.command(name="list")
@_FMT
@cluster_options
def list_experiments(fmt: str) -> None:
    """The experiments of a namespace with Katib's counters (one API request).

    \b
    Example:
      katib-hp list -n tuning -o csv
    """
    from katib_hp.output import render

    click.echo(render(_client().experiments(), fmt), nl=False)


@cli.command()
@click.argument("name")
@_LOCAL
@_FMT
@cluster_options
def trials(name: str, local: bool, fmt: str) -> None:
    """Every trial: parameters, objective and additional metrics, condition and reason, duration.

    \b
    Example:
      katib-hp trials digits-bayes -n tuning
      katib-hp trials runs/digits-bayes -o csv > trials.csv
    """
    path = local_dir(name, local)
    snapshot = _local_status(path)[1] if path else _client().status(name)
    echo_trials(snapshot.trials, snapshot.objective, fmt)


@cli.command()
@click.argument("name")
@_LOCAL
@click.option("-o", "--output", "fmt", type=click.Choice(("table", "json", "yaml", "csv", "args")),
              default="table", show_default=True, help="`args`: the trainer flags to retrain with.")
@cluster_options
def best(name: str, local: bool, fmt: str) -> None:
    """The best trial so far, and the trainer flags to retrain with (`-o args`).

    \b
    Example:
      katib-hp best digits-bayes -n tuning
      python -m trainer $(katib-hp best runs/digits-bayes -o args) --epochs 50
    """
    from katib_hp.client import best_of
    from katib_hp.substitute import trial_args

    path = local_dir(name, local)
    if path:
        manifest, snapshot = _local_status(path)
        chosen = best_of(snapshot, local_dir=str(path))
        args = trial_args(manifest.get("spec") or {}, chosen.parameters, trial_name=chosen.name)
    else:
        snapshot, chosen, args = _client().best_with_args(name)
    objective = snapshot.objective
    echo_best(chosen, objective, args, fmt)


@cli.command()
@click.argument("name")
@click.option("--trial", help="The trial (default: the best trial, else the most recent).")
@click.option("--tail", type=click.IntRange(min=1), help="Only the last N lines.")
@cluster_options
def logs(name: str, trial: str | None, tail: int | None) -> None:
    """A trial's output, from the container that has it (with the StdOut collector: Katib's sidecar).

    \b
    Example:
      katib-hp logs digits-bayes --trial digits-bayes-x7k2p9qa --tail 50
    """
    trial_name, text = _client().logs(name, trial, tail_lines=tail)
    click.echo(f"# {trial_name}", err=True)
    click.echo(text, nl=not text.endswith("\n"))


@cli.command()
@click.argument("name")
@click.option("--trial", help="The trial (default: the best trial).")
@click.option("--db-manager", "db_manager", default="katib-db-manager.kubeflow:6789", show_default=True,
              help="katib-db-manager's gRPC address; from outside the cluster port-forward it and use localhost:6789.")
@_FMT
@cluster_options
def metrics(name: str, trial: str | None, db_manager: str, fmt: str) -> None:
    """Every value a trial reported (the full series), read from katib-db-manager.

    \b
    Example:
      kubectl port-forward svc/katib-db-manager -n kubeflow 6789 &
      katib-hp metrics digits-bayes --db-manager localhost:6789 -o csv
    """
    from katib_hp.output import render

    trial_name, rows = _client().trial_metrics(name, trial, db_manager_address=db_manager)
    click.echo(f"# {trial_name}", err=True)
    click.echo(render(rows, fmt, columns=["time_stamp", "name", "value"]), nl=False)


@cli.command()
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@cluster_options
def delete(name: str, yes: bool) -> None:
    """Delete an experiment (its trials and their pods go with it).

    \b
    Example:
      katib-hp delete digits-bayes -n tuning -y
    """
    client = _client()
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete experiment {name!r} in namespace {client.namespace!r}?", abort=True)
    client.delete(name)
    click.echo(f"experiment {name!r} deleted", err=True)


@cli.command()
@click.argument("name")
@click.option("--max-trials", "max_trials", type=click.IntRange(min=1), required=True,
              help="The new maxTrialCount (larger than the current one).")
@click.option("--parallel", type=click.IntRange(min=1), help="A new parallelTrialCount.")
@click.option("--max-failed", type=click.IntRange(min=0), help="A new maxFailedTrialCount.")
@cluster_options
def resume(name: str, max_trials: int, parallel: int | None, max_failed: int | None) -> None:
    """Restart a finished experiment with a larger budget (Katib's restart rules apply).

    Katib restarts only experiments that succeeded with ExperimentMaxTrialsReached and whose resumePolicy
    is LongRunning or FromVolume.

    \b
    Example:
      katib-hp resume digits-bayes --max-trials 40
    """
    _client().resume(name, max_trials, parallel_trial_count=parallel, max_failed_trial_count=max_failed)
    click.echo(f"experiment {name!r} restarting with maxTrialCount={max_trials}", err=True)
