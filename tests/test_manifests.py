"""The checked-in Experiments under manifests/ are exactly what examples/ compile to, and all lint clean.

Regenerate them with `make manifests` after changing an example or the compiler.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from katib_hp.api import generate_manifests
from katib_hp.lint import validate_file
from katib_hp.yamlio import dump_yaml

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [(c, ROOT / "manifests" / "gpu" / c.name) for c in sorted((ROOT / "examples").glob("*.yaml"))] + [
    (c, ROOT / "manifests" / "cpu" / c.name) for c in sorted((ROOT / "examples" / "kind").glob("*.yaml"))
]


@pytest.mark.parametrize(("config", "manifest"), PAIRS, ids=lambda p: p.name if isinstance(p, Path) else p)
def test_checked_in_manifest_matches_its_example(config: Path, manifest: Path) -> None:
    assert manifest.exists(), f"{manifest} is missing: run `make manifests`"
    manifests, _ = generate_manifests(config)
    expected = "---\n".join(dump_yaml(m) for m in manifests)
    assert manifest.read_text() == expected, f"{manifest} is stale: run `make manifests`"


@pytest.mark.parametrize("manifest", [m for _, m in PAIRS], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_checked_in_manifest_passes_the_linter(manifest: Path) -> None:
    problems = validate_file(manifest)
    assert [p.render() for p in problems if p.severity.value in ("error", "warning")] == []


def test_gpu_and_cpu_variants() -> None:
    for _, path in PAIRS:
        doc = yaml.safe_load(path.read_text())
        pod = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
        limits = pod["containers"][0]["resources"].get("limits", {})
        if path.parent.name == "gpu":
            assert int(limits["nvidia.com/gpu"]) >= 1
        else:
            assert "nvidia.com/gpu" not in limits
            assert pod["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_kustomization_lists_every_manifest_and_builds_offline() -> None:
    kustomization = yaml.safe_load((ROOT / "manifests" / "kustomization.yaml").read_text())
    listed = sorted(kustomization["resources"])
    assert listed == sorted(str(m.relative_to(ROOT / "manifests")) for _, m in PAIRS)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run([kubectl, "kustomize", str(ROOT / "manifests")], capture_output=True, text=True,
                           timeout=60, check=True).stdout
    names = sorted(d["metadata"]["name"] for d in yaml.safe_load_all(built) if d)
    assert names == sorted(yaml.safe_load(m.read_text())["metadata"]["name"] for _, m in PAIRS)
