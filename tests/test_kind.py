"""The kind end-to-end path: static checks that always run, and the full run where docker and kind exist."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "kind-e2e.sh"
SCRIPT_TEXT = SCRIPT.read_text()
CLUSTER_CONFIG = ROOT / "manifests" / "kind" / "cluster.yaml"
CPU_MANIFESTS = sorted((ROOT / "manifests" / "cpu").glob("*.yaml"))


def _script_constant(name: str) -> str:
    match = re.search(rf'^readonly {name}="([^"]+)"$', SCRIPT_TEXT, re.MULTILINE)
    assert match, f"{name} is not a readonly constant in {SCRIPT.name}"
    return match.group(1)


def _script_experiments() -> list[str]:
    match = re.search(r"^readonly EXPERIMENTS=\(([^)]*)\)$", SCRIPT_TEXT, re.MULTILINE)
    assert match, f"EXPERIMENTS is not a readonly array in {SCRIPT.name}"
    return match.group(1).split()


def _containers(doc: dict) -> list[dict]:
    pod = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def test_script_parses_with_bash_n() -> None:
    bash = shutil.which("bash")
    assert bash, "bash is needed to check the script"
    result = subprocess.run([bash, "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_script_is_executable_and_strict() -> None:
    assert os.access(SCRIPT, os.X_OK), f"chmod +x {SCRIPT.relative_to(ROOT)}"
    assert SCRIPT_TEXT.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in SCRIPT_TEXT
    assert "eval " not in SCRIPT_TEXT and "bash -c" not in SCRIPT_TEXT


def test_cluster_config_pins_a_versioned_node_image() -> None:
    config = yaml.safe_load(CLUSTER_CONFIG.read_text())
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    nodes = config["nodes"]
    assert [n["role"] for n in nodes] == ["control-plane"]
    image = nodes[0]["image"]
    repo, _, tag = image.partition(":")
    assert repo == "kindest/node"
    assert re.fullmatch(r"v1\.\d+\.\d+(@sha256:[0-9a-f]{64})?", tag), f"unpinned node image {image!r}"
    assert "latest" not in image


def test_katib_install_is_pinned_to_v0_19_0() -> None:
    install = _script_constant("KATIB_INSTALL")
    assert install == "github.com/kubeflow/katib.git/manifests/v1beta1/installs/katib-standalone?ref=v0.19.0"
    assert '"${KATIB_INSTALL}"' in SCRIPT_TEXT
    assert "ref=master" not in SCRIPT_TEXT


def test_script_builds_the_image_the_cpu_manifests_use() -> None:
    image = _script_constant("TRAINER_IMAGE")
    assert 'docker build --build-arg VARIANT=cpu -t "${TRAINER_IMAGE}"' in SCRIPT_TEXT
    assert 'kind load docker-image "${TRAINER_IMAGE}"' in SCRIPT_TEXT
    assert CPU_MANIFESTS, "manifests/cpu/ holds no Experiments"
    for path in CPU_MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            for container in _containers(doc):
                if container["name"] != doc["spec"]["trialTemplate"]["primaryContainerName"]:
                    continue
                assert container["image"] == image, f"{path.name}: {container['image']} != {image}"
                assert container.get("imagePullPolicy") == "IfNotPresent", path.name


def test_script_experiments_exist_and_match_their_manifests() -> None:
    experiments = _script_experiments()
    assert experiments, "the script runs no Experiments"
    namespace = _script_constant("NAMESPACE")
    metric = _script_constant("OBJECTIVE_METRIC")
    for name in experiments:
        path = ROOT / "manifests" / "cpu" / f"{name}.yaml"
        assert path.is_file(), f"{path.relative_to(ROOT)} does not exist"
        doc = yaml.safe_load(path.read_text())
        assert doc["metadata"]["name"] == name
        assert doc["metadata"]["namespace"] == namespace
        assert doc["spec"]["objective"]["objectiveMetricName"] == metric


def test_makefile_has_the_kind_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target, sub in (("kind-up", "up"), ("kind-e2e", "all"), ("kind-down", "down")):
        assert re.search(rf"^{target}:.*\n\tscripts/kind-e2e\.sh {sub}$", makefile, re.MULTILINE), target


def test_script_rejects_bad_usage_without_touching_anything() -> None:
    env = {**os.environ, "KIND_CLUSTER": "bad;name"}
    result = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 2
    assert "KIND_CLUSTER must be a DNS label" in result.stderr
    result = subprocess.run([str(SCRIPT), "sideways"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "unknown subcommand" in result.stderr


def _kind_prerequisites_missing() -> str | None:
    missing = [tool for tool in ("docker", "kind", "kubectl") if shutil.which(tool) is None]
    if missing:
        return f"kind e2e needs docker, kind and kubectl on PATH; missing: {', '.join(missing)}"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "kind e2e needs a running container engine: `docker info` timed out"
    if info.returncode != 0:
        detail = (info.stderr.strip().splitlines() or ["no output"])[-1]
        return f"kind e2e needs a running container engine: `docker info` failed ({detail})"
    return None


@pytest.mark.kind
@pytest.mark.timeout(5400)
def test_cpu_experiments_succeed_on_a_kind_cluster() -> None:
    reason = _kind_prerequisites_missing()
    if reason:
        pytest.skip(reason)
    result = subprocess.run([str(SCRIPT), "all"], cwd=ROOT, check=False)
    assert result.returncode == 0, "scripts/kind-e2e.sh all failed; its output above has the details"
