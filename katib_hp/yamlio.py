"""Safe YAML reading with the two things people trip over fixed: file:line in errors, and ``1e-5``.

PyYAML follows YAML 1.1, where ``1e-5`` (no dot) is a *string*; a learning-rate range written that way
would silently become text. Our loader resolves YAML 1.2 floats as floats. Only ``SafeLoader`` is used.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from katib_hp.errors import ConfigError, KatibHPError


class _Loader(yaml.SafeLoader):
    pass


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


class _Dumper(yaml.SafeDumper):
    """Quotes every string our loader (and YAML 1.2 readers such as kubectl's) would read as a number.

    PyYAML's own resolver leaves ``1e-05`` unquoted (a string in YAML 1.1), which kubectl would send to
    the API server as a number where Katib expects the string ``"1e-05"``.
    """


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _location(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"{source}:{mark.line + 1}" if mark is not None else source


def load_yaml(text: str, source: str, error: type[KatibHPError] = ConfigError) -> Any:
    """Parse one YAML (or JSON) document; errors say ``file:line``."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"invalid YAML: {problem}", path=_location(exc, source)) from exc


def load_yaml_all(text: str, source: str, error: type[KatibHPError] = ConfigError) -> list[Any]:
    """Parse every document of a multi-document YAML file (empty documents are skipped)."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"invalid YAML: {problem}", path=_location(exc, source)) from exc


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"
