"""What each Katib v0.19 suggestion service accepts and honours.

Algorithm settings are checked by the suggestion service only after submission (the Suggestion fails and the
Experiment with it), so we check them first. The support matrix says which parts of a parameter's feasible
space each service honours; the compiler lowers a space to what the chosen algorithm samples correctly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Setting:
    """One algorithm setting. Katib passes settings as strings; ``check`` parses like the service does."""

    name: str
    kind: str  # "int", "float", "choice", "text"
    default: str | None = None
    low: float | None = None
    low_open: bool = False  # True: value must be > low, else >= low
    high: float | None = None
    high_open: bool = False
    choices: tuple[str, ...] = ()
    required: bool = False
    help: str = ""

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        kind = "an integer" if self.kind == "int" else "a number" if self.kind == "float" else "text"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {_num(self.low)}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {_num(self.high)}")
        return kind + (" " + " and ".join(bounds) if bounds else "")

    def check(self, value: str) -> str | None:
        """Return why ``value`` is refused, or None when it is accepted."""
        if self.kind == "choice":
            return None if value in self.choices else f"must be {self.describe()}"
        if self.kind == "text":
            return None if value.strip() else "must not be empty"
        try:
            number = float(int(value)) if self.kind == "int" else float(value)
        except ValueError:
            return f"must be {self.describe()}"
        if not math.isfinite(number):
            return f"must be {self.describe()}"
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            return f"must be {self.describe()}"
        if self.high is not None and (number >= self.high if self.high_open else number > self.high):
            return f"must be {self.describe()}"
        return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


ALL_DISTRIBUTIONS = frozenset({"uniform", "logUniform", "normal", "logNormal"})


@dataclass(frozen=True)
class Algorithm:
    """A suggestion algorithm as the standalone katib-config v0.19 serves it."""

    name: str
    service: str  # the suggestion image / library behind the name
    settings: tuple[Setting, ...] = ()
    rejects_unknown_settings: bool = True
    distributions: frozenset[str] = frozenset()  # distributions honoured (others are ignored or fail)
    int_step: bool = True  # int step honoured (as min + k*step)
    double_step: bool = True  # double step honoured
    doubles_always_log: bool = False  # skopt: every double is sampled log-uniformly
    ignored_settings: frozenset[str] = field(default_factory=frozenset)  # accepted and ignored
    learns: bool = True  # uses past results (False: random, grid, sobol)
    nas: bool = False
    notes: str = ""

    def setting(self, name: str) -> Setting | None:
        return next((s for s in self.settings if s.name == name), None)

    @property
    def defaults(self) -> dict[str, str]:
        return {s.name: s.default for s in self.settings if s.default is not None}


_RANDOM_STATE = Setting("random_state", "int", low=0, help="seed of the suggestion service")

ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm(
            "random", "hyperopt (rand.suggest)", (_RANDOM_STATE,), distributions=ALL_DISTRIBUTIONS,
            learns=False, notes="int step is quantised as round(x/step)*step, not min + k*step",
        ),
        Algorithm(
            "tpe", "hyperopt (tpe.suggest)",
            (
                Setting("gamma", "float", "0.25", low=0, low_open=True, high=1, high_open=True),
                Setting("prior_weight", "float", "1.0", low=0, low_open=True),
                Setting("n_EI_candidates", "int", "24", low=0, low_open=True),
                _RANDOM_STATE,
            ),
            distributions=ALL_DISTRIBUTIONS,
            notes="the first request (about parallelTrialCount trials) is random: n_startup_jobs is not settable",
        ),
        Algorithm(
            "grid", "optuna (GridSampler)", (_RANDOM_STATE,), distributions=frozenset({"uniform", "logUniform"}),
            learns=False, notes="points come from min/max/step or the list, whatever the distribution",
        ),
        Algorithm(
            "multivariate-tpe", "optuna (TPESampler multivariate, constant_liar)",
            (
                Setting("n_startup_trials", "int", "10", low=0),
                Setting("n_ei_candidates", "int", "24", low=0),
                _RANDOM_STATE,
            ),
            distributions=frozenset({"uniform", "logUniform"}),
        ),
        Algorithm(
            "cmaes", "goptuna (CMA-ES)",
            (
                Setting("random_state", "int"),
                Setting("sigma", "float", low=0, low_open=True, help="initial sigma"),
                Setting("restart_strategy", "choice", "none", choices=("ipop", "bipop", "none")),
            ),
            rejects_unknown_settings=False,
            notes="needs two or more int/double parameters; bad values surface only as gRPC errors",
        ),
        Algorithm("sobol", "goptuna (Sobol)", (), rejects_unknown_settings=False, learns=False),
        Algorithm(
            "bayesianoptimization", "scikit-optimize (Optimizer)",
            (
                Setting("base_estimator", "choice", "GP", choices=("GP", "RF", "ET", "GBRT")),
                Setting("n_initial_points", "int", "10", low=0),
                Setting("acq_func", "choice", "gp_hedge", choices=("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps")),
                Setting("acq_optimizer", "choice", "auto", choices=("auto", "sampling", "lbfgs")),
                _RANDOM_STATE,
            ),
            int_step=False, double_step=False, doubles_always_log=True,
            notes="every double is Real(min, max, 'log-uniform'); int step and distribution are ignored",
        ),
        Algorithm(
            "hyperband", "Katib's own Python",
            (
                Setting("r_l", "float", low=1, required=True,
                        help="maximum resource (epochs); below 1 Hyperband has no bracket and suggests nothing"),
                Setting("resource_name", "text", required=True, help="the parameter that carries the resource"),
                Setting("eta", "float", "3", low=2, help="reduction factor (Katib truncates it to an integer)"),
            ),
            rejects_unknown_settings=False,
            int_step=False, double_step=False,
            ignored_settings=frozenset({"s_max", "b_l", "r", "n", "current_s", "current_i", "evaluating_trials"}),
            notes="samples ints and doubles uniformly; only the first bracket is reliable on v0.19",
        ),
        Algorithm(
            "pbt", "Katib's own Python",
            (
                Setting("suggestion_trial_dir", "text", required=True),
                Setting("n_population", "int", low=5, required=True),
                Setting("truncation_threshold", "float", low=0, high=1, required=True),
                Setting("resample_probability", "float", low=0, high=1),
            ),
            notes="needs a ReadWriteMany volume; doubles need a step",
        ),
        Algorithm(
            "enas", "Katib's own (TensorFlow controller)",
            tuple(
                [Setting("controller_hidden_size", "int", "64", low=1),
                 Setting("controller_temperature", "float", "5.0", low=0, low_open=True),
                 Setting("controller_tanh_const", "float", "2.25", low=0, low_open=True),
                 Setting("controller_entropy_weight", "float", "1e-5", low=0, low_open=True),
                 Setting("controller_baseline_decay", "float", "0.999", low=0, low_open=True, high=1),
                 Setting("controller_learning_rate", "float", "5e-5", low=0, low_open=True, high=1),
                 Setting("controller_skip_target", "float", "0.4", low=0, low_open=True, high=1),
                 Setting("controller_skip_weight", "float", "0.8", low=0, low_open=True),
                 Setting("controller_train_steps", "int", "50", low=1),
                 Setting("controller_log_every_steps", "int", "10", low=1)]
            ),
            nas=True,
        ),
        Algorithm(
            "darts", "Katib's own",
            tuple(
                [Setting("num_epochs", "int", "50", low=0, low_open=True)]
                + [Setting(n, "float", d, low=0) for n, d in (
                    ("w_lr", "0.025"), ("w_lr_min", "0.001"), ("w_momentum", "0.9"), ("w_weight_decay", "3e-4"),
                    ("w_grad_clip", "5.0"), ("alpha_lr", "3e-4"), ("alpha_weight_decay", "1e-3"))]
                + [Setting("num_workers", "int", "4", low=0)]
                + [Setting(n, "int", d, low=1) for n, d in (
                    ("init_channels", "16"), ("print_step", "50"), ("num_nodes", "4"), ("stem_multiplier", "3"))]
            ),
            rejects_unknown_settings=False, nas=True,
        ),
    )
}

MEDIANSTOP = Algorithm(
    "medianstop", "Katib's own Python",
    (
        Setting("min_trials_required", "int", "3", low=0, low_open=True),
        Setting("start_step", "int", "4", low=1),
    ),
)

# Values that these settings accept besides numbers ("None" disables the term).
_NONE_ALLOWED = {"controller_temperature", "controller_tanh_const", "controller_entropy_weight",
                 "controller_skip_weight", "batch_size"}


@dataclass(frozen=True)
class SettingProblem:
    index: int | None  # position in algorithmSettings, None for a missing required setting
    name: str
    message: str
    hint: str = ""
    value: str | None = None
    severity: str = "error"


def check_settings(algorithm: Algorithm, settings: Sequence[tuple[str, str]]) -> list[SettingProblem]:
    """Check ``[(name, value), ...]`` the way the suggestion service's ValidateAlgorithmSettings does."""
    from katib_hp.errors import did_you_mean

    problems: list[SettingProblem] = []
    seen: set[str] = set()
    for index, (name, value) in enumerate(settings):
        if name in seen:
            problems.append(SettingProblem(index, name, "is set twice", "keep one entry", value))
        seen.add(name)
        rule = algorithm.setting(name)
        if rule is None:
            if name in algorithm.ignored_settings:
                continue
            known = [s.name for s in algorithm.settings]
            hint = did_you_mean(name, known) if known else f"{algorithm.name} takes no settings"
            if algorithm.rejects_unknown_settings:
                problems.append(SettingProblem(index, name, f"is not a setting of {algorithm.name}", hint, value))
            else:
                problems.append(SettingProblem(index, name, f"is ignored by {algorithm.name}", hint, value, "warning"))
            continue
        if value == "None" and name in _NONE_ALLOWED:
            continue
        reason = rule.check(value)
        if reason:
            problems.append(SettingProblem(index, name, reason, "", value))
        if algorithm.name == "pbt" and name == "resample_probability":
            problems.append(SettingProblem(
                index, name, "is refused by Katib v0.19's pbt validator whatever its value",
                "remove it (the default perturbs values by x0.8/x1.2)", value))
    for rule in algorithm.settings:
        if rule.required and rule.name not in seen:
            problems.append(SettingProblem(None, rule.name, f"is required by {algorithm.name}",
                                           f"add {{name: {rule.name}, value: ...}} ({rule.describe()})"))
    return problems


@dataclass(frozen=True)
class HyperbandPlan:
    """Katib's Hyperband arithmetic for ``r_l`` and ``eta``."""

    r_l: float
    eta: int
    s_max: int
    min_parallel: int  # Katib refuses parallelTrialCount below this
    first_rung_resource: int  # resource (epochs) of every trial of the first rung of the first bracket

    def brackets(self, n_first: int) -> list[list[tuple[int, int]]]:
        """Every bracket's rungs as (trials, resource), the first bracket sized ``n_first`` (Katib's rule)."""
        plan = []
        for s in range(self.s_max, -1, -1):
            n = n_first if s == self.s_max else math.ceil((self.s_max + 1) * self.eta ** s / (s + 1))
            r = self.r_l * self.eta ** (-s)
            rungs = []
            for i in range(s + 1):
                rungs.append((math.ceil(n * self.eta ** (-i)) if i else n, int(r * self.eta**i)))
            plan.append(rungs)
        return plan


def hyperband_plan(r_l: float, eta: int = 3) -> HyperbandPlan:
    """Compute s_max and the parallelism Katib demands exactly as its ValidateAlgorithmSettings does."""
    if eta <= 0:
        eta = 3
    s_max = int(math.log(r_l) / math.log(eta))
    return HyperbandPlan(r_l, eta, s_max, math.ceil(eta**s_max), int(r_l * eta ** (-s_max)))


def grid_size(sizes: Sequence[int | None]) -> int | None:
    """Number of grid combinations, or None when a dimension is continuous."""
    total = 1
    for size in sizes:
        if size is None:
            return None
        total *= size
    return total


def numeric_parameter_count(parameter_types: Mapping[str, str]) -> int:
    return sum(1 for t in parameter_types.values() if t in ("int", "double"))
