"""What Katib admits but breaks later (REFERENCE §2 E1–E9, §3, §4), checked before submission.

Rule ids:

* E1 algorithm and early-stopping settings, as each suggestion service's ValidateAlgorithmSettings checks them
  (``katib_hp.algorithms.check_settings``; medianstop through ``MEDIANSTOP``).
* E2 parameters and trialParameters: every search parameter referenced by exactly one trialParameter;
  ``${trialSpec.Labels[k]}`` / ``Annotations[k]`` present in the template's own metadata.
* E3 numbers: min/max/step parse (integers for int), min <= max, step > 0, non-empty lists without
  duplicates, unique parameter names, list values that survive Katib's textual JSON substitution.
* E4 per-algorithm constraints: hyperband arithmetic (like Katib: ``s_max = int(ln r_l / ln eta)``,
  parallelTrialCount >= ceil(eta^s_max)), grid (double steps, maxTrialCount <= combinations), bayesian
  optimization (log-uniform doubles), cmaes (two or more numeric parameters), pbt (double steps), and the
  distribution/step support matrix (§3.4).
* E5 the run object's kind in the standalone ``trialResources``.
* E6 primaryContainerName in every pod template of the trial.
* E7 pull collectors (StdOut, File, TensorFlowEvent): explicit ``command``; every token survives ``sh -c``.
* E8 budget: maxTrialCount set, parallelTrialCount explicit, maxFailedTrialCount recommended.
* E9 batch Jobs: ``restartPolicy`` Never (Jobs refuse Always) and ``backoffLimit: 0``.
* M1 metric names the text collectors can capture (``[A-Za-z0-9_-]``); M2 early stopping needs the StdOut or
  File collector; M3 metric strategies.
* G1 GPUs: extended resources must be in ``limits`` (and equal requests); a note with the peak GPU count.
* D1 notes about defaults that change behaviour.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from katib_hp.algorithms import ALGORITHMS, MEDIANSTOP, Algorithm, check_settings, hyperband_plan
from katib_hp.errors import did_you_mean
from katib_hp.lint._common import (
    PLACEHOLDER,
    PULL_COLLECTORS,
    Ctx,
    ParamInfo,
    as_int,
    as_list,
    as_map,
    as_str,
    child,
    objective_metric_names,
    parse_float,
    parse_int,
)
from katib_hp.lint._trial import find_container, pod_templates, primary_invocation

TRIAL_RESOURCES = {
    "Job": "batch/v1",
    "TFJob": "kubeflow.org/v1",
    "PyTorchJob": "kubeflow.org/v1",
    "MPIJob": "kubeflow.org/v1",
    "XGBoostJob": "kubeflow.org/v1",
    "TrainJob": "trainer.kubeflow.org/v1alpha1",
}
OPTUNA = ("grid", "multivariate-tpe")
HYPEROPT = ("random", "tpe")
METRIC_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
SH_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./^-]*$")
GPU_KEYS = re.compile(r"^[a-z0-9.-]+/gpu$")
# A placeholder the template itself quotes for the shell: --x='${trialParameters.x}' (Katib's NAS examples).
_QUOTED_PLACEHOLDER = re.compile(r"""(['"])\$\{trialParameters\.[^}]+\}\1""")
_SETTINGS = "spec.algorithm.algorithmSettings"


def check(ctx: Ctx) -> None:
    ctx.params = _numbers(ctx)
    _settings(ctx)
    _early_stopping_settings(ctx)
    _references(ctx)
    _per_algorithm(ctx)
    _distributions(ctx)
    _trial_kind(ctx)
    _primary_container(ctx)
    _pull_collector(ctx)
    _budget(ctx)
    _job_policy(ctx)
    _metrics(ctx)
    _gpus(ctx)


def param(ctx: Ctx, name: str) -> ParamInfo | None:
    return next((p for p in ctx.params if p.name == name), None)


def _algorithm(ctx: Ctx) -> Algorithm | None:
    return None if "algorithm" in ctx.skip else ALGORITHMS.get(ctx.algorithm_name)


# --------------------------------------------------------------------------------------------------- E3
def _numbers(ctx: Ctx) -> list[ParamInfo]:
    infos: list[ParamInfo] = []
    names = Counter(as_str(p.get("name")) for p in as_list(ctx.spec.get("parameters")))
    for index, parameter in enumerate(as_list(ctx.spec.get("parameters"))):
        path = child("spec.parameters", index)
        if ctx.is_bad(path):
            continue
        space = as_map(parameter.get("feasibleSpace"))
        info = ParamInfo(
            index=index, name=as_str(parameter.get("name")), type=as_str(parameter.get("parameterType")), path=path,
            min_text=as_str(space.get("min")), max_text=as_str(space.get("max")), step_text=as_str(space.get("step")),
            values=[v for v in as_list(space.get("list")) if isinstance(v, str)],
            distribution=as_str(space.get("distribution")) or "uniform",
        )
        infos.append(info)
        if not info.name:
            if not ctx.is_bad(f"{path}.name"):
                ctx.error(f"{path}.name", "every parameter needs a name", "name it like the trainer flag it feeds",
                          rule="E3")
        elif names[info.name] > 1 and info is not next(p for p in infos if p.name == info.name):
            ctx.error(f"{path}.name", f"parameter {info.name} is declared twice", "keep one entry per name",
                      info.name, rule="E3")
        if info.numeric:
            _numeric_numbers(ctx, info)
        elif info.type in ("categorical", "discrete"):
            _list_values(ctx, info)
    return infos


def _numeric_numbers(ctx: Ctx, info: ParamInfo) -> None:
    space = f"{info.path}.feasibleSpace"
    parse = parse_int if info.type == "int" else parse_float
    word = "an integer" if info.type == "int" else "a finite number"
    numbers: dict[str, float | None] = {}
    for key, text in (("min", info.min_text), ("max", info.max_text), ("step", info.step_text)):
        if not text:
            numbers[key] = None
            continue
        value = parse(text)
        if value is None:
            hint = ""
            if info.type == "int" and parse_float(text) is not None:
                hint = f'write an integer, e.g. "{int(float(text))}" (Katib\'s services call int() on it)'
            ctx.error(f"{space}.{key}", f"must be {word} for parameterType {info.type}", hint, text, rule="E3")
            ctx.bad.add(f"{space}.{key}")
            return
        numbers[key] = float(value)
    low, high, step = numbers["min"], numbers["max"], numbers["step"]
    if low is None or high is None:
        return
    if low > high:
        ctx.error(f"{space}.min", f"must not be greater than max ({info.max_text})", "swap min and max",
                  info.min_text, rule="E3")
        return
    if step is not None and step <= 0:
        ctx.error(f"{space}.step", "must be greater than 0", "remove step or make it positive", info.step_text,
                  rule="E3")
        return
    info.low, info.high, info.step, info.numbers_ok = low, high, step, True
    if step is not None and high > low and step > high - low:
        ctx.warning(f"{space}.step", f"is larger than max - min ({_fmt(high - low)}): only min can be sampled",
                    "use a smaller step", info.step_text, rule="E3")


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def _list_values(ctx: Ctx, info: ParamInfo) -> None:
    path = f"{info.path}.feasibleSpace.list"
    if not info.values:
        if not ctx.is_bad(path):
            ctx.error(path, f"a {info.type} parameter needs a non-empty list", 'e.g. list: ["adam", "sgd"]',
                      rule="E3")
        return
    seen: set[str] = set()
    for index, value in enumerate(info.values):
        if value in seen:
            ctx.error(child(path, index), f"value {value!r} is listed twice", "remove the duplicate", value, rule="E3")
        seen.add(value)
        if '"' in value or "\\" in value:
            ctx.error(child(path, index), "contains a quote or backslash: Katib substitutes values into the "
                      "template's JSON text, which this breaks", "use plain words", value, rule="E3")
    if info.type == "discrete" and any(parse_float(v) is None for v in info.values):
        bad = next(v for v in info.values if parse_float(v) is None)
        ctx.warning(path, f"discrete values should be numbers (got {bad!r})",
                    "use parameterType: categorical for words", rule="E3")


# --------------------------------------------------------------------------------------------------- E1
def _settings(ctx: Ctx) -> None:
    algorithm = _algorithm(ctx)
    if algorithm is None:
        return
    items = as_list(as_map(ctx.spec.get("algorithm")).get("algorithmSettings"))
    _report_settings(ctx, algorithm, items, _SETTINGS)


def _early_stopping_settings(ctx: Ctx) -> None:
    early = ctx.spec.get("earlyStopping")
    if not isinstance(early, dict) or "early" in ctx.skip:
        return
    _report_settings(ctx, MEDIANSTOP, as_list(early.get("algorithmSettings")), "spec.earlyStopping.algorithmSettings")


def _report_settings(ctx: Ctx, algorithm: Algorithm, items: list[Any], base: str) -> None:
    kept = [i for i in range(len(items)) if not ctx.is_bad(child(base, i))]
    pairs = [(as_str(items[i].get("name")), as_str(items[i].get("value"))) for i in kept]
    for problem in check_settings(algorithm, pairs):
        if problem.index is None:
            path = base
        else:
            unknown = algorithm.setting(problem.name) is None
            path = child(child(base, kept[problem.index]), "name" if unknown else "value")
        rule = algorithm.setting(problem.name)
        hint = problem.hint or (f"{problem.name} must be {rule.describe()}" if rule else "")
        severity_word = problem.severity
        message = f"setting {problem.name!r} {problem.message}"
        if severity_word == "error" and algorithm is not MEDIANSTOP:
            message += " (the Suggestion fails after submission, and the Experiment with it)"
        if severity_word == "warning":
            ctx.warning(path, message, hint, problem.value, rule="E1")
        else:
            ctx.error(path, message, hint, problem.value, rule="E1")


# --------------------------------------------------------------------------------------------------- E2
def _references(ctx: Ctx) -> None:
    template = ctx.trial_template
    if template is None or "template" in ctx.skip or not ctx.params:
        return
    refs = Counter(as_str(t.get("reference")) for t in as_list(template.get("trialParameters"))
                   if isinstance(t, dict) and as_str(t.get("name")))
    for info in ctx.params:
        if info.name and refs[info.name] == 0:
            ctx.error(f"{info.path}.name",
                      f"parameter {info.name} is not referenced by any trialParameter: Katib cannot create trials "
                      "(\"unable to find parameter from ParameterAssignment in TrialParameters\")",
                      f"add {{name: {info.name}, reference: {info.name}}} to spec.trialTemplate.trialParameters and "
                      f"use ${{trialParameters.{info.name}}} in the template", info.name, rule="E2")
    meta = as_map((ctx.template or {}).get("metadata"))
    for index, item in enumerate(as_list(template.get("trialParameters"))):
        reference = as_str(as_map(item).get("reference"))
        match = re.search(r"\$\{trialSpec\.(Labels|Annotations)\[(.+)]\}", reference)
        if match:
            bag = as_map(meta.get(match.group(1).lower()))
            if match.group(2) not in bag:
                ctx.error(child(child("spec.trialTemplate.trialParameters", index), "reference"),
                          f"the template's metadata.{match.group(1).lower()} has no key {match.group(2)!r}: Katib "
                          "cannot substitute it when it creates a trial",
                          f"add metadata.{match.group(1).lower()}.{match.group(2)} to the trial template",
                          reference, rule="E2")


# --------------------------------------------------------------------------------------------------- E4
def _per_algorithm(ctx: Ctx) -> None:
    algorithm = _algorithm(ctx)
    if algorithm is None:
        return
    name = algorithm.name
    parallel = ctx.int_field("parallelTrialCount")
    max_trials = ctx.int_field("maxTrialCount")
    numeric = [p for p in ctx.params if p.numeric]
    if algorithm.nas:
        if ctx.spec.get("nasConfig") is None and "parameters" not in ctx.skip:
            ctx.error("spec.algorithm.algorithmName", f"{name} is a neural architecture search algorithm and needs "
                      "spec.nasConfig", "use a hyperparameter algorithm (random, tpe, bayesianoptimization, ...)",
                      name, rule="E4")
        return
    if ctx.spec.get("nasConfig") is not None and not ctx.params:
        ctx.error("spec.nasConfig", f"nasConfig is read only by enas and darts, not {name}",
                  "declare spec.parameters instead", rule="E4")
    if name == "hyperband":
        _hyperband(ctx, parallel, max_trials)
    elif name == "grid":
        _grid(ctx, max_trials)
    elif name == "bayesianoptimization":
        for p in numeric:
            if p.type == "double" and p.numbers_ok and p.low is not None and p.low <= 0:
                ctx.error(f"{p.path}.feasibleSpace.min", "bayesianoptimization samples every double log-uniformly, "
                          "so min must be > 0 (the suggestion service fails otherwise)",
                          "shift the range above 0, or use another algorithm (tpe, random)", p.min_text, rule="E4")
            if p.numbers_ok and p.low == p.high:
                ctx.error(f"{p.path}.feasibleSpace.max", "equals min: scikit-optimize refuses an empty range",
                          "widen the range or pass the value as a fixed argument", p.max_text, rule="E4")
    elif name == "cmaes":
        if len(numeric) < 2 and "parameters" not in ctx.skip:
            ctx.error("spec.parameters", f"cmaes needs two or more int/double parameters (found {len(numeric)})",
                      "add a numeric parameter or use another algorithm", rule="E4")
    elif name == "pbt":
        for p in numeric:
            if p.type == "double" and not p.step_text:
                ctx.error(f"{p.path}.feasibleSpace.step", "pbt needs a step on every double parameter",
                          'add step, e.g. step: "0.01"', rule="E4")
        ctx.note("spec.algorithm.algorithmName", "pbt keeps its population on a ReadWriteMany volume (5Gi in the "
                 "standalone install); kind and most single-node clusters have no RWX storage class", rule="E4")
    for p in ctx.params:
        if p.numbers_ok and p.low == p.high and name not in ("bayesianoptimization", "hyperband"):
            ctx.warning(f"{p.path}.feasibleSpace.max", "equals min: the parameter can take one value only",
                        "pass it as a fixed argument instead of searching it", p.max_text, rule="E3")


def _hyperband(ctx: Ctx, parallel: int | None, max_trials: int | None) -> None:
    items = as_list(as_map(ctx.spec.get("algorithm")).get("algorithmSettings"))
    settings = {as_str(s.get("name")): (index, as_str(s.get("value"))) for index, s in enumerate(items)}
    resource = settings.get("resource_name")
    if resource is not None:
        index, value = resource
        path = child(child(_SETTINGS, index), "value")
        info = param(ctx, value)
        if info is None:
            ctx.error(path, "value of resource_name setting must be in parameters",
                      did_you_mean(value, [p.name for p in ctx.params]) if ctx.params else "", value, rule="E4")
        elif info.type != "int":
            ctx.warning(path, f"the resource parameter {value} is {info.type}: Hyperband assigns it integer "
                        "resources (its own min/max are ignored)", "declare it as parameterType: int", value,
                        rule="E4")
    for p in ctx.params:
        if p.type == "discrete" and any(parse_float(v) is None or not float(v).is_integer() for v in p.values):
            ctx.error(f"{p.path}.feasibleSpace.list", "hyperband calls int() on discrete values, so they must be "
                      "integers", "use parameterType: categorical for other values", rule="E4")
    r_l = parse_float(settings["r_l"][1]) if "r_l" in settings else None
    eta_text = settings["eta"][1] if "eta" in settings else "3"
    eta_float = parse_float(eta_text)
    if r_l is None or r_l <= 0 or eta_float is None:
        return
    eta = int(eta_float)
    if eta <= 0:
        eta = 3
    if eta == 1:
        return  # check_settings reports eta < 2 (Katib divides by ln(eta))
    plan = hyperband_plan(r_l, eta)
    if parallel is not None and parallel < plan.min_parallel:
        defaulted = " (not set, so Katib uses 3)" if "spec.parallelTrialCount" in ctx.defaulted else ""
        ctx.error("spec.parallelTrialCount",
                  f"hyperband with r_l={_fmt(r_l)} and eta={eta} needs parallelTrialCount >= {plan.min_parallel}"
                  f"{defaulted}: the Suggestion fails (\"parallelTrialCount must be not less than "
                  f"{plan.min_parallel}\")", f"set parallelTrialCount (and maxTrialCount) to {plan.min_parallel}, or "
                  "lower r_l", parallel, rule="E4")
    if plan.first_rung_resource < 1:
        ctx.error(child(child(_SETTINGS, settings["r_l"][0]), "value"),
                  f"the first rung would train with resource {plan.first_rung_resource} "
                  f"(int(r_l * eta^-{plan.s_max}))", "raise r_l to at least 1", settings["r_l"][1], rule="E4")
    if parallel is not None and (max_trials is None or max_trials > parallel):
        ctx.warning("spec.maxTrialCount",
                    f"is {'not set' if max_trials is None else max_trials} while parallelTrialCount is {parallel}: "
                    "Katib v0.19's Hyperband is reliable only for the first bracket (later rungs return fewer "
                    "trials than requested and can stall)", f"set maxTrialCount = parallelTrialCount = "
                    f"{max(parallel, plan.min_parallel)}", max_trials, rule="E4")


def _grid(ctx: Ctx, max_trials: int | None) -> None:
    sizes = []
    for p in ctx.params:
        if p.type == "double" and not p.step_text:
            ctx.error(f"{p.path}.feasibleSpace.step", "grid needs a step on every double parameter",
                      'add step, e.g. step: "0.01"', rule="E4")
        sizes.append(p.grid_size())
    if not sizes or any(s is None for s in sizes):
        return
    total = math.prod(s for s in sizes if s is not None)
    if max_trials is not None and max_trials > total:
        ctx.error("spec.maxTrialCount", f"Max Trial Count: {max_trials} > all possible search combinations: {total} "
                  "(the grid Suggestion fails)", f"set maxTrialCount <= {total}", max_trials, rule="E4")
    elif max_trials is not None and max_trials < total:
        ctx.note("spec.maxTrialCount", f"covers {max_trials} of the {total} grid points", rule="E4")


def _distributions(ctx: Ctx) -> None:
    algorithm = _algorithm(ctx)
    if algorithm is None or algorithm.nas:
        return
    name = algorithm.name
    for p in ctx.params:
        d = p.distribution
        path = f"{p.path}.feasibleSpace.distribution"
        if p.type in ("categorical", "discrete"):
            if d not in ("uniform", "unknown") and d:
                ctx.warning(path, f"{d} has no meaning for a {p.type} parameter; values are drawn from the list",
                            "remove distribution", d, rule="E4")
            continue
        if not p.numeric:
            continue
        resource = name == "hyperband" and any(
            as_str(s.get("name")) == "resource_name" and as_str(s.get("value")) == p.name
            for s in as_list(as_map(ctx.spec.get("algorithm")).get("algorithmSettings")))
        if resource:
            continue
        if name == "bayesianoptimization":
            if p.type == "double" and d == "uniform":
                ctx.warning(path, "bayesianoptimization samples every double log-uniformly, whatever the "
                            "distribution: this linear range is explored on a log scale",
                            "say distribution: logUniform to make it explicit, or use tpe/random for a linear "
                            "range", d, rule="E4")
            elif d not in ("uniform", "logUniform") or (p.type == "int" and d != "uniform"):
                ctx.warning(path, f"bayesianoptimization ignores distribution {d} "
                            f"({'doubles are log-uniform' if p.type == 'double' else 'ints are uniform'})",
                            "remove distribution", d, rule="E4")
        elif d in ("normal", "logNormal"):
            if name in OPTUNA:
                ctx.error(path, f"{name} (optuna) in Katib v0.19 silently drops {d} parameters, so trials get no "
                          "value for it and fail", "use uniform or logUniform", d, rule="E4")
            elif name in HYPEROPT:
                if d == "logNormal" and p.low is not None and p.low <= 0:
                    ctx.error(f"{p.path}.feasibleSpace.min", "logNormal needs min > 0 (hyperopt takes its log)",
                              "", p.min_text, rule="E4")
                ctx.note(path, f"{d} is not bounded by min/max: hyperopt centres it on the range (sigma = range/6), "
                         "so about 0.3% of samples fall outside", rule="E4")
            else:
                ctx.warning(path, f"{name} ignores distribution {d} and samples uniformly", "remove distribution",
                            d, rule="E4")
        elif d == "logUniform":
            if name in HYPEROPT and p.low is not None and p.low <= 0:
                ctx.error(f"{p.path}.feasibleSpace.min", "logUniform needs min > 0 (hyperopt samples the log of the "
                          "range)", "raise min above 0", p.min_text, rule="E4")
            elif name in OPTUNA and p.low is not None and p.low <= 0:
                floor = "1" if p.type == "int" else "1e-10"
                ctx.warning(f"{p.path}.feasibleSpace.min", f"logUniform with min <= 0: optuna raises the low end to "
                            f"{floor}", f"set min: \"{floor}\" or more", p.min_text, rule="E4")
            elif d not in algorithm.distributions:
                ctx.warning(path, f"{name} ignores distribution logUniform and samples uniformly",
                            "use tpe, random or multivariate-tpe for log-uniform sampling", d, rule="E4")
        if p.step_text and p.numbers_ok:
            honoured = algorithm.int_step if p.type == "int" else algorithm.double_step
            if not honoured and not (p.type == "int" and p.step == 1):
                ctx.warning(f"{p.path}.feasibleSpace.step", f"{name} ignores step", "remove step", p.step_text,
                            rule="E4")


# --------------------------------------------------------------------------------------------- E5, E6
def _trial_kind(ctx: Ctx) -> None:
    if ctx.template is None or "kind" in ctx.skip:
        return
    kind, version = as_str(ctx.template.get("kind")), as_str(ctx.template.get("apiVersion"))
    expected = TRIAL_RESOURCES.get(kind)
    path = f"{ctx.template_path}.kind"
    if expected is None:
        ctx.warning(path, f"{version} {kind} is not in the standalone katib-config trialResources: Katib never "
                    "watches it unless it is added there and its CRD is installed before katib-controller starts",
                    "use batch/v1 Job, or add it to katib-config init.controller.trialResources", kind, rule="E5")
    elif version != expected:
        ctx.warning(f"{ctx.template_path}.apiVersion", f"{kind} is registered as {expected} in katib-config",
                    f"use apiVersion: {expected}", version, rule="E5")
    elif kind != "Job":
        ctx.note(path, f"{kind} needs its operator and CRD installed before katib-controller starts (else trials "
                 "are never watched)", rule="E5")


def _primary_container(ctx: Ctx) -> None:
    if ctx.template is None or ctx.trial_template is None:
        return
    name = as_str(ctx.trial_template.get("primaryContainerName"))
    kind = as_str(ctx.template.get("kind"))
    if not name or (kind != "Job" and kind not in TRIAL_RESOURCES):
        return
    pods = pod_templates(ctx.template, ctx.template_path)
    if not pods:
        if kind == "Job":
            ctx.error(f"{ctx.template_path}.spec.template", "the Job has no pod template",
                      "add spec.template.spec.containers", rule="E6")
        return
    for pod in pods:
        if find_container(pod, name) is None:
            names = [as_str(c.get("name")) for c in as_list(pod.spec.get("containers")) if isinstance(c, dict)]
            ctx.error(f"{pod.path}.spec.containers",
                      f"has no container named {name!r} (spec.trialTemplate.primaryContainerName): Katib's pod "
                      "webhook refuses the trial's pods and the trial hangs",
                      did_you_mean(name, names) if names else "add the training container", names or None,
                      rule="E6")


# ------------------------------------------------------------------------------------------------- E7
def _pull_collector(ctx: Ctx) -> None:
    located = primary_invocation(ctx)
    if located is None:
        return
    cpath, inv = located
    if inv.parse_error:
        ctx.error(inv.script_path, f"the sh -c script is not valid shell ({inv.parse_error})",
                  "close every quote", inv.script, rule="E7")
    if ctx.collector_kind not in PULL_COLLECTORS:
        return
    if not inv.has_command:
        ctx.warning(f"{cpath}.command", f"is not set: with the {ctx.collector_kind} collector Katib wraps the "
                    "command in sh -c and must read ENTRYPOINT/CMD from the image registry, which fails for local "
                    "or kind-loaded images", "write the command explicitly, e.g. [python, -u, -m, trainer]",
                    rule="E7")
    ctx.note(f"{cpath}.image", f"the {ctx.collector_kind} collector runs the container's command through sh -c, "
             "so the image must contain sh", rule="E7")
    values = _substituted_lists(ctx)
    for token in inv.tokens[2:3] if inv.shell else inv.tokens:
        for name in PLACEHOLDER.findall(token.text):
            quote = _quoting(token.text, name)
            for value in values.get(name, []):
                if not _value_safe(value, quote):
                    ctx.error(token.path, f"the value {value!r} of ${{trialParameters.{name}}} is not a plain word: "
                              "Katib joins the command into one sh -c line, where it splits or runs as shell syntax",
                              "use list values without spaces or shell characters", token.text, rule="E7")
        if inv.shell:
            continue
        bare = PLACEHOLDER.sub("x", _QUOTED_PLACEHOLDER.sub("x", token.text))
        if not SH_SAFE.match(bare):
            ctx.warning(token.path, "is not a plain word: Katib joins command and args with spaces into one "
                        "sh -c line, so the shell re-reads it (spaces split it, quotes disappear, $ ; | > act)",
                        "avoid spaces and shell characters, or write the command as [sh, -c, \"<script>\"]",
                        token.text, rule="E7")


def _substituted_lists(ctx: Ctx) -> dict[str, list[str]]:
    """trialParameter name -> the list values it can receive (categorical/discrete parameters)."""
    out: dict[str, list[str]] = {}
    for item in as_list(as_map(ctx.trial_template).get("trialParameters")):
        reference = as_str(as_map(item).get("reference"))
        info = param(ctx, reference)
        if info is not None and info.type in ("categorical", "discrete"):
            out[as_str(as_map(item).get("name"))] = info.values
    return out


def _quoting(token: str, name: str) -> str:
    placeholder = "${trialParameters." + name + "}"
    for quote in ('"', "'"):
        if quote + placeholder + quote in token:
            return quote
    return ""


def _value_safe(value: str, quote: str) -> bool:
    if quote == "'":
        return "'" not in value
    if quote == '"':
        return not any(c in value for c in '"\\$`')
    return bool(SH_SAFE.match(value)) and value != ""


# ------------------------------------------------------------------------------------------------- E8
def _budget(ctx: Ctx) -> None:
    spec = ctx.spec
    max_trials = ctx.int_field("maxTrialCount")
    if "maxTrialCount" not in spec and not ctx.is_bad("spec.maxTrialCount"):
        ctx.warning("spec.maxTrialCount", "is not set: the Experiment runs until the goal is reached, or forever",
                    "set maxTrialCount", rule="E8")
    parallel = ctx.int_field("parallelTrialCount")
    v6 = parallel is not None and max_trials is not None and parallel > max_trials > 0
    if "spec.parallelTrialCount" in ctx.defaulted and not v6:
        ctx.warning("spec.parallelTrialCount", "is not set: Katib defaults it to 3 (3 trials, and their GPUs, at once)",
                    "set parallelTrialCount explicitly", rule="E8")
    if "maxFailedTrialCount" not in spec and not ctx.is_bad("spec.maxFailedTrialCount"):
        ctx.warning("spec.maxFailedTrialCount", "is not set: if every trial fails, the Experiment still ends "
                    "Succeeded (MaxTrialsReached), with no best trial",
                    f"set maxFailedTrialCount, e.g. {min(parallel or 3, max_trials or 3)}", rule="E8")


# ------------------------------------------------------------------------------------------------- E9
def _job_policy(ctx: Ctx) -> None:
    if ctx.template is None or as_str(ctx.template.get("kind")) != "Job":
        return
    base = ctx.template_path
    job_spec = as_map(ctx.template.get("spec"))
    backoff = job_spec.get("backoffLimit")
    if backoff is None:
        ctx.warning(f"{base}.spec.backoffLimit", "is not set: Kubernetes retries a failing trial pod 6 times "
                    "while the trial shows Running", "set backoffLimit: 0", rule="E9")
    elif as_int(backoff) is not None and (as_int(backoff) or 0) > 0:
        ctx.warning(f"{base}.spec.backoffLimit", "a failing trial pod is retried while the trial shows Running, "
                    "and its metrics file collects several attempts", "set backoffLimit: 0", backoff, rule="E9")
    pod_spec = as_map(as_map(job_spec.get("template")).get("spec"))
    if not pod_spec:
        return
    policy = pod_spec.get("restartPolicy")
    path = f"{base}.spec.template.spec.restartPolicy"
    if policy in (None, "", "Always"):
        ctx.error(path, f"{'is not set (Kubernetes defaults it to Always)' if policy in (None, '') else 'is Always'}: "
                  "a Job's pods must use Never or OnFailure, so Kubernetes refuses every trial's Job",
                  "set restartPolicy: Never", policy or None, rule="E9")
    elif policy == "OnFailure":
        ctx.warning(path, "OnFailure restarts the training container in place: a crash loops inside one trial and "
                    "the metrics of several attempts mix", "set restartPolicy: Never", policy, rule="E9")


# ------------------------------------------------------------------------------------------- M1–M3
def _metrics(ctx: Ctx) -> None:
    located = objective_metric_names(ctx)
    if located is None:
        return
    names = located
    kind = ctx.collector_kind
    source = as_map(as_map(ctx.spec.get("metricsCollectorSpec")).get("source"))
    text = kind == "StdOut" or (kind == "File" and ctx.collector_format == "TEXT")
    if text and not as_list(as_map(source.get("filter")).get("metricsFormat")):
        for path, name in names:
            if name and not METRIC_NAME.match(name):
                clean = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")
                ctx.error(path, f"{kind} collection reads name=value lines with the regex ([\\w|-]+)=...; a name "
                          "with other characters is never captured whole (e.g. val.acc is read as acc), so the "
                          "trial ends MetricsUnavailable", f"print and declare it as {clean!r}", name, rule="M1")
    early = ctx.spec.get("earlyStopping")
    if isinstance(early, dict) and "early" not in ctx.skip and kind not in ("StdOut", "File"):
        ctx.error("spec.earlyStopping", f"early stopping is applied by the StdOut/File collector sidecar; with "
                  f"{kind or 'this collector'} no trial is ever stopped", "use the StdOut or File collector, or "
                  "remove earlyStopping", kind or None, rule="M2")
    objective = as_map(ctx.objective)
    objective_type = as_str(objective.get("type"))
    natural = {"minimize": "min", "maximize": "max"}.get(objective_type)
    defaulted = []
    for index, strategy in enumerate(as_list(objective.get("metricStrategies"))):
        path = child("spec.objective.metricStrategies", index)
        if ctx.is_bad(path):
            continue
        value = as_str(strategy.get("value"))
        name = as_str(strategy.get("name"))
        if value not in ("min", "max", "latest"):
            ctx.error(f"{path}.value", "must be min, max or latest: otherwise Katib passes an empty value for "
                      "this metric to the suggestion service", did_you_mean(value, ("min", "max", "latest")),
                      value or None, rule="M3")
        elif name == names[0][1] and natural and value != natural and value != "latest":
            ctx.warning(f"{path}.value", f"the objective is {objective_type}d but its strategy takes the {value} of "
                        "each trial's series", f"use {natural} (or latest)", value, rule="M3")
        if path in ctx.defaulted and name != names[0][1]:
            defaulted.append(f"{name}={value}")
    if defaulted:
        ctx.note("spec.objective.metricStrategies", "additional metrics default to the objective's strategy, not "
                 "to their own: " + ", ".join(defaulted), "set metricStrategies for them explicitly", rule="D1")


# ------------------------------------------------------------------------------------------------- G1
def _gpus(ctx: Ctx) -> None:
    if ctx.template is None:
        return
    per_trial = 0.0
    for pod in pod_templates(ctx.template, ctx.template_path):
        pod_gpus = 0.0
        for index, container in enumerate(as_list(pod.spec.get("containers"))):
            if not isinstance(container, dict):
                continue
            resources = as_map(container.get("resources"))
            limits, requests = as_map(resources.get("limits")), as_map(resources.get("requests"))
            path = child(f"{pod.path}.spec.containers", index) + ".resources"
            for key in sorted({k for k in (*limits, *requests) if isinstance(k, str) and GPU_KEYS.match(k)}):
                limit, request = _quantity(limits.get(key)), _quantity(requests.get(key))
                if key in requests and key not in limits:
                    ctx.error(child(f"{path}.requests", key), f"{key} is requested but has no limit: Kubernetes "
                              "refuses pods whose extended resources are not in limits", f"move it to limits: "
                              f"{{{key}: {requests[key]}}}", requests[key], rule="G1")
                elif key in requests and limit is not None and request is not None and limit != request:
                    ctx.error(child(f"{path}.requests", key), f"{key} request ({requests[key]}) differs from its "
                              f"limit ({limits[key]}): Kubernetes refuses the pod", "set only limits",
                              requests[key], rule="G1")
                pod_gpus += limit if limit is not None else (request or 0.0)
        per_trial += pod_gpus * pod.replicas
    if per_trial > 0:
        parallel = ctx.int_field("parallelTrialCount") or 0
        ctx.note("spec.parallelTrialCount", f"each trial uses {_fmt(per_trial)} GPU(s); with parallelTrialCount "
                 f"{parallel} up to {_fmt(per_trial * parallel)} GPUs are needed at once (pods wait Pending, and "
                 "their trials show Running, while too few are free)", rule="G1")


def _quantity(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return parse_float(value) if isinstance(value, str) else None
