"""The `katib-hp` commands as a user runs them: exact Error lines, exit codes, data on stdout only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from katib_hp.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml")) + sorted((ROOT / "examples" / "kind").glob("*.yaml"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.stem)
def test_generate_prints_a_manifest_that_validates(runner: CliRunner, config: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["generate", str(config)])
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(result.stdout)
    assert manifest["apiVersion"] == "kubeflow.org/v1beta1"
    assert manifest["kind"] == "Experiment"
    out = tmp_path / "experiment.yaml"
    out.write_text(result.stdout)
    checked = runner.invoke(cli, ["validate", str(out)])
    assert checked.exit_code == 0, checked.output
    assert "0 error(s)" in checked.stderr


def test_generate_writes_the_file_whole(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "exp.yaml"
    result = runner.invoke(cli, ["generate", str(EXAMPLES[0]), "--output", str(out), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads(out.read_text())["kind"] == "Experiment"
    assert [p.name for p in out.parent.iterdir()] == ["exp.yaml"]


def test_generate_reports_rewrites_on_stderr(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["generate", str(ROOT / "examples" / "digits-bayes.yaml")])
    assert result.exit_code == 0
    assert "note:" in result.stderr
    assert "note:" not in result.stdout


def test_missing_config_is_one_error_line(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["generate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "nope.yaml" in lines[0]


def test_bad_yaml_names_file_and_line(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nobjective: [unclosed\nalgorithm: {name: random}\n")
    result = runner.invoke(cli, ["generate", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {bad}:")
    assert "Traceback" not in result.output


def test_unknown_key_suggests_the_right_one(runner: CliRunner, tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "examples" / "digits-random.yaml").read_text())
    config["budget"]["max_trial"] = config["budget"].pop("max_trials")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(cli, ["generate", str(path)])
    assert result.exit_code == 2
    assert "budget.max_trial" in result.stderr and "max_trials" in result.stderr


def test_validate_exit_codes_and_json(runner: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(runner.invoke(cli, ["generate", str(EXAMPLES[0])]).stdout)
    manifest = yaml.safe_load(good.read_text())
    manifest["spec"]["parallelTrialCount"] = manifest["spec"]["maxTrialCount"] + 1
    manifest["metadata"]["name"] = "Bad_Name"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(manifest))
    result = runner.invoke(cli, ["validate", str(good), str(bad), "-o", "json"])
    assert result.exit_code == 1
    problems = json.loads(result.stdout)
    errors = [p for p in problems if p["severity"] == "error"]
    assert {p["path"] for p in errors} >= {"metadata.name", "spec.parallelTrialCount"}
    assert all(p["source"].startswith(str(bad)) for p in errors)


def test_validate_missing_file_is_an_error_not_a_traceback(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_estimate_from_config_and_manifest(runner: CliRunner, tmp_path: Path) -> None:
    config = ROOT / "examples" / "digits-hyperband.yaml"
    result = runner.invoke(cli, ["estimate", str(config), "--epoch-seconds", "60", "-o", "json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["experiment"] == "digits-hyperband"
    assert row["peak_gpus"] == 9
    manifest = tmp_path / "m.yaml"
    manifest.write_text(runner.invoke(cli, ["generate", str(config)]).stdout)
    again = runner.invoke(cli, ["estimate", str(manifest), "-o", "json"])
    assert json.loads(again.stdout)[0]["peak_gpus"] == 9


def test_fast_commands_import_neither_tensorflow_nor_kubernetes(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from katib_hp.cli import main\n"
        "try:\n"
        f"    main(['generate', '-q', {str(EXAMPLES[0])!r}, '--output', {str(tmp_path / 'e.yaml')!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "try:\n"
        f"    main(['validate', '-q', {str(tmp_path / 'e.yaml')!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'kubernetes', 'kubeflow')]\n"
        "print(heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_print_space_output_is_read_directly_as_a_space_file(runner: CliRunner, tmp_path: Path) -> None:
    # What `python -m trainer --print-space` prints (the trainer prints builtin_space().to_yaml()).
    proc = subprocess.run([sys.executable, "-m", "trainer", "--print-space"], capture_output=True, text=True,
                          timeout=60, check=True)
    (tmp_path / "space.yaml").write_text(proc.stdout)
    config = yaml.safe_load((ROOT / "examples" / "digits-bayes.yaml").read_text())
    builtin = tmp_path / "builtin.yaml"
    builtin.write_text(yaml.safe_dump(config))
    config["space"] = {"file": "space.yaml"}
    from_file = tmp_path / "from-file.yaml"
    from_file.write_text(yaml.safe_dump(config))
    first = runner.invoke(cli, ["generate", "-q", str(builtin)])
    second = runner.invoke(cli, ["generate", "-q", str(from_file)])
    assert first.exit_code == second.exit_code == 0, second.output
    assert first.stdout == second.stdout


def test_tfjob_with_workers_warns_that_the_builtin_trainer_does_not_distribute(runner: CliRunner,
                                                                             tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "examples" / "digits-random.yaml").read_text())
    config["trial"].update({"kind": "TFJob", "workers": 3})
    path = tmp_path / "tfjob.yaml"
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(cli, ["generate", str(path)])
    assert result.exit_code == 0, result.output
    assert "does not use TF_CONFIG" in result.stderr
    manifest = yaml.safe_load(result.stdout)
    replicas = manifest["spec"]["trialTemplate"]["trialSpec"]["spec"]["tfReplicaSpecs"]
    assert replicas["Worker"]["replicas"] == 2
    assert manifest["spec"]["trialTemplate"]["primaryPodLabels"] == {"training.kubeflow.org/job-role": "master"}
