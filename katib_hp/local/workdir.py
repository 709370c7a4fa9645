"""A local run's work directory: the manifest, one folder per trial, and the experiment's status.

Layout (default ``runs/<experiment>/``)::

    experiment.yaml             the manifest the run was started with
    status.json                 the experiment's condition, counters and budget
    trials/<trial>/trial.json   the trial in the result model's shape (plus the command it ran)
    trials/<trial>/log.txt      its stdout and stderr
    trials/<trial>/files/...    container paths (metrics file, event dir, volumes) mapped here
    trials/<trial>/checkpoints  the trainer's checkpoints

Every JSON file is replaced atomically, so a killed runner never leaves half a file. ``load`` reads it all
back in the shapes the cluster backend produces.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from katib_hp.lint.defaults import apply_defaults
from katib_hp.local.errors import WorkDirError
from katib_hp.output import write_atomic
from katib_hp.results import ExperimentState, ExperimentStatus, Objective, TrialResult, TrialState
from katib_hp.yamlio import dump_yaml, load_yaml

MANIFEST = "experiment.yaml"
STATUS = "status.json"
TRIALS = "trials"
# Katib lets a finished experiment be restarted with only these changed (webhook rule V9)
EDITABLE = ("maxTrialCount", "parallelTrialCount", "maxFailedTrialCount")


def default_work_dir(manifest: Mapping[str, Any], base: Path = Path("runs")) -> Path:
    """``runs/<experiment name>``."""
    return base / str((manifest.get("metadata") or {}).get("name") or "experiment")


def _comparable(manifest: Mapping[str, Any]) -> dict[str, Any]:
    doc = apply_defaults(manifest)
    spec = {k: v for k, v in (doc.get("spec") or {}).items() if k not in EDITABLE}
    return {"name": (doc.get("metadata") or {}).get("name"), "spec": spec}


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class WorkDir:
    """Reads and writes one experiment's local results."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def status_path(self) -> Path:
        return self.root / STATUS

    def trial_dir(self, name: str) -> Path:
        return self.root / TRIALS / name

    def log_path(self, name: str) -> Path:
        return self.trial_dir(name) / "log.txt"

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def read_manifest(self) -> dict[str, Any]:
        try:
            data = load_yaml(self.manifest_path.read_text(encoding="utf-8"), str(self.manifest_path))
        except OSError as exc:
            raise WorkDirError(f"cannot read the work directory's manifest: {exc}",
                               path=str(self.manifest_path)) from exc
        if not isinstance(data, dict):
            raise WorkDirError("not an Experiment manifest", path=str(self.manifest_path))
        return data

    def prepare(self, manifest: Mapping[str, Any], *, resume: bool) -> list[TrialResult]:
        """Claim the directory for ``manifest``; return the trials a resumed run keeps.

        Raises:
            WorkDirError: the directory holds another experiment (or changed spec), or a run exists and
                ``resume`` is false.
        """
        kept: list[TrialResult] = []
        if self.exists():
            stored = self.read_manifest()
            if _comparable(stored) != _comparable(manifest):
                raise WorkDirError(
                    f"{self.root} holds a run of a different experiment "
                    f"({(stored.get('metadata') or {}).get('name')!r}, or its spec changed beyond "
                    f"{', '.join(EDITABLE)})", path=str(self.root),
                    hint="choose another --work-dir, or delete this one to start over")
            trials = self.read_trials()
            if trials and not resume:
                raise WorkDirError(f"{self.root} already holds {len(trials)} trial(s) of this experiment",
                                   path=str(self.root),
                                   hint="add --resume to continue it, or delete the directory to start over")
            for trial in trials:
                if trial.state.is_terminal and not (trial.state is TrialState.KILLED
                                                    and trial.reason == "Interrupted"):
                    kept.append(trial)
                else:
                    # an interrupted trial is run again from scratch: drop its partial files
                    shutil.rmtree(self.trial_dir(trial.name), ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(str(self.manifest_path), dump_yaml(dict(manifest)))
        return kept

    def write_trial(self, trial: TrialResult, command: Sequence[str] = ()) -> None:
        data = trial.to_dict()
        if command:
            data["command"] = list(command)
        write_atomic(str(self.trial_dir(trial.name) / "trial.json"), json.dumps(data, indent=2) + "\n")

    def trial_command(self, name: str) -> list[str]:
        """The argv a trial ran with ([] when unknown)."""
        data = self._read_json(self.trial_dir(name) / "trial.json")
        return [str(a) for a in data.get("command") or []]

    def read_trials(self) -> list[TrialResult]:
        """Every trial of the directory, ordered by start time then name."""
        trials: list[TrialResult] = []
        folder = self.root / TRIALS
        for path in sorted(folder.glob("*/trial.json")) if folder.exists() else []:
            try:
                trials.append(TrialResult.from_dict(self._read_json(path)))
            except (KeyError, ValueError) as exc:
                raise WorkDirError(f"unreadable trial record: {exc}", path=str(path),
                                   hint="delete that trial's folder to run it again") from exc
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(trials, key=lambda t: (t.start_time or far, t.name))

    def write_status(self, status: ExperimentStatus, notes: Sequence[str] = ()) -> None:
        data = {
            "name": status.name, "namespace": status.namespace, "state": str(status.state),
            "reason": status.reason, "message": status.message, "max_trials": status.max_trials,
            "parallel_trials": status.parallel_trials, "max_failed_trials": status.max_failed_trials,
            "start_time": _time(status.start_time), "completion_time": _time(status.completion_time),
            "best_trial": status.best.name if status.best else None, "summary": status.summary(),
            "notes": list(notes),
        }
        write_atomic(str(self.status_path), json.dumps(data, indent=2, default=str) + "\n")

    def read_status(self, manifest: Mapping[str, Any]) -> ExperimentStatus:
        data = self._read_json(self.status_path) if self.status_path.exists() else {}
        doc = apply_defaults(manifest)
        spec = doc.get("spec") or {}
        metadata = doc.get("metadata") or {}
        try:
            state = ExperimentState(data.get("state") or "Created")
        except ValueError as exc:
            raise WorkDirError("unknown experiment state", path=str(self.status_path),
                               value=data.get("state")) from exc
        return ExperimentStatus(
            name=str(metadata.get("name", "")), namespace=str(data.get("namespace") or ""), state=state,
            objective=Objective.from_spec(spec), trials=tuple(self.read_trials()),
            reason=str(data.get("reason") or ""), message=str(data.get("message") or ""),
            max_trials=spec.get("maxTrialCount"), parallel_trials=spec.get("parallelTrialCount"),
            max_failed_trials=spec.get("maxFailedTrialCount"), start_time=_parse_time(data.get("start_time")),
            completion_time=_parse_time(data.get("completion_time")))

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkDirError(f"cannot read {path.name}: {exc}", path=str(path)) from exc
        if not isinstance(data, dict):
            raise WorkDirError(f"{path.name} is not a JSON object", path=str(path))
        return data


def load(work_dir: Path) -> tuple[dict[str, Any], ExperimentStatus]:
    """The manifest and the status of a local run, in the cluster backend's shapes.

    Raises:
        WorkDirError: ``work_dir`` holds no local run.
    """
    folder = WorkDir(work_dir)
    if not folder.exists():
        raise WorkDirError("no local run here (experiment.yaml is missing)", path=str(work_dir),
                           hint="start one with `katib-hp run-local <manifest>` or pass its --work-dir")
    manifest = folder.read_manifest()
    return manifest, folder.read_status(manifest)
