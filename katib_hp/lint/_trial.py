"""Reading the trial template: its pod templates, the primary container, and what its command runs."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from katib_hp.lint._common import PLACEHOLDER, as_list, as_map, as_str, child

# Where each Kubeflow training kind keeps its replica pod templates.
REPLICA_SPECS = {
    "TFJob": "tfReplicaSpecs",
    "PyTorchJob": "pytorchReplicaSpecs",
    "XGBoostJob": "xgbReplicaSpecs",
    "MPIJob": "mpiReplicaSpecs",
    "PaddleJob": "paddleReplicaSpecs",
    "JAXJob": "jaxReplicaSpecs",
}
# Replicas whose pods carry training.kubeflow.org/job-role=master (the default primaryPodLabels).
MASTER_REPLICAS = ("Chief", "Master", "Launcher")


@dataclass(frozen=True)
class PodTemplate:
    path: str  # field path of the pod template (its `spec` is the PodSpec)
    spec: dict[str, Any]  # the PodSpec
    replica: str = ""  # replica type for Kubeflow kinds
    replicas: int = 1


def pod_templates(template: dict[str, Any], base: str) -> list[PodTemplate]:
    """The pod templates of a trial template (Job: one; Kubeflow kinds: one per replica type)."""
    kind = as_str(template.get("kind"))
    spec = as_map(template.get("spec"))
    if kind == "Job":
        pod = as_map(spec.get("template"))
        path = child(child(base, "spec"), "template")
        return [PodTemplate(path, as_map(pod.get("spec")))] if pod else []
    key = REPLICA_SPECS.get(kind) or next((k for k in spec if isinstance(k, str) and k.endswith("ReplicaSpecs")), "")
    out = []
    for replica, replica_spec in as_map(spec.get(key)).items():
        pod = as_map(as_map(replica_spec).get("template"))
        if not pod:
            continue
        count = as_map(replica_spec).get("replicas")
        replicas = count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else 1
        path = child(child(child(child(base, "spec"), key), str(replica)), "template")
        out.append(PodTemplate(path, as_map(pod.get("spec")), str(replica), replicas))
    return out


def primary_pod(pods: list[PodTemplate]) -> PodTemplate | None:
    """The pod template whose pods get the metrics collector (the master replica for Kubeflow kinds)."""
    if not pods:
        return None
    return next((p for p in pods if p.replica in MASTER_REPLICAS), pods[0])


def find_container(pod: PodTemplate, name: str) -> tuple[int, dict[str, Any]] | None:
    for index, container in enumerate(as_list(pod.spec.get("containers"))):
        if isinstance(container, dict) and container.get("name") == name:
            return index, container
    return None


# ------------------------------------------------------------------------------------------- commands
@dataclass(frozen=True)
class Token:
    text: str
    path: str  # field path of the command/args entry it came from


@dataclass
class Invocation:
    """How the primary container runs: its argv (with field paths), or the script given to ``sh -c``."""

    tokens: list[Token]
    shell: bool = False  # command is `sh -c <script>` / `bash -c <script>`
    script: str = ""
    script_path: str = ""
    has_command: bool = False
    words: list[Token] = field(default_factory=list)  # the script's words (shell) or the argv (exec form)
    parse_error: str = ""


_SH = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash", "dash", "ash", "zsh"}
_SENTINEL = "KHPPLACEHOLDER{}X"
_SENTINEL_RE = re.compile(r"KHPPLACEHOLDER(\d+)X")


def invocation(container: dict[str, Any], path: str) -> Invocation:
    command = as_list(container.get("command"))
    args = as_list(container.get("args"))
    tokens = [Token(t, child(child(path, "command"), i)) for i, t in enumerate(command) if isinstance(t, str)]
    tokens += [Token(t, child(child(path, "args"), i)) for i, t in enumerate(args) if isinstance(t, str)]
    inv = Invocation(tokens, has_command=bool(command))
    if len(tokens) >= 3 and tokens[0].text in _SH and tokens[1].text == "-c":
        inv.shell = True
        inv.script = tokens[2].text
        inv.script_path = tokens[2].path
        inv.words, inv.parse_error = split_script(tokens[2].text, tokens[2].path)
    else:
        inv.words = list(tokens)
    return inv


def split_script(script: str, path: str) -> tuple[list[Token], str]:
    """Split a shell script into words and operators (placeholders kept intact)."""
    found: list[str] = []

    def hide(match: re.Match[str]) -> str:
        found.append(match.group(0))
        return _SENTINEL.format(len(found) - 1)

    hidden = PLACEHOLDER.sub(hide, script)
    lexer = shlex.shlex(hidden, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError as exc:
        return [], str(exc)
    return [Token(_SENTINEL_RE.sub(lambda m: found[int(m.group(1))], w), path) for w in words], ""


_OPERATORS = {";", "&&", "||", "|", "&", "(", ")", ";;", "|&"}
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_PY_OPTS_WITH_VALUE = {"-X", "-W", "-Q"}


@dataclass
class TrainerCall:
    """The part of the command that runs our trainer: its argv and what surrounds it."""

    argv: list[Token]
    start: Token  # the token that names the program (python or katib-hp-trainer)
    stdout_redirect: Token | None = None  # a `>` / `>>` / `&>` of stdout in the same shell command


def segments(words: list[Token]) -> list[list[Token]]:
    out: list[list[Token]] = [[]]
    for word in words:
        if word.text in _OPERATORS:
            out.append([])
        else:
            out[-1].append(word)
    return [s for s in out if s]


def find_trainer(inv: Invocation) -> TrainerCall | None:
    """Locate ``python [-u] -m trainer ...`` or ``katib-hp-trainer ...`` in the primary container's command."""
    for segment in segments(inv.words) if inv.shell else [inv.words]:
        call = _trainer_in(segment, inv.shell)
        if call is not None:
            return call
    return None


def _trainer_in(words: list[Token], shell: bool) -> TrainerCall | None:
    i = 0
    # Wrappers that keep the program's argv: exec, env, VAR=value assignments.
    while i < len(words) and (words[i].text in ("exec", "env") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[i].text)):
        i += 1
    if i >= len(words):
        return None
    program = os.path.basename(words[i].text)
    start = words[i]
    if program == "katib-hp-trainer":
        rest = words[i + 1:]
    elif _PYTHON.match(program):
        j = i + 1
        rest = []
        found = False
        while j < len(words):
            text = words[j].text
            if text == "-m" and j + 1 < len(words):
                found = words[j + 1].text in ("trainer", "trainer.__main__")
                rest = words[j + 2:]
                break
            if text in _PY_OPTS_WITH_VALUE:
                j += 2
                continue
            if text.startswith("-") and text != "-c" and len(text) > 1:
                j += 1
                continue
            break
        if not found:
            return None
    else:
        return None
    call = TrainerCall([], start)
    skip = False
    for index, word in enumerate(rest):
        if skip:
            skip = False
            continue
        if shell and word.text in (">", ">>", "&>", "&>>", ">|"):
            fd = rest[index - 1].text if index else ""
            if fd != "2" and call.stdout_redirect is None:
                call.stdout_redirect = word
            skip = True
            if call.argv and fd.isdigit() and call.argv[-1].text == fd:
                call.argv.pop()
            continue
        if shell and word.text in ("<", ">&", "<&"):
            skip = True
            if call.argv and index and rest[index - 1].text.isdigit() and call.argv[-1].text == rest[index - 1].text:
                call.argv.pop()
            continue
        call.argv.append(word)
    return call


def primary_invocation(ctx: Any) -> tuple[str, Invocation] | None:
    """The primary container's path and how it is invoked, or None when the template has none to check."""
    if ctx.template is None or ctx.trial_template is None:
        return None
    pod = primary_pod(pod_templates(ctx.template, ctx.template_path))
    found = find_container(pod, as_str(ctx.trial_template.get("primaryContainerName"))) if pod else None
    if pod is None or found is None:
        return None
    index, container = found
    path = child(f"{pod.path}.spec.containers", index)
    return path, invocation(container, path)
