"""Checks for trial templates whose primary container runs our trainer (``python [-u] -m trainer`` or
``katib-hp-trainer``, directly or inside ``sh -c``).

The trainer's flags and ranges come from ``trainer.args`` and ``trainer.hyperparameters`` (pure Python, no
TensorFlow), so a template that the trainer would refuse in every trial is caught before submission.

* T1 metric names: objective and additional metrics must be names the trainer prints
  (``trainer.metrics.BUILTIN_METRICS``; event-file tags for TensorFlowEvent). With ``--hypermodel`` the names
  come from the user's ``compile()``, so only a note is given. The trainer never pushes (Push collector).
* T2 flags: every ``--flag`` must be a trainer flag (a settings flag or a hyperparameter of the built-in space).
* T3 fixed values: ``--name=value`` must parse with that flag's parameter (or type/choices), and the whole
  argument list, with each placeholder replaced by a value of its range, must pass the trainer's own parser.
* T4 search ranges: every value a search parameter can take must be accepted by the flag it is substituted into.
* T5 collector wiring: File needs ``--metrics-file=<collector path>`` (and ``--metrics-format=json`` for JSON);
  TensorFlowEvent needs ``--tensorboard-dir`` under the collector's directory.
* T6 StdOut: the trainer's stdout must reach the collector (no ``>`` redirect of stdout, no metrics file on
  the path Katib redirects stdout to).
"""

from __future__ import annotations

import argparse
import posixpath
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from katib_hp.algorithms import hyperband_plan
from katib_hp.errors import KatibHPError, did_you_mean
from katib_hp.lint._common import (
    DEFAULT_METRICS_FILE,
    PLACEHOLDER,
    Ctx,
    ParamInfo,
    as_list,
    as_map,
    as_str,
    child,
    objective_metric_names,
    parse_float,
)
from katib_hp.lint._trial import Token, find_trainer, primary_invocation
from katib_hp.space import Boolean, Choice, Fixed, Int, Parameter, SearchSpace
from trainer.args import UsageError, build_parser, parse_args
from trainer.hyperparameters import builtin_space
from trainer.metrics import BUILTIN_METRICS, VALIDATION_PREFIX

_TRAIN_DIR, _VALIDATION_DIR = "train", "validation"


@lru_cache(maxsize=1)
def _space() -> SearchSpace:
    return builtin_space()


@lru_cache(maxsize=1)
def _parser() -> argparse.ArgumentParser:
    return build_parser(_space())


def _actions() -> dict[str, argparse.Action]:
    return {option: action for action in _parser()._actions for option in action.option_strings}


def event_tags() -> tuple[str, ...]:
    """Metric names the TensorFlowEvent collector finds in the trainer's event files."""
    names = [m for m in BUILTIN_METRICS if m != "epoch"]
    split = [f"{_VALIDATION_DIR if m.startswith(VALIDATION_PREFIX) else _TRAIN_DIR}/{m}" for m in names]
    return (*names, *split)


@dataclass
class Flag:
    name: str  # --option as written
    value: str | None
    token: Token  # where the flag is
    value_token: Token | None
    action: argparse.Action | None


def check(ctx: Ctx) -> None:
    located = primary_invocation(ctx)
    if located is None:
        return
    _, inv = located
    if inv.parse_error:
        return  # traps (E7) reports the broken script
    call = find_trainer(inv)
    if call is None:
        return
    flags, ok = _flags(ctx, call.argv)
    hypermodel = any(f.name == "--hypermodel" for f in flags)
    _metric_names(ctx, hypermodel)
    if not hypermodel:
        ok = _values(ctx, flags) and ok
    _wiring(ctx, flags, call.stdout_redirect, call.start)
    if ok and not hypermodel:
        _whole(ctx, call.argv, call.start)


def _flags(ctx: Ctx, argv: list[Token]) -> tuple[list[Flag], bool]:
    actions = _actions()
    hypermodel = any(t.text == "--hypermodel" or t.text.startswith("--hypermodel=") for t in argv)
    flags: list[Flag] = []
    ok = True
    i = 0
    while i < len(argv):
        token = argv[i]
        text = token.text
        i += 1
        if not text.startswith("-") or text == "-":
            ctx.error(token.path, f"the trainer takes no positional argument {text!r}",
                      "pass values as --flag=value", text, rule="T2")
            ok = False
            continue
        name, eq, value = text.partition("=")
        action = actions.get(name)
        if action is None:
            if hypermodel and name.startswith("--"):
                continue  # a hyperparameter of the user's hypermodel
            ctx.error(token.path, f"{name} is not a flag of the trainer", did_you_mean(name, actions), text,
                      rule="T2")
            ok = False
            continue
        value_token: Token | None = token if eq else None
        if not eq and action.nargs != 0 and i < len(argv) and not argv[i].text.startswith("--"):
            value, value_token = argv[i].text, argv[i]
            i += 1
        flags.append(Flag(name, value if value_token is not None else None, token, value_token, action))
    return flags, ok


def _metric_names(ctx: Ctx, hypermodel: bool) -> None:
    located = objective_metric_names(ctx)
    if located is None:
        return
    names = located
    kind = ctx.collector_kind
    if kind == "Push":
        ctx.error("spec.metricsCollectorSpec.collector.kind", "the trainer prints and writes its metrics but "
                  "never pushes them, so every trial ends MetricsUnavailable", "use the StdOut collector", kind,
                  rule="T1")
        return
    if hypermodel:
        ctx.note("spec.objective.objectiveMetricName", "with --hypermodel the metric names come from your "
                 "model's compile() (e.g. val_<metric>); they cannot be checked here", rule="T1")
        return
    if kind in ("StdOut", "File"):
        allowed: tuple[str, ...] = BUILTIN_METRICS
    elif kind == "TensorFlowEvent":
        allowed = event_tags()
    else:
        return
    for path, name in names:
        if name and name not in allowed:
            ctx.error(path, f"the trainer never reports {name!r}, so every trial ends MetricsUnavailable",
                      did_you_mean(name, allowed), name, rule="T1")


def _values(ctx: Ctx, flags: list[Flag]) -> bool:
    ok = True
    space = _space()
    refs = {as_str(as_map(t).get("name")): as_str(as_map(t).get("reference"))
            for t in as_list(as_map(ctx.trial_template).get("trialParameters"))}
    for flag in flags:
        action = flag.action
        if action is None or flag.value is None or flag.value_token is None:
            if action is not None and action.nargs not in (0, "?") and flag.value is None:
                ctx.error(flag.token.path, f"{flag.name} needs a value", f"write {flag.name}=<value>",
                          flag.token.text, rule="T3")
                ok = False
            continue
        dest = action.dest
        target: Parameter | None = space[dest[3:]] if dest.startswith("hp:") else None
        value = flag.value
        path = flag.value_token.path
        exact = PLACEHOLDER.fullmatch(value)
        if exact:
            info = _param_for(ctx, refs.get(exact.group(1), ""))
            if info is not None:
                _range(ctx, flag, info, target, action)
            continue
        if PLACEHOLDER.search(value):
            continue  # text around a placeholder: its values cannot be predicted
        if action.nargs == 0:
            ctx.error(path, f"{flag.name} is a switch and takes no value", f"write {flag.name} alone", value,
                      rule="T3")
            ok = False
            continue
        problem = _refuses(target, action, value)
        if problem:
            ctx.error(path, f"{flag.name}={value}: {problem}", "", value, rule="T3")
            ok = False
    return ok


def _param_for(ctx: Ctx, reference: str) -> ParamInfo | None:
    return next((p for p in ctx.params if p.name == reference and reference), None)


def _refuses(target: Parameter | None, action: argparse.Action, text: str) -> str:
    """Why the trainer refuses ``text`` for this flag ('' when accepted)."""
    if target is not None:
        try:
            target.parse(text)
        except KatibHPError:
            return f"must be {target.describe()}"
        return ""
    converter = action.type if callable(action.type) else None
    try:
        converted: Any = converter(text) if converter is not None else text
    except (TypeError, ValueError):
        kind = getattr(converter, "__name__", "value")
        return f"must be {'an integer' if kind == 'int' else 'a number' if kind == 'float' else 'a ' + kind}"
    if action.choices is not None and converted not in action.choices:
        return "must be one of " + ", ".join(str(c) for c in action.choices)
    return ""


def _range(ctx: Ctx, flag: Flag, info: ParamInfo, target: Parameter | None, action: argparse.Action) -> None:
    """T4: every value ``info`` can take must be accepted by ``flag``."""
    space_path = f"{info.path}.feasibleSpace"
    accepts = target.describe() if target is not None else _describe_action(action)
    if info.numeric:
        if not info.numbers_ok:
            return
        if info.type == "double" and isinstance(target, (Int, Boolean, Choice, Fixed)) and not (
                isinstance(target, Choice) and isinstance(target.values[0], float)):
            ctx.error(f"{info.path}.parameterType", f"is double, but {flag.name} accepts {accepts}",
                      "use parameterType: int" if isinstance(target, Int) else "use a categorical list",
                      info.type, rule="T4")
            return
        resource = _hyperband_range(ctx, info)
        if resource is not None:
            low, high = resource
            where = "spec.algorithm.algorithmSettings"
            for number in (low, high):
                problem = _refuses(target, action, str(number))
                if problem:
                    ctx.error(where, f"Hyperband gives {info.name} values from {low} to {high} (from r_l and eta), "
                              f"but {flag.name} accepts {accepts}", "adjust r_l", str(number), rule="T4")
                    return
            return
        candidates: list[tuple[str, str]]
        if isinstance(target, Choice) and info.type == "int":
            grid = _int_grid(info)
            if grid is None:
                ctx.error(space_path, f"{flag.name} accepts only {accepts}, but this range has too many values",
                          "use a categorical/discrete list of the accepted values", rule="T4")
                return
            candidates = [(f"{space_path}.min", str(v)) for v in grid]
        else:
            candidates = [(f"{space_path}.min", info.min_text), (f"{space_path}.max", info.max_text)]
        for path, text in candidates:
            problem = _refuses(target, action, text)
            if problem:
                ctx.error(path, f"the search range of {info.name} reaches {text}, but {flag.name} accepts {accepts}",
                          "keep the range inside what the trainer accepts", text, rule="T4")
                return
        if info.distribution in ("normal", "logNormal") and target is not None:
            ctx.warning(f"{space_path}.distribution", f"{info.distribution} is not bounded by min/max: some samples "
                        f"fall outside what {flag.name} accepts ({accepts}) and those trials fail",
                        "use uniform or logUniform", info.distribution, rule="T4")
        return
    for index, value in enumerate(info.values):
        problem = _refuses(target, action, value)
        if problem:
            ctx.error(child(f"{space_path}.list", index), f"{flag.name} refuses {value!r}: {problem}",
                      "list only values the trainer accepts", value, rule="T4")


def _describe_action(action: argparse.Action) -> str:
    if action.choices is not None:
        return "one of " + ", ".join(str(c) for c in action.choices)
    kind = getattr(action.type, "__name__", "")
    return {"int": "an integer", "float": "a number"}.get(kind, "a value")


def _int_grid(info: ParamInfo) -> list[int] | None:
    if info.low is None or info.high is None:
        return None
    step = int(info.step) if info.step else 1
    values = range(int(info.low), int(info.high) + 1, step)
    return list(values) if len(values) <= 10_000 else None


def _hyperband_range(ctx: Ctx, info: ParamInfo) -> tuple[int, int] | None:
    """The resource values Hyperband assigns to its resource parameter (its min/max are ignored)."""
    if ctx.algorithm_name != "hyperband" or "algorithm" in ctx.skip:
        return None
    settings = {as_str(s.get("name")): as_str(s.get("value"))
                for s in as_list(as_map(ctx.spec.get("algorithm")).get("algorithmSettings"))}
    if settings.get("resource_name") != info.name:
        return None
    r_l = parse_float(settings.get("r_l", ""))
    eta_float = parse_float(settings.get("eta", "3"))
    if r_l is None or r_l <= 0 or eta_float is None:
        return None
    eta = int(eta_float) if int(eta_float) > 0 else 3
    if eta < 2:
        return None
    plan = hyperband_plan(r_l, eta)
    return plan.first_rung_resource, int(r_l)


def _wiring(ctx: Ctx, flags: list[Flag], redirect: Token | None, start: Token) -> None:
    kind = ctx.collector_kind
    values = {f.name.replace("_", "-"): (f.value, f.value_token or f.token) for f in flags}
    metrics_file = values.get("--metrics-file")
    metrics_format = values.get("--metrics-format")
    tensorboard = values.get("--tensorboard-dir")
    if kind == "File":
        path, fmt = ctx.collector_path, ctx.collector_format
        wanted = "json" if fmt == "JSON" else "text"
        if metrics_file is None:
            extra = " --metrics-format=json" if wanted == "json" else ""
            ctx.error(start.path, f"the File collector reads {path}, but the trainer is not told to write it",
                      f"add the argument --metrics-file={path}{extra}", rule="T5")
        elif metrics_file[0] is not None and posixpath.normpath(metrics_file[0]) != posixpath.normpath(path):
            ctx.error(metrics_file[1].path, f"the trainer writes {metrics_file[0]}, but the File collector reads "
                      f"{path}", f"use --metrics-file={path}", metrics_file[0], rule="T5")
        given = metrics_format[0] if metrics_format is not None else "text"
        if given != wanted and metrics_file is not None:
            where = metrics_format[1].path if metrics_format is not None else metrics_file[1].path
            ctx.error(where, f"the File collector expects {fmt} lines, but the trainer writes {given}",
                      f"use --metrics-format={wanted}", given, rule="T5")
    elif kind == "TensorFlowEvent":
        directory = ctx.collector_path
        if tensorboard is None:
            ctx.error(start.path, f"the TensorFlowEvent collector reads event files under {directory}, but the "
                      "trainer is not told to write them",
                      f"add the argument --tensorboard-dir={directory.rstrip('/') or '/'}", rule="T5")
        elif tensorboard[0] is not None and not _under(tensorboard[0], directory) and not _split_of(
                directory, tensorboard[0]):
            ctx.error(tensorboard[1].path, f"the trainer writes event files to {tensorboard[0]}, outside the "
                      f"collector's directory {directory}", f"use --tensorboard-dir={directory.rstrip('/')}",
                      tensorboard[0], rule="T5")
    elif kind == "StdOut":
        if redirect is not None:
            ctx.error(redirect.path, "the trainer's stdout is redirected, so the StdOut collector never sees its "
                      "metric lines", "remove the redirect of stdout (stderr may go elsewhere)", rule="T6")
        if metrics_file is not None and metrics_file[0] is not None and \
                posixpath.normpath(metrics_file[0]) == posixpath.normpath(DEFAULT_METRICS_FILE):
            ctx.error(metrics_file[1].path, f"Katib redirects stdout to {DEFAULT_METRICS_FILE} with the StdOut "
                      "collector; writing the metrics file there too garbles it", "drop --metrics-file (stdout is "
                      "enough), or use the File collector", metrics_file[0], rule="T6")


def _split_of(directory: str, tensorboard: str) -> bool:
    """The collector reads one split (train/ or validation/) of the trainer's event directory."""
    directory = posixpath.normpath(directory)
    return posixpath.dirname(directory) == posixpath.normpath(tensorboard) and \
        posixpath.basename(directory) in (_TRAIN_DIR, _VALIDATION_DIR)


def _under(path: str, directory: str) -> bool:
    path, directory = posixpath.normpath(path), posixpath.normpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _whole(ctx: Ctx, argv: list[Token], start: Token) -> None:
    """Run the trainer's own parser on the argv, each placeholder replaced by a value of its range."""
    refs = {as_str(as_map(t).get("name")): as_str(as_map(t).get("reference"))
            for t in as_list(as_map(ctx.trial_template).get("trialParameters"))}

    unknown: list[str] = []

    def sample(match: Any) -> str:
        name = match.group(1)
        reference = refs.get(name, "")
        info = _param_for(ctx, reference)
        if info is not None and (info.numbers_ok or info.values):
            return info.values[0] if info.values else info.min_text
        if info is not None:  # its numbers are already reported (E3)
            unknown.append(name)
            return ""
        if name in refs:  # a metadata reference such as ${trialSpec.Name}
            return "trial-name"
        unknown.append(name)  # undeclared: V19j already says so
        return ""

    args = [PLACEHOLDER.sub(sample, t.text) for t in argv]
    if unknown:
        return
    try:
        parse_args(args, space=_space())
    except UsageError as exc:
        ctx.error(start.path, f"the trainer refuses these arguments: {exc}", "fix the arguments", rule="T3")
    except (KatibHPError, ValueError, TypeError):
        return
