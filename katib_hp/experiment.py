"""The typed model of a Katib v1beta1 Experiment, as the compiler produces it.

Enum values are Katib's own strings; every field name is snake_case. ``katib_hp.manifest`` is the only
place that writes Katib's camelCase. Feasible-space bounds and list items are kept as the exact strings
Katib will receive, so what the model says is what the manifest says.

The run object of the trial template (a ``batch/v1 Job`` or a ``kubeflow.org/v1 TFJob``) is a Kubernetes
object, so it is held as the plain dict the compiler built (already in Kubernetes' own field names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"
GPU_RESOURCE = "nvidia.com/gpu"


class ParameterType(StrEnum):
    INT = "int"
    DOUBLE = "double"
    CATEGORICAL = "categorical"
    DISCRETE = "discrete"


class Distribution(StrEnum):
    UNIFORM = "uniform"
    LOG_UNIFORM = "logUniform"
    NORMAL = "normal"
    LOG_NORMAL = "logNormal"


class ObjectiveType(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class MetricStrategy(StrEnum):
    MIN = "min"
    MAX = "max"
    LATEST = "latest"


class CollectorKind(StrEnum):
    STDOUT = "StdOut"
    FILE = "File"
    TENSORFLOW_EVENT = "TensorFlowEvent"
    PROMETHEUS_METRIC = "PrometheusMetric"
    CUSTOM = "Custom"
    PUSH = "Push"


class FileSystemKind(StrEnum):
    FILE = "File"
    DIRECTORY = "Directory"


class FileFormat(StrEnum):
    TEXT = "TEXT"
    JSON = "JSON"


class ResumePolicy(StrEnum):
    NEVER = "Never"
    LONG_RUNNING = "LongRunning"
    FROM_VOLUME = "FromVolume"


class TrialKind(StrEnum):
    """Run objects katib-hp generates (both are in the standalone katib-config's trialResources)."""

    JOB = "Job"
    TFJOB = "TFJob"


@dataclass(frozen=True)
class ParameterSpec:
    """One entry of ``spec.parameters``. ``min``/``max``/``step`` and ``values`` are Katib's strings."""

    name: str
    type: ParameterType
    min: str | None = None
    max: str | None = None
    step: str | None = None
    values: tuple[str, ...] = ()
    distribution: Distribution | None = None

    @property
    def is_numeric(self) -> bool:
        """int or double: the kinds CMA-ES and the distribution settings act on."""
        return self.type in (ParameterType.INT, ParameterType.DOUBLE)


@dataclass(frozen=True)
class ObjectiveSpec:
    type: ObjectiveType
    metric: str
    goal: float | None = None
    additional_metrics: tuple[str, ...] = ()
    strategies: tuple[tuple[str, MetricStrategy], ...] = ()


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EarlyStoppingSpec:
    name: str
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CollectorSpec:
    """``metricsCollectorSpec``: the collector kind and where it reads (``source``)."""

    kind: CollectorKind = CollectorKind.STDOUT
    path: str | None = None
    path_kind: FileSystemKind | None = None
    format: FileFormat | None = None
    filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrialParameterSpec:
    name: str
    reference: str
    description: str = ""


@dataclass(frozen=True)
class TrialTemplateSpec:
    primary_container_name: str
    trial_parameters: tuple[TrialParameterSpec, ...]
    run_spec: dict[str, Any]  # the Job/TFJob body, in Kubernetes field names
    success_condition: str
    failure_condition: str
    primary_pod_labels: tuple[tuple[str, str], ...] = ()
    retain: bool = False


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    objective: ObjectiveSpec
    algorithm: AlgorithmSpec
    parameters: tuple[ParameterSpec, ...]
    trial_template: TrialTemplateSpec
    parallel: int
    max: int
    max_failed: int
    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    early_stopping: EarlyStoppingSpec | None = None
    resume_policy: ResumePolicy = ResumePolicy.NEVER
    collector: CollectorSpec = field(default_factory=CollectorSpec)

    def parameter(self, name: str) -> ParameterSpec | None:
        return next((p for p in self.parameters if p.name == name), None)
