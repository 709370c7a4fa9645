"""Katib's validating webhook for Experiments (REFERENCE §2, V1–V24), without a cluster.

Rules are checked on the decoded, defaulted Experiment (``schema`` then ``defaults``), as the webhook sees it.
Paths are precise field paths (the webhook itself often reports only ``spec.trialTemplate``).

Differences from the webhook, on purpose:

* Every problem is reported in one pass. The webhook stops after V10–V13 and at several V19 steps; we go on,
  but skip checks whose finding would only repeat an earlier one (no objective-name checks without an
  objective, no parameter/template cross-checks without a template).
* V1 uses a full DNS-1035 label match (the webhook's regex only checks the first character).
* V16/V17/V23a check against the standalone install's katib-config (algorithms random, tpe, grid, hyperband,
  bayesianoptimization, cmaes, sobol, multivariate-tpe, enas, darts, pbt; early stopping medianstop;
  collectors StdOut, File, TensorFlowEvent), so PrometheusMetric is refused as on a stock install.
* V19h: a ConfigMap template is read when the ConfigMap is in the same file; otherwise its content is not
  checked (a note says so).
* V19k cannot fail for a template that is already a parsed object (substitution happens inside strings), and
  V22c is unreachable after defaulting (distribution is always set): neither is reported.

Skipped, because they need the live object or the cluster:

* V7, V8, V9 — UPDATE only: they compare with the stored Experiment (its status and old spec).
* V24 — whether a PersistentVolume ``<exp>-<algorithm>-<namespace>`` still exists (FromVolume on CREATE).
* H1 — the namespace label ``katib.kubeflow.org/metrics-collector-injection: enabled`` (a note reminds of it
  for namespaces other than ``kubeflow``).
"""

from __future__ import annotations

import re
from typing import Any

from katib_hp.errors import did_you_mean
from katib_hp.lint._common import (
    API_VERSION,
    KIND,
    PLACEHOLDER,
    Ctx,
    as_list,
    as_map,
    as_str,
    child,
    is_meta_reference,
    strings_in,
)
from katib_hp.lint.schema import check_job_template
from katib_hp.yamlio import load_yaml

STANDALONE_ALGORITHMS = (
    "random", "tpe", "grid", "hyperband", "bayesianoptimization", "cmaes", "sobol", "multivariate-tpe", "enas",
    "darts", "pbt",
)
EARLY_STOPPING_ALGORITHMS = ("medianstop",)
STANDALONE_COLLECTORS = ("StdOut", "File", "TensorFlowEvent")
COLLECTOR_KINDS = ("StdOut", "File", "TensorFlowEvent", "PrometheusMetric", "Custom", "Push")
RESUME_POLICIES = ("Never", "LongRunning", "FromVolume")
PARAMETER_TYPES = ("int", "double", "categorical", "discrete")
DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")
MAX_NAME_LENGTH = 40
INJECTION_LABEL = "katib.kubeflow.org/metrics-collector-injection"
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_FILTER_GROUPS = re.compile(r".*\(.*\).*\(.*\).*")
# Python's re accepts these, Go's RE2 (which Katib compiles filters with) does not.
_NOT_RE2 = re.compile(r"\(\?(=|!|<=|<!|>|P=)|\\[1-9]")


def check(ctx: Ctx) -> None:
    """Run every webhook rule that needs no cluster."""
    _document(ctx)
    kind = as_str(ctx.exp.get("kind"))
    if kind and kind != KIND:
        ctx.skip.add("document")  # another kind of object: its fields mean something else
        return
    _name(ctx)
    _counts(ctx)
    _objective(ctx)
    _algorithm(ctx)
    _early_stopping(ctx)
    _resume_policy(ctx)
    _trial_template(ctx)
    _parameters(ctx)
    _metrics_collector(ctx)


def _document(ctx: Ctx) -> None:
    api_version, kind = as_str(ctx.exp.get("apiVersion")), as_str(ctx.exp.get("kind"))
    if kind != KIND or api_version != API_VERSION:
        got = f"{api_version or '<no apiVersion>'} {kind or '<no kind>'}"
        path = "kind" if kind != KIND else "apiVersion"
        ctx.error(path, f"is not a Katib Experiment ({got})",
                  f"katib-hp validates apiVersion: {API_VERSION}, kind: {KIND}", rule="V0")
    namespace = as_str(as_map(ctx.exp.get("metadata")).get("namespace"))
    labelled = any(
        doc.get("kind") == "Namespace" and as_map(doc.get("metadata")).get("name") == namespace
        and as_map(as_map(doc.get("metadata")).get("labels")).get(INJECTION_LABEL) == "enabled"
        for doc in ctx.others)
    if namespace and namespace != "kubeflow" and not labelled:
        ctx.note("metadata.namespace",
                 f"namespace {namespace!r} must carry the label katib.kubeflow.org/metrics-collector-injection="
                 "enabled, or Katib refuses the Experiment",
                 f"kubectl label namespace {namespace} katib.kubeflow.org/metrics-collector-injection=enabled",
                 rule="H1")


# ----------------------------------------------------------------------------------------------- V1
def _name(ctx: Ctx) -> None:
    meta = as_map(ctx.exp.get("metadata"))
    name = as_str(meta.get("name"))
    if not name:
        generate = as_str(meta.get("generateName"))
        if generate:
            _check_name(ctx, "metadata.generateName", generate + "abcde", shown=generate, generated=True)
        elif not ctx.is_bad("metadata.name") and not ctx.is_bad("metadata"):
            ctx.error("metadata.name", "is required", "add metadata.name (lowercase letters, digits, '-'; <= 40)",
                      rule="V1")
        return
    _check_name(ctx, "metadata.name", name, shown=name, generated=False)


def _check_name(ctx: Ctx, path: str, name: str, *, shown: str, generated: bool) -> None:
    reasons = []
    if len(name) > MAX_NAME_LENGTH:
        extra = " with the 5 generated characters" if generated else ""
        reasons.append(f"is {len(name)} characters long{extra} (at most {MAX_NAME_LENGTH}: "
                       "'<name>-<algorithm>' becomes a Service name)")
    if not _DNS_1035.match(name):
        if not name[:1].islower() or not name[:1].isalpha():
            reasons.append("must start with a lowercase letter")
        if re.search(r"[^-a-z0-9]", name):
            reasons.append("may contain only lowercase letters, digits and '-'")
        if name.endswith("-") and not generated:
            reasons.append("must end with a letter or digit")
    if reasons:
        fixed = re.sub(r"[^-a-z0-9]+", "-", shown.lower()).strip("-")
        fixed = re.sub(r"^[^a-z]+", "", fixed)[:MAX_NAME_LENGTH].rstrip("-") or "experiment"
        ctx.error(path, "; ".join(reasons), f"e.g. {fixed!r}", shown, rule="V1")


# ------------------------------------------------------------------------------------------- V2–V6
def _counts(ctx: Ctx) -> None:
    max_failed = ctx.int_field("maxFailedTrialCount")
    max_trials = ctx.int_field("maxTrialCount")
    parallel = ctx.int_field("parallelTrialCount")
    if max_failed is not None and max_failed < 0:
        ctx.error("spec.maxFailedTrialCount", "should not be less than 0", "use 0 or more", max_failed, rule="V2")
    if max_trials is not None and max_trials <= 0:
        ctx.error("spec.maxTrialCount", "must be greater than 0", "", max_trials, rule="V3")
    if parallel is not None and parallel <= 0:
        ctx.error("spec.parallelTrialCount", "must be greater than 0", "", parallel, rule="V4")
    if max_failed is not None and max_trials is not None and max_failed > max_trials > 0:
        ctx.error("spec.maxFailedTrialCount", f"should be less than or equal to spec.maxTrialCount ({max_trials})",
                  f"set maxFailedTrialCount <= {max_trials}", max_failed, rule="V5")
    if parallel is not None and max_trials is not None and parallel > max_trials > 0:
        if "spec.parallelTrialCount" in ctx.defaulted:
            ctx.error("spec.parallelTrialCount",
                      f"is not set, so Katib defaults it to {parallel}, which is more than spec.maxTrialCount "
                      f"({max_trials}): the Experiment is refused",
                      f"set parallelTrialCount: {max_trials} (or less)", rule="V6")
        else:
            ctx.error("spec.parallelTrialCount", f"should be less than or equal to spec.maxTrialCount ({max_trials})",
                      f"set parallelTrialCount <= {max_trials}", parallel, rule="V6")


# ----------------------------------------------------------------------------------------- V10–V13
def _objective(ctx: Ctx) -> None:
    objective = ctx.objective
    if objective is None:
        if not ctx.is_bad("spec.objective"):
            ctx.error("spec.objective", "must be specified",
                      "add objective: {type: maximize, objectiveMetricName: <metric>}", rule="V10")
        ctx.skip.add("objective")
        return
    kind = as_str(objective.get("type"))
    if kind not in ("minimize", "maximize") and not ctx.is_bad("spec.objective.type"):
        hint = did_you_mean(kind, ("minimize", "maximize")) if kind else "set type: minimize or maximize"
        ctx.error("spec.objective.type", "must be minimize or maximize", hint, kind or None, rule="V11")
    name = as_str(objective.get("objectiveMetricName"))
    if not name:
        if not ctx.is_bad("spec.objective.objectiveMetricName"):
            ctx.error("spec.objective.objectiveMetricName", "must be specified",
                      "name the metric the trial prints, e.g. val_accuracy", rule="V12")
        ctx.skip.add("objective")
    additional = as_list(objective.get("additionalMetricNames"))
    if name and name in additional:
        ctx.error(child("spec.objective.additionalMetricNames", additional.index(name)),
                  "should not contain spec.objective.objectiveMetricName", "remove it from additionalMetricNames",
                  name, rule="V13")


# ----------------------------------------------------------------------------------------- V14–V18
def _algorithm(ctx: Ctx) -> None:
    algorithm = ctx.spec.get("algorithm")
    if not isinstance(algorithm, dict):
        if not ctx.is_bad("spec.algorithm"):
            ctx.error("spec.algorithm", "must be specified", "add algorithm: {algorithmName: random}", rule="V14")
        ctx.skip.add("algorithm")
        return
    name = as_str(algorithm.get("algorithmName"))
    if not name:
        if not ctx.is_bad("spec.algorithm.algorithmName"):
            ctx.error("spec.algorithm.algorithmName", "must be specified",
                      "one of " + ", ".join(STANDALONE_ALGORITHMS), rule="V15")
        ctx.skip.add("algorithm")
        return
    if name not in STANDALONE_ALGORITHMS:
        ctx.error("spec.algorithm.algorithmName",
                  f"unable to get Suggestion config data for algorithm {name}: katib-config has no such algorithm",
                  did_you_mean(name, STANDALONE_ALGORITHMS), name, rule="V16")
        ctx.skip.add("algorithm")


def _early_stopping(ctx: Ctx) -> None:
    early = ctx.spec.get("earlyStopping")
    if not isinstance(early, dict):
        return
    name = as_str(early.get("algorithmName"))
    if not name:
        if not ctx.is_bad("spec.earlyStopping.algorithmName"):
            ctx.error("spec.earlyStopping.algorithmName", "must be specified", "use algorithmName: medianstop",
                      rule="V17")
        ctx.skip.add("early")
    elif name not in EARLY_STOPPING_ALGORITHMS:
        ctx.error("spec.earlyStopping.algorithmName",
                  f"unable to get EarlyStopping config data for algorithm {name}: medianstop is the only one",
                  "use algorithmName: medianstop", name, rule="V17")
        ctx.skip.add("early")


def _resume_policy(ctx: Ctx) -> None:
    policy = as_str(ctx.spec.get("resumePolicy"))
    if policy and policy not in RESUME_POLICIES:
        ctx.error("spec.resumePolicy", "invalid ResumePolicyType", did_you_mean(policy, RESUME_POLICIES), policy,
                  rule="V18")
    elif policy == "FromVolume":
        ctx.note("spec.resumePolicy",
                 "FromVolume keeps the suggestion's state on a PersistentVolumeClaim <experiment>-<algorithm>: the "
                 "cluster must provision it (Katib's own tests use ReadWriteMany storage, which kind lacks), and "
                 "creation is refused while a PV <experiment>-<algorithm>-<namespace> still exists (not checked "
                 "here)", rule="V24")


# ------------------------------------------------------------------------------------------------- V19
def _trial_template(ctx: Ctx) -> None:
    base = "spec.trialTemplate"
    template = ctx.trial_template
    if template is None:
        if not ctx.is_bad(base):
            ctx.error(base, "must be specified", "add trialTemplate with trialSpec, trialParameters and "
                      "primaryContainerName", rule="V19a")
        ctx.skip.add("template")
        return
    if not as_str(template.get("primaryContainerName")) and not ctx.is_bad(f"{base}.primaryContainerName"):
        ctx.error(f"{base}.primaryContainerName", "must be specified",
                  "name the container that runs the training (its metrics are collected)", rule="V19b")
    has_spec, has_map = "trialSpec" in template, "configMap" in template
    for key in ("successCondition", "failureCondition"):
        if not as_str(template.get(key)) and not ctx.is_bad(f"{base}.{key}"):
            why = ("a ConfigMap template gets no default" if has_map and not has_spec else
                   "Katib has no default for this kind")
            ctx.error(f"{base}.{key}", f"successCondition and failureCondition must be specified ({why})",
                      "write a GJSON condition on the run object, e.g. "
                      "status.conditions.#(type==\"Complete\")#|#(status==\"True\")#", rule="V19c")
    if "trialParameters" not in template and not ctx.is_bad(f"{base}.trialParameters"):
        ctx.error(f"{base}.trialParameters", "must be specified",
                  "declare one {name, reference} per search parameter (an empty list is allowed)", rule="V19d")
    if not has_spec and not has_map:
        if not ctx.is_bad(f"{base}.trialSpec") and not ctx.is_bad(f"{base}.configMap"):
            ctx.error(f"{base}.trialSpec", "spec.trialTemplate.trialSpec or spec.trialTemplate.configMap must be "
                      "specified", "inline the run object (e.g. a batch/v1 Job) under trialSpec", rule="V19e")
        ctx.skip.add("template")
        return
    if has_spec and has_map:
        ctx.error(base, "only one of spec.trialTemplate.trialSpec or spec.trialTemplate.configMap can be specified",
                  "remove one of them", rule="V19f")
        ctx.skip.add("template")
        return
    if has_map:
        if not _load_config_map_template(ctx, as_map(template.get("configMap"))):
            ctx.skip.add("template")
            return
    else:
        ctx.template = as_map(template.get("trialSpec"))
        ctx.template_path = f"{base}.trialSpec"
    _trial_parameters(ctx, template)
    _template_object(ctx)


def _load_config_map_template(ctx: Ctx, source: dict[str, Any]) -> bool:
    base = "spec.trialTemplate.configMap"
    name, namespace, key = (as_str(source.get(k)) for k in ("configMapName", "configMapNamespace", "templatePath"))
    if not (name and namespace and key):
        missing = [k for k, v in (("configMapName", name), ("configMapNamespace", namespace),
                                  ("templatePath", key)) if not v]
        ctx.error(base, "configMapName, configMapNamespace and templatePath must be specified",
                  "missing: " + ", ".join(missing), rule="V19g")
        return False
    for cm in ctx.others:
        meta = as_map(cm.get("metadata"))
        if cm.get("kind") == "ConfigMap" and meta.get("name") == name and meta.get("namespace", namespace) == namespace:
            data = as_map(cm.get("data"))
            if key not in data or not isinstance(data[key], str):
                ctx.error(f"{base}.templatePath",
                          f"unable to parse spec.trialTemplate: ConfigMap {namespace}/{name} has no key {key!r}",
                          did_you_mean(key, data) if data else "", key, rule="V19h")
                return False
            try:
                loaded = load_yaml(data[key], f"ConfigMap {name} key {key}")
            except Exception as exc:  # a YAML error in the template text
                ctx.error(f"{base}.templatePath", f"unable to parse spec.trialTemplate: {exc}", "", rule="V19h")
                return False
            if not isinstance(loaded, dict):
                ctx.error(f"{base}.templatePath", "unable to parse spec.trialTemplate: the template is not an "
                          "object", "", rule="V19h")
                return False
            ctx.template = loaded
            ctx.template_path = f"configMap {namespace}/{name}[{key}]"
            return True
    ctx.note(base, f"the trial template lives in ConfigMap {namespace}/{name} (key {key}) and is not checked here",
             "put the ConfigMap in the same file to have it checked", rule="V19h")
    return False


def _trial_parameters(ctx: Ctx, template: dict[str, Any]) -> None:
    base = "spec.trialTemplate.trialParameters"
    parameter_names = {as_str(p.get("name")) for p in as_list(ctx.spec.get("parameters")) if isinstance(p, dict)}
    seen_names: set[str] = set()
    seen_refs: set[str] = set()
    text = "\n".join(s for _, s in strings_in(ctx.template, ""))
    for index, item in enumerate(as_list(template.get("trialParameters"))):
        path = child(base, index)
        if not isinstance(item, dict) or ctx.is_bad(path):
            continue
        name, reference = as_str(item.get("name")), as_str(item.get("reference"))
        if not name or not reference or "{" in name or "}" in name:
            ctx.error(path, "name and reference must be specified and name must not contain '{' or '}'",
                      "e.g. {name: learningRate, reference: lr}", rule="V19i1")
            continue
        if name in seen_names:
            ctx.error(f"{path}.name", f"parameter name {name} can't be duplicated in trialParameters",
                      "give each trialParameter its own name", name, rule="V19i2")
            continue
        if reference in seen_refs:
            ctx.error(f"{path}.reference", f"parameter reference {reference} can't be duplicated in trialParameters",
                      "reference each search parameter once and reuse its placeholder", reference, rule="V19i3")
            continue
        seen_names.add(name)
        seen_refs.add(reference)
        if parameter_names - {""} and not is_meta_reference(reference) and reference not in parameter_names:
            ctx.error(f"{path}.reference", f"parameter reference {reference} does not exist in spec.parameters",
                      did_you_mean(reference, parameter_names - {""}), reference, rule="V19i4")
        if "${trialParameters." + name + "}" not in text:
            ctx.error(f"{path}.name",
                      f"parameter name: {name} in spec.trialParameters not found in the trial template",
                      f"use ${{trialParameters.{name}}} in the template (e.g. in args) or remove it", name,
                      rule="V19i5")
    for path, value in strings_in(ctx.template, ctx.template_path):
        for found in PLACEHOLDER.findall(value):
            if found not in seen_names:
                ctx.error(path, f"${{trialParameters.{found}}} in the trial template is not in "
                          "spec.trialTemplate.trialParameters",
                          did_you_mean(found, seen_names) if seen_names else
                          f"declare {{name: {found}, reference: <parameter>}}", value, rule="V19j")


def _template_object(ctx: Ctx) -> None:
    template = ctx.template or {}
    base = ctx.template_path
    meta = as_map(template.get("metadata"))
    for key in ("name", "namespace"):
        if key in meta:
            ctx.error(f"{base}.metadata.{key}",
                      "metadata.name and metadata.namespace in spec.trialTemplate must be omitted",
                      "Katib names each run object after its Trial", meta[key], rule="V19l")
    if not as_str(template.get("apiVersion")) or not as_str(template.get("kind")):
        missing = "apiVersion" if not as_str(template.get("apiVersion")) else "kind"
        ctx.error(f"{base}.{missing}", "APIVersion and Kind in spec.trialTemplate must be specified",
                  "e.g. apiVersion: batch/v1, kind: Job", rule="V19m")
        ctx.skip.add("kind")
    if template.get("apiVersion") == "batch/v1" and template.get("kind") == "Job":
        check_job_template(ctx, template, base)


# --------------------------------------------------------------------------------------------- V20–V22
def _parameters(ctx: Ctx) -> None:
    parameters = as_list(ctx.spec.get("parameters"))
    nas = ctx.spec.get("nasConfig")
    if not parameters and nas is None:
        if not ctx.is_bad("spec.parameters"):
            ctx.error("spec.parameters", "spec.parameters or spec.nasConfig must be specified",
                      "declare the search space under spec.parameters", rule="V20")
        ctx.skip.add("parameters")
    if parameters and nas is not None:
        ctx.error("spec.nasConfig", "only one of spec.parameters and spec.nasConfig can be specified",
                  "remove nasConfig (or parameters, for enas/darts)", rule="V21")
    for index, parameter in enumerate(parameters):
        path = child("spec.parameters", index)
        if ctx.is_bad(path):
            continue
        kind = as_str(parameter.get("parameterType"))
        space = as_map(parameter.get("feasibleSpace"))
        if kind not in (*PARAMETER_TYPES, "unknown") and not ctx.is_bad(f"{path}.parameterType"):
            ctx.error(f"{path}.parameterType", f"parameterType: {kind or '<empty>'} is not supported",
                      did_you_mean(kind, PARAMETER_TYPES) if kind else "one of " + ", ".join(PARAMETER_TYPES),
                      kind or None, rule="V22a")
        elif kind == "unknown":
            ctx.error(f"{path}.parameterType", "parameterType: unknown passes the webhook, but no suggestion "
                      "service can sample it", "use int, double, categorical or discrete", kind, rule="E3")
        distribution = as_str(space.get("distribution"))
        if distribution and distribution not in (*DISTRIBUTIONS, "unknown"):
            ctx.error(f"{path}.feasibleSpace.distribution", f"distribution: {distribution} is not supported",
                      did_you_mean(distribution, DISTRIBUTIONS), distribution, rule="V22b")
        if kind in ("int", "double"):
            if space.get("list"):
                ctx.error(f"{path}.feasibleSpace.list", f"feasibleSpace.list is not supported for parameterType: "
                          f"{kind}", "use min/max (and step), or parameterType: discrete for a list of numbers",
                          rule="V22d")
            for key in ("min", "max"):
                if not as_str(space.get(key)) and not ctx.is_bad(f"{path}.feasibleSpace.{key}"):
                    ctx.error(f"{path}.feasibleSpace.{key}",
                              f"feasibleSpace.max or feasibleSpace.min must be specified for parameterType: {kind}",
                              f'add {key}: "<number>" (a quoted string)', rule="V22d")
        elif kind in ("categorical", "discrete"):
            present = [k for k in ("min", "max", "step") if as_str(space.get(k))]
            if present:
                ctx.error(f"{path}.feasibleSpace.{present[0]}", f"feasibleSpace .max, .min and .step is not "
                          f"supported for parameterType: {kind}", "list the values under feasibleSpace.list",
                          rule="V22e")


# ------------------------------------------------------------------------------------------------- V23
def _metrics_collector(ctx: Ctx) -> None:
    base = "spec.metricsCollectorSpec"
    mc = as_map(ctx.spec.get("metricsCollectorSpec"))
    collector = as_map(mc.get("collector"))
    kind = as_str(collector.get("kind"))
    source = as_map(mc.get("source"))
    fs = source.get("fileSystemPath")
    fs_map = as_map(fs)
    kind_path = f"{base}.collector.kind"
    if kind == "PrometheusMetric":
        ctx.error(kind_path, "GetMetricsCollectorConfigData failed: the standalone katib-config has no "
                  "PrometheusMetric collector (and Katib ships no image for it)",
                  "use StdOut, File or TensorFlowEvent, or Push", kind, rule="V23a")
    if kind in ("StdOut", "Push"):
        pass
    elif kind == "File":
        path = as_str(fs_map.get("path"))
        if fs is None or fs_map.get("kind") != "File" or not path.startswith("/"):
            ctx.error(f"{base}.source.fileSystemPath.path", "file path where metrics file exists is required "
                      "(an absolute path with kind: File)", "e.g. path: /var/log/katib/metrics.log, kind: File",
                      path or None, rule="V23c")
        fmt = as_str(fs_map.get("format"))
        if fmt not in ("TEXT", "JSON"):
            ctx.error(f"{base}.source.fileSystemPath.format", "format of metrics file is required for metrics "
                      "collector: TEXT or JSON", did_you_mean(fmt, ("TEXT", "JSON")), fmt or None, rule="V23c")
        if fmt == "JSON" and "filter" in source:
            ctx.error(f"{base}.source.filter", "filter must be nil when format of metrics file is json",
                      "remove source.filter (JSON lines are read by key)", rule="V23c")
    elif kind == "TensorFlowEvent":
        path = as_str(fs_map.get("path"))
        if fs is None or fs_map.get("kind") != "Directory" or not path.startswith("/"):
            ctx.error(f"{base}.source.fileSystemPath", "directory path where tensorflow event files exist is "
                      "required (an absolute path with kind: Directory)", "e.g. path: /var/log/katib/tfevent/",
                      path or None, rule="V23d")
        if as_str(fs_map.get("format")):
            ctx.error(f"{base}.source.fileSystemPath.format", "must be empty", "remove format",
                      fs_map.get("format"), rule="V23d")
    elif kind == "PrometheusMetric":
        http = as_map(source.get("httpGet"))
        port = http.get("port")
        port_ok = (isinstance(port, int) and not isinstance(port, bool) and port > 0) or \
            (isinstance(port, str) and port.isascii() and port.isdigit() and int(port) > 0)
        if not port_ok:
            ctx.error(f"{base}.source.httpGet.port", "must be a positive integer value for metrics collector kind: "
                      "PrometheusMetric", "", port, rule="V23e")
        if not as_str(http.get("path")).startswith("/"):
            ctx.error(f"{base}.source.httpGet.path", "path is invalid for metrics collector kind: PrometheusMetric",
                      "start it with '/'", http.get("path"), rule="V23e")
    elif kind == "Custom":
        if "customCollector" not in collector:
            ctx.error(f"{base}.collector.customCollector", "metrics collector kind: Custom is required",
                      "give the collector container under customCollector", rule="V23f")
        if fs is not None and (not as_str(fs_map.get("path")).startswith("/")
                               or fs_map.get("kind") not in ("Directory", "File")):
            ctx.error(f"{base}.source.fileSystemPath", ".spec.metricsCollectorSpec.source is invalid",
                      "an absolute path with kind File or Directory", rule="V23f")
    elif not ctx.is_bad(kind_path):
        hint = did_you_mean(kind, COLLECTOR_KINDS) if kind else "one of " + ", ".join(COLLECTOR_KINDS)
        if kind == "None":
            hint = "None was renamed Push in Katib v0.18"
        ctx.error(kind_path, f"invalid metrics collector kind: {kind or '<empty>'}", hint, kind or None, rule="V23g")
    for index, pattern in enumerate(as_list(as_map(source.get("filter")).get("metricsFormat"))):
        path = child(f"{base}.source.filter.metricsFormat", index)
        if ctx.is_bad(path):
            continue
        try:
            re.compile(pattern)
        except re.error as exc:
            ctx.error(path, f"invalid filter: {exc} (checked with Python's re, close to Go's RE2)",
                      "fix the regular expression", pattern, rule="V23h")
            continue
        if _NOT_RE2.search(pattern):
            ctx.error(path, "invalid filter: Go's RE2 has no lookarounds, backreferences or atomic groups",
                      "rewrite the regular expression without them", pattern, rule="V23h")
            continue
        if not _FILTER_GROUPS.match(pattern):
            ctx.error(path, "two top subexpressions are required (group 1: metric name, group 2: value)",
                      r"e.g. ([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)", pattern, rule="V23h")
