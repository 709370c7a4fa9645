"""Field tables of the Experiment and of batch/v1 Job, and a decoder that checks a manifest against them.

Two uses:

* **Experiment (rule V0 / D0).** The webhooks first decode the request into Katib's Go types. A value of the
  wrong JSON type (``min: 0.01`` where a string is expected, ``value: 3`` in algorithmSettings,
  ``maxTrialCount: "12"``) makes that decoding fail, so the request is refused before any rule runs (V0).
  An unknown field (``maxTrialCounts``) is not an error: the mutating webhook re-serialises the typed object,
  so the field is silently dropped (D0, a warning). The decoder returns a clean copy holding only known fields
  of the right type (coercing scalars where the intent is obvious), which every later check reads.
* **Job trial templates (rule V19n).** For ``batch/v1`` ``Job`` the webhook converts the template (placeholders
  replaced by ``test-value``) into a typed Job and rejects any difference other than removals when the typed
  form is serialised back (except under ``/resources/limits/`` and ``/resources/requests/``). So unknown or
  misspelled fields, wrong types, and empty values of ``omitempty`` fields that the typed form drops
  (``args: []``, ``nodeSelector: {}``, ``env[].value: ""``, ``readOnly: false``) are all refused. Rarely used
  corners of the Pod API are tables marked *open*: they accept anything, so they never give a false alarm.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from katib_hp.errors import did_you_mean
from katib_hp.lint._common import PLACEHOLDER, Ctx, child


@dataclass(frozen=True)
class Scalar:
    type: Literal["string", "int32", "int64", "float", "bool", "quantity", "int-or-string", "any"]
    omit_zero: bool = False  # a plain Go field with omitempty: its zero value disappears in a typed round trip


@dataclass(frozen=True)
class Seq:
    item: Node
    omit_empty: bool = True


@dataclass(frozen=True)
class Dict:
    value: Node
    omit_empty: bool = True


@dataclass(frozen=True)
class Struct:
    name: str
    fields: Mapping[str, Node] = field(default_factory=dict)
    open: bool = False  # accept any keys and values (only "is an object" is checked)


Node = Scalar | Seq | Dict | Struct

_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
# Kubernetes resource quantities: 1, 0.5, 500m, 4Gi, 1e3.
_QUANTITY = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")

_TYPE_WORDS = {
    "string": "a string",
    "int32": "an integer",
    "int64": "an integer",
    "float": "a number",
    "bool": "true or false",
    "quantity": "a resource quantity (e.g. 2, 500m, 4Gi)",
    "int-or-string": "an integer or a string",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


_DROP = object()  # the decoder's "no value" (absent, null, or refused)


def _zero(node: Node) -> Any:
    if isinstance(node, Struct):
        return {}
    if isinstance(node, Scalar):
        return "" if node.type == "string" else None
    return [] if isinstance(node, Seq) else {}


class Decoder:
    """Walks a value along a table; reports into ``ctx`` and returns the cleaned value (or ``_DROP``)."""

    def __init__(self, ctx: Ctx, mode: Literal["experiment", "job"]) -> None:
        self.ctx = ctx
        self.mode = mode
        self.rule = "V0" if mode == "experiment" else "V19n"

    # -- reporting -------------------------------------------------------------------------------------
    def _refuse(self, path: str, message: str, hint: str, value: Any) -> None:
        self.ctx.bad.add(path)
        if self.mode == "experiment":
            message = f"{message}: Katib's webhook cannot decode the Experiment and refuses it"
        else:
            message = f"{message}: the template does not convert to a batch/v1 Job, so Katib refuses it"
        self.ctx.error(path, message, hint, value, self.rule)

    def _wrong_type(self, path: str, expected: str, value: Any) -> None:
        hint = ""
        if isinstance(value, str) and PLACEHOLDER.search(value):
            hint = ("placeholders can only go in string fields (command, args, env values, annotations); "
                    "Katib substitutes text, so this field receives a string")
        elif expected == "string" and isinstance(value, (int, float, bool)):
            hint = f'quote it: "{_text(value)}"'
        elif expected in ("int32", "int64", "float") and isinstance(value, str):
            hint = f"write it without quotes: {value.strip()}"
        self._refuse(path, f"must be {_TYPE_WORDS.get(expected, expected)}, not a {_json_type(value)}", hint,
                     value if not isinstance(value, (dict, list)) else None)

    # -- walking ---------------------------------------------------------------------------------------
    def decode(self, value: Any, node: Node, path: str) -> Any:
        if value is None:
            return _DROP
        if isinstance(node, Scalar):
            return self._scalar(value, node, path)
        if isinstance(node, Seq):
            if not isinstance(value, list):
                self._refuse(path, f"must be a list, not a {_json_type(value)}", "", None)
                return _DROP
            if not value and node.omit_empty and self.mode == "job":
                self._dropped_empty(path, "[]")
            items = []
            for index, item in enumerate(value):
                cleaned = self.decode(item, node.item, child(path, index))
                # Keep every index (field paths must match the manifest): a refused or null item becomes the
                # Go zero value; checks skip refused items through ctx.is_bad().
                items.append(_zero(node.item) if cleaned is _DROP else cleaned)
            return items
        if isinstance(node, Dict):
            if not isinstance(value, dict):
                self._refuse(path, f"must be a mapping, not a {_json_type(value)}", "", None)
                return _DROP
            if not value and node.omit_empty and self.mode == "job":
                self._dropped_empty(path, "{}")
            out = {}
            for key, item in value.items():
                cleaned = self.decode(item, node.value, child(path, str(key)))
                if cleaned is not _DROP:
                    out[str(key)] = cleaned
            return out
        return self._struct(value, node, path)

    def _struct(self, value: Any, node: Struct, path: str) -> Any:
        if not isinstance(value, dict):
            self._refuse(path, f"must be an object ({node.name}), not a {_json_type(value)}", "", None)
            return _DROP
        if node.open:
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            sub = node.fields.get(name) if isinstance(key, str) else None
            if sub is None:
                self._unknown(child(path, name), name, node)
                continue
            cleaned = self.decode(item, sub, child(path, name))
            if cleaned is not _DROP:
                out[name] = cleaned
        return out

    def _unknown(self, path: str, name: str, node: Struct) -> None:
        hint = did_you_mean(name, node.fields) if node.fields else ""
        if self.mode == "experiment":
            self.ctx.warning(path, f"is not a field of {node.name}: Katib's webhook drops it silently", hint,
                             rule="D0")
        else:
            self._refuse(path, f"is not a field of {node.name}", hint, None)

    def _dropped_empty(self, path: str, shown: str) -> None:
        self._refuse(path, f"an empty value ({shown}) is dropped by the typed Job and shows up as a change",
                     "remove the field", None)

    def _scalar(self, value: Any, node: Scalar, path: str) -> Any:
        kind = node.type
        if kind == "any":
            return value
        if kind == "string":
            if isinstance(value, str):
                if value == "" and node.omit_zero and self.mode == "job":
                    self._dropped_empty(path, '""')
                return value
            self._wrong_type(path, kind, value)
            if isinstance(value, (int, float, bool)):
                return _text(value)  # the user's intent is clear; later checks read it as text
            return _DROP
        if kind == "bool":
            if isinstance(value, bool):
                if value is False and node.omit_zero and self.mode == "job":
                    self._dropped_empty(path, "false")
                return value
            self._wrong_type(path, kind, value)
            return _DROP
        if kind in ("int32", "int64"):
            return self._integer(value, node, path)
        if kind == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return value
            self._wrong_type(path, kind, value)
            return _DROP
        if kind == "int-or-string":
            if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
                return value
            self._wrong_type(path, kind, value)
            return _DROP
        # quantity
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _QUANTITY.match(value.strip()):
            return value
        if isinstance(value, str) and not PLACEHOLDER.search(value):
            self._refuse(path, f"is not a valid resource quantity ({value!r})",
                         "use a number with an optional suffix: 2, 500m, 4Gi, 1e3", value)
            return _DROP
        self._wrong_type(path, kind, value)
        return _DROP

    def _integer(self, value: Any, node: Scalar, path: str) -> Any:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            number = int(value)
        if number is None:
            self._wrong_type(path, node.type, value)
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    return _DROP
            return _DROP
        low, high = _INT_RANGE[node.type]
        if not low <= number <= high:
            self._refuse(path, f"is out of range for a {node.type}", "", number)
            return _DROP
        if number == 0 and node.omit_zero and self.mode == "job":
            self._dropped_empty(path, "0")
        return number


# ----------------------------------------------------------------------------------------------------------
# Building blocks. Names ending in O are "omitempty" plain fields; K keeps its zero value (pointer or required).
STR_O = Scalar("string", omit_zero=True)
STR_K = Scalar("string")
BOOL_O = Scalar("bool", omit_zero=True)
BOOL_K = Scalar("bool")
I32_O = Scalar("int32", omit_zero=True)
I32_K = Scalar("int32")
I64_O = Scalar("int64", omit_zero=True)
I64_K = Scalar("int64")
FLOAT = Scalar("float")
QTY = Scalar("quantity")
INT_OR_STR = Scalar("int-or-string")
ANY = Scalar("any")
OPEN = Struct("object", open=True)
STRINGS = Seq(STR_K)
STRING_MAP = Dict(STR_K)

# ---------------------------------------------------------------- Katib's Experiment (kubeflow.org/v1beta1)
OBJECT_META = Struct("ObjectMeta", {
    "name": STR_O, "generateName": STR_O, "namespace": STR_O, "labels": STRING_MAP, "annotations": STRING_MAP,
    "uid": STR_O, "resourceVersion": STR_O, "generation": I64_O, "selfLink": STR_O, "creationTimestamp": ANY,
    "deletionTimestamp": ANY, "deletionGracePeriodSeconds": I64_K, "finalizers": STRINGS,
    "ownerReferences": Seq(OPEN), "managedFields": Seq(OPEN),
})
FEASIBLE_SPACE = Struct("FeasibleSpace", {
    "max": STR_O, "min": STR_O, "list": STRINGS, "step": STR_O, "distribution": STR_O,
})
PARAMETER = Struct("ParameterSpec", {"name": STR_O, "parameterType": STR_O, "feasibleSpace": FEASIBLE_SPACE})
NAME_VALUE = Struct("AlgorithmSetting", {"name": STR_O, "value": STR_O})
OBJECTIVE = Struct("ObjectiveSpec", {
    "type": STR_O, "goal": FLOAT, "objectiveMetricName": STR_O, "additionalMetricNames": STRINGS,
    "metricStrategies": Seq(Struct("MetricStrategy", {"name": STR_O, "value": STR_O})),
})
ALGORITHM = Struct("AlgorithmSpec", {"algorithmName": STR_O, "algorithmSettings": Seq(NAME_VALUE)})
EARLY_STOPPING = Struct("EarlyStoppingSpec", {
    "algorithmName": STR_O,
    "algorithmSettings": Seq(Struct("EarlyStoppingSetting", {"name": STR_O, "value": STR_O})),
})
TRIAL_TEMPLATE = Struct("TrialTemplate", {
    "retain": BOOL_O,
    "trialSpec": Struct("trialSpec (an unstructured object)", open=True),
    "configMap": Struct("ConfigMapSource", {
        "configMapName": STR_O, "configMapNamespace": STR_O, "templatePath": STR_O,
    }),
    "trialParameters": Seq(Struct("TrialParameterSpec", {"name": STR_O, "description": STR_O, "reference": STR_O})),
    "primaryPodLabels": STRING_MAP,
    "primaryContainerName": STR_O,
    "successCondition": STR_O,
    "failureCondition": STR_O,
})

# ---------------------------------------------------------------- core/v1 and batch/v1 (k8s.io/api v0.34)
LOCAL_REF = Struct("LocalObjectReference", {"name": STR_O})
KEY_SELECTOR = Struct("KeySelector", {"name": STR_O, "key": STR_K, "optional": BOOL_K})
HTTP_GET = Struct("HTTPGetAction", {
    "path": STR_O, "port": INT_OR_STR, "host": STR_O, "scheme": STR_O,
    "httpHeaders": Seq(Struct("HTTPHeader", {"name": STR_K, "value": STR_K})),
})
EXEC = Struct("ExecAction", {"command": STRINGS})
TCP_SOCKET = Struct("TCPSocketAction", {"port": INT_OR_STR, "host": STR_O})
PROBE = Struct("Probe", {
    "exec": EXEC, "httpGet": HTTP_GET, "tcpSocket": TCP_SOCKET,
    "grpc": Struct("GRPCAction", {"port": I32_K, "service": STR_K}),
    "initialDelaySeconds": I32_O, "timeoutSeconds": I32_O, "periodSeconds": I32_O, "successThreshold": I32_O,
    "failureThreshold": I32_O, "terminationGracePeriodSeconds": I64_K,
})
LIFECYCLE_HANDLER = Struct("LifecycleHandler", {
    "exec": EXEC, "httpGet": HTTP_GET, "tcpSocket": TCP_SOCKET, "sleep": Struct("SleepAction", {"seconds": I64_K}),
})
RESOURCES = Struct("ResourceRequirements", {
    "limits": Dict(QTY), "requests": Dict(QTY), "claims": Seq(OPEN),
})
PROFILE = Struct("SeccompProfile", {"type": STR_K, "localhostProfile": STR_K})
SECURITY_CONTEXT = Struct("SecurityContext", {
    "capabilities": Struct("Capabilities", {"add": STRINGS, "drop": STRINGS}),
    "privileged": BOOL_K, "seLinuxOptions": OPEN, "windowsOptions": OPEN, "runAsUser": I64_K, "runAsGroup": I64_K,
    "runAsNonRoot": BOOL_K, "readOnlyRootFilesystem": BOOL_K, "allowPrivilegeEscalation": BOOL_K,
    "procMount": STR_K, "seccompProfile": PROFILE, "appArmorProfile": PROFILE,
})
POD_SECURITY_CONTEXT = Struct("PodSecurityContext", {
    "seLinuxOptions": OPEN, "windowsOptions": OPEN, "runAsUser": I64_K, "runAsGroup": I64_K,
    "runAsNonRoot": BOOL_K, "supplementalGroups": Seq(I64_K), "supplementalGroupsPolicy": STR_K,
    "fsGroup": I64_K, "sysctls": Seq(Struct("Sysctl", {"name": STR_K, "value": STR_K})),
    "fsGroupChangePolicy": STR_K, "seccompProfile": PROFILE, "appArmorProfile": PROFILE,
    "seLinuxChangePolicy": STR_K,
})
ENV_VAR = Struct("EnvVar", {
    "name": STR_K, "value": STR_O,
    "valueFrom": Struct("EnvVarSource", {
        "fieldRef": Struct("ObjectFieldSelector", {"apiVersion": STR_O, "fieldPath": STR_K}),
        "resourceFieldRef": Struct("ResourceFieldSelector", {
            "containerName": STR_O, "resource": STR_K, "divisor": QTY,
        }),
        "configMapKeyRef": KEY_SELECTOR, "secretKeyRef": KEY_SELECTOR, "fileKeyRef": OPEN,
    }),
})
ENV_FROM = Struct("EnvFromSource", {
    "prefix": STR_O,
    "configMapRef": Struct("ConfigMapEnvSource", {"name": STR_O, "optional": BOOL_K}),
    "secretRef": Struct("SecretEnvSource", {"name": STR_O, "optional": BOOL_K}),
})
VOLUME_MOUNT = Struct("VolumeMount", {
    "name": STR_K, "readOnly": BOOL_O, "recursiveReadOnly": STR_K, "mountPath": STR_K, "subPath": STR_O,
    "mountPropagation": STR_K, "subPathExpr": STR_O,
})
CONTAINER = Struct("Container", {
    "name": STR_K, "image": STR_O, "command": STRINGS, "args": STRINGS, "workingDir": STR_O,
    "ports": Seq(Struct("ContainerPort", {
        "name": STR_O, "hostPort": I32_O, "containerPort": I32_K, "protocol": STR_O, "hostIP": STR_O,
    })),
    "envFrom": Seq(ENV_FROM), "env": Seq(ENV_VAR), "resources": RESOURCES, "resizePolicy": Seq(OPEN),
    "restartPolicy": STR_K, "restartPolicyRules": Seq(OPEN), "volumeMounts": Seq(VOLUME_MOUNT),
    "volumeDevices": Seq(OPEN), "livenessProbe": PROBE, "readinessProbe": PROBE, "startupProbe": PROBE,
    "lifecycle": Struct("Lifecycle", {
        "postStart": LIFECYCLE_HANDLER, "preStop": LIFECYCLE_HANDLER, "stopSignal": STR_K,
    }),
    "terminationMessagePath": STR_O, "terminationMessagePolicy": STR_O, "imagePullPolicy": STR_O,
    "securityContext": SECURITY_CONTEXT, "stdin": BOOL_O, "stdinOnce": BOOL_O, "tty": BOOL_O,
})
KEY_TO_PATH = Struct("KeyToPath", {"key": STR_K, "path": STR_K, "mode": I32_K})
VOLUME = Struct("Volume", {
    "name": STR_K,
    "persistentVolumeClaim": Struct("PersistentVolumeClaimVolumeSource", {"claimName": STR_K, "readOnly": BOOL_O}),
    "emptyDir": Struct("EmptyDirVolumeSource", {"medium": STR_O, "sizeLimit": QTY}),
    "configMap": Struct("ConfigMapVolumeSource", {
        "name": STR_O, "items": Seq(KEY_TO_PATH), "defaultMode": I32_K, "optional": BOOL_K,
    }),
    "secret": Struct("SecretVolumeSource", {
        "secretName": STR_O, "items": Seq(KEY_TO_PATH), "defaultMode": I32_K, "optional": BOOL_K,
    }),
    "hostPath": Struct("HostPathVolumeSource", {"path": STR_K, "type": STR_K}),
    "nfs": Struct("NFSVolumeSource", {"server": STR_K, "path": STR_K, "readOnly": BOOL_O}),
    **{name: OPEN for name in (
        "projected", "downwardAPI", "csi", "ephemeral", "image", "awsElasticBlockStore", "azureDisk", "azureFile",
        "cephfs", "cinder", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "iscsi",
        "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "vsphereVolume",
    )},
})
TOLERATION = Struct("Toleration", {
    "key": STR_O, "operator": STR_O, "value": STR_O, "effect": STR_O, "tolerationSeconds": I64_K,
})
POD_SPEC = Struct("PodSpec", {
    "volumes": Seq(VOLUME), "initContainers": Seq(CONTAINER), "containers": Seq(CONTAINER, omit_empty=False),
    "ephemeralContainers": Seq(OPEN), "restartPolicy": STR_O, "terminationGracePeriodSeconds": I64_K,
    "activeDeadlineSeconds": I64_K, "dnsPolicy": STR_O, "nodeSelector": STRING_MAP, "serviceAccountName": STR_O,
    "serviceAccount": STR_O, "automountServiceAccountToken": BOOL_K, "nodeName": STR_O, "hostNetwork": BOOL_O,
    "hostPID": BOOL_O, "hostIPC": BOOL_O, "shareProcessNamespace": BOOL_K, "securityContext": POD_SECURITY_CONTEXT,
    "imagePullSecrets": Seq(LOCAL_REF), "hostname": STR_O, "subdomain": STR_O, "affinity": OPEN,
    "schedulerName": STR_O, "tolerations": Seq(TOLERATION), "hostAliases": Seq(OPEN), "priorityClassName": STR_O,
    "priority": I32_K, "dnsConfig": OPEN, "readinessGates": Seq(OPEN), "runtimeClassName": STR_K,
    "enableServiceLinks": BOOL_K, "preemptionPolicy": STR_K, "overhead": Dict(QTY),
    "topologySpreadConstraints": Seq(OPEN), "setHostnameAsFQDN": BOOL_K, "os": Struct("PodOS", {"name": STR_K}),
    "hostUsers": BOOL_K, "schedulingGates": Seq(Struct("PodSchedulingGate", {"name": STR_K})),
    "resourceClaims": Seq(OPEN), "resources": RESOURCES, "hostnameOverride": STR_K, "workloadRef": OPEN,
})
POD_TEMPLATE = Struct("PodTemplateSpec", {"metadata": OBJECT_META, "spec": POD_SPEC})
LABEL_SELECTOR = Struct("LabelSelector", {
    "matchLabels": STRING_MAP,
    "matchExpressions": Seq(Struct("LabelSelectorRequirement", {
        "key": STR_K, "operator": STR_K, "values": STRINGS,
    })),
})
JOB_SPEC = Struct("JobSpec", {
    "parallelism": I32_K, "completions": I32_K, "activeDeadlineSeconds": I64_K, "podFailurePolicy": OPEN,
    "successPolicy": OPEN, "backoffLimit": I32_K, "backoffLimitPerIndex": I32_K, "maxFailedIndexes": I32_K,
    "selector": LABEL_SELECTOR, "manualSelector": BOOL_K, "template": POD_TEMPLATE,
    "ttlSecondsAfterFinished": I32_K, "completionMode": STR_K, "suspend": BOOL_K, "podReplacementPolicy": STR_K,
    "managedBy": STR_K,
})
JOB = Struct("Job", {
    "apiVersion": STR_O, "kind": STR_O, "metadata": OBJECT_META, "spec": JOB_SPEC, "status": OPEN,
})

# ---------------------------------------------------------------- the Experiment itself
METRICS_COLLECTOR = Struct("MetricsCollectorSpec", {
    "source": Struct("SourceSpec", {
        "httpGet": HTTP_GET,
        "fileSystemPath": Struct("FileSystemPath", {"path": STR_O, "kind": STR_O, "format": STR_O}),
        "filter": Struct("FilterSpec", {"metricsFormat": STRINGS}),
    }),
    "collector": Struct("CollectorSpec", {"kind": STR_O, "customCollector": CONTAINER}),
})
NAS_CONFIG = Struct("NasConfig", {
    "graphConfig": Struct("GraphConfig", {"numLayers": I32_K, "inputSizes": Seq(I32_K), "outputSizes": Seq(I32_K)}),
    "operations": Seq(Struct("Operation", {"operationType": STR_O, "parameters": Seq(PARAMETER)})),
})
EXPERIMENT_SPEC = Struct("ExperimentSpec", {
    "parameters": Seq(PARAMETER), "objective": OBJECTIVE, "algorithm": ALGORITHM, "earlyStopping": EARLY_STOPPING,
    "trialTemplate": TRIAL_TEMPLATE, "parallelTrialCount": I32_K, "maxTrialCount": I32_K,
    "maxFailedTrialCount": I32_K, "metricsCollectorSpec": METRICS_COLLECTOR, "nasConfig": NAS_CONFIG,
    "resumePolicy": STR_O,
})
EXPERIMENT = Struct("Experiment", {
    "apiVersion": STR_O, "kind": STR_O, "metadata": OBJECT_META, "spec": EXPERIMENT_SPEC, "status": OPEN,
})


def decode_experiment(ctx: Ctx) -> dict[str, Any]:
    """Decode ``ctx.raw`` like the webhook does; return the clean Experiment (V0 errors, D0 warnings)."""
    cleaned = Decoder(ctx, "experiment").decode(dict(ctx.raw), EXPERIMENT, "")
    return cleaned if isinstance(cleaned, dict) else {}


def check_job_template(ctx: Ctx, template: Mapping[str, Any], path: str) -> None:
    """V19n: report everything that keeps ``template`` from converting to a typed batch/v1 Job."""
    Decoder(ctx, "job").decode(dict(template), JOB, path)
