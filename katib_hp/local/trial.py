"""From a suggestion to a local process: the trial's command, environment, paths and limits.

The command is the primary container's command + args after Katib's substitution (``katib_hp.substitute``).
On this machine:

* ``python``/``python3`` (and ``katib-hp-trainer``) run with the configured interpreter, whose folder also
  leads ``PATH`` so that ``sh -c "python …"`` finds it;
* container paths (the collector's file or directory, volume mounts) are mapped into the trial's folder
  (``trials/<trial>/files/<path>``) wherever they appear in the args and env values;
* our trainer gets ``--checkpoint-dir`` in the trial's folder, and a Hyperband promotion continues from its
  parent's checkpoint (``--resume-from``, ``--initial-epoch``) instead of restarting at epoch 0;
* the environment is a short list of the runner's variables (PATH, HOME, locale, proxies, GPU selection),
  the container's literal ``env`` values and ``KATIB_TRIAL_NAME``, as Katib's webhook injects it;
* the current directory is the trial's folder; the launching directory leads ``PYTHONPATH`` and a relative
  ``script.py`` found there is made absolute (in the image it sits in the working directory).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from katib_hp.errors import KatibHPError
from katib_hp.local.collect import CollectorKind, CollectorSpec
from katib_hp.local.errors import UnsupportedError
from katib_hp.substitute import primary_container, substitute

PASSED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM", "SHELL",
              "PYTHONPATH", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "KERAS_HOME",
              "XDG_CACHE_HOME", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
              "http_proxy", "https_proxy", "no_proxy")
_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")
_TRAINER_SCRIPT = "katib-hp-trainer"
_SINGLE_REPLICA_KINDS = {"TFJob": "tfReplicaSpecs", "PyTorchJob": "pytorchReplicaSpecs"}
JOB_BACKOFF_DEFAULT = 6  # Kubernetes' default spec.backoffLimit


@dataclass(frozen=True)
class TrialPlan:
    """Everything needed to start one trial (and retry it as the Job would)."""

    name: str
    assignments: Mapping[str, str]
    argv: tuple[str, ...]
    env: Mapping[str, str]
    directory: Path
    log_path: Path
    metrics_source: Path
    deadline_seconds: float | None = None
    backoff_limit: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    parent: str | None = None


@dataclass(frozen=True)
class RunLimits:
    """The run object's limits that a local run honours."""

    deadline_seconds: float | None
    backoff_limit: int


def check_template(spec: Mapping[str, Any]) -> tuple[RunLimits, list[str]]:
    """Refuse trial templates this machine cannot run; return the run's limits and notes.

    Raises:
        UnsupportedError: a configMap template, or a kind other than batch/v1 Job (or a one-replica
            TFJob/PyTorchJob).
    """
    template = spec.get("trialTemplate") or {}
    supported = "run-local runs batch/v1 Job templates (and TFJob/PyTorchJob with a single replica)"
    if template.get("configMap") and not template.get("trialSpec"):
        raise UnsupportedError("a configMap trial template lives on the cluster and cannot be read locally",
                               path="spec.trialTemplate.configMap",
                               hint=f"inline the template as spec.trialTemplate.trialSpec; {supported}")
    trial_spec = template.get("trialSpec")
    if not isinstance(trial_spec, Mapping):
        raise UnsupportedError("the experiment has no inline trialSpec", path="spec.trialTemplate.trialSpec",
                               hint=supported)
    kind, api = str(trial_spec.get("kind", "")), str(trial_spec.get("apiVersion", ""))
    run_spec = trial_spec.get("spec") or {}
    notes: list[str] = []
    if kind == "Job" and api == "batch/v1":
        backoff = run_spec.get("backoffLimit")
        limit = JOB_BACKOFF_DEFAULT if backoff is None else int(backoff)
        if limit:
            notes.append(f"a failing trial is retried up to {limit} time(s), as the Job's backoffLimit"
                         + (" (Kubernetes' default when unset)" if backoff is None else "")
                         + " asks; set backoffLimit: 0 to fail at once")
        deadline = run_spec.get("activeDeadlineSeconds")
        return RunLimits(None if deadline is None else float(deadline), limit), notes
    replicas_key = _SINGLE_REPLICA_KINDS.get(kind)
    if replicas_key:
        replicas = run_spec.get(replicas_key) or {}
        count = sum(int((r or {}).get("replicas", 1)) for r in replicas.values())
        if count == 1:
            notes.append(f"the {kind} runs as its one replica's primary container (no training operator)")
            deadline = (run_spec.get("runPolicy") or {}).get("activeDeadlineSeconds")
            return RunLimits(None if deadline is None else float(deadline), 0), notes
        raise UnsupportedError(f"a {kind} with {count} replicas is distributed training, which needs the cluster",
                               path=f"spec.trialTemplate.trialSpec.spec.{replicas_key}", hint=supported)
    raise UnsupportedError(f"trial kind {api}/{kind} cannot run locally", path="spec.trialTemplate.trialSpec.kind",
                           value=kind, hint=supported)


def container_paths(container: Mapping[str, Any], collector: CollectorSpec) -> list[str]:
    """Container paths to map into the trial's folder: the collector's mount and the volume mounts."""
    paths = [collector.mount_dir] if collector.mount_dir else []
    paths += [str(m.get("mountPath")) for m in container.get("volumeMounts") or [] if m.get("mountPath")]
    return sorted({p.rstrip("/") for p in paths if p and p.rstrip("/")}, key=len, reverse=True)


def remap(text: str, mapping: Mapping[str, Path]) -> str:
    """Replace each container path (as a whole path prefix) in ``text`` by its local folder."""
    if not mapping:
        return text
    pattern = "|".join(re.escape(p) for p in sorted(mapping, key=len, reverse=True))
    regex = re.compile(rf"(?<![\w.\-/])({pattern})(?=/|$|[^\w.\-])")
    return regex.sub(lambda m: str(mapping[m.group(1)]), text)


def is_trainer(argv: Sequence[str]) -> bool:
    """The command runs katib-hp's trainer (``python -m trainer`` or ``katib-hp-trainer``)."""
    if argv and os.path.basename(argv[0]) == _TRAINER_SCRIPT:
        return True
    return any(a == "-m" and b == "trainer" for a, b in itertools.pairwise(argv)) or "-mtrainer" in argv


def flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of ``--flag=value`` or ``--flag value`` (the last one wins, as argparse does)."""
    value: str | None = None
    for index, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            value = arg[len(flag) + 1:]
        elif arg == flag and index + 1 < len(argv):
            value = argv[index + 1]
    return value


def interpreter(argv: Sequence[str], python: str) -> list[str]:
    """``python``/``python3``/``katib-hp-trainer`` run with the configured interpreter."""
    if not argv:
        return []
    head = os.path.basename(argv[0])
    if _PYTHON.fullmatch(head):
        return [python, *argv[1:]]
    if head == _TRAINER_SCRIPT:
        return [python, "-m", "trainer", *argv[1:]]
    return list(argv)


class TrialBuilder:
    """Builds each trial's plan from the (defaulted) manifest; ``notes`` collects what differs from a pod."""

    def __init__(self, manifest: Mapping[str, Any], *, collector: CollectorSpec, python: str,
                 environ: Mapping[str, str], base_dir: Path) -> None:
        self.spec: Mapping[str, Any] = manifest.get("spec") or {}
        self.experiment_name = str((manifest.get("metadata") or {}).get("name") or "")
        self.namespace = str((manifest.get("metadata") or {}).get("namespace") or "default")
        self.experiment_labels = {str(k): str(v) for k, v in
                                  ((manifest.get("metadata") or {}).get("labels") or {}).items()}
        self.collector = collector
        self.python = python
        self.environ = environ
        self.base_dir = base_dir
        self.limits, notes = check_template(self.spec)
        self.notes: list[str] = list(notes)
        self._preview()

    def _preview(self) -> None:
        """Notes known before any trial runs (from the template, placeholders unfilled)."""
        template = self.spec.get("trialTemplate") or {}
        try:
            container = primary_container(self.spec, template.get("trialSpec") or {})
        except KatibHPError:
            return  # reported with its path when the first trial is built
        for path in container_paths(container, self.collector):
            self.note(f"container path {path} is mapped to trials/<trial>/files{path}")
        raw = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
        if raw and interpreter(raw, self.python)[0] != raw[0]:
            self.note(f"`{raw[0]}` in the trial command runs {self.python}")
        if is_trainer(raw) and flag_value(raw, "--checkpoint-dir") is None:
            self.note("the trainer gets --checkpoint-dir=trials/<trial>/checkpoints")

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def build(self, name: str, directory: Path, assignments: Mapping[str, str], *,
              labels: Mapping[str, str] | None = None, parent: str | None = None,
              parent_resource: int | None = None, parent_checkpoint: Path | None = None) -> TrialPlan:
        run_spec = substitute(self.spec, assignments, trial_name=name, namespace=self.namespace)
        container = primary_container(self.spec, run_spec)
        files = directory / "files"
        mapping = {p: files / p.lstrip("/") for p in container_paths(container, self.collector)}
        for container_path, local in mapping.items():
            local.mkdir(parents=True, exist_ok=True)
            self.note(f"container path {container_path} is mapped to trials/<trial>/files{container_path}")
        raw = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
        if not raw:
            raise UnsupportedError("the primary container has no command or args; the image's entrypoint is "
                                   "unknown here", path="spec.trialTemplate.trialSpec",
                                   hint="write the command (e.g. [python, -u, -m, trainer]) in the template")
        trainer = is_trainer(raw)
        argv = [remap(a, mapping) for a in interpreter(raw, self.python)]
        argv = self._absolute_script(argv)
        if trainer:
            argv = self._trainer_flags(argv, directory, parent, parent_resource, parent_checkpoint)
        elif parent is not None:
            self.note("Hyperband promotions restart from epoch 0: the command is not katib-hp's trainer, which "
                      "is the only one given --resume-from/--initial-epoch")
        if container.get("workingDir"):
            self.note(f"the container's workingDir {container['workingDir']} is not used; trials run in their "
                      "own folder")
        env = self._env(container, name, mapping)
        source = self._metrics_source(directory, mapping)
        trial_labels = {**self.experiment_labels, "katib.kubeflow.org/experiment": self.experiment_name,
                        **(labels or {})}
        return TrialPlan(name=name, assignments=dict(assignments), argv=tuple(argv), env=env,
                         directory=directory, log_path=directory / "log.txt", metrics_source=source,
                         deadline_seconds=self.limits.deadline_seconds, backoff_limit=self.limits.backoff_limit,
                         labels=trial_labels, parent=parent)

    def _absolute_script(self, argv: list[str]) -> list[str]:
        if not argv or argv[0] != self.python:
            return argv
        for index, arg in enumerate(argv[1:], start=1):
            if arg.startswith("-"):
                if arg in ("-m", "-c"):
                    return argv
                continue
            candidate = self.base_dir / arg
            if arg.endswith(".py") and not os.path.isabs(arg) and candidate.is_file():
                self.note(f"the script {arg} is run from {self.base_dir} (in the image it sits in the working "
                          "directory)")
                return [*argv[:index], str(candidate.resolve()), *argv[index + 1:]]
            return argv
        return argv

    def _trainer_flags(self, argv: list[str], directory: Path, parent: str | None, parent_resource: int | None,
                       parent_checkpoint: Path | None) -> list[str]:
        if flag_value(argv, "--checkpoint-dir") is None:
            argv = [*argv, f"--checkpoint-dir={directory / 'checkpoints'}"]
        if parent is None or flag_value(argv, "--resume-from") is not None:
            return argv
        if parent_checkpoint is None or not (parent_checkpoint / "state.json").exists():
            self.note(f"a Hyperband promotion of {parent} restarts from epoch 0: its checkpoint was not found")
            return argv
        self.note("Hyperband promotions continue from their parent's checkpoint (--resume-from, --initial-epoch) "
                  "instead of training again from epoch 0 as on the cluster")
        return [*argv, f"--resume-from={parent_checkpoint}", f"--initial-epoch={parent_resource or 0}"]

    def _env(self, container: Mapping[str, Any], name: str, mapping: Mapping[str, Path]) -> dict[str, str]:
        env = {k: v for k, v in self.environ.items() if k in PASSED_ENV or k.startswith("LC_")}
        python_dir = os.path.dirname(self.python)
        if python_dir:
            env["PATH"] = os.pathsep.join(p for p in (python_dir, env.get("PATH", os.defpath)) if p)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.base_dir), env.get("PYTHONPATH", "")) if p)
        for item in container.get("env") or []:
            if "value" in item:
                env[str(item["name"])] = remap(str(item.get("value") or ""), mapping)
            elif item.get("valueFrom") is not None:
                self.note(f"env {item.get('name')} comes from valueFrom (a Secret, ConfigMap or field), which "
                          "has no local value; it is left unset")
        if container.get("envFrom"):
            self.note("envFrom (Secrets/ConfigMaps) is not available locally; those variables are unset")
        env["KATIB_TRIAL_NAME"] = name
        return env

    def _metrics_source(self, directory: Path, mapping: Mapping[str, Path]) -> Path:
        if self.collector.kind is CollectorKind.STDOUT:
            return directory / "log.txt"
        return Path(remap(self.collector.path.rstrip("/") or "/", mapping))
