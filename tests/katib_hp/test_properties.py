"""Properties that tie the compiler, the linter and the trainer together.

For random tuning configs over the built-in space and every algorithm: what compiles passes our linter, and
every value Katib can assign from the compiled feasible space, substituted into the template's args exactly as
Katib does (text), is accepted by the trainer's own argument parser (pure Python, no TensorFlow).
"""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from katib_hp.compile import CompileError
from katib_hp.compile import compile as compile_config
from katib_hp.config import parse_config
from katib_hp.errors import KatibHPError
from katib_hp.lint import validate
from katib_hp.manifest import to_manifest
from trainer.args import parse_args
from trainer.hyperparameters import builtin_space

ALGORITHMS = ["random", "tpe", "multivariate-tpe", "grid", "cmaes", "sobol", "bayesianoptimization", "hyperband"]
SPACE = builtin_space()
CANDIDATES = [p.name for p in SPACE if p.name not in ("epochs", "seed", "image_size", "fine_tune_at", "base_model")]
PLACEHOLDER = re.compile(r"\$\{trialParameters\.([^}]+)\}")


def _with_parents(names: list[str]) -> list[str]:
    """A child is tuned together with its parents (tuning it alone, with a parent that disables it, is refused)."""
    wanted = list(names)
    for name in wanted:
        for condition in SPACE[name].conditions:
            if condition.parent not in wanted:
                wanted.append(condition.parent)
    return wanted


def _katib_values(param: dict[str, Any], draw: Any) -> list[str]:
    """Text values Katib could assign: list items, or bounds and a few points in between."""
    space = param["feasibleSpace"]
    if "list" in space:
        return list(space["list"])
    low, high = float(space["min"]), float(space["max"])
    if param["parameterType"] == "int":
        inner = draw(st.integers(int(low), int(high)))
        return [str(int(low)), str(int(high)), str(inner)]
    if space.get("distribution") == "logUniform" and low > 0:
        inner = math.exp(draw(st.floats(math.log(low), math.log(high))))
    else:
        inner = draw(st.floats(low, high))
    inner = min(max(inner, low), high)
    return [space["min"], space["max"], repr(inner)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_compiled_experiments_lint_clean_and_every_assignment_parses(data: st.DataObject) -> None:
    algorithm = data.draw(st.sampled_from(ALGORITHMS), label="algorithm")
    names = data.draw(st.lists(st.sampled_from(CANDIDATES), min_size=2, max_size=6, unique=True), label="tune")
    names = _with_parents(names)
    config: dict[str, Any] = {
        "name": "prop",
        "algorithm": {"name": algorithm, "settings": {"r_l": 9, "eta": 3} if algorithm == "hyperband" else {}},
        "budget": {"max_trials": 2, "parallel_trials": 1, "max_failed_trials": 1},
        "space": "builtin",
        "tune": names,
    }
    if algorithm == "hyperband":
        del config["budget"]
    try:
        compiled = compile_config(parse_config(config))
    except (CompileError, KatibHPError) as exc:
        assert str(exc), "a refusal must say why"
        return
    for item in compiled:
        manifest = to_manifest(item.experiment)
        errors = [p.render() for p in validate(manifest) if p.is_error]
        assert errors == []
        args = manifest["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]["args"]
        params = {p["name"]: p for p in manifest["spec"]["parameters"]}
        values = {name: _katib_values(p, data.draw) for name, p in params.items()}
        for index in range(3):
            chosen = {name: vals[index % len(vals)] for name, vals in values.items()}
            argv = [PLACEHOLDER.sub(lambda m: chosen[m.group(1)], arg) for arg in args]  # noqa: B023
            parse_args(argv)  # raises UsageError when the trainer would refuse the value
