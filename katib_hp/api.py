"""The operations behind the CLI, as functions that return data (the CLI only prints)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from katib_hp.errors import ConfigError, KatibHPError
from katib_hp.problems import Problem

if TYPE_CHECKING:
    from katib_hp.local.launch import Launcher
    from katib_hp.results import ExperimentStatus


def generate_manifests(config_path: str | Path, split: str | None = None) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Load a tuning config, compile it and return the Experiment manifests with the compiler's notes.

    Our own output is linted too: an error there is a bug in katib-hp, reported as such.
    """
    from katib_hp.compile import compile as compile_config
    from katib_hp.config import load_config
    from katib_hp.lint import validate
    from katib_hp.manifest import to_manifest

    config = load_config(config_path)
    if split is not None:
        config = dataclasses.replace(config, split=split)
    manifests: list[dict[str, Any]] = []
    notes: list[Problem] = []
    for compiled in compile_config(config):
        manifest = to_manifest(compiled.experiment)
        notes.extend(compiled.notes)
        errors = [p for p in validate(manifest, source=str(config_path)) if p.is_error]
        if errors:
            raise KatibHPError(
                f"the generated Experiment fails our own linter: {errors[0].render()}",
                hint="this is a katib-hp bug; please report it with the config",
            )
        manifests.append(manifest)
    return manifests, notes


def read_documents(path: str | Path) -> list[Any]:
    from katib_hp.yamlio import load_yaml_all

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", path=str(path)) from exc
    return load_yaml_all(text, str(path))


def is_experiment(document: Any) -> bool:
    return isinstance(document, dict) and document.get("kind") == "Experiment"


def estimate_source(path: str | Path, epoch_seconds: float | None = None) -> list[dict[str, Any]]:
    """Estimate every Experiment in a manifest file, or the Experiments a tuning config compiles to."""
    from katib_hp.estimate import estimate

    documents = read_documents(path)
    manifests = [d for d in documents if is_experiment(d)]
    if not manifests:
        manifests, _ = generate_manifests(path)
    rows = []
    for manifest in manifests:
        result = estimate(manifest, epoch_seconds=epoch_seconds)
        row: dict[str, Any] = {"experiment": manifest.get("metadata", {}).get("name", "")}
        row.update(dataclasses.asdict(result))
        rows.append(row)
    return rows


@dataclasses.dataclass(frozen=True)
class Prepared:
    """An Experiment ready to submit or run: the manifest and what the linter (or the compiler) said."""

    manifest: dict[str, Any]
    problems: tuple[Problem, ...]
    source: str

    @property
    def name(self) -> str:
        return str((self.manifest.get("metadata") or {}).get("name", ""))


def prepare_experiments(source: str | Path | dict[str, Any]) -> list[Prepared]:
    """Experiments from a manifest file, a tuning config, or a manifest dict — linted; errors refuse.

    A file holding Experiment documents is linted as written (ours or hand-written); any other YAML is read
    as a tuning config and compiled. Raises ``LintFailed`` (exit 1) listing every error.
    """
    from katib_hp.lint import validate

    if isinstance(source, dict):
        manifests, label = [source], "<manifest>"
        others: tuple[Any, ...] = ()
    else:
        label = str(source)
        documents = read_documents(source)
        manifests = [d for d in documents if is_experiment(d)]
        others = tuple(d for d in documents if not is_experiment(d))
        if not manifests:
            compiled, notes = generate_manifests(source)
            return [Prepared(m, tuple(notes), label) for m in compiled]
    prepared = []
    for manifest in manifests:
        problems = validate(manifest, source=label, others=others)
        errors = [p for p in problems if p.is_error]
        if errors:
            raise LintFailed(errors, label)
        prepared.append(Prepared(manifest, tuple(problems), label))
    return prepared


class LintFailed(KatibHPError):
    """The linter found errors: nothing was submitted or run."""

    exit_code = 1

    def __init__(self, problems: list[Problem], source: str) -> None:
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more error(s); run `katib-hp validate {source}`)" if len(problems) > 1 else ""
        super().__init__(f"{first.path}: {first.message}{more}", path=source, hint=first.hint)


def run_local(source: str | Path | dict[str, Any] | Prepared, *, work_dir: str | Path | None = None, python: str | None = None,
              resume: bool = False, seed: int | None = None, warm: bool = True,
              on_update: Callable[[ExperimentStatus], None] | None = None,
              on_notes: Callable[[list[str]], None] | None = None) -> ExperimentStatus:
    """Run one Experiment (a config, a manifest file or dict, or one already ``Prepared``) here; return its end.

    The manifest is linted first (errors refuse). Trials run as local processes; with ``warm`` our trainer
    runs in a worker that has imported TensorFlow once. Results persist in ``work_dir`` (default
    ``runs/<name>``); ``resume`` continues a run kept there. Ctrl-C raises ``LocalRunInterrupted``.
    """
    from katib_hp.local.launch import SubprocessLauncher
    from katib_hp.local.runner import LocalRun, default_python

    prepared = [source] if isinstance(source, Prepared) else prepare_experiments(source)
    if len(prepared) > 1:
        names = ", ".join(p.name for p in prepared)
        raise KatibHPError(f"{len(prepared)} Experiments ({names}); run-local runs one at a time",
                           path=prepared[0].source, hint="split the file, or remove `split:` from the config")
    manifest = prepared[0].manifest
    if python is not None and not (os.path.isfile(python) and os.access(python, os.X_OK)):
        found = shutil.which(python)
        if found is None:
            raise ConfigError(f"no such interpreter: {python}", path="--python", value=python,
                              hint="pass the path of a Python that has the trainer installed, e.g. "
                                   ".venv-trainer/bin/python")
        python = found
    if python is not None:
        python = os.path.abspath(python)  # trials run in their own directories
    interpreter = python or default_python()
    launcher: Launcher = SubprocessLauncher()
    if warm:
        from katib_hp.local.zygote import ZygoteLauncher

        launcher = ZygoteLauncher(interpreter, fallback=launcher)
    try:
        run = LocalRun(manifest, work_dir=Path(work_dir or Path("runs") / prepared[0].name), launcher=launcher,
                       python=interpreter, seed=seed, resume=resume)
        if on_notes is not None:
            on_notes(list(run.notes))
        return run.run(on_update=on_update)
    finally:
        launcher.close()


def load_local(work_dir: str | Path) -> tuple[dict[str, Any], ExperimentStatus]:
    """The manifest and the status of a local run kept in ``work_dir`` (same shapes as a cluster's)."""
    from katib_hp.local.workdir import load

    return load(Path(work_dir))
