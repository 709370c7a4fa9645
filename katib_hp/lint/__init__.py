"""Lint any Katib v1beta1 Experiment before it reaches a cluster (``katib-hp validate``).

``validate(manifest)`` decodes the manifest like Katib's webhooks (wrong JSON types are refused: V0; unknown
fields are dropped: D0), applies Katib's defaulting (§1.9, ``apply_defaults``), then checks the defaulted
object against:

* the validating webhook's rules that need no cluster (``webhook``: V1–V6, V10–V23);
* what Katib admits but fails later (``traps``: E1–E9, plus metric names M1–M3, GPUs G1, default notes D1);
* for templates that run our trainer, the trainer's own flags, ranges and outputs (``trainer_rules``: T1–T6).

Every problem of the manifest is reported in one pass, errors first, then warnings, then notes. Nothing here
raises for bad content or prints; nothing imports TensorFlow or a Kubernetes client.

Rule ids not checked, and why: V7, V8, V9 (UPDATE of a stored Experiment: they compare with its status and
old spec), V24 (whether a PersistentVolume exists in the cluster), H1 (the namespace label: only a reminder
note), V16/V17/V23a are checked against the standalone katib-config, not the cluster's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from katib_hp.errors import KatibHPError
from katib_hp.lint import trainer_rules, traps, webhook
from katib_hp.lint._common import API_VERSION, KIND, Ctx
from katib_hp.lint.defaults import apply_defaults, default_in_place
from katib_hp.lint.schema import decode_experiment
from katib_hp.problems import Problem, Severity, sort_problems
from katib_hp.yamlio import load_yaml_all

__all__ = ["apply_defaults", "errors_in", "validate", "validate_file", "validate_text"]


def validate(
    manifest: Mapping[str, Any], *, source: str = "", others: tuple[Mapping[str, Any], ...] = ()
) -> list[Problem]:
    """Every problem of one Experiment manifest (a dict), sorted: errors, warnings, notes.

    ``others``: the other documents of the same file; a ConfigMap among them can hold the trial template
    (``trialTemplate.configMap``), a Namespace its injection label.
    """
    given: Any = manifest
    if not isinstance(given, Mapping):
        problems = [Problem(Severity.ERROR, "<document>", f"is not a mapping but a {type(given).__name__}",
                            "an Experiment is a YAML mapping with apiVersion, kind, metadata and spec", rule="V0")]
        return _finish(problems, source)
    ctx = Ctx(raw=given, others=others)
    try:
        _run(ctx)
    except RecursionError:
        ctx.error("<document>", "is nested too deeply (or refers to itself through YAML anchors)",
                  "write the Experiment out plainly", rule="V0")
    except Exception as exc:  # a linter bug must not hide the findings so far
        ctx.error("<document>", f"internal error of the linter: {type(exc).__name__}: {exc}",
                  "please report it with the manifest", rule="")
    return _finish(_dedupe(ctx.problems), source)


def _run(ctx: Ctx) -> None:
    kind = ctx.raw.get("kind")
    if isinstance(kind, str) and kind and kind != KIND:
        # Another kind of object: say so, and don't read its fields as an Experiment's.
        ctx.exp = {"apiVersion": ctx.raw.get("apiVersion"), "kind": kind}
        webhook.check(ctx)
        return
    exp = decode_experiment(ctx)
    default_in_place(exp, ctx.defaulted.__setitem__)
    ctx.exp = exp
    webhook.check(ctx)
    if "document" in ctx.skip:
        return
    traps.check(ctx)
    trainer_rules.check(ctx)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for problem in problems:
        key = (problem.severity, problem.path, problem.message, problem.rule)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def _finish(problems: list[Problem], source: str) -> list[Problem]:
    if source:
        problems = [dataclasses.replace(p, source=source) for p in problems]
    return sort_problems(problems)


def validate_text(text: str, source: str) -> list[Problem]:
    """Lint every Experiment in a YAML/JSON text (multi-document); other kinds are skipped with a note."""
    try:
        documents = load_yaml_all(text, source)
    except KatibHPError as exc:
        where = exc.path or source
        return [Problem(Severity.ERROR, "<yaml>", exc.message, "fix the YAML syntax", rule="V0", source=where)]
    except Exception as exc:  # e.g. a recursion error in a pathological document
        return [Problem(Severity.ERROR, "<yaml>", f"cannot be read: {exc}", "", rule="V0", source=source)]
    if not documents:
        return [Problem(Severity.ERROR, "<document>", "the file has no YAML document",
                        "write an Experiment (apiVersion: kubeflow.org/v1beta1, kind: Experiment)", rule="V0",
                        source=source)]
    others = tuple(d for d in documents if isinstance(d, dict) and d.get("kind") in ("ConfigMap", "Namespace"))
    experiments = [d for d in documents if isinstance(d, dict) and d.get("kind") == KIND]
    problems: list[Problem] = []
    for number, document in enumerate(documents, start=1):
        where = f"{source}#doc {number}" if len(documents) > 1 else source
        kind = document.get("kind") if isinstance(document, dict) else None
        if isinstance(document, dict) and kind != KIND and experiments and isinstance(kind, str) and kind:
            problems.append(Problem(Severity.NOTE, "kind", f"{document.get('apiVersion', '')} {kind} is not an "
                                    "Experiment; skipped", rule="", source=where))
            continue
        if isinstance(document, dict) and kind == KIND and document.get("apiVersion") != API_VERSION:
            problems.append(Problem(Severity.ERROR, "apiVersion", f"Experiment {document.get('apiVersion')!r} is "
                                    f"not {API_VERSION}", f"katib-hp checks apiVersion: {API_VERSION}",
                                    document.get("apiVersion"), rule="V0", source=where))
            continue
        problems.extend(validate(document, source=where, others=others))
    return sort_problems(problems)


def validate_file(path: str | Path) -> list[Problem]:
    """Lint a YAML/JSON file; an unreadable file gives one error Problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return [Problem(Severity.ERROR, "<file>", f"cannot read the file: {reason}", "check the path",
                        rule="", source=name)]
    return validate_text(text, name)


def errors_in(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]
