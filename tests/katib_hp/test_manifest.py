"""katib_hp.manifest: the compiled manifests, byte for byte, and what Kubernetes and the SDK make of them.

Golden manifests live in ``tests/data/golden/<config>.yaml``, one per config in ``tests/data/configs/``
(a ``split`` config gives a multi-document file, one Experiment per value). After an intended change to the
compiler, regenerate them and review the diff::

    KATIB_HP_UPDATE_GOLDEN=1 .venv/bin/pytest tests/katib_hp/test_manifest.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from katib_hp.compile import compile
from katib_hp.config import load_config
from katib_hp.manifest import to_manifest, to_sdk
from katib_hp.yamlio import dump_yaml, load_yaml_all

DATA = Path(__file__).resolve().parent.parent / "data"
CONFIGS = DATA / "configs"
GOLDEN = DATA / "golden"
UPDATE = os.environ.get("KATIB_HP_UPDATE_GOLDEN") == "1"
# Configs compiled into golden manifests (the space file `small-space.yaml` is not a tuning config).
GOLDEN_CONFIGS = sorted(p.stem for p in CONFIGS.glob("*.yaml") if p.stem != "small-space")
SPEC_ORDER = ["objective", "algorithm", "earlyStopping", "parallelTrialCount", "maxTrialCount",
              "maxFailedTrialCount", "resumePolicy", "metricsCollectorSpec", "parameters", "trialTemplate"]


def _render(stem: str) -> str:
    compiled = compile(load_config(CONFIGS / f"{stem}.yaml"))
    return "---\n".join(dump_yaml(to_manifest(c.experiment)) for c in compiled)


def _manifests(stem: str) -> list[dict[str, Any]]:
    return [to_manifest(c.experiment) for c in compile(load_config(CONFIGS / f"{stem}.yaml"))]


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def test_every_required_golden_exists() -> None:
    required = {"digits-bayes", "hyperband", "random", "tpe", "grid", "multivariate-tpe", "cmaes", "sobol",
                "tfjob", "file-collector", "tfevent"}
    assert required <= set(GOLDEN_CONFIGS)


@pytest.mark.parametrize("stem", GOLDEN_CONFIGS)
def test_compile_output_matches_golden_manifest(stem: str) -> None:
    golden = GOLDEN / f"{stem}.yaml"
    text = _render(stem)
    if UPDATE:
        golden.write_text(text)
    assert golden.exists(), f"missing {golden}; run with KATIB_HP_UPDATE_GOLDEN=1 to create it"
    assert text == golden.read_text(), f"{stem}: compiler output differs from {golden.name}"


@pytest.mark.parametrize("stem", GOLDEN_CONFIGS)
def test_golden_is_valid_yaml_that_round_trips(stem: str) -> None:
    documents = load_yaml_all((GOLDEN / f"{stem}.yaml").read_text(), stem)
    assert documents == _manifests(stem)


@pytest.mark.parametrize("stem", GOLDEN_CONFIGS)
def test_manifest_shape_is_what_katib_and_kubectl_accept(stem: str) -> None:
    for manifest in _manifests(stem):
        assert list(manifest) == ["apiVersion", "kind", "metadata", "spec"]
        assert manifest["apiVersion"] == "kubeflow.org/v1beta1" and manifest["kind"] == "Experiment"
        spec = manifest["spec"]
        assert [k for k in SPEC_ORDER if k in spec] == list(spec)
        for key in ("parallelTrialCount", "maxTrialCount", "maxFailedTrialCount"):
            assert isinstance(spec[key], int)
        assert spec["parallelTrialCount"] <= spec["maxTrialCount"]
        for path, value in _walk(manifest):
            assert value is not None, f"{stem}: None at {path}"
        for parameter in spec["parameters"]:
            assert list(parameter) == ["name", "parameterType", "feasibleSpace"]
            space = parameter["feasibleSpace"]
            for key in ("min", "max", "step"):
                if key in space:
                    assert isinstance(space[key], str), f"{parameter['name']}.{key} must be a string"
            assert all(isinstance(v, str) for v in space.get("list", []))
        for setting in spec["algorithm"].get("algorithmSettings", []):
            assert isinstance(setting["value"], str)
        template = spec["trialTemplate"]["trialSpec"]
        assert "name" not in template.get("metadata", {}) and "namespace" not in template.get("metadata", {})
        # Placeholders only inside string fields (Katib substitutes text in the JSON form).
        for path, value in _walk(template):
            if isinstance(value, str) and "${" in value:
                assert re.fullmatch(r"--[a-z0-9_]+=\$\{trialParameters\.[a-z0-9_]+\}", value), path


@pytest.mark.parametrize("stem", GOLDEN_CONFIGS)
def test_our_own_linter_finds_no_error_or_warning_in_the_goldens(stem: str) -> None:
    lint = pytest.importorskip("katib_hp.lint")
    if not hasattr(lint, "validate"):
        pytest.skip("katib_hp.lint.validate is not available")
    for manifest in _manifests(stem):
        found = [p.render() for p in lint.validate(manifest, source=stem) if p.severity.value != "note"]
        assert found == []


def test_feasible_space_values_are_katib_strings() -> None:
    (manifest,) = _manifests("random")
    by_name = {p["name"]: p for p in manifest["spec"]["parameters"]}
    assert by_name["learning_rate"]["feasibleSpace"] == {"min": "1e-05", "max": "0.1", "distribution": "logUniform"}
    assert by_name["conv_filters_0"]["feasibleSpace"] == {"min": "16", "max": "128", "step": "8",
                                                          "distribution": "uniform"}
    assert by_name["batch_size"]["feasibleSpace"] == {"list": ["16", "32", "64", "128", "256"]}


def test_yaml_text_quotes_strings_that_look_like_numbers() -> None:
    # kubectl reads YAML 1.2: an unquoted 1e-05 would reach Katib as a number where it expects a string.
    text = _render("random")
    assert "min: '1e-05'" in text and "min: '16'" in text and "- '32'" in text
    for document in (yaml.safe_load(text), load_yaml_all(text, "random")[0]):
        by_name = {p["name"]: p["feasibleSpace"] for p in document["spec"]["parameters"]}
        assert by_name["learning_rate"]["min"] == "1e-05"
        assert by_name["conv_filters_0"]["min"] == "16"


def test_metadata_holds_namespace_and_labels_only_when_given() -> None:
    (bayes,) = _manifests("digits-bayes")
    assert bayes["metadata"] == {"name": "digits-bayes", "namespace": "kubeflow", "labels": {"team": "vision"}}
    (tpe,) = _manifests("tpe")
    assert tpe["metadata"] == {"name": "digits-tpe"}


@pytest.mark.parametrize("stem", ["digits-bayes", "hyperband", "tfjob", "full", "tfevent"])
def test_to_sdk_round_trips_through_the_katib_sdk(stem: str) -> None:
    pytest.importorskip("kubeflow.katib")
    from kubeflow.katib import ApiClient, V1beta1Experiment

    for manifest in _manifests(stem):
        experiment = to_sdk(manifest)
        assert isinstance(experiment, V1beta1Experiment)
        assert experiment.spec.max_trial_count == manifest["spec"]["maxTrialCount"]
        assert experiment.spec.trial_template.primary_container_name in ("training-container", "tensorflow")
        assert ApiClient().sanitize_for_serialization(experiment) == manifest


def _kubectl_offline() -> str | None:
    """Why `kubectl apply --dry-run=client` cannot run here (it needs an API server), or None when it can."""
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    probe = subprocess.run(["kubectl", "version", "--request-timeout=3s"], capture_output=True, text=True,
                           timeout=30, check=False)
    if probe.returncode != 0:
        return "kubectl needs an API server for apply --dry-run=client (none reachable)"
    return None


def test_kubectl_apply_dry_run_accepts_the_manifests(tmp_path: Path) -> None:
    reason = _kubectl_offline()
    if reason:
        pytest.skip(reason)
    for stem in GOLDEN_CONFIGS:
        result = subprocess.run(["kubectl", "apply", "--dry-run=client", "--validate=false", "-f",
                                 str(GOLDEN / f"{stem}.yaml")], capture_output=True, text=True, timeout=60,
                                check=False)
        assert result.returncode == 0, f"{stem}: {result.stderr}"
