"""katib-hp: KerasTuner-style search spaces compiled into Kubeflow Katib Experiments.

The names below load lazily, so importing ``katib_hp.space`` (as the trainer does) stays light.

Example:
    >>> import katib_hp
    >>> config = katib_hp.load_config("examples/digits-bayes.yaml")   # doctest: +SKIP
    >>> [compiled] = katib_hp.compile(config)                          # doctest: +SKIP
    >>> manifest = katib_hp.to_manifest(compiled.experiment)           # doctest: +SKIP
    >>> katib_hp.validate(manifest)                                    # doctest: +SKIP
    []
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "SearchSpace": "katib_hp.space",
    "KatibHPError": "katib_hp.errors",
    "Problem": "katib_hp.problems",
    "load_config": "katib_hp.config",
    "parse_config": "katib_hp.config",
    "compile": "katib_hp.compile",
    "to_manifest": "katib_hp.manifest",
    "to_sdk": "katib_hp.manifest",
    "validate": "katib_hp.lint",
    "validate_file": "katib_hp.lint",
    "estimate": "katib_hp.estimate",
    "run_local": "katib_hp.api",
    "load_local": "katib_hp.api",
    "Client": "katib_hp.client",
    "TrialResult": "katib_hp.results",
    "ExperimentStatus": "katib_hp.results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'katib_hp' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
