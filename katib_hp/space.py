"""KerasTuner-style search spaces, in pure Python.

The vocabulary and semantics are KerasTuner's: ``Int``, ``Float``, ``Choice``, ``Boolean`` and ``Fixed``
with ``min_value/max_value/step/sampling/default``; a ``step`` under log sampling multiplies; a parameter
can be active only for given values of a parent (``conditional_scope``). A space loads from and dumps to
YAML or JSON exactly (``SearchSpace.loads(space.to_yaml()) == space``).

Values cross process boundaries as text (Katib substitutes strings into trial commands), so every
parameter parses the strings Katib produces (``"1e-05"``, ``"64"``, ``"true"``) and formats values the
same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from katib_hp.errors import SpaceError, did_you_mean
from katib_hp.yamlio import dump_json, dump_yaml, load_yaml

Value = bool | int | float | str

TRUE_WORDS = frozenset({"true", "True", "TRUE", "1"})
FALSE_WORDS = frozenset({"false", "False", "FALSE", "0"})


class Sampling(StrEnum):
    LINEAR = "linear"
    LOG = "log"
    REVERSE_LOG = "reverse_log"


def format_value(value: Value) -> str:
    """The text form a trial command receives (Katib's assignments are strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_bool(text: str) -> bool:
    if text.strip() in TRUE_WORDS:
        return True
    if text.strip() in FALSE_WORDS:
        return False
    raise ValueError(text)


def _parse_int(text: str) -> int:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        number = float(text)  # "64.0", "1e3"
        if not number.is_integer():
            raise ValueError(text) from None
        return int(number)


def _tidy(number: float) -> float:
    """Drop binary noise from stepped grids: 0.1 * 3 -> 0.3, not 0.30000000000000004."""
    return float(f"{number:.12g}")


@dataclass(frozen=True)
class Condition:
    """The parameter is active only when ``parent`` has one of ``values``."""

    parent: str
    values: tuple[Value, ...]

    def holds(self, assignment: Mapping[str, Value]) -> bool:
        return self.parent in assignment and assignment[self.parent] in self.values

    def to_dict(self) -> dict[str, Any]:
        return {"parent": self.parent, "values": list(self.values)}


@dataclass(frozen=True, kw_only=True)
class Parameter:
    """Base of every hyperparameter type."""

    kind: ClassVar[str] = ""
    name: str
    conditions: tuple[Condition, ...] = ()
    help: str = ""

    def _fail(self, message: str, value: Any = None) -> SpaceError:
        return SpaceError(message, path=f"space '{self.name}'", value=value)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "a").replace("-", "a").isalnum():
            raise SpaceError(
                f"name must be letters, digits, '_' or '-' (got {self.name!r})", path="space", value=self.name
            )

    @property
    def default(self) -> Value:
        raise NotImplementedError

    def grid(self) -> tuple[Value, ...] | None:
        """Every value the parameter can take, when that set is finite (KerasTuner's ``values``)."""
        raise NotImplementedError

    def size(self) -> int | None:
        """How many values ``grid()`` has (without building it), or None when continuous."""
        grid = self.grid()
        return None if grid is None else len(grid)

    def describe(self) -> str:
        """What the parameter accepts, for error messages and ``--help``."""
        raise NotImplementedError

    def check(self, value: Any) -> Value:
        """Return ``value`` as this parameter's type, or raise ``SpaceError`` when it is not allowed."""
        raise NotImplementedError

    def parse(self, text: str) -> Value:
        """Parse a Katib-substituted string, e.g. ``"1e-05"`` or ``"true"``."""
        raise NotImplementedError

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "type": self.kind, **self._fields()}
        if self.conditions:
            data["conditions"] = [c.to_dict() for c in self.conditions]
        if self.help:
            data["help"] = self.help
        return data


@dataclass(frozen=True, kw_only=True)
class _Numerical(Parameter):
    min_value: Any
    max_value: Any
    step: Any = None
    sampling: Sampling = Sampling.LINEAR
    default_value: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            object.__setattr__(self, "sampling", Sampling(self.sampling))
        except ValueError:
            raise self._fail(f"sampling must be linear, log or reverse_log (got {self.sampling!r})") from None
        if not self.min_value < self.max_value:
            raise self._fail(
                f"min_value must be < max_value (got min_value={self.min_value}, max_value={self.max_value})"
            )
        log = self.sampling is not Sampling.LINEAR
        if log and self.min_value <= 0:
            raise self._fail(f"min_value must be > 0 with sampling={self.sampling.value} (got {self.min_value})")
        if self.step is not None:
            if log and self.step <= 1:
                raise self._fail(
                    f"step multiplies under sampling={self.sampling.value} and must be > 1 (got {self.step})"
                )
            if self.step <= 0:
                raise self._fail(f"step must be > 0 (got {self.step})")
        if self.default_value is None:
            object.__setattr__(self, "default_value", self.min_value)
        object.__setattr__(self, "default_value", self.check(self.default_value))

    @property
    def default(self) -> Value:
        return self.default_value  # type: ignore[no-any-return]

    def _count(self) -> int:
        if self.sampling is Sampling.LINEAR:
            # A tolerance so that max_value is reached despite binary noise (0.7 / 0.05 = 13.999...).
            return int((self.max_value - self.min_value) / self.step + 1e-9) + 1
        return int(math.log(self.max_value / self.min_value, self.step) + 1e-8) + 1

    def size(self) -> int | None:
        return None if self.step is None else self._count()

    def _by_index(self, index: int) -> float:
        if self.sampling is Sampling.LINEAR:
            return float(self.min_value + index * self.step)
        if self.sampling is Sampling.LOG:
            return float(self.min_value * self.step**index)
        return float(self.max_value + self.min_value - self.min_value * self.step**index)

    def _in_range(self, number: float) -> bool:
        if self.min_value <= number <= self.max_value:
            return True
        # Text round trips of float bounds ("1e-06" vs 1e-06 * (1 + eps)) must not be refused.
        return isinstance(self, Float) and any(
            math.isclose(number, edge, rel_tol=1e-9, abs_tol=0.0) for edge in (self.min_value, self.max_value)
        )

    def describe(self) -> str:
        kind = "an integer" if isinstance(self, Int) else "a number"
        text = f"{kind} in [{format_value(self.min_value)}, {format_value(self.max_value)}]"
        if self.sampling is not Sampling.LINEAR:
            text += f" ({self.sampling.value} sampling)"
        return text

    def _fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {"min_value": self.min_value, "max_value": self.max_value}
        if self.step is not None:
            data["step"] = self.step
        data["sampling"] = self.sampling.value
        data["default"] = self.default_value
        return data


@dataclass(frozen=True, kw_only=True)
class Int(_Numerical):
    kind: ClassVar[str] = "int"

    def __post_init__(self) -> None:
        for label in ("min_value", "max_value", "step"):
            raw = getattr(self, label)
            if raw is None:
                continue
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or int(raw) != raw:
                raise self._fail(f"{label} must be an integer (got {raw!r})", raw)
            object.__setattr__(self, label, int(raw))
        if self.step is None and Sampling(self.sampling) is Sampling.LINEAR:
            object.__setattr__(self, "step", 1)
        super().__post_init__()

    def grid(self) -> tuple[Value, ...] | None:
        if self.step is None:
            return None
        return tuple(int(self._by_index(i)) for i in range(self._count()))

    def check(self, value: Any) -> Value:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise self._fail(f"value must be {self.describe()} (got {value!r})", value)
        if not self._in_range(value):
            raise self._fail(f"value must be {self.describe()} (got {value!r})", value)
        return int(value)

    def parse(self, text: str) -> Value:
        try:
            return self.check(_parse_int(text))
        except ValueError:
            raise self._fail(f"must be {self.describe()} (got {text!r})", text) from None


@dataclass(frozen=True, kw_only=True)
class Float(_Numerical):
    kind: ClassVar[str] = "float"

    def __post_init__(self) -> None:
        for label in ("min_value", "max_value", "step"):
            raw = getattr(self, label)
            if raw is None:
                continue
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
                raise self._fail(f"{label} must be a finite number (got {raw!r})", raw)
            object.__setattr__(self, label, float(raw))
        super().__post_init__()

    def grid(self) -> tuple[Value, ...] | None:
        if self.step is None:
            return None
        return tuple(_tidy(self._by_index(i)) for i in range(self._count()))

    def check(self, value: Any) -> Value:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self._fail(f"value must be {self.describe()} (got {value!r})", value)
        if not self._in_range(value):
            raise self._fail(f"value must be {self.describe()} (got {value!r})", value)
        return float(min(max(value, self.min_value), self.max_value))

    def parse(self, text: str) -> Value:
        try:
            return self.check(float(text.strip()))
        except ValueError:
            raise self._fail(f"must be {self.describe()} (got {text!r})", text) from None


@dataclass(frozen=True, kw_only=True)
class Choice(Parameter):
    kind: ClassVar[str] = "choice"
    values: tuple[Value, ...]
    ordered: bool | None = None
    default_value: Value | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        values = tuple(self.values) if isinstance(self.values, (list, tuple)) else ()
        if not values:
            raise self._fail(f"values must be a non-empty list (got {self.values!r})", self.values)
        types = {type(v) for v in values}
        if (len(types - {int, float}) > 0 and len(types) > 1) or not types <= {int, float, str, bool}:
            raise self._fail(f"values must all be numbers, all strings or all booleans (got {list(values)!r})")
        if float in types:
            values = tuple(float(v) for v in values)
        if len(set(values)) != len(values):
            raise self._fail(f"values must not repeat (got {list(values)!r})")
        object.__setattr__(self, "values", values)
        numeric = isinstance(values[0], (int, float)) and not isinstance(values[0], bool)
        if self.ordered is None:
            object.__setattr__(self, "ordered", numeric)
        elif self.ordered and not numeric:
            raise self._fail("ordered=True needs numeric values")
        default = values[0] if self.default_value is None else self.default_value
        object.__setattr__(self, "default_value", self.check(default))

    @property
    def default(self) -> Value:
        assert self.default_value is not None
        return self.default_value

    def grid(self) -> tuple[Value, ...]:
        return self.values

    def describe(self) -> str:
        return "one of: " + ", ".join(format_value(v) for v in self.values)

    def check(self, value: Any) -> Value:
        for candidate in self.values:
            if type(candidate) is bool or isinstance(value, bool):
                if value is candidate:
                    return bool(candidate)
            elif isinstance(candidate, float) and isinstance(value, (int, float)):
                if math.isclose(candidate, value, rel_tol=1e-12, abs_tol=1e-300):
                    return candidate
            elif candidate == value and type(candidate) is type(value):
                return candidate
        raise self._fail(f"value must be {self.describe()} (got {value!r})", value)

    def parse(self, text: str) -> Value:
        sample = self.values[0]
        try:
            if isinstance(sample, bool):
                return self.check(parse_bool(text))
            if isinstance(sample, int):
                return self.check(_parse_int(text))
            if isinstance(sample, float):
                return self.check(float(text.strip()))
            return self.check(text)
        except ValueError:
            raise self._fail(f"must be {self.describe()} (got {text!r})", text) from None

    def _fields(self) -> dict[str, Any]:
        return {"values": list(self.values), "ordered": self.ordered, "default": self.default_value}


@dataclass(frozen=True, kw_only=True)
class Boolean(Parameter):
    kind: ClassVar[str] = "boolean"
    default_value: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.default_value, bool):
            raise self._fail(f"default must be true or false (got {self.default_value!r})")

    @property
    def default(self) -> Value:
        return self.default_value

    def grid(self) -> tuple[Value, ...]:
        return (False, True)

    def describe(self) -> str:
        return "true or false (also True/False/1/0)"

    def check(self, value: Any) -> Value:
        if not isinstance(value, bool):
            raise self._fail(f"value must be {self.describe()} (got {value!r})", value)
        return value

    def parse(self, text: str) -> Value:
        try:
            return parse_bool(text)
        except ValueError:
            raise self._fail(f"must be {self.describe()} (got {text!r})", text) from None

    def _fields(self) -> dict[str, Any]:
        return {"default": self.default_value}


@dataclass(frozen=True, kw_only=True)
class Fixed(Parameter):
    kind: ClassVar[str] = "fixed"
    value: Value

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.value, (bool, int, float, str)):
            raise self._fail(f"value must be a number, string or boolean (got {self.value!r})")

    @property
    def default(self) -> Value:
        return self.value

    def grid(self) -> tuple[Value, ...]:
        return (self.value,)

    def describe(self) -> str:
        return f"exactly {format_value(self.value)}"

    def check(self, value: Any) -> Value:
        return Choice(name=self.name, values=(self.value,)).check(value)

    def parse(self, text: str) -> Value:
        try:
            return Choice(name=self.name, values=(self.value,)).parse(text)
        except SpaceError:
            raise self._fail(f"must be {self.describe()} (got {text!r})", text) from None

    def _fields(self) -> dict[str, Any]:
        return {"value": self.value}


PARAMETER_TYPES: dict[str, type[Parameter]] = {
    cls.kind: cls for cls in (Int, Float, Choice, Boolean, Fixed)
}
_ALLOWED_KEYS: dict[str, set[str]] = {
    "int": {"min_value", "max_value", "step", "sampling", "default"},
    "float": {"min_value", "max_value", "step", "sampling", "default"},
    "choice": {"values", "ordered", "default"},
    "boolean": {"default"},
    "fixed": {"value"},
}
_COMMON_KEYS = {"name", "type", "conditions", "help"}


class SearchSpace:
    """An ordered set of hyperparameters, built like KerasTuner's ``HyperParameters``.

    Example:
        >>> space = SearchSpace()
        >>> space.Choice("optimizer", ["adam", "sgd"])
        'adam'
        >>> with space.conditional_scope("optimizer", ["sgd"]):
        ...     space.Float("momentum", 0.0, 0.99, default=0.9)
        0.9
    """

    def __init__(self, parameters: Iterable[Parameter] = ()) -> None:
        self._params: dict[str, Parameter] = {}
        self._scope: list[Condition] = []
        for parameter in parameters:
            self.add(parameter)

    # -- building, KerasTuner style ------------------------------------------------------------------
    def add(self, parameter: Parameter) -> Value:
        """Add a parameter (with the conditions of the enclosing scopes) and return its default."""
        if parameter.name in self._params:
            raise SpaceError("is declared twice", path=f"space '{parameter.name}'")
        if self._scope:
            parameter = _with_conditions(parameter, tuple(self._scope) + parameter.conditions)
        for condition in parameter.conditions:
            parent = self._params.get(condition.parent)
            if parent is None:
                raise SpaceError(
                    f"condition refers to unknown parent '{condition.parent}'",
                    path=f"space '{parameter.name}'",
                    hint="declare the parent before the parameters that depend on it",
                )
            values = tuple(_coerce(parent, v, parameter.name) for v in condition.values)
            parameter = _replace_condition(parameter, condition, Condition(condition.parent, values))
        self._params[parameter.name] = parameter
        return parameter.default

    @contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Sequence[Value] | Value) -> Iterator[None]:
        values = tuple(parent_values) if isinstance(parent_values, (list, tuple)) else (parent_values,)
        self._scope.append(Condition(parent_name, values))
        try:
            yield
        finally:
            self._scope.pop()

    def Int(
        self, name: str, min_value: int, max_value: int, step: int | None = None,
        sampling: str = "linear", default: int | None = None, **extra: Any,
    ) -> Value:
        return self.add(Int(name=name, min_value=min_value, max_value=max_value, step=step,
                            sampling=Sampling(sampling), default_value=default, **_extra(extra)))

    def Float(
        self, name: str, min_value: float, max_value: float, step: float | None = None,
        sampling: str = "linear", default: float | None = None, **extra: Any,
    ) -> Value:
        return self.add(Float(name=name, min_value=min_value, max_value=max_value, step=step,
                              sampling=Sampling(sampling), default_value=default, **_extra(extra)))

    def Choice(
        self, name: str, values: Sequence[Value], ordered: bool | None = None,
        default: Value | None = None, **extra: Any,
    ) -> Value:
        return self.add(Choice(name=name, values=tuple(values), ordered=ordered, default_value=default,
                               **_extra(extra)))

    def Boolean(self, name: str, default: bool = False, **extra: Any) -> Value:
        return self.add(Boolean(name=name, default_value=default, **_extra(extra)))

    def Fixed(self, name: str, value: Value, **extra: Any) -> Value:
        return self.add(Fixed(name=name, value=value, **_extra(extra)))

    # -- reading -------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._params.values())

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __getitem__(self, name: str) -> Parameter:
        try:
            return self._params[name]
        except KeyError:
            raise SpaceError(
                "is not a parameter of the space", path=f"space '{name}'", hint=did_you_mean(name, self._params)
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"SearchSpace({[p.name for p in self]})"

    @property
    def names(self) -> list[str]:
        return list(self._params)

    def defaults(self) -> dict[str, Value]:
        return {p.name: p.default for p in self}

    def is_active(self, name: str, assignment: Mapping[str, Value]) -> bool:
        """A parameter is active when all its conditions hold and every parent is itself active."""
        return all(
            c.holds(assignment) and self.is_active(c.parent, assignment) for c in self[name].conditions
        )

    def inactive(self, assignment: Mapping[str, Value]) -> list[str]:
        return [p.name for p in self if not self.is_active(p.name, assignment)]

    def select(self, names: Iterable[str]) -> SearchSpace:
        """The sub-space of ``names`` in declaration order (conditions on unselected parents are dropped)."""
        wanted = list(names)
        for name in wanted:
            self[name]  # raises with a suggestion when unknown
        kept = [p for p in self if p.name in wanted]
        return SearchSpace(
            _with_conditions(p, tuple(c for c in p.conditions if c.parent in wanted)) for p in kept
        )

    # -- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"parameters": [p.to_dict() for p in self]}

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())

    def to_json(self) -> str:
        return dump_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "space") -> SearchSpace:
        if isinstance(data, list):
            data = {"parameters": data}
        if not isinstance(data, dict) or not isinstance(data.get("parameters"), list):
            raise SpaceError("expected a mapping with a 'parameters' list", path=source)
        extra = set(data) - {"parameters"}
        if extra:
            key = sorted(extra)[0]
            raise SpaceError(f"unknown key '{key}'", path=source, hint=did_you_mean(key, ["parameters"]))
        space = cls()
        for index, item in enumerate(data["parameters"]):
            space.add(_parameter_from_dict(item, f"{source}: parameters[{index}]"))
        return space

    @classmethod
    def loads(cls, text: str, source: str = "space") -> SearchSpace:
        """Parse YAML or JSON (JSON is a subset of YAML)."""
        return cls.from_dict(load_yaml(text, source, SpaceError), source)

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SpaceError(f"cannot read the file: {exc.strerror}", path=str(path)) from exc
        return cls.loads(text, str(path))


def _extra(extra: dict[str, Any]) -> dict[str, Any]:
    """KerasTuner's ``parent_name``/``parent_values`` keywords, plus ``help``."""
    parent = extra.pop("parent_name", None)
    values = extra.pop("parent_values", None)
    unknown = set(extra) - {"help"}
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {sorted(unknown)}")
    if parent is not None:
        vals = tuple(values) if isinstance(values, (list, tuple)) else (values,)
        extra["conditions"] = (Condition(parent, vals),)
    return extra


def _coerce(parent: Parameter, value: Any, child: str) -> Value:
    try:
        return parent.check(value)
    except SpaceError:
        if isinstance(value, str):
            try:
                return parent.parse(value)
            except SpaceError:
                pass
    raise SpaceError(
        f"condition value {value!r} is not a value of parent '{parent.name}' ({parent.describe()})",
        path=f"space '{child}'",
    )


def _with_conditions(parameter: Parameter, conditions: tuple[Condition, ...]) -> Parameter:
    data = dict(parameter.__dict__)
    data["conditions"] = conditions
    return type(parameter)(**data)


def _replace_condition(parameter: Parameter, old: Condition, new: Condition) -> Parameter:
    if old == new:
        return parameter
    return _with_conditions(parameter, tuple(new if c is old else c for c in parameter.conditions))


def _parameter_from_dict(item: Any, where: str) -> Parameter:
    if not isinstance(item, dict):
        raise SpaceError(f"expected a mapping (got {item!r})", path=where)
    name = item.get("name")
    label = f"{where} '{name}'" if name else where
    kind = item.get("type")
    if kind not in PARAMETER_TYPES:
        raise SpaceError(f"unknown type {kind!r}", path=label, hint=did_you_mean(str(kind), PARAMETER_TYPES))
    allowed = _ALLOWED_KEYS[kind] | _COMMON_KEYS
    for key in item:
        if key not in allowed:
            raise SpaceError(f"unknown key '{key}' for type {kind}", path=label, hint=did_you_mean(key, allowed))
    if not isinstance(name, str):
        raise SpaceError("'name' is required", path=where)
    kwargs: dict[str, Any] = {k: v for k, v in item.items() if k not in ("type", "default", "conditions")}
    if "default" in item:
        kwargs["default_value"] = item["default"]
    if "values" in kwargs:
        if not isinstance(kwargs["values"], list):
            raise SpaceError(f"'values' must be a list (got {kwargs['values']!r})", path=label)
        kwargs["values"] = tuple(kwargs["values"])
    conditions = []
    for cond in item.get("conditions") or []:
        if not isinstance(cond, dict) or set(cond) != {"parent", "values"}:
            raise SpaceError(f"each condition needs exactly 'parent' and 'values' (got {cond!r})", path=label)
        vals = cond["values"]
        conditions.append(Condition(cond["parent"], tuple(vals) if isinstance(vals, list) else (vals,)))
    kwargs["conditions"] = tuple(conditions)
    for key in ("min_value", "max_value", "values", "value") if kind != "boolean" else ():
        if key in _ALLOWED_KEYS[kind] and key not in item:
            raise SpaceError(f"'{key}' is required for type {kind}", path=label)
    try:
        return PARAMETER_TYPES[kind](**kwargs)
    except TypeError as exc:
        raise SpaceError(f"invalid fields: {exc}", path=label) from exc
