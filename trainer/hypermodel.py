"""Bring your own KerasTuner hypermodel: ``--hypermodel package.module:Name``.

``Name`` is a ``keras_tuner.HyperModel`` subclass (instantiated with no arguments), an instance of one, or
a ``build(hp)`` function. The user's code runs unchanged: it receives a real
``keras_tuner.HyperParameters`` whose ``values`` are pre-filled from the command-line flags, exactly as a
KerasTuner ``Tuner`` pre-fills them from a trial, so every ``hp.Int(...)``/``hp.Choice(...)`` call returns
the trial's value.

The search space is discovered the way KerasTuner discovers it, by building: a first build with a fresh
``HyperParameters`` registers every parameter the default path reaches; then, for each discovered
Choice/Boolean value and each Int's bounds, a rebuild with that value set reveals parameters that only
exist on other paths (an ``if`` on a choice, a layer loop up to ``num_layers``). Builds are bounded
(:data:`MAX_BUILDS`). Parameters a ``fit(hp, model, ...)`` override declares are discovered by calling it
with a stand-in model that does not train.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from katib_hp.errors import SpaceError
from katib_hp.space import Boolean, Choice, Condition, Fixed, Float, Int, Parameter, SearchSpace, Value
from trainer.args import EXIT_MODEL, TrainerError
from trainer.metrics import sanitize_metric_name

MAX_BUILDS = 50
# Settings of the training loop that are hyperparameters of the built-in space; a hypermodel's space gets
# those it does not declare itself (so ``--epochs`` is the Hyperband resource for any hypermodel).
TRAINER_PARAMETERS = ("batch_size", "epochs", "early_stopping_patience", "seed")

HypermodelSpec = Any  # "package.module:Name", a HyperModel (class or instance), or a build(hp) function


@dataclass
class Extraction:
    """The discovered space plus what is needed to map it back to the user's KerasTuner names."""

    space: SearchSpace
    kt_names: dict[str, str]  # our (sanitised) name -> KerasTuner name, for the hypermodel's own parameters
    builds: int
    failed_probes: int = 0


@dataclass
class UserModel:
    """A model built by the user's hypermodel with the trial's values."""

    spec: str
    hypermodel: Any
    hp: Any  # keras_tuner.HyperParameters after the build (its .values are the ones actually used)
    model: Any  # keras.Model
    custom_fit: bool = False

    def used_values(self) -> dict[str, Value]:
        return {sanitize_hp_name(k): v for k, v in self.hp.values.items()}


_CACHE: dict[str, Extraction] = {}
_LOADED: dict[str, Any] = {}


def _label(spec: HypermodelSpec) -> str:
    if isinstance(spec, str):
        return spec
    name = getattr(spec, "__qualname__", None) or type(spec).__qualname__
    module = getattr(spec, "__module__", None) or type(spec).__module__
    return f"{module}:{name}"


def _fail(spec: HypermodelSpec, message: str) -> TrainerError:
    return TrainerError(f"--hypermodel={_label(spec)}: {message}", EXIT_MODEL)


def sanitize_hp_name(name: str) -> str:
    """KerasTuner names may contain ``/`` (``hp.name_scope``); Katib parameter names may not."""
    return sanitize_metric_name(name)


@contextlib.contextmanager
def _user_code() -> Iterator[None]:
    """Run user code with its prints on stderr (stdout carries the space or the metric lines)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _import_object(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise _fail(spec, "expected package.module:Name (a HyperModel class or instance, or a build(hp) "
                          "function)")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)  # `katib-hp-trainer` (console script) runs without the working dir on sys.path
    try:
        with _user_code():
            obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise _fail(spec, f"cannot import {module_name}: {exc}") from None
    except Exception as exc:
        raise _fail(spec, f"importing {module_name} failed: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _fail(spec, f"{module_name} has no attribute {attr}") from None
    return obj


def load_hypermodel(spec: HypermodelSpec) -> Any:
    """Return a ``keras_tuner.HyperModel`` for ``spec`` (string specs are imported once per process)."""
    if isinstance(spec, str) and spec in _LOADED:
        return _LOADED[spec]
    import keras_tuner as kt

    obj = _import_object(spec) if isinstance(spec, str) else spec
    if isinstance(obj, type) and issubclass(obj, kt.HyperModel):
        try:
            with _user_code():
                hypermodel = obj()
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise _fail(spec, f"cannot create {obj.__name__}() with no arguments: {reason}") from None
    elif isinstance(obj, kt.HyperModel):
        hypermodel = obj
    elif callable(obj) and not isinstance(obj, type):
        hypermodel = _default_hypermodel(obj)
    else:
        raise _fail(spec, "is neither a keras_tuner.HyperModel (class or instance) nor a build(hp) function")
    if isinstance(spec, str):
        _LOADED[spec] = hypermodel
    return hypermodel


def _default_hypermodel(build: Callable[..., Any]) -> Any:
    """What KerasTuner's Tuner does with a build function (``get_hypermodel``)."""
    try:
        from keras_tuner.src.engine.hypermodel import get_hypermodel
    except ImportError:  # pragma: no cover - other keras_tuner layouts
        from keras_tuner.engine.hypermodel import get_hypermodel
    return get_hypermodel(build)


def overrides_fit(hypermodel: Any) -> bool:
    import keras_tuner as kt

    return getattr(type(hypermodel), "fit", kt.HyperModel.fit) is not kt.HyperModel.fit


class _FitProbe:
    """Stands in for the model when a ``fit(hp, model, ...)`` override runs to discover its parameters."""

    class _History:
        history: dict[str, list[float]] = {}  # noqa: RUF012

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        return self._History()

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        return {}


def _build(
    hypermodel: Any, values: Mapping[str, Any], probe_fit: bool
) -> tuple[Any, Any, BaseException | None]:
    """Build with ``values`` pre-filled; return (hp, model, error). ``hp`` keeps what was registered."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hp.values = dict(values)
    model = None
    try:
        with _user_code():
            model = hypermodel.build(hp)
    except Exception as exc:
        return hp, None, exc
    if probe_fit and overrides_fit(hypermodel):
        with contextlib.suppress(Exception), _user_code():
            hypermodel.fit(hp, _FitProbe(), None, None, validation_data=None, callbacks=[])
    return hp, model, None


def _probe_values(param: Any) -> list[Any]:
    from keras_tuner.src.engine.hyperparameters import hp_types

    if isinstance(param, hp_types.Boolean):
        return [not param.default]
    if isinstance(param, hp_types.Choice):
        return [v for v in param.values if v != param.default]
    if isinstance(param, hp_types.Int):
        return [v for v in (param.min_value, param.max_value) if v != param.default]
    return []


@dataclass
class _Discovered:
    first: Any  # the first KerasTuner HyperParameter registered under this name
    condition_sets: list[tuple[tuple[str, tuple[Any, ...]], ...]] = field(default_factory=list)


def _conditions_of(param: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    return tuple((c.name, tuple(c.values)) for c in param.conditions)


def discover(hypermodel: Any, max_builds: int = MAX_BUILDS, spec: HypermodelSpec = None) -> tuple[
    dict[str, _Discovered], list[str], int, int
]:
    """Build the hypermodel repeatedly; return (parameters by KT name, their order, builds, failed probes)."""
    found: dict[str, _Discovered] = {}
    order: list[str] = []
    probed: set[str] = set()
    queue: deque[dict[str, Any]] = deque([{}])
    seen: set[frozenset[tuple[str, Any]]] = set()
    builds = failed = 0
    while queue and builds < max_builds:
        assignment = queue.popleft()
        key = frozenset((k, (type(v).__name__, v)) for k, v in assignment.items())
        if key in seen:
            continue
        seen.add(key)
        builds += 1
        hp, model, error = _build(hypermodel, assignment, probe_fit=True)
        del model
        if error is not None:
            if builds == 1:
                reason = f"{type(error).__name__}: {error}"
                raise _fail(spec or hypermodel, f"build(hp) failed: {reason}") from error
            failed += 1
        previous: str | None = None
        for param in hp.space:
            name = param.name
            if name not in found:
                found[name] = _Discovered(first=param)
                order.insert(order.index(previous) + 1 if previous is not None else 0, name)
            entry = found[name]
            conditions = _conditions_of(param)
            if conditions not in entry.condition_sets:
                entry.condition_sets.append(conditions)
            previous = name
            # Probe other values where the parameter is active (probing an inactive one changes nothing).
            if name not in probed and hp.is_active(param):
                probed.add(name)
                queue.extend({**assignment, name: value} for value in _probe_values(entry.first))
    return found, order, builds, failed


def _merge_conditions(
    sets: Sequence[tuple[tuple[str, tuple[Any, ...]], ...]]
) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """A parameter registered under several scopes is active when any of them is: one parent -> union."""
    if len(sets) == 1:
        return sets[0]
    if all(len(s) == 1 for s in sets) and len({s[0][0] for s in sets}) == 1:
        values: list[Any] = []
        for s in sets:
            values.extend(v for v in s[0][1] if v not in values)
        return ((sets[0][0][0], tuple(values)),)
    if any(len(s) == 0 for s in sets):
        return ()
    common = set(sets[0]).intersection(*sets[1:])
    return tuple(c for c in sets[0] if c in common)


def _convert(param: Any, name: str, conditions: tuple[Condition, ...]) -> Parameter:
    from keras_tuner.src.engine.hyperparameters import hp_types

    if isinstance(param, hp_types.Boolean):
        return Boolean(name=name, default_value=bool(param.default), conditions=conditions)
    if isinstance(param, hp_types.Fixed):
        return Fixed(name=name, value=param.value, conditions=conditions)
    if isinstance(param, hp_types.Choice):
        return Choice(name=name, values=tuple(param.values), ordered=param.ordered,
                      default_value=param.default, conditions=conditions)
    if isinstance(param, (hp_types.Int, hp_types.Float)):
        if param.min_value == param.max_value:
            return Fixed(name=name, value=param.min_value, conditions=conditions)
        cls = Int if isinstance(param, hp_types.Int) else Float
        return cls(name=name, min_value=param.min_value, max_value=param.max_value, step=param.step,
                   sampling=param.sampling, default_value=param.default, conditions=conditions)
    raise SpaceError(f"unsupported KerasTuner hyperparameter type {type(param).__name__}")


def _to_space(found: Mapping[str, _Discovered], order: Sequence[str], spec: HypermodelSpec) -> tuple[
    SearchSpace, dict[str, str]
]:
    ours = {kt_name: sanitize_hp_name(kt_name) for kt_name in order}
    kt_names: dict[str, str] = {}
    for kt_name, name in ours.items():
        if name in kt_names:
            raise _fail(spec, f"hyperparameters '{kt_names[name]}' and '{kt_name}' both become '{name}'")
        kt_names[name] = kt_name
    params: list[Parameter] = []
    for kt_name in order:
        entry = found[kt_name]
        conditions = tuple(
            Condition(ours[parent], values)
            for parent, values in _merge_conditions(entry.condition_sets)
            if parent in ours
        )
        try:
            params.append(_convert(entry.first, ours[kt_name], conditions))
        except SpaceError as exc:
            raise _fail(spec, f"hyperparameter '{kt_name}' cannot be tuned by Katib: {exc.message}") from None
    # Parents before children (they always are within one build; keep it true across builds).
    space = SearchSpace()
    pending = params
    while pending:
        deferred = []
        for param in pending:
            if all(c.parent in space for c in param.conditions):
                try:
                    space.add(param)
                except SpaceError as exc:
                    raise _fail(spec, f"hyperparameter '{param.name}': {exc}") from None
            else:
                deferred.append(param)
        if len(deferred) == len(pending):
            raise _fail(spec, f"conditions of {[p.name for p in deferred]} form a cycle")
        pending = deferred
    return space, kt_names


def extract(spec: HypermodelSpec, max_builds: int = MAX_BUILDS) -> Extraction:
    """Discover the hypermodel's search space (cached per spec string)."""
    if isinstance(spec, str) and spec in _CACHE:
        return _CACHE[spec]
    hypermodel = load_hypermodel(spec)
    found, order, builds, failed = discover(hypermodel, max_builds, spec)
    space, kt_names = _to_space(found, order, spec)
    _add_trainer_parameters(space)
    _clear_session()
    result = Extraction(space=space, kt_names=kt_names, builds=builds, failed_probes=failed)
    if isinstance(spec, str):
        _CACHE[spec] = result
    return result


def _add_trainer_parameters(space: SearchSpace) -> None:
    from trainer.hyperparameters import builtin_space

    builtin = builtin_space()
    for name in TRAINER_PARAMETERS:
        if name not in space:
            space.add(builtin[name])


def extract_space(spec: HypermodelSpec, max_builds: int = MAX_BUILDS) -> SearchSpace:
    """The search space of a KerasTuner hypermodel, as a ``katib_hp.space.SearchSpace``."""
    return extract(spec, max_builds).space


def _clear_session() -> None:
    """Forget the probe models (layer-name counters, graph state) before the real build."""
    with contextlib.suppress(Exception):
        import keras

        keras.backend.clear_session()


def build_user(spec: HypermodelSpec, values: Mapping[str, Value]) -> UserModel:
    """Build the user's model with ``values`` (our parameter names, e.g. from the flags)."""
    extraction = extract(spec)
    hypermodel = load_hypermodel(spec)
    own = extraction.kt_names
    prefilled = {own[name]: value for name, value in values.items() if name in own}
    hp, model, error = _build(hypermodel, prefilled, probe_fit=False)
    if error is not None:
        raise _fail(spec, f"build(hp) failed: {type(error).__name__}: {error}") from error
    if model is None or not hasattr(model, "fit"):
        raise _fail(spec, f"build(hp) must return a Keras model (got {type(model).__name__})")
    if getattr(model, "optimizer", None) is None and not overrides_fit(hypermodel):
        raise _fail(spec, "build(hp) must return a compiled model (call model.compile(...))")
    return UserModel(spec=_label(spec), hypermodel=hypermodel, hp=hp, model=model,
                     custom_fit=overrides_fit(hypermodel))


def build_user_model(spec: HypermodelSpec, values: Mapping[str, Value]) -> Any:
    """The compiled ``keras.Model`` the user's hypermodel builds for ``values``."""
    return build_user(spec, values).model


def fit_user(
    user: UserModel,
    *args: Any,
    epochs: int,
    initial_epoch: int,
    callbacks: Sequence[Any],
    verbose: int,
    batch_size: int | None = None,
    **kwargs: Any,
) -> Any:
    """Train through the user's ``HyperModel.fit(hp, model, *args, **kwargs)`` as KerasTuner would.

    KerasTuner passes ``search()``'s arguments (data, ``validation_data``, ``callbacks``) to ``fit``; a fit
    override may set ``epochs`` or ``batch_size`` itself from ``hp``. The run's own settings (epochs,
    initial epoch, the trainer's callbacks) are added to ``model.fit`` only where the override did not
    pass them (``batch_size`` too, for the arrays the trainer passes).
    """
    model = user.model
    original = model.fit
    ours = list(callbacks)

    def fit(*fit_args: Any, **fit_kwargs: Any) -> Any:
        fit_kwargs.setdefault("epochs", epochs)
        fit_kwargs.setdefault("initial_epoch", initial_epoch)
        fit_kwargs.setdefault("verbose", verbose)
        if batch_size is not None:
            fit_kwargs.setdefault("batch_size", batch_size)
        given = list(fit_kwargs.get("callbacks") or [])
        fit_kwargs["callbacks"] = given + [c for c in ours if c not in given]
        return original(*fit_args, **fit_kwargs)

    model.fit = fit
    try:
        return user.hypermodel.fit(user.hp, model, *args, callbacks=list(ours), **kwargs)
    finally:
        with contextlib.suppress(AttributeError):
            del model.fit
