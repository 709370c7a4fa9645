"""The Dockerfile cannot be built here (no container engine), so its invariants are checked by reading it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in DOCKERFILE.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _instructions(keyword: str) -> list[str]:
    return [line for line in INSTRUCTIONS if line.split()[0].upper() == keyword]


def test_bases_are_pinned_official_tensorflow_images_gpu_and_cpu() -> None:
    bases = [line.split()[1] for line in _instructions("FROM")]
    official = [b for b in bases if b.startswith("tensorflow/tensorflow:")]
    assert {b.split(":")[1] for b in official} == {"2.20.0-gpu", "2.20.0"}
    assert not any(b.endswith(":latest") or ":" not in b for b in official)
    assert "ARG VARIANT=gpu" in INSTRUCTIONS, "GPU must be the default variant"


def test_installs_only_the_trainer_side() -> None:
    run = " ".join(_instructions("RUN"))
    assert '".[trainer]"' in run
    assert "client" not in run and "kubeflow" not in run and "kubernetes" not in run
    copied = " ".join(_instructions("COPY"))
    assert "katib_hp" in copied and "trainer" in copied


def test_runs_as_a_numeric_non_root_user() -> None:
    users = _instructions("USER")
    assert users, "the image must switch away from root"
    uid = users[-1].split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "runAsNonRoot can only verify a numeric uid"


def test_no_entrypoint_and_unbuffered_python() -> None:
    assert not _instructions("ENTRYPOINT"), "Katib wraps the template's command; an ENTRYPOINT would be skipped"
    assert re.search(r"PYTHONUNBUFFERED=1", DOCKERFILE)
    cmd = _instructions("CMD")[-1]
    assert '"python", "-u", "-m", "trainer"' in cmd


def test_dockerignore_keeps_local_environments_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".venv-trainer" in ignored and ".git" in ignored
