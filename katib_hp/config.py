"""The tuning config a person writes, loaded into frozen dataclasses.

Every key is checked: an unknown key anywhere is an error naming its full path with a suggestion
(``config.yaml: trial.resources.gpu: unknown key 'gpu'; did you mean 'gpus'?``), a value of the wrong type
names the field and what it expects. The search space is resolved here too: ``tune`` selects parameters
of the declared space and may narrow them (never widen: the declared range is what the trainer accepts),
``fixed`` values are checked by the space's own parameters, and conditions are kept only where the parent
is tuned (a condition on an untuned parent must hold for the value that parent will have).

Example::

    name: digits-bayes
    algorithm: {name: bayesianoptimization, settings: {random_state: 42}}
    space: builtin
    tune:
      learning_rate: {min_value: 1.0e-4, max_value: 1.0e-1}
      optimizer: {values: [adam, sgd]}
    fixed: {epochs: 5}
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

from katib_hp.algorithms import ALGORITHMS
from katib_hp.errors import ConfigError, KatibHPError, did_you_mean
from katib_hp.experiment import (
    CollectorKind,
    MetricStrategy,
    ObjectiveType,
    ResumePolicy,
    TrialKind,
)
from katib_hp.space import (
    Boolean,
    Choice,
    Condition,
    Float,
    Int,
    Parameter,
    Sampling,
    SearchSpace,
    Value,
    format_value,
)
from katib_hp.yamlio import load_yaml

DEFAULT_IMAGE = "katib-hp-trainer:0.1.0"
DEFAULT_COMMAND = ("python", "-u", "-m", "trainer")
DEFAULT_MAX_TRIALS = 12
DEFAULT_PARALLEL_TRIALS = 3
DEFAULT_METRIC = "val_accuracy"
DEFAULT_METRICS_FILE = "/var/log/katib/metrics.log"
DEFAULT_TFEVENT_DIR = "/var/log/katib/tfevent"
# What the built-in trainer prints on every metric line besides `epoch` and `lr`.
BUILTIN_REPORTED = ("loss", "accuracy", "val_loss", "val_accuracy")
# Algorithms katib-hp compiles a search space for (pbt, enas and darts are not hyperparameter searches of
# a KerasTuner space).
SUPPORTED_ALGORITHMS = ("random", "tpe", "multivariate-tpe", "grid", "cmaes", "sobol", "bayesianoptimization",
                        "hyperband")
EARLY_STOPPING_ALGORITHMS = ("medianstop",)
MAX_NAME_LENGTH = 40

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")


# ----------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Objective:
    """What Katib optimises. ``strategies`` holds every metric (objective first) with its strategy."""

    metric: str = DEFAULT_METRIC
    type: ObjectiveType = ObjectiveType.MAXIMIZE
    goal: float | None = None
    additional_metrics: tuple[str, ...] = ()
    strategies: tuple[tuple[str, MetricStrategy], ...] = ()

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric, *self.additional_metrics)


@dataclass(frozen=True)
class AlgorithmConfig:
    name: str = "random"
    settings: tuple[tuple[str, str], ...] = ()  # Katib's strings, in the order written

    def setting(self, name: str) -> str | None:
        return next((v for k, v in self.settings if k == name), None)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    name: str = "medianstop"
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Budget:
    """Trial counts; ``None`` means "not written in the config" (the compiler picks, and says so)."""

    max_trials: int | None = None
    parallel_trials: int | None = None
    max_failed_trials: int | None = None

    @property
    def max(self) -> int:
        return DEFAULT_MAX_TRIALS if self.max_trials is None else self.max_trials

    @property
    def parallel(self) -> int:
        return DEFAULT_PARALLEL_TRIALS if self.parallel_trials is None else self.parallel_trials

    @property
    def max_failed(self) -> int:
        if self.max_failed_trials is not None:
            return self.max_failed_trials
        return min(self.parallel, self.max)


@dataclass(frozen=True)
class Resources:
    """Per pod. ``cpu``/``memory`` go to requests and limits, ``gpus`` to limits ``nvidia.com/gpu``."""

    cpu: str | None = "2"
    memory: str | None = "4Gi"
    gpus: int = 1


@dataclass(frozen=True)
class Volume:
    """A volume mounted into the training container: exactly one of ``pvc``, ``empty_dir``, ``config_map``."""

    name: str
    mount_path: str
    pvc: str | None = None
    empty_dir: bool = False
    empty_dir_medium: str | None = None
    empty_dir_size_limit: str | None = None
    config_map: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class CollectorConfig:
    kind: CollectorKind = CollectorKind.STDOUT
    filters: tuple[str, ...] = ()
    format: str = "text"  # File: text | json
    path: str | None = None  # File: the metrics file; TensorFlowEvent: the event directory

    @property
    def resolved_path(self) -> str | None:
        if self.path is not None:
            return self.path
        if self.kind is CollectorKind.FILE:
            return DEFAULT_METRICS_FILE
        if self.kind is CollectorKind.TENSORFLOW_EVENT:
            return DEFAULT_TFEVENT_DIR
        return None


@dataclass(frozen=True)
class TrialConfig:
    image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    command: tuple[str, ...] = DEFAULT_COMMAND
    args: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[dict[str, Any], ...] = ()
    service_account: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    volumes: tuple[Volume, ...] = ()
    kind: TrialKind = TrialKind.JOB
    workers: int = 1
    metrics_collector: CollectorConfig = field(default_factory=CollectorConfig)
    retain: bool = False
    active_deadline_seconds: int | None = None

    @property
    def builtin_trainer(self) -> bool:
        """True when the command runs katib-hp's own trainer (``... -m trainer`` or ``katib-hp-trainer``)."""
        return is_builtin_command(self.command)


def is_builtin_command(command: Sequence[str]) -> bool:
    if len(command) >= 2 and tuple(command[-2:]) == ("-m", "trainer"):
        return True
    return len(command) == 1 and PurePosixPath(command[0]).name == "katib-hp-trainer"


@dataclass(frozen=True)
class TuningConfig:
    """A whole tuning config. ``space`` is the declared space, ``tuned`` the selected and narrowed one."""

    name: str
    space: SearchSpace
    tuned: SearchSpace
    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    objective: Objective = field(default_factory=Objective)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    early_stopping: EarlyStoppingConfig | None = None
    budget: Budget = field(default_factory=Budget)
    space_source: str = "builtin"  # "builtin", a file path, or "inline"
    tune: tuple[str, ...] = ()
    fixed: tuple[tuple[str, Value], ...] = ()
    split: str | None = None
    resume_policy: ResumePolicy = ResumePolicy.NEVER
    trial: TrialConfig = field(default_factory=TrialConfig)
    source: str = "config"  # the file it came from, for messages

    def fixed_value(self, name: str) -> Value | None:
        return next((v for k, v in self.fixed if k == name), None)


# ----------------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------------
def load_config(path: str | Path) -> TuningConfig:
    """Read a YAML tuning config; ``space: {file: ...}`` is resolved relative to the config file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc.strerror or exc}", path=str(path)) from exc
    data = load_yaml(text, str(path), ConfigError)
    return parse_config(data, source=str(path), base_dir=file.parent)


def parse_config(data: Any, source: str = "config", base_dir: str | Path | None = None) -> TuningConfig:
    """Build a TuningConfig from parsed YAML; relative space files resolve against ``base_dir`` (or cwd)."""
    return _Parser(source, Path(base_dir) if base_dir is not None else Path.cwd()).config(data)


_TOP_KEYS = ("name", "namespace", "labels", "objective", "algorithm", "early_stopping", "budget", "space",
             "tune", "fixed", "split", "resume_policy", "trial")


class _Parser:
    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir

    # -- primitives -------------------------------------------------------------------------------------
    def fail(self, path: str, message: str, hint: str = "", value: Any = None) -> NoReturn:
        where = f"{self.source}: {path}" if path else self.source
        raise ConfigError(message, path=where, hint=hint, value=value)

    def mapping(self, value: Any, path: str, allowed: Sequence[str] | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path or "(top level)", f"expected a mapping (got {_show(value)})", value=value)
        for key in value:
            if not isinstance(key, str):
                self.fail(path, f"keys must be text (got {key!r})", value=key)
            if allowed is not None and key not in allowed:
                self.fail(_join(path, key), f"unknown key '{key}'", did_you_mean(key, allowed), key)
        return value

    def text(self, value: Any, path: str, *, allow_empty: bool = False) -> str:
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            self.fail(path, f"expected text (got {_show(value)})", value=value)
        return value

    def scalar_text(self, value: Any, path: str) -> str:
        """A scalar written in YAML as it will reach Kubernetes/Katib: always a string."""
        if isinstance(value, (str, bool, int, float)) and not (isinstance(value, float) and not math.isfinite(value)):
            return format_value(value)
        self.fail(path, f"expected a string, number or boolean (got {_show(value)})", value=value)

    def integer(self, value: Any, path: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            self.fail(path, f"expected {what} (got {_show(value)})", value=value)
        return value

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(path, f"expected a number (got {_show(value)})", value=value)
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false (got {_show(value)})", value=value)
        return value

    def text_list(self, value: Any, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(path, f"expected a list (got {_show(value)})", value=value)
        return tuple(self.text(item, f"{path}[{i}]") for i, item in enumerate(value))

    def choice(self, value: Any, path: str, options: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in options:
            self.fail(path, f"expected one of {', '.join(options)} (got {_show(value)})",
                      did_you_mean(str(value), options) if isinstance(value, str) else "", value)
        return value

    def string_map(self, value: Any, path: str) -> tuple[tuple[str, str], ...]:
        data = self.mapping(value, path)
        return tuple((k, self.scalar_text(v, _join(path, k))) for k, v in data.items())

    # -- sections ---------------------------------------------------------------------------------------
    def config(self, data: Any) -> TuningConfig:
        if data is None:
            self.fail("", "the config is empty", "start with `name: my-experiment` (see the README)")
        top = self.mapping(data, "", _TOP_KEYS)
        if "name" not in top:
            self.fail("name", "is required", "a DNS-1035 label of at most 40 characters, e.g. digits-bayes")
        name = self.experiment_name(top["name"], "name")
        namespace = None
        if top.get("namespace") is not None:
            namespace = self.text(top["namespace"], "namespace")
            if not _DNS1123_LABEL.match(namespace) or len(namespace) > 63:
                self.fail("namespace", f"'{namespace}' is not a valid namespace name",
                          "lowercase letters, digits and '-', at most 63 characters", namespace)
        labels = self.labels(top.get("labels"), "labels")
        trial = self.trial(top.get("trial"))
        objective = self.objective(top.get("objective"), trial)
        algorithm = self.algorithm(top.get("algorithm"))
        early = self.early_stopping(top["early_stopping"]) if top.get("early_stopping") is not None else None
        budget = self.budget(top.get("budget"))
        space, space_source = self.space(top.get("space", "builtin"))
        fixed_keys = set(top["fixed"]) if isinstance(top.get("fixed"), dict) else set()
        tune, overrides = self.tune(top.get("tune"), space, space_source, fixed_keys)
        fixed = self.fixed(top.get("fixed"), space, tune)
        tuned = self.tuned_space(space, tune, overrides, dict(fixed))
        split = None
        if top.get("split") is not None:
            split = self.split(top["split"], tuned)
        resume = ResumePolicy(self.choice(top.get("resume_policy", "Never"), "resume_policy",
                                          [p.value for p in ResumePolicy]))
        return TuningConfig(
            name=name, namespace=namespace, labels=labels, objective=objective, algorithm=algorithm,
            early_stopping=early, budget=budget, space=space, tuned=tuned, space_source=space_source,
            tune=tune, fixed=fixed, split=split, resume_policy=resume, trial=trial, source=self.source,
        )

    def experiment_name(self, value: Any, path: str) -> str:
        name = self.text(value, path)
        if not _DNS1035.match(name):
            self.fail(path, f"'{name}' is not a valid Experiment name",
                      "start with a lowercase letter; use lowercase letters, digits and '-' (DNS-1035 label)", name)
        if len(name) > MAX_NAME_LENGTH:
            self.fail(path, f"'{name}' is {len(name)} characters long; Katib allows at most {MAX_NAME_LENGTH}",
                      "the suggestion Service is named <name>-<algorithm> and must fit 63 characters", name)
        return name

    def labels(self, value: Any, path: str) -> tuple[tuple[str, str], ...]:
        pairs = self.string_map(value, path)
        for key, text in pairs:
            prefix, _, label = key.rpartition("/")
            if (prefix and (len(prefix) > 253 or not _LABEL_PREFIX.match(prefix))) or len(label) > 63 \
                    or not _LABEL_NAME.match(label):
                self.fail(_join(path, key), f"'{key}' is not a valid Kubernetes label key",
                          "letters, digits, '-', '_' and '.', at most 63 characters, optional DNS prefix/", key)
            if len(text) > 63 or not _LABEL_VALUE.match(text):
                self.fail(_join(path, key), f"'{text}' is not a valid Kubernetes label value",
                          "letters, digits, '-', '_' and '.', at most 63 characters", text)
        return pairs

    def objective(self, value: Any, trial: TrialConfig) -> Objective:
        data = self.mapping(value, "objective",
                            ("metric", "type", "goal", "additional_metrics", "strategies"))
        metric = self.text(data.get("metric", DEFAULT_METRIC), "objective.metric")
        if "type" in data:
            kind = ObjectiveType(self.choice(data["type"], "objective.type", [t.value for t in ObjectiveType]))
        else:
            kind = ObjectiveType.MINIMIZE if "loss" in metric else ObjectiveType.MAXIMIZE
        goal = None if data.get("goal") is None else float(self.number(data["goal"], "objective.goal"))
        if "additional_metrics" in data:
            additional = self.text_list(data["additional_metrics"], "objective.additional_metrics")
        elif trial.builtin_trainer:
            additional = tuple(m for m in BUILTIN_REPORTED if m != metric)
        else:
            additional = ()
        if len(set(additional)) != len(additional):
            self.fail("objective.additional_metrics", "lists a metric twice", value=list(additional))
        if metric in additional:
            self.fail("objective.additional_metrics", f"contains the objective metric '{metric}'",
                      "Katib refuses it (V13): remove it from additional_metrics", metric)
        chosen = self.mapping(data.get("strategies"), "objective.strategies")
        metrics = (metric, *additional)
        for name in chosen:
            if name not in metrics:
                self.fail(_join("objective.strategies", name), f"'{name}' is not a metric of the objective",
                          did_you_mean(name, metrics), name)
        strategies = []
        for name in metrics:
            if name in chosen:
                strategy = MetricStrategy(self.choice(chosen[name], _join("objective.strategies", name),
                                                      [s.value for s in MetricStrategy]))
            elif name == metric:
                strategy = MetricStrategy.MIN if kind is ObjectiveType.MINIMIZE else MetricStrategy.MAX
            else:
                strategy = MetricStrategy.MIN if "loss" in name else MetricStrategy.MAX
            strategies.append((name, strategy))
        return Objective(metric, kind, goal, additional, tuple(strategies))

    def settings(self, value: Any, path: str) -> tuple[tuple[str, str], ...]:
        if isinstance(value, list):
            self.fail(path, "expected a mapping of setting name to value (got a list)",
                      "write `settings: {random_state: 42}`", value)
        return self.string_map(value, path)

    def algorithm(self, value: Any) -> AlgorithmConfig:
        if isinstance(value, str):
            value = {"name": value}
        data = self.mapping(value, "algorithm", ("name", "settings"))
        name = self.text(data.get("name", "random"), "algorithm.name")
        if name not in SUPPORTED_ALGORITHMS:
            hint = did_you_mean(name, SUPPORTED_ALGORITHMS)
            if name in ALGORITHMS:
                hint = f"{name} is not a search over a KerasTuner space; use one of {', '.join(SUPPORTED_ALGORITHMS)}"
            self.fail("algorithm.name", f"unknown algorithm '{name}'", hint, name)
        return AlgorithmConfig(name, self.settings(data.get("settings"), "algorithm.settings"))

    def early_stopping(self, value: Any) -> EarlyStoppingConfig:
        if isinstance(value, str):
            value = {"name": value}
        data = self.mapping(value, "early_stopping", ("name", "settings"))
        name = self.choice(data.get("name", "medianstop"), "early_stopping.name", EARLY_STOPPING_ALGORITHMS)
        return EarlyStoppingConfig(name, self.settings(data.get("settings"), "early_stopping.settings"))

    def budget(self, value: Any) -> Budget:
        data = self.mapping(value, "budget", ("max_trials", "parallel_trials", "max_failed_trials"))

        def read(key: str, minimum: int) -> int | None:
            return None if data.get(key) is None else self.integer(data[key], f"budget.{key}", minimum)

        return Budget(read("max_trials", 1), read("parallel_trials", 1), read("max_failed_trials", 0))

    def space(self, value: Any) -> tuple[SearchSpace, str]:
        if value == "builtin":
            from trainer.hyperparameters import builtin_space

            return builtin_space(), "builtin"
        if isinstance(value, str):
            self.fail("space", f"expected `builtin`, {{file: ...}} or {{parameters: [...]}} (got {value!r})",
                      "to read a file write `space: {file: " + value + "}`", value)
        data = self.mapping(value, "space", ("file", "parameters"))
        if ("file" in data) == ("parameters" in data):
            self.fail("space", "give exactly one of `file` and `parameters`", value=value)
        try:
            if "file" in data:
                raw = Path(self.text(data["file"], "space.file"))
                path = raw if raw.is_absolute() else self.base_dir / raw
                if not path.is_file():
                    self.fail("space.file", f"'{raw}' does not exist (looked for {path})",
                              "paths are relative to the config file", str(raw))
                return SearchSpace.load(path), str(path)
            return SearchSpace.from_dict({"parameters": data["parameters"]}, f"{self.source}: space"), "inline"
        except ConfigError:
            raise
        except KatibHPError as exc:
            raise ConfigError(exc.message, path=exc.path, hint=exc.hint, value=exc.value) from exc

    def tune(self, value: Any, space: SearchSpace, space_source: str,
             fixed_keys: set[str]) -> tuple[tuple[str, ...], dict[str, Any]]:
        if value is None:
            if space_source == "builtin":
                self.fail("tune", f"is required with `space: builtin` (it has {len(space)} parameters)",
                          "list the parameters to search, e.g. `tune: [learning_rate, optimizer]`")
            return tuple(n for n in space.names if n not in fixed_keys), {}
        overrides: dict[str, Any] = {}
        if isinstance(value, list):
            names = [self.text(v, f"tune[{i}]") for i, v in enumerate(value)]
        elif isinstance(value, dict):
            names = list(self.mapping(value, "tune"))
            overrides = {k: v for k, v in value.items() if v is not None}
        else:
            self.fail("tune", f"expected a list of names or a mapping name -> overrides (got {_show(value)})")
        if not names:
            self.fail("tune", "is empty", "name at least one parameter to search")
        seen: set[str] = set()
        for name in names:
            if name in seen:
                self.fail(_join("tune", name), "is listed twice", value=name)
            seen.add(name)
            if name not in space:
                self.fail(_join("tune", name), f"'{name}' is not a parameter of the space",
                          did_you_mean(name, space.names), name)
        return tuple(n for n in space.names if n in seen), overrides

    def fixed(self, value: Any, space: SearchSpace, tune: tuple[str, ...]) -> tuple[tuple[str, Value], ...]:
        data = self.mapping(value, "fixed")
        result: list[tuple[str, Value]] = []
        for name, raw in data.items():
            path = _join("fixed", name)
            if name not in space:
                self.fail(path, f"'{name}' is not a parameter of the space",
                          did_you_mean(name, space.names) + " (other trainer flags go in trial.args)", name)
            if name in tune:
                self.fail(path, f"'{name}' is both tuned and fixed", "remove it from one of tune and fixed", name)
            param = space[name]
            checked: Value | None
            try:
                checked = param.parse(raw) if isinstance(raw, str) else param.check(raw)
            except KatibHPError:
                checked = None
            if checked is None:
                self.fail(path, f"{_show(raw)} is not allowed: must be {param.describe()}", value=raw)
            result.append((name, checked))
        return tuple(result)

    def split(self, value: Any, tuned: SearchSpace) -> str:
        name = self.text(value, "split")
        if name not in tuned:
            self.fail("split", f"'{name}' is not a tuned parameter",
                      "split on a parameter listed under tune: " + did_you_mean(name, tuned.names), name)
        param = tuned[name]
        if not isinstance(param, (Choice, Boolean)):
            self.fail("split", f"'{name}' is a {param.kind} parameter; split needs a Choice or Boolean", value=name)
        return name

    def trial(self, value: Any) -> TrialConfig:
        keys = ("image", "image_pull_policy", "command", "args", "resources", "node_selector", "tolerations",
                "service_account", "env", "volumes", "kind", "workers", "metrics_collector", "retain",
                "active_deadline_seconds")
        data = self.mapping(value, "trial", keys)
        defaults = TrialConfig()
        image = self.text(data.get("image", defaults.image), "trial.image")
        if any(c.isspace() for c in image):
            self.fail("trial.image", f"'{image}' contains whitespace", value=image)
        pull = self.choice(data.get("image_pull_policy", defaults.image_pull_policy), "trial.image_pull_policy",
                           ("IfNotPresent", "Always", "Never"))
        command = self.text_list(data["command"], "trial.command") if "command" in data else defaults.command
        if not command:
            self.fail("trial.command", "must not be empty",
                      "Katib's metrics collector wraps the command, so it must be explicit (E7)")
        args = self.text_list(data.get("args"), "trial.args")
        kind = TrialKind(self.choice(data.get("kind", "Job"), "trial.kind", [k.value for k in TrialKind]))
        workers = self.integer(data.get("workers", 1), "trial.workers", 1)
        if "workers" in data and kind is TrialKind.JOB and workers != 1:
            self.fail("trial.workers", "applies to kind: TFJob only (a Job runs one pod)",
                      "set `kind: TFJob` or remove workers", workers)
        service_account = None
        if data.get("service_account") is not None:
            service_account = self.text(data["service_account"], "trial.service_account")
        deadline = None
        if data.get("active_deadline_seconds") is not None:
            deadline = self.integer(data["active_deadline_seconds"], "trial.active_deadline_seconds", 1)
        env = self.string_map(data.get("env"), "trial.env")
        for key, _ in env:
            if not _ENV_NAME.match(key):
                self.fail(_join("trial.env", key), f"'{key}' is not a valid environment variable name", value=key)
        return TrialConfig(
            image=image, image_pull_policy=pull, command=command, args=args,
            resources=self.resources(data.get("resources")),
            node_selector=self.string_map(data.get("node_selector"), "trial.node_selector"),
            tolerations=self.tolerations(data.get("tolerations")),
            service_account=service_account, env=env, volumes=self.volumes(data.get("volumes")),
            kind=kind, workers=workers, metrics_collector=self.collector(data.get("metrics_collector")),
            retain=self.boolean(data.get("retain", False), "trial.retain"), active_deadline_seconds=deadline,
        )

    def resources(self, value: Any) -> Resources:
        data = self.mapping(value, "trial.resources", ("cpu", "memory", "gpus"))
        defaults = Resources()

        def quantity(key: str, default: str | None) -> str | None:
            if key not in data:
                return default
            if data[key] is None:
                return None
            text = self.scalar_text(data[key], f"trial.resources.{key}")
            if not _QUANTITY.match(text) or isinstance(data[key], bool):
                self.fail(f"trial.resources.{key}", f"'{text}' is not a Kubernetes quantity",
                          'e.g. cpu: "2" or "500m", memory: 4Gi', text)
            return text

        gpus = self.integer(data.get("gpus", defaults.gpus), "trial.resources.gpus", 0)
        return Resources(quantity("cpu", defaults.cpu), quantity("memory", defaults.memory), gpus)

    def tolerations(self, value: Any) -> tuple[dict[str, Any], ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail("trial.tolerations", f"expected a list of Kubernetes tolerations (got {_show(value)})")
        result = []
        for i, item in enumerate(value):
            path = f"trial.tolerations[{i}]"
            data = self.mapping(item, path, _TOLERATION_KEYS)
            if not data:
                self.fail(path, "is empty", "e.g. {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}")
            clean: dict[str, Any] = {}
            for key in _TOLERATION_KEYS:
                if key not in data:
                    continue
                if key == "tolerationSeconds":
                    clean[key] = self.integer(data[key], _join(path, key), 0)
                else:
                    clean[key] = self.text(data[key], _join(path, key), allow_empty=True)
            if "operator" in clean:
                self.choice(clean["operator"], _join(path, "operator"), ("Exists", "Equal"))
            if "effect" in clean:
                self.choice(clean["effect"], _join(path, "effect"), ("NoSchedule", "PreferNoSchedule", "NoExecute"))
            result.append(clean)
        return tuple(result)

    def volumes(self, value: Any) -> tuple[Volume, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail("trial.volumes", f"expected a list (got {_show(value)})")
        result: list[Volume] = []
        names: set[str] = set()
        for i, item in enumerate(value):
            path = f"trial.volumes[{i}]"
            data = self.mapping(item, path, ("name", "mount_path", "pvc", "empty_dir", "config_map", "read_only"))
            for key in ("name", "mount_path"):
                if key not in data:
                    self.fail(_join(path, key), "is required")
            name = self.text(data["name"], _join(path, "name"))
            if not _DNS1123_LABEL.match(name) or len(name) > 63:
                self.fail(_join(path, "name"), f"'{name}' is not a valid volume name",
                          "lowercase letters, digits and '-'", name)
            if name in names or name == "metrics-volume":
                self.fail(_join(path, "name"), f"volume name '{name}' is already used"
                          + (" by Katib's metrics collector" if name == "metrics-volume" else ""), value=name)
            names.add(name)
            mount = self.text(data["mount_path"], _join(path, "mount_path"))
            if not mount.startswith("/"):
                self.fail(_join(path, "mount_path"), f"'{mount}' must be an absolute path", value=mount)
            sources = [k for k in ("pvc", "empty_dir", "config_map") if data.get(k) is not None]
            if len(sources) != 1:
                self.fail(path, "needs exactly one of pvc, empty_dir, config_map",
                          "e.g. {name: data, mount_path: /data, pvc: my-claim}")
            volume = Volume(name=name, mount_path=mount,
                            read_only=self.boolean(data.get("read_only", False), _join(path, "read_only")))
            if sources[0] == "pvc":
                volume = dataclasses.replace(volume, pvc=self.text(data["pvc"], _join(path, "pvc")))
            elif sources[0] == "config_map":
                volume = dataclasses.replace(volume, config_map=self.text(data["config_map"],
                                                                          _join(path, "config_map")))
            else:
                raw = data["empty_dir"]
                if raw is False:
                    self.fail(_join(path, "empty_dir"), "set it to {} or true, or remove it")
                spec = {} if raw is True else self.mapping(raw, _join(path, "empty_dir"), ("medium", "size_limit"))
                medium = None
                if spec.get("medium") is not None:
                    medium = self.choice(spec["medium"], _join(path, "empty_dir.medium"), ("Memory",))
                limit = None
                if spec.get("size_limit") is not None:
                    limit = self.scalar_text(spec["size_limit"], _join(path, "empty_dir.size_limit"))
                    if not _QUANTITY.match(limit):
                        self.fail(_join(path, "empty_dir.size_limit"), f"'{limit}' is not a Kubernetes quantity",
                                  "e.g. 1Gi", limit)
                volume = dataclasses.replace(volume, empty_dir=True, empty_dir_medium=medium,
                                             empty_dir_size_limit=limit)
            result.append(volume)
        return tuple(result)

    def collector(self, value: Any) -> CollectorConfig:
        if isinstance(value, str):
            value = {"kind": value}
        data = self.mapping(value, "trial.metrics_collector")
        kinds = ("StdOut", "File", "TensorFlowEvent", "Push")
        raw_kind = data.get("kind", "StdOut")
        if raw_kind in ("None", None):
            self.fail("trial.metrics_collector.kind", "'None' was renamed to 'Push' in Katib v0.18",
                      "use kind: Push", raw_kind)
        kind = CollectorKind(self.choice(raw_kind, "trial.metrics_collector.kind", kinds))
        allowed = {
            CollectorKind.STDOUT: ("kind", "filters"),
            CollectorKind.FILE: ("kind", "format", "path", "filters"),
            CollectorKind.TENSORFLOW_EVENT: ("kind", "path"),
            CollectorKind.PUSH: ("kind",),
        }[kind]
        for key in data:
            if key not in allowed:
                known = ("kind", "filters", "format", "path")
                hint = (f"{kind.value} takes only {', '.join(allowed)}" if key in known
                        else did_you_mean(key, allowed))
                self.fail(_join("trial.metrics_collector", key), f"unknown key '{key}' for kind {kind.value}",
                          hint, key)
        fmt = self.choice(data.get("format", "text"), "trial.metrics_collector.format", ("text", "json"))
        path = None
        if data.get("path") is not None:
            path = self.text(data["path"], "trial.metrics_collector.path")
            if not path.startswith("/"):
                self.fail("trial.metrics_collector.path", f"'{path}' must be an absolute path", value=path)
        filters = self.text_list(data.get("filters"), "trial.metrics_collector.filters")
        return CollectorConfig(kind, filters, fmt, path)

    # -- the tuned space --------------------------------------------------------------------------------
    def tuned_space(self, space: SearchSpace, tune: tuple[str, ...], overrides: Mapping[str, Any],
                    fixed: Mapping[str, Value]) -> SearchSpace:
        chosen: dict[str, Parameter] = {}
        for name in tune:
            chosen[name] = self.narrow(space[name], overrides.get(name), _join("tune", name))
        result: list[Parameter] = []
        for param in chosen.values():
            path = _join("tune", param.name)
            conditions: list[Condition] = []
            for cond in param.conditions:
                shown = ", ".join(format_value(v) for v in cond.values)
                if cond.parent in chosen:
                    parent = chosen[cond.parent]
                    kept = tuple(v for v in cond.values if _accepts(parent, v))
                    if not kept:
                        self.fail(path, f"'{param.name}' is active only when {cond.parent} is one of [{shown}], "
                                  f"and the tuned {cond.parent} ({parent.describe()}) never is",
                                  f"widen tune.{cond.parent} or drop {param.name} from tune")
                    conditions.append(Condition(cond.parent, kept))
                    continue
                value = fixed[cond.parent] if cond.parent in fixed else space[cond.parent].default
                if not cond.holds({cond.parent: value}):
                    how = "fixed to" if cond.parent in fixed else "left at its default"
                    self.fail(path, f"'{param.name}' is active only when {cond.parent} is one of [{shown}], but "
                              f"{cond.parent} is {how} {format_value(value)}, so the trainer would ignore it",
                              f"tune {cond.parent} too, fix it to one of [{shown}], or drop {param.name}")
            result.append(dataclasses.replace(param, conditions=tuple(conditions)))
        return SearchSpace(result)

    def narrow(self, param: Parameter, override: Any, path: str) -> Parameter:
        if override is None:
            return param
        if isinstance(param, (Int, Float)):
            allowed: tuple[str, ...] = ("min_value", "max_value", "step", "sampling")
        elif isinstance(param, Choice):
            allowed = ("values",)
        else:
            allowed = ()
        if not isinstance(override, dict):
            self.fail(path, f"expected a mapping of overrides (got {_show(override)})",
                      f"e.g. {{{allowed[0]}: ...}}" if allowed else "write `{}`", override)
        if allowed == () and override:
            key = next(iter(override))
            self.fail(_join(path, key), f"a {param.kind} parameter takes no overrides",
                      f"to use a single value, move {param.name} to fixed", key)
        data = self.mapping(override, path, allowed)
        try:
            if isinstance(param, Choice):
                return self.narrow_choice(param, data, path)
            if isinstance(param, (Int, Float)):
                return self.narrow_numeric(param, data, path)
        except ConfigError:
            raise
        except KatibHPError as exc:
            self.fail(path, exc.message, exc.hint or f"declared: {param.describe()}", exc.value)
        return param

    def narrow_choice(self, param: Choice, data: Mapping[str, Any], path: str) -> Parameter:
        if "values" not in data:
            return param
        raw = data["values"]
        if not isinstance(raw, list) or not raw:
            self.fail(_join(path, "values"), f"expected a non-empty list (got {_show(raw)})", value=raw)
        values: list[Value] = []
        outside = []
        for item in raw:
            try:
                values.append(param.parse(item) if isinstance(item, str) and not isinstance(param.values[0], str)
                              else param.check(item))
            except KatibHPError:
                outside.append(item)
        if outside:
            self.fail(_join(path, "values"),
                      f"{', '.join(format_value(v) if isinstance(v, (bool, int, float, str)) else repr(v) for v in outside)}"
                      f" {'is' if len(outside) == 1 else 'are'} not among the declared values",
                      f"pick a subset of: {', '.join(format_value(v) for v in param.values)}", outside)
        default = param.default if param.default in values else values[0]
        return dataclasses.replace(param, values=tuple(values), default_value=default)

    def narrow_numeric(self, param: Int | Float, data: Mapping[str, Any], path: str) -> Parameter:
        low, high = param.min_value, param.max_value
        shown = f"[{format_value(low)}, {format_value(high)}]"
        new: dict[str, Any] = {}
        for key in ("min_value", "max_value"):
            if key not in data:
                continue
            number = self.number(data[key], _join(path, key))
            inside = low <= number <= high or any(math.isclose(number, e, rel_tol=1e-9) for e in (low, high))
            if not inside:
                self.fail(_join(path, key), f"{format_value(number)} is outside the declared range {shown}",
                          f"tune can only narrow a parameter: keep {key} inside {shown} (the trainer refuses "
                          "values outside it)", number)
            new[key] = number
        if "sampling" in data:
            sampling = Sampling(self.choice(data["sampling"], _join(path, "sampling"), [s.value for s in Sampling]))
            new["sampling"] = sampling
            if sampling is not param.sampling and "step" not in data:
                new["step"] = None  # an additive step makes no sense under log sampling, and vice versa
        if "step" in data:
            new["step"] = None if data["step"] is None else self.number(data["step"], _join(path, "step"))
        lo = new.get("min_value", low)
        hi = new.get("max_value", high)
        default = param.default
        new["default_value"] = default if isinstance(default, (int, float)) and lo <= default <= hi else lo
        return dataclasses.replace(param, **new)


def _accepts(param: Parameter, value: Value) -> bool:
    try:
        param.check(value)
    except KatibHPError:
        return False
    return True


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


__all__ = [
    "AlgorithmConfig", "Budget", "CollectorConfig", "EarlyStoppingConfig", "Objective", "Resources",
    "TrialConfig", "TuningConfig", "Volume", "is_builtin_command", "load_config", "parse_config",
]
