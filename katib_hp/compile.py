"""TuningConfig -> Katib Experiment(s), lowered to what the chosen algorithm really samples.

Katib's suggestion services honour different parts of a feasible space (REFERENCE §3.4): skopt samples every
double log-uniformly and ignores steps, hyperopt quantises a step as ``round(x/step)*step``, goptuna and
hyperband ignore ``distribution``, the grid needs a step on doubles... A KerasTuner parameter is therefore
lowered per algorithm to the Katib parameter that samples the same set of values, with the same scale. When
that needs a rewrite (an explicit value list instead of a range, a fixed argument instead of a parameter),
the rewrite is reported as a note with its field path; when no faithful Experiment exists, ``compile``
raises :class:`CompileError` with the reason and the fix. Nothing is changed silently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from katib_hp.algorithms import (
    ALGORITHMS,
    MEDIANSTOP,
    Algorithm,
    HyperbandPlan,
    check_settings,
    hyperband_plan,
)
from katib_hp.config import TuningConfig
from katib_hp.errors import KatibHPError, did_you_mean
from katib_hp.experiment import (
    GPU_RESOURCE,
    AlgorithmSpec,
    CollectorKind,
    CollectorSpec,
    Distribution,
    EarlyStoppingSpec,
    ExperimentSpec,
    FileFormat,
    FileSystemKind,
    ObjectiveSpec,
    ParameterSpec,
    ParameterType,
    TrialKind,
    TrialParameterSpec,
    TrialTemplateSpec,
)
from katib_hp.problems import Problem, Severity, error, note, warning
from katib_hp.space import (
    Boolean,
    Choice,
    Condition,
    Fixed,
    Float,
    Int,
    Parameter,
    Sampling,
    SearchSpace,
    Value,
    format_value,
)

MAX_LIST_VALUES = 1000
# A value substituted into the trial command must survive Katib's `sh -c "<command> <args>"` wrapping.
SAFE_TOKEN = re.compile(r"^[A-Za-z0-9._+-]+$")
# Fixed arguments may also carry paths, URLs and key=value pairs; still nothing the shell interprets.
SAFE_ARG = re.compile(r"^[A-Za-z0-9._+=/:,@%-]+$")
METRIC_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
TFEVENT_METRIC_NAME = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
PRIMARY_CONTAINER = "training-container"
TFJOB_CONTAINER = "tensorflow"
JOB_CONDITIONS = ('status.conditions.#(type=="Complete")#|#(status=="True")#',
                  'status.conditions.#(type=="Failed")#|#(status=="True")#')
KUBEFLOW_CONDITIONS = ('status.conditions.#(type=="Succeeded")#|#(status=="True")#',
                       'status.conditions.#(type=="Failed")#|#(status=="True")#')
TFJOB_PRIMARY_LABELS = (("training.kubeflow.org/job-role", "master"),)
RUN_AS = 1000


class CompileError(KatibHPError):
    """No Katib Experiment samples what the config asks for; ``problems`` lists every reason."""

    exit_code = 2

    def __init__(self, message: str, *, path: str = "", value: Any = None, hint: str = "",
                 problems: Sequence[Problem] = ()) -> None:
        self.problems = tuple(problems)
        super().__init__(message, path=path, value=value, hint=hint)


@dataclass(frozen=True)
class Compiled:
    """One Experiment, and every rewrite the compiler made to get it (notes and warnings with field paths)."""

    experiment: ExperimentSpec
    notes: tuple[Problem, ...]


def compile(config: TuningConfig) -> list[Compiled]:
    """Compile a config into one Experiment, or one per value of ``split``."""
    if config.split is None:
        return [_Compiler(config, config.name, config.tuned, config.fixed, ()).run()]
    return _split(config, config.split)


# ----------------------------------------------------------------------------------------------------------
# split
# ----------------------------------------------------------------------------------------------------------
def _split(config: TuningConfig, parent_name: str) -> list[Compiled]:
    found = [p for p in config.tuned if p.name == parent_name]
    parent = found[0] if found else None
    if not isinstance(parent, (Choice, Boolean)):
        raise CompileError(
            f"'{parent_name}' is not a tuned Choice or Boolean parameter", path=f"{config.source}: split",
            hint="split on one of: " + (", ".join(p.name for p in config.tuned if isinstance(p, (Choice, Boolean)))
                                        or "(none tuned)"),
        )
    values = parent.grid()
    results: list[Compiled] = []
    names: dict[str, Value] = {}
    for value in values:
        suffix = _dns_suffix(format_value(value))
        name = f"{config.name}-{suffix}"
        if len(name) > 40:
            raise CompileError(
                f"the Experiment for {parent_name}={format_value(value)} would be named '{name}' "
                f"({len(name)} characters); Katib allows at most 40",
                path=f"{config.source}: name", hint=f"shorten name to at most {39 - len(suffix)} characters",
            )
        if name in names:
            raise CompileError(
                f"{parent_name} values {format_value(names[name])} and {format_value(value)} both give the "
                f"Experiment name '{name}'", path=f"{config.source}: split", hint="rename one of the values",
            )
        names[name] = value
        kept: list[Parameter] = []
        dropped: list[str] = []
        for param in config.tuned:
            if param.name == parent_name:
                continue
            if any(c.parent in dropped for c in param.conditions) or any(
                c.parent == parent_name and not c.holds({parent_name: value}) for c in param.conditions
            ):
                dropped.append(param.name)
                continue
            conditions = tuple(c for c in param.conditions if c.parent != parent_name)
            kept.append(replace(param, conditions=conditions))
        if not kept:
            raise CompileError(
                f"splitting on {parent_name} leaves no parameter to search for {parent_name}="
                f"{format_value(value)}", path=f"{config.source}: split",
                hint="tune at least one more parameter, or remove split",
            )
        fixed = (*config.fixed, (parent_name, value))
        split_notes = [note(
            "metadata.name", f"one Experiment per {parent_name} value: this one fixes "
            f"--{parent_name}={format_value(value)} and gets the whole budget "
            f"({_count(len(values), 'Experiment')} in all)")]
        if dropped:
            split_notes.append(note(
                "spec.parameters", f"inactive when {parent_name}={format_value(value)}, so not searched: "
                + ", ".join(dropped)))
        results.append(_Compiler(config, name, SearchSpace(kept), fixed, tuple(split_notes)).run())
    return results


def _dns_suffix(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-") or "x"


# ----------------------------------------------------------------------------------------------------------
# One Experiment
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _Lowered:
    spec: ParameterSpec
    source: Parameter


class _Compiler:
    def __init__(self, config: TuningConfig, name: str, space: SearchSpace,
                 fixed: Sequence[tuple[str, Value]], notes: Sequence[Problem]) -> None:
        self.config = config
        self.name = name
        self.space = space
        self.fixed: list[tuple[str, Value]] = list(fixed)
        self.algorithm: Algorithm = ALGORITHMS[config.algorithm.name]
        self.notes: list[Problem] = list(notes)
        self.errors: list[Problem] = []
        self.builtin = config.trial.builtin_trainer
        self.collector = config.trial.metrics_collector
        self.pull = self.collector.kind is not CollectorKind.PUSH

    # -- reporting --------------------------------------------------------------------------------------
    def fail(self, path: str, message: str, hint: str = "", value: Any = None) -> None:
        self.errors.append(error(path, message, hint, value))

    def raise_errors(self) -> None:
        if not self.errors:
            return
        problems = [replace(p, source=self.config.source) for p in self.errors]
        first = problems[0]
        if len(problems) == 1:
            raise CompileError(first.message, path=f"{self.config.source}: {first.path}", hint=first.hint,
                               value=first.value, problems=problems)
        listed = " | ".join(f"{p.path}: {p.message}" + (f" ({p.hint})" if p.hint else "") for p in problems)
        raise CompileError(f"{len(problems)} problems: {listed}", path=self.config.source, problems=problems)

    # -- the whole run ----------------------------------------------------------------------------------
    def run(self) -> Compiled:
        settings = self.algorithm_settings()
        early = self.early_stopping()
        objective = self.objective()
        collector, collector_args = self.metrics_collector()
        self.raise_errors()
        lowered = self.lower_space()
        self.raise_errors()
        plan: HyperbandPlan | None = None
        if self.algorithm.name == "hyperband":
            lowered, settings, plan = self.hyperband(lowered, settings)
            self.raise_errors()
        parameters = tuple(item.spec for item in lowered)
        self.check_algorithm(parameters)
        self.raise_errors()
        parallel, maximum, max_failed = self.budget(parameters, plan)
        self.raise_errors()
        template = self.trial_template(parameters, collector_args)
        self.raise_errors()
        experiment = ExperimentSpec(
            name=self.name, namespace=self.config.namespace, labels=self.config.labels, objective=objective,
            algorithm=AlgorithmSpec(self.algorithm.name, tuple(settings)), early_stopping=early,
            parameters=parameters, trial_template=template, parallel=parallel, max=maximum,
            max_failed=max_failed, resume_policy=self.config.resume_policy, collector=collector,
        )
        order = {Severity.WARNING: 0, Severity.NOTE: 1, Severity.ERROR: 2}
        ordered = sorted(self.notes, key=lambda p: order[p.severity])
        return Compiled(experiment, tuple(replace(p, source=self.config.source) for p in ordered))

    # -- algorithm and early-stopping settings ----------------------------------------------------------
    def algorithm_settings(self) -> list[tuple[str, str]]:
        settings = list(self.config.algorithm.settings)
        if self.algorithm.name == "hyperband":
            names = {k for k, _ in settings}
            if "resource_name" not in names:
                settings.append(("resource_name", "epochs"))
                self.notes.append(note("spec.algorithm.algorithmSettings.resource_name",
                                       "hyperband's resource is the `epochs` parameter (the default)"))
            if "eta" not in names:
                settings.append(("eta", "3"))
                self.notes.append(note("spec.algorithm.algorithmSettings.eta", "eta defaults to 3, written out"))
        self.settings_problems(self.algorithm, settings, "algorithm.settings",
                               "spec.algorithm.algorithmSettings")
        return settings

    def settings_problems(self, algorithm: Algorithm, settings: Sequence[tuple[str, str]], config_path: str,
                          spec_path: str) -> None:
        for problem in check_settings(algorithm, settings):
            if problem.severity == "warning":
                self.notes.append(warning(f"{spec_path}.{problem.name}", problem.message, problem.hint,
                                          problem.value))
            else:
                self.fail(f"{config_path}.{problem.name}", problem.message, problem.hint, problem.value)

    def early_stopping(self) -> EarlyStoppingSpec | None:
        early = self.config.early_stopping
        if early is None:
            return None
        self.settings_problems(MEDIANSTOP, early.settings, "early_stopping.settings",
                               "spec.earlyStopping.algorithmSettings")
        if self.collector.kind not in (CollectorKind.STDOUT, CollectorKind.FILE):
            self.fail("early_stopping", f"medianstop works only with the StdOut and File collectors, "
                      f"not {self.collector.kind.value}",
                      "the sidecar must parse metric lines while the trial runs; remove early_stopping or "
                      "use kind: StdOut")
        return EarlyStoppingSpec(early.name, early.settings)

    # -- objective --------------------------------------------------------------------------------------
    def objective(self) -> ObjectiveSpec:
        objective = self.config.objective
        tfevent = self.collector.kind is CollectorKind.TENSORFLOW_EVENT
        pattern = TFEVENT_METRIC_NAME if tfevent else METRIC_NAME
        from trainer.metrics import BUILTIN_METRICS

        known = tuple(m for m in BUILTIN_METRICS if m != "epoch") if tfevent else BUILTIN_METRICS
        for index, metric in enumerate(objective.metrics):
            path = "objective.metric" if index == 0 else f"objective.additional_metrics[{index - 1}]"
            if not pattern.match(metric):
                self.fail(path, f"metric name '{metric}' has characters Katib's collector cannot capture",
                          "use letters, digits, '_' and '-' only (a '.' splits the name)", metric)
            elif self.builtin and metric not in known:
                self.fail(path, f"the built-in trainer does not report '{metric}'",
                          f"{did_you_mean(metric, known)} (it reports {', '.join(known)})", metric)
        strategies = objective.strategies
        self.notes.append(note(
            "spec.objective.metricStrategies",
            "a strategy is written for every metric ("
            + ", ".join(f"{n}: {s.value}" for n, s in strategies)
            + f"): Katib would otherwise give every additional metric the objective's "
            f"'{'max' if objective.type.value == 'maximize' else 'min'}'"))
        return ObjectiveSpec(objective.type, objective.metric, objective.goal, objective.additional_metrics,
                             strategies)

    # -- metrics collector ------------------------------------------------------------------------------
    def metrics_collector(self) -> tuple[CollectorSpec, list[str]]:
        collector = self.collector
        base = "trial.metrics_collector"
        args: list[str] = []
        for index, regex in enumerate(collector.filters):
            try:
                groups = re.compile(regex).groups
            except re.error as exc:
                self.fail(f"{base}.filters[{index}]", f"is not a valid regular expression: {exc}", value=regex)
                continue
            if groups < 2:
                self.fail(f"{base}.filters[{index}]", "needs two groups: the metric name, then its value",
                          r"e.g. '([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)'", regex)
        path = collector.resolved_path
        if collector.kind is CollectorKind.STDOUT:
            return CollectorSpec(CollectorKind.STDOUT, filters=collector.filters), args
        if collector.kind is CollectorKind.PUSH:
            if self.builtin:
                self.fail(f"{base}.kind", "the built-in trainer does not push metrics to Katib",
                          "use StdOut, File or TensorFlowEvent (Push needs code that calls "
                          "kubeflow.katib.report_metrics)")
            else:
                self.notes.append(note("spec.metricsCollectorSpec.collector.kind",
                                       "Push: your program must call kubeflow.katib.report_metrics() before it "
                                       "exits, or the trial ends MetricsUnavailable"))
            return CollectorSpec(CollectorKind.PUSH), args
        assert path is not None
        if collector.kind is CollectorKind.FILE:
            if collector.format == "json" and collector.filters:
                self.fail(f"{base}.filters", "filters cannot be used with format: json (Katib refuses them)",
                          "remove filters or use format: text")
            fmt = FileFormat.JSON if collector.format == "json" else FileFormat.TEXT
            if self.builtin:
                args = [f"--metrics-file={path}", f"--metrics-format={collector.format}"]
                self.notes.append(note(self.args_path, f"the built-in trainer writes its metrics to {path} "
                                       f"({collector.format}) for the File collector: {' '.join(args)}"))
            else:
                self.notes.append(note("spec.metricsCollectorSpec.source.fileSystemPath",
                                       f"your program must write its metrics to {path} ({collector.format})"))
            spec = CollectorSpec(CollectorKind.FILE, path, FileSystemKind.FILE, fmt, collector.filters)
        else:
            if self.builtin:
                args = [f"--tensorboard-dir={path}"]
                self.notes.append(note(self.args_path, f"the built-in trainer writes event files under {path} "
                                       f"for the TensorFlowEvent collector: {args[0]}"))
            else:
                self.notes.append(note("spec.metricsCollectorSpec.source.fileSystemPath",
                                       f"your program must write TensorFlow event files under {path}"))
            spec = CollectorSpec(CollectorKind.TENSORFLOW_EVENT, path, FileSystemKind.DIRECTORY)
        return spec, args

    @property
    def args_path(self) -> str:
        if self.config.trial.kind is TrialKind.TFJOB:
            return "spec.trialTemplate.trialSpec.spec.tfReplicaSpecs.Chief.template.spec.containers[0].args"
        return "spec.trialTemplate.trialSpec.spec.template.spec.containers[0].args"

    def metrics_dir(self) -> str:
        collector = self.collector
        if collector.kind is CollectorKind.TENSORFLOW_EVENT:
            return (collector.resolved_path or "").rstrip("/")
        if collector.kind is CollectorKind.FILE:
            return (collector.resolved_path or "").rsplit("/", 1)[0] or "/"
        return "/var/log/katib"

    # -- parameters -------------------------------------------------------------------------------------
    def lower_space(self) -> list[_Lowered]:
        lowered: list[_Lowered] = []
        for param in self.space:
            spec = self.lower(param, len(lowered))
            if spec is not None:
                self.condition_notes(param, len(lowered))
                lowered.append(_Lowered(spec, param))
        return lowered

    def spath(self, index: int, name: str) -> str:
        return f"spec.parameters[{index}] '{name}'"

    def lower(self, param: Parameter, index: int) -> ParameterSpec | None:
        """The Katib parameter that samples ``param`` faithfully under the algorithm (None: a fixed arg)."""
        algo = self.algorithm.name
        here = self.spath(index, param.name)
        cpath = f"tune.{param.name}"
        if isinstance(param, Fixed):
            self.fixed.append((param.name, param.value))
            self.notes.append(note(f"space '{param.name}'", f"Fixed({format_value(param.value)}) is not searched: "
                                   f"passed as the argument --{param.name}={format_value(param.value)}"))
            return None
        if isinstance(param, Boolean):
            self.notes.append(note(here, "Boolean → categorical [true, false] (the trainer parses both)"))
            return ParameterSpec(param.name, ParameterType.CATEGORICAL, values=("true", "false"))
        if isinstance(param, Choice):
            if len(param.values) == 1:
                value = format_value(param.values[0])
                self.fixed.append((param.name, param.values[0]))
                self.notes.append(note(f"tune.{param.name}", f"a single value is not searched: passed as the "
                                       f"argument --{param.name}={value}"))
                return None
            return self.as_list(param, index, note_text=None)
        assert isinstance(param, (Int, Float))
        step, sampling = param.step, param.sampling
        kind = ParameterType.INT if isinstance(param, Int) else ParameterType.DOUBLE
        if sampling is not Sampling.LINEAR and step is not None:
            return self.as_list(param, index, note_text=(
                f"KerasTuner's multiplicative step (×{_num(step)} under {sampling.value} sampling) → "
                "explicit list {values}: no Katib algorithm samples a geometric grid"))
        if sampling is Sampling.REVERSE_LOG:
            self.fail(cpath, f"no Katib algorithm samples reverse_log ({algo} included)",
                      "add a step (KerasTuner multiplies it) to get an explicit list, or use sampling: log")
            return None
        low, high = format_value(param.min_value), format_value(param.max_value)
        if isinstance(param, Int):
            assert step is not None or sampling is Sampling.LOG
            if sampling is Sampling.LINEAR:
                assert step is not None
                if step == 1:
                    return ParameterSpec(param.name, kind, low, high, distribution=Distribution.UNIFORM)
                native, why = self.int_step_native(param.min_value, param.max_value, step)
                if native:
                    return ParameterSpec(param.name, kind, low, high, str(step), distribution=Distribution.UNIFORM)
                return self.as_list(param, index, note_text=why + " → explicit list {values}")
            # log, no step
            if algo in ("random", "tpe", "multivariate-tpe"):
                return ParameterSpec(param.name, kind, low, high, distribution=Distribution.LOG_UNIFORM)
            if algo == "grid":
                self.notes.append(note(here, f"grid enumerates every integer in [{low}, {high}]; "
                                       "log sampling does not apply to a grid"))
                return ParameterSpec(param.name, kind, low, high, distribution=Distribution.UNIFORM)
            self.fail(cpath, f"{algo} does not sample integers log-uniformly, and a uniform {param.name} in "
                      f"[{low}, {high}] would rarely try small values",
                      "add a step (KerasTuner multiplies: `step: 2` gives an explicit list 8, 16, 32, ...) or "
                      "choose random, tpe or multivariate-tpe")
            return None
        # Float
        if sampling is Sampling.LINEAR and step is None:
            if algo == "bayesianoptimization":
                self.fail(cpath, f"bayesianoptimization samples every double log-uniformly, so a uniform "
                          f"{param.name} in [{low}, {high}] cannot be searched faithfully"
                          + (" (it cannot even sample 0)" if param.min_value <= 0 else ""),
                          "add a step to get an explicit grid of values, or use tpe, random or multivariate-tpe")
                return None
            if algo == "grid":
                self.fail(cpath, f"grid needs a step on doubles ({param.name} in [{low}, {high}] has none)",
                          "add a step, e.g. `step: " + format_value(_nice_step(param.min_value, param.max_value))
                          + "`")
                return None
            return ParameterSpec(param.name, kind, low, high, distribution=Distribution.UNIFORM)
        if sampling is Sampling.LINEAR:
            assert step is not None
            native, why = self.double_step_native(param.min_value, param.max_value, step, param)
            if native:
                return ParameterSpec(param.name, kind, low, high, format_value(step),
                                     distribution=Distribution.UNIFORM)
            return self.as_list(param, index, note_text=why + " → explicit list {values}")
        # Float, log, no step
        if algo in ("random", "tpe", "multivariate-tpe"):
            return ParameterSpec(param.name, kind, low, high, distribution=Distribution.LOG_UNIFORM)
        if algo == "bayesianoptimization":
            return ParameterSpec(param.name, kind, low, high, distribution=Distribution.LOG_UNIFORM)
        self.fail(cpath, f"{algo} does not sample doubles log-uniformly: a uniform {param.name} in [{low}, {high}] "
                  f"would almost never try values near {low}",
                  "add `step: 10` to sample whole decades as an explicit list, or choose random, tpe, "
                  "multivariate-tpe or bayesianoptimization (they honour logUniform)")
        return None

    def int_step_native(self, low: int, high: int, step: int) -> tuple[bool, str]:
        algo = self.algorithm.name
        if algo in ("grid", "cmaes", "sobol"):
            return True, ""
        if algo in ("random", "tpe"):
            if low % step == 0 and high % step == 0:
                return True, ""
            return False, (f"{algo} (hyperopt) rounds to multiples of the step (round(x/{step})*{step}), which "
                           f"differ from KerasTuner's {low} + k*{step}")
        if algo == "multivariate-tpe":
            if (high - low) % step == 0:
                return True, ""
            return False, f"optuna needs max - min to be a multiple of the step ({high} - {low} is not)"
        return False, f"{algo} ignores step on int parameters"

    def double_step_native(self, low: float, high: float, step: float, param: Float) -> tuple[bool, str]:
        algo = self.algorithm.name
        if algo == "grid":
            katib = _katib_grid_doubles(low, high, step)
            if len(katib) == param.size():
                return True, ""
            return False, (f"Katib's grid (numpy.arange) would give {len(katib)} values, not KerasTuner's "
                           f"{param.size()} (binary rounding drops {format_value(high)})")
        if algo in ("cmaes", "sobol"):
            return True, ""
        if algo == "multivariate-tpe":
            if _is_multiple(high - low, step):
                return True, ""
            return False, (f"optuna needs max - min to be a multiple of the step "
                           f"({format_value(high)} - {format_value(low)} is not)")
        if algo in ("random", "tpe"):
            if _is_multiple(low, step) and _is_multiple(high, step):
                return True, ""
            return False, (f"{algo} (hyperopt) rounds to multiples of the step, which differ from KerasTuner's "
                           f"{format_value(low)} + k*{format_value(step)}")
        if algo == "hyperband":
            return False, "hyperband ignores step and would sample any double"
        return False, f"{algo} ignores step and samples doubles log-uniformly"

    def as_list(self, param: Parameter, index: int, note_text: str | None) -> ParameterSpec | None:
        here = self.spath(index, param.name)
        size = param.size()
        if size is not None and size > MAX_LIST_VALUES:
            self.fail(f"tune.{param.name}", f"{param.name} would become an explicit list of {size} values; "
                      f"Katib lists are limited here to {MAX_LIST_VALUES}",
                      "use a coarser step or narrow the range under tune")
            return None
        values = param.grid()
        assert values is not None
        texts = tuple(format_value(v) for v in values)
        bad = [t for t in texts if not SAFE_TOKEN.match(t)]
        if bad:
            self.fail(f"tune.{param.name}", f"value {bad[0]!r} of {param.name} would not survive Katib's "
                      "`sh -c` wrapping of the trial command",
                      "use values made of letters, digits, '.', '_', '+' and '-'", bad[0])
            return None
        if all(isinstance(v, (bool, str)) for v in values):
            kind = ParameterType.CATEGORICAL
        elif self.algorithm.name == "hyperband":
            # Katib's hyperband draws a discrete parameter uniformly between its ends and snaps to the nearest
            # value (and int()s it): a log-spaced list would mostly give its largest values. A categorical list
            # is drawn value by value, as KerasTuner draws it.
            kind = ParameterType.CATEGORICAL
            if note_text is None:
                note_text = "numbers → categorical {values}"
            note_text += (" (categorical, each value drawn with equal chance: hyperband would int() a discrete "
                          "list of fractions)" if any(isinstance(v, float) for v in values) else
                          " (categorical, each value drawn with equal chance: hyperband draws a discrete list "
                          "uniformly between its ends)")
        else:
            kind = ParameterType.DISCRETE
        if note_text is not None:
            text = note_text.replace("{values}", _show_values(texts))
            if self.algorithm.name == "bayesianoptimization":
                text += " (bayesianoptimization treats a list as unordered categories)"
            self.notes.append(note(here, text))
        return ParameterSpec(param.name, kind, values=texts)

    def condition_notes(self, param: Parameter, index: int) -> None:
        for cond in param.conditions:
            parent_values = self.space[cond.parent].grid() if cond.parent in self.space else None
            if parent_values is not None and all(Condition(cond.parent, cond.values).holds({cond.parent: v})
                                                 for v in parent_values):
                continue  # every tuned value of the parent activates it
            hint = ""
            if cond.parent in self.space and isinstance(self.space[cond.parent], (Choice, Boolean)):
                hint = f"`split: {cond.parent}` compiles one Experiment per value, each without the inactive ones"
            self.notes.append(note(self.spath(index, param.name), _condition_text(param.name, cond), hint))

    # -- hyperband --------------------------------------------------------------------------------------
    def hyperband(self, lowered: list[_Lowered], settings: list[tuple[str, str]]
                  ) -> tuple[list[_Lowered], list[tuple[str, str]], HyperbandPlan | None]:
        values = dict(settings)
        r_l = float(values["r_l"])
        eta = int(float(values["eta"]))
        resource = values["resource_name"]
        plan = hyperband_plan(r_l, eta)
        where = "algorithm.settings"
        if plan.s_max < 1:
            self.fail(f"{where}.r_l", f"r_l={_num(r_l)} with eta={eta} gives a single rung (s_max=0): Hyperband would "
                      "be a random search", f"raise r_l to at least eta ({eta})", values["r_l"])
            return lowered, settings, None
        declared = self.config.space
        if resource in dict(self.fixed):
            self.fail(f"fixed.{resource}", f"'{resource}' is hyperband's resource: Katib sets it for every trial",
                      f"remove {resource} from fixed (r_l={_num(r_l)} is its maximum)")
        if resource not in declared:
            self.fail(f"{where}.resource_name", f"'{resource}' is not a parameter the trainer takes",
                      did_you_mean(resource, declared.names), resource)
            return lowered, settings, plan
        param = declared[resource]
        if not isinstance(param, Int):
            self.fail(f"{where}.resource_name", f"hyperband's resource '{resource}' must be an Int parameter "
                      f"(Katib assigns it int(r_l·eta^-s)); it is {param.kind}", value=resource)
            return lowered, settings, plan
        top = int(r_l)
        if top > param.max_value or plan.first_rung_resource < param.min_value:
            self.fail(f"{where}.r_l", f"hyperband would give {resource} values from {plan.first_rung_resource} to "
                      f"{top}, outside what the trainer accepts ({param.describe()})",
                      f"keep r_l within [{param.min_value}, {param.max_value}]", values["r_l"])
            return lowered, settings, plan
        spec = ParameterSpec(resource, ParameterType.INT, "1", str(top), distribution=Distribution.UNIFORM)
        position = next((i for i, item in enumerate(lowered) if item.spec.name == resource), None)
        if position is None:
            lowered = [*lowered, _Lowered(spec, replace(param, conditions=()))]
            position = len(lowered) - 1
            self.notes.append(note(self.spath(position, resource),
                                   f"hyperband's resource: added as int [1, {top}]; Katib overwrites its value "
                                   f"with int(r_l·eta^-s) epochs per rung"))
        else:
            lowered = [*lowered]
            lowered[position] = _Lowered(spec, lowered[position].source)
            self.notes.append(note(self.spath(position, resource),
                                   f"hyperband's resource: the tuned range is replaced by int [1, {top}]; "
                                   "Katib sets its value per rung (int(r_l·eta^-s)), never samples it"))
        return lowered, settings, plan

    # -- algorithm-wide checks --------------------------------------------------------------------------
    def check_algorithm(self, parameters: Sequence[ParameterSpec]) -> None:
        algo = self.algorithm.name
        if algo == "bayesianoptimization":
            for spec in parameters:
                if spec.type is ParameterType.DOUBLE and spec.min is not None and float(spec.min) <= 0:
                    self.fail(f"tune.{spec.name}", f"bayesianoptimization samples doubles log-uniformly, so min must "
                              f"be > 0 (got {spec.min})", "raise min_value above 0 or add a step")
        if algo == "cmaes":
            numeric = [p.name for p in parameters if p.is_numeric]
            if len(numeric) < 2:
                lists = [p.name for p in parameters if not p.is_numeric]
                self.fail("algorithm.name", "CMA-ES needs at least two int/double parameters; after lowering "
                          f"{'only ' + ', '.join(numeric) + ' is' if numeric else 'none are'} numeric"
                          + (f" ({', '.join(lists)} became lists)" if lists else ""),
                          "tune more numeric parameters (without a log-scale step), or choose another algorithm")

    # -- budget -----------------------------------------------------------------------------------------
    def budget(self, parameters: Sequence[ParameterSpec], plan: HyperbandPlan | None) -> tuple[int, int, int]:
        budget = self.config.budget
        if plan is not None:
            return self.hyperband_budget(plan)
        maximum = budget.max
        if self.algorithm.name == "grid":
            combos = math.prod(_grid_size(p) for p in parameters)
            if budget.max_trials is None and combos < maximum:
                maximum = combos
                self.notes.append(note("spec.maxTrialCount", f"the grid has {combos} combinations: maxTrialCount "
                                       f"set to {combos}"))
            elif maximum > combos:
                self.fail("budget.max_trials", f"the grid has only {combos} combinations, but budget.max_trials is "
                          f"{maximum} (Katib fails the Suggestion: 'Max Trial Count > all possible search "
                          "combinations')", f"set budget.max_trials to at most {combos}, or add values", maximum)
            elif maximum < combos:
                self.notes.append(note("spec.maxTrialCount", f"grid tries {maximum} of its {combos} combinations"))
        if budget.max_trials is None and self.algorithm.name != "grid":
            self.notes.append(note("spec.maxTrialCount", f"budget.max_trials not set: {maximum} trials"))
        parallel = budget.parallel
        if budget.parallel_trials is None and parallel > maximum:
            parallel = maximum
            self.notes.append(note("spec.parallelTrialCount", f"parallelTrialCount lowered to maxTrialCount "
                                   f"({maximum}); Katib refuses parallel > max"))
        elif parallel > maximum:
            self.fail("budget.parallel_trials", f"parallel_trials ({parallel}) is more than max_trials ({maximum}); "
                      "Katib refuses it (V6)", f"set parallel_trials to at most {maximum}", parallel)
        max_failed = budget.max_failed_trials
        if max_failed is None:
            max_failed = min(parallel, maximum)
            self.notes.append(note("spec.maxFailedTrialCount", f"maxFailedTrialCount = {max_failed}: the "
                                   "Experiment fails after that many failed trials instead of ending 'Succeeded' "
                                   "with every trial failed"))
        elif max_failed > maximum:
            self.fail("budget.max_failed_trials", f"max_failed_trials ({max_failed}) is more than max_trials "
                      f"({maximum}); Katib refuses it (V5)", f"set it to at most {maximum}", max_failed)
        return parallel, maximum, max_failed

    def hyperband_budget(self, plan: HyperbandPlan) -> tuple[int, int, int]:
        budget = self.config.budget
        needed = plan.min_parallel
        gpus = self.gpus_per_trial()
        cost = (f"{needed * gpus} GPUs at {gpus} GPU{'s' if gpus != 1 else ''} per trial" if gpus
                else f"{needed * self.pods_per_trial()} pods at once")
        settings = f"r_l={_num(plan.r_l)}, eta={plan.eta}"
        if budget.parallel_trials is not None and budget.parallel_trials < needed:
            self.fail("budget.parallel_trials", f"{settings} needs {needed} trials in parallel = {cost} "
                      f"(Katib requires parallelTrialCount >= ceil(eta^s_max) = {plan.eta}^{plan.s_max}); "
                      f"budget.parallel_trials is {budget.parallel_trials}",
                      f"lower r_l or raise eta, or set parallel_trials to {needed}", budget.parallel_trials)
            return needed, needed, 0
        parallel = needed if budget.parallel_trials is None else budget.parallel_trials
        if budget.parallel_trials is None:
            self.notes.append(note("spec.parallelTrialCount", f"{settings} needs {needed} trials in parallel "
                                   f"(= {cost}): parallelTrialCount = {needed}"))
        if budget.max_trials is not None and budget.max_trials != parallel:
            self.notes.append(warning("spec.maxTrialCount", f"budget.max_trials={budget.max_trials} replaced by "
                                      f"{parallel} (= parallelTrialCount), the only hyperband budget Katib v0.19 "
                                      "completes reliably"))
        if budget.max_failed_trials not in (None, 0):
            self.notes.append(warning("spec.maxFailedTrialCount", f"budget.max_failed_trials="
                                      f"{budget.max_failed_trials} replaced by 0: a failed trial stalls "
                                      "hyperband's next rung"))
        brackets = plan.brackets(parallel)
        rungs = "; ".join(
            f"s={plan.s_max - b}: " + " → ".join(f"{n}×{r}" for n, r in bracket) for b, bracket in enumerate(brackets)
        )
        first = brackets[0][0]
        self.notes.append(warning(
            "spec.algorithm",
            f"only the first bracket is reliable on Katib v0.19 (later rungs can stall, kubeflow/katib#1168, "
            f"#1366): maxTrialCount = parallelTrialCount = {parallel} runs {first[0]} random trials with "
            f"{first[1]} epoch{'s' if first[1] != 1 else ''} each; the full plan (trials×epochs per rung) would "
            f"be {rungs}"))
        return parallel, parallel, 0

    def pods_per_trial(self) -> int:
        return self.config.trial.workers if self.config.trial.kind is TrialKind.TFJOB else 1

    def gpus_per_trial(self) -> int:
        return self.config.trial.resources.gpus * self.pods_per_trial()

    # -- trial template ---------------------------------------------------------------------------------
    def trial_template(self, parameters: Sequence[ParameterSpec], collector_args: list[str]) -> TrialTemplateSpec:
        trial = self.config.trial
        self.check_args(parameters)
        fixed_args = [f"--{name}={format_value(value)}" for name, value in self.fixed]
        search_args = [f"--{p.name}=${{trialParameters.{p.name}}}" for p in parameters]
        source = {param.name: param for param in self.space}
        trial_parameters = tuple(
            TrialParameterSpec(p.name, p.name, _describe(source.get(p.name) or self.config.space[p.name]))
            for p in parameters
        )
        if trial.kind is TrialKind.JOB:
            container = self.container(PRIMARY_CONTAINER, [*trial.args, *collector_args, *fixed_args, *search_args])
            job_spec: dict[str, Any] = {"backoffLimit": 0}
            if trial.active_deadline_seconds is not None:
                job_spec["activeDeadlineSeconds"] = trial.active_deadline_seconds
            job_spec["template"] = self.pod_template(container, restart_policy=True)
            run_spec = {"apiVersion": "batch/v1", "kind": "Job", "spec": job_spec}
            return TrialTemplateSpec(PRIMARY_CONTAINER, trial_parameters, run_spec, *JOB_CONDITIONS,
                                     retain=trial.retain)
        chief = self.container(TFJOB_CONTAINER, [*trial.args, *collector_args, *fixed_args, *search_args])
        run_policy: dict[str, Any] = {"backoffLimit": 0}
        if trial.active_deadline_seconds is not None:
            run_policy["activeDeadlineSeconds"] = trial.active_deadline_seconds
        replicas: dict[str, Any] = {
            "Chief": {"replicas": 1, "restartPolicy": "Never", "template": self.pod_template(chief, False)},
        }
        if trial.workers > 1:
            worker = self.container(TFJOB_CONTAINER, [*trial.args, *fixed_args, *search_args])
            replicas["Worker"] = {"replicas": trial.workers - 1, "restartPolicy": "Never",
                                  "template": self.pod_template(worker, False)}
            if trial.builtin_trainer:
                self.notes.append(warning(
                    "spec.trialTemplate.trialSpec.spec.tfReplicaSpecs.Worker",
                    f"the built-in trainer does not use TF_CONFIG yet: each of the {trial.workers} replicas trains "
                    "its own copy of the model, so the extra workers add cost but no speed",
                    "use workers: 1, or an image whose training code builds the model under "
                    "tf.distribute.MultiWorkerMirroredStrategy"))
            if collector_args:
                self.notes.append(note("spec.trialTemplate.trialSpec.spec.tfReplicaSpecs.Worker",
                                       "only the Chief gets the metrics sidecar, so only the Chief writes "
                                       f"metrics ({' '.join(collector_args)})"))
        self.notes.append(note("spec.trialTemplate.primaryPodLabels",
                               "metrics are collected from the Chief pod (training.kubeflow.org/job-role: master)"))
        run_spec = {"apiVersion": "kubeflow.org/v1", "kind": "TFJob",
                    "spec": {"runPolicy": run_policy, "tfReplicaSpecs": replicas}}
        return TrialTemplateSpec(TFJOB_CONTAINER, trial_parameters, run_spec, *KUBEFLOW_CONDITIONS,
                                 primary_pod_labels=TFJOB_PRIMARY_LABELS, retain=trial.retain)

    def check_args(self, parameters: Sequence[ParameterSpec]) -> None:
        trial = self.config.trial
        if self.pull:
            for label, tokens in (("trial.command", trial.command), ("trial.args", trial.args)):
                for index, token in enumerate(tokens):
                    if not SAFE_ARG.match(token):
                        self.fail(f"{label}[{index}]", f"{token!r} would not survive Katib's `sh -c` wrapping of "
                                  "the trial command (spaces, quotes and shell characters break it)",
                                  "pass plain tokens, or use the Push collector with your own program", token)
            for name, value in self.fixed:
                text = format_value(value)
                if not SAFE_ARG.match(text):
                    self.fail(f"fixed.{name}", f"{text!r} would not survive Katib's `sh -c` wrapping", value=text)
        if self.builtin:
            taken = {p.name for p in parameters} | {name for name, _ in self.fixed}
            own = {"metrics-file", "metrics-format", "tensorboard-dir"} if self.collector.kind in (
                CollectorKind.FILE, CollectorKind.TENSORFLOW_EVENT) else set()
            for index, token in enumerate(trial.args):
                flag = token[2:].split("=", 1)[0] if token.startswith("--") else ""
                if flag.replace("-", "_") in taken or flag in taken:
                    self.fail(f"trial.args[{index}]", f"{token!r} sets a hyperparameter that tune/fixed already set",
                              "remove it from trial.args (use fixed: for a constant value)", token)
                elif flag in own:
                    self.fail(f"trial.args[{index}]", f"{token!r} is set by the compiler for the "
                              f"{self.collector.kind.value} collector", "remove it from trial.args", token)
        busy = self.metrics_dir()
        for index, volume in enumerate(trial.volumes):
            if self.pull and volume.mount_path.rstrip("/") == busy:
                self.fail(f"trial.volumes[{index}].mount_path", f"{busy} is where Katib mounts its metrics "
                          "volume", "mount your volume elsewhere", volume.mount_path)

    def container(self, name: str, args: list[str]) -> dict[str, Any]:
        trial = self.config.trial
        container: dict[str, Any] = {"name": name, "image": trial.image, "imagePullPolicy": trial.image_pull_policy,
                                     "command": list(trial.command), "args": args}
        if trial.env:
            container["env"] = [{"name": k, "value": v} for k, v in trial.env]
        res = trial.resources
        requests: dict[str, Any] = {}
        if res.cpu is not None:
            requests["cpu"] = res.cpu
        if res.memory is not None:
            requests["memory"] = res.memory
        limits: dict[str, Any] = dict(requests)
        if res.gpus:
            limits[GPU_RESOURCE] = res.gpus
        resources: dict[str, Any] = {}
        if requests:
            resources["requests"] = requests
        if limits:
            resources["limits"] = limits
        if resources:
            container["resources"] = resources
        container["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                        "runAsNonRoot": True}
        if trial.volumes:
            mounts = []
            for volume in trial.volumes:
                mount: dict[str, Any] = {"name": volume.name, "mountPath": volume.mount_path}
                if volume.read_only:
                    mount["readOnly"] = True
                mounts.append(mount)
            container["volumeMounts"] = mounts
        return container

    def pod_template(self, container: dict[str, Any], restart_policy: bool) -> dict[str, Any]:
        trial = self.config.trial
        spec: dict[str, Any] = {}
        if restart_policy:
            spec["restartPolicy"] = "Never"
        if trial.service_account is not None:
            spec["serviceAccountName"] = trial.service_account
        if trial.node_selector:
            spec["nodeSelector"] = dict(trial.node_selector)
        if trial.tolerations:
            spec["tolerations"] = [dict(t) for t in trial.tolerations]
        # Pod level: Katib's metrics-collector sidecar images declare no USER; these make it run as 1000 too
        # (runAsNonRoot would refuse it as root) and let both containers write the metrics volume.
        spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS,
                                   "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}}
        spec["containers"] = [container]
        if trial.volumes:
            volumes = []
            for volume in trial.volumes:
                item: dict[str, Any] = {"name": volume.name}
                if volume.pvc is not None:
                    claim: dict[str, Any] = {"claimName": volume.pvc}
                    if volume.read_only:
                        claim["readOnly"] = True
                    item["persistentVolumeClaim"] = claim
                elif volume.config_map is not None:
                    item["configMap"] = {"name": volume.config_map}
                else:
                    empty: dict[str, Any] = {}
                    if volume.empty_dir_medium:
                        empty["medium"] = volume.empty_dir_medium
                    if volume.empty_dir_size_limit:
                        empty["sizeLimit"] = volume.empty_dir_size_limit
                    item["emptyDir"] = empty
                volumes.append(item)
            spec["volumes"] = volumes
        return {"metadata": {"annotations": {"sidecar.istio.io/inject": "false"}}, "spec": spec}


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------
def _katib_grid_doubles(low: float, high: float, step: float) -> list[float]:
    """The doubles Katib's grid enumerates: numpy.arange(min, max + step, step), minus a last value > max."""
    stop = high + step
    count = max(0, math.ceil((stop - low) / step))
    delta = (low + step) - low
    values = [low + i * delta for i in range(count)]
    if values and values[-1] > high:
        values.pop()
    return values


def _grid_size(spec: ParameterSpec) -> int:
    if spec.type is ParameterType.INT:
        assert spec.min is not None and spec.max is not None
        return len(range(int(spec.min), int(spec.max) + 1, int(spec.step or 1)))
    if spec.type is ParameterType.DOUBLE:
        assert spec.min is not None and spec.max is not None and spec.step is not None
        return len(_katib_grid_doubles(float(spec.min), float(spec.max), float(spec.step)))
    return len(spec.values)


def _is_multiple(number: float, step: float) -> bool:
    ratio = number / step
    return math.isclose(ratio, round(ratio), rel_tol=0.0, abs_tol=1e-9 * max(1.0, abs(ratio)))


def _nice_step(low: float, high: float) -> float:
    span = (high - low) / 10
    return float(f"{10 ** math.floor(math.log10(span)):.12g}") if span > 0 else 0.1


def _num(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _show_values(texts: Sequence[str]) -> str:
    if len(texts) <= 8:
        return "[" + ", ".join(texts) + "]"
    return "[" + ", ".join(texts[:4]) + ", ..., " + ", ".join(texts[-2:]) + f"] ({len(texts)} values)"


def _condition_text(name: str, cond: Condition) -> str:
    values = ", ".join(format_value(v) for v in cond.values)
    return (f"'{name}' is active only when {cond.parent} is one of [{values}]; Katib's search space is flat, so "
            "it is sampled in every trial and the trainer ignores it when inactive")


def _describe(param: Parameter) -> str:
    text = param.describe()
    return f"{param.help}: {text}" if param.help else text

