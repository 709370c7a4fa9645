"""The cluster verbs of the CLI, end to end over real HTTP against a Kubernetes API mock server.

The CLI connects through a kubeconfig file that points at the server, exactly as it would reach a cluster.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path

import kmock
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "backends"))

from fake_apiserver import FakeKubeAPI, ServerThread
from katib_objects import experiment, namespace, pod, trial

from katib_hp.cli import cli
from katib_hp.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifests" / "cpu" / "digits-bayes-cpu.yaml"
CONFIG = ROOT / "examples" / "kind" / "digits-bayes-cpu.yaml"
EXPERIMENTS = kmock.resource("kubeflow.org", "v1beta1", "experiments")
DENIAL = ('admission webhook "validator.experiment.katib.kubeflow.org" denied the request: '
          "spec.parallelTrialCount: Invalid value: 4: should be less than or equal to spec.maxTrialCount")


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(FakeKubeAPI()) as running:
        running.api.namespaces["kubeflow"] = namespace("kubeflow")
        yield running


@pytest.fixture
def kubeconfig(server: ServerThread, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: mock
  cluster: {{server: "{server.url}"}}
contexts:
- name: mock
  context: {{cluster: mock, user: me, namespace: kubeflow}}
current-context: mock
users:
- name: me
  user: {{token: abc}}
""")
    return path


def run(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [*args, "--kubeconfig", str(kubeconfig)])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.stdout, result.stderr


def stored(api: FakeKubeAPI, name: str) -> dict | None:
    return api.get("kubeflow.org/v1beta1/experiments", "kubeflow", name)


def digits_experiment(state: str, trials: list[dict], **kwargs) -> dict:
    """A Katib-shaped experiment whose spec is our generated digits manifest."""
    made = experiment("digits-bayes-cpu", namespace="kubeflow", state=state, trials=trials,
                      objective="val_accuracy", **kwargs)
    made["spec"] = copy.deepcopy(load_yaml(MANIFEST.read_text(), str(MANIFEST))["spec"])
    return made


def digits_trial(name: str, state: str, lr: str, value: float | None = None) -> dict:
    return trial("digits-bayes-cpu", name, {"optimizer": "adam", "learning_rate": lr}, state,
                 None if value is None else {"val_accuracy": value}, namespace="kubeflow",
                 objective="val_accuracy")


def test_dry_run_prints_the_manifest_and_contacts_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["submit", str(CONFIG), "--dry-run", "--kubeconfig", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert load_yaml(result.stdout, "out")["metadata"]["name"] == "digits-bayes-cpu"


def test_submit_creates_and_refuses_a_second_time(kubeconfig: Path, server: ServerThread) -> None:
    code, _, err = run(kubeconfig, "submit", str(MANIFEST))
    assert code == 0, err
    assert "experiment 'digits-bayes-cpu' created in namespace 'kubeflow'" in err
    assert stored(server.api, "digits-bayes-cpu") is not None
    code, _, err = run(kubeconfig, "submit", str(MANIFEST))
    assert code == 5
    assert "already exists" in err and "--overwrite" in err
    assert "Traceback" not in err


def test_server_dry_run_stores_nothing(kubeconfig: Path, server: ServerThread) -> None:
    code, _, err = run(kubeconfig, "submit", str(CONFIG), "--server-dry-run")
    assert code == 0, err
    assert "dry run" in err
    assert stored(server.api, "digits-bayes-cpu") is None


def test_unlabelled_namespace_is_detected_before_submitting(kubeconfig: Path, server: ServerThread) -> None:
    server.api.namespaces["kubeflow"] = namespace("kubeflow", labelled=False)
    code, _, err = run(kubeconfig, "submit", str(MANIFEST))
    assert code == 2
    assert "katib.kubeflow.org/metrics-collector-injection=enabled" in err and "--label-namespace" in err
    assert stored(server.api, "digits-bayes-cpu") is None
    code, _, err = run(kubeconfig, "submit", str(MANIFEST), "--label-namespace")
    assert code == 0, err
    labels = server.api.namespaces["kubeflow"]["metadata"]["labels"]
    assert labels["katib.kubeflow.org/metrics-collector-injection"] == "enabled"


def test_lint_errors_refuse_before_any_request(kubeconfig: Path, server: ServerThread, tmp_path: Path) -> None:
    broken = load_yaml(MANIFEST.read_text(), str(MANIFEST))
    broken["spec"]["parallelTrialCount"] = 9
    path = tmp_path / "broken.yaml"
    from katib_hp.yamlio import dump_yaml

    path.write_text(dump_yaml(broken))
    code, _, err = run(kubeconfig, "submit", str(path))
    assert code == 1
    assert "parallelTrialCount" in err
    assert server.api.request_count(lambda r: r.method.value == "POST") == 0


def test_webhook_denial_is_shown_verbatim(kubeconfig: Path, server: ServerThread) -> None:
    server.api[kmock.method.POST, EXPERIMENTS] << kmock.KubernetesError(status=403, reason="Forbidden",
                                                                         message=DENIAL)
    code, _, err = run(kubeconfig, "submit", str(MANIFEST))
    assert code == 6
    assert "should be less than or equal to spec.maxTrialCount" in err
    assert err.count("\n") == 1  # one line


def test_rbac_forbidden_names_the_verb_and_namespace(kubeconfig: Path, server: ServerThread) -> None:
    server.api[kmock.method.POST, EXPERIMENTS] << kmock.KubernetesError(
        status=403, reason="Forbidden",
        message='experiments.kubeflow.org is forbidden: User "me" cannot create resource "experiments"')
    code, _, err = run(kubeconfig, "submit", str(MANIFEST))
    assert code == 7
    assert "create" in err and "kubeflow" in err


def test_watch_exit_code_needs_a_succeeded_trial(kubeconfig: Path, server: ServerThread) -> None:
    failed = [digits_trial("digits-bayes-cpu-a", "Failed", "0.01"), digits_trial("digits-bayes-cpu-b", "Failed", "0.02")]
    for each in failed:
        server.api.put(each)
    server.api.put(digits_experiment("Succeeded", failed, max_trials=2))
    code, _, err = run(kubeconfig, "watch", "digits-bayes-cpu", "--interval", "0.5", "--timeout", "20")
    assert code == 1
    assert "no trial succeeded" in err


def test_watch_succeeds_and_names_the_best_trial(kubeconfig: Path, server: ServerThread) -> None:
    trials = [digits_trial("digits-bayes-cpu-a", "Succeeded", "0.01", 0.91),
              digits_trial("digits-bayes-cpu-b", "Succeeded", "0.02", 0.95)]
    for each in trials:
        server.api.put(each)
    server.api.put(digits_experiment("Succeeded", trials, max_trials=2))
    code, _, err = run(kubeconfig, "watch", "digits-bayes-cpu", "--interval", "0.5", "--timeout", "20")
    assert code == 0, err
    assert "best trial digits-bayes-cpu-b: val_accuracy=0.95" in err
    assert "2/3 trials" in err


def test_trials_best_status_list(kubeconfig: Path, server: ServerThread) -> None:
    trials = [digits_trial("digits-bayes-cpu-a", "Succeeded", "0.01", 0.91),
              digits_trial("digits-bayes-cpu-b", "Succeeded", "0.02", 0.95),
              digits_trial("digits-bayes-cpu-c", "MetricsUnavailable", "0.09")]
    for each in trials:
        server.api.put(each)
    server.api.put(digits_experiment("Succeeded", trials, max_trials=3))

    code, out, err = run(kubeconfig, "trials", "digits-bayes-cpu", "-o", "csv")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("trial,state,val_accuracy,optimizer,learning_rate")
    assert "digits-bayes-cpu-c,MetricsUnavailable,-" in out

    code, out, err = run(kubeconfig, "best", "digits-bayes-cpu", "-o", "args")
    assert code == 0, err
    assert out.strip() == ("--dataset=digits --epochs=2 --num_conv_layers=0 --optimizer=adam "
                           "--learning_rate=0.02")

    code, out, _ = run(kubeconfig, "status", "digits-bayes-cpu", "-o", "json")
    assert code == 0
    assert '"best_trial": "digits-bayes-cpu-b"' in out and '"metrics_unavailable": 1' in out

    code, out, _ = run(kubeconfig, "list")
    assert code == 0
    assert "digits-bayes-cpu" in out and "Succeeded" in out


def test_logs_come_from_the_collector_sidecar(kubeconfig: Path, server: ServerThread) -> None:
    made = digits_trial("digits-bayes-cpu-a", "Succeeded", "0.01", 0.91)
    server.api.put(made)
    server.api.put(pod(made))
    server.api.logs[("kubeflow", "digits-bayes-cpu-a-x1y2z", "metrics-logger-and-collector")] = \
        "epoch=1 val_accuracy=0.91\n"
    server.api.put(digits_experiment("Succeeded", [made], max_trials=1))
    code, out, err = run(kubeconfig, "logs", "digits-bayes-cpu")
    assert code == 0, err
    assert "val_accuracy=0.91" in out
    assert "digits-bayes-cpu-a" in err


def test_missing_experiment_and_delete(kubeconfig: Path, server: ServerThread) -> None:
    code, _, err = run(kubeconfig, "status", "nope")
    assert code == 4 and "nope" in err
    server.api.put(digits_experiment("Running", []))
    code, _, err = run(kubeconfig, "delete", "digits-bayes-cpu", "-y")
    assert code == 0, err
    assert stored(server.api, "digits-bayes-cpu") is None


def test_resume_refused_with_katib_rule(kubeconfig: Path, server: ServerThread) -> None:
    server.api.put(digits_experiment("Succeeded", [], max_trials=3))
    code, _, err = run(kubeconfig, "resume", "digits-bayes-cpu", "--max-trials", "6")
    assert code == 3
    assert "resumePolicy" in err


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {token: t}}]
""")
    result = CliRunner().invoke(cli, ["list", "--kubeconfig", str(path)])
    assert result.exit_code == 9
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1


def test_metrics_reads_the_full_series_of_the_best_trial(kubeconfig: Path, server: ServerThread) -> None:
    from concurrent import futures

    import grpc
    from kubeflow.katib import katib_api_pb2_grpc
    from test_sdk import _DBManager

    trials = [digits_trial("digits-bayes-cpu-a", "Succeeded", "0.01", 0.91)]
    server.api.put(trials[0])
    server.api.put(digits_experiment("Succeeded", trials, max_trials=1))
    servicer = _DBManager()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    katib_api_pb2_grpc.add_DBManagerServicer_to_server(servicer, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    try:
        code, out, err = run(kubeconfig, "metrics", "digits-bayes-cpu", "--db-manager", f"127.0.0.1:{port}",
                             "-o", "csv")
    finally:
        grpc_server.stop(None)
    assert code == 0, err
    assert servicer.asked == ["digits-bayes-cpu-a"]
    assert out.splitlines() == ["time_stamp,name,value", "2026-01-01T00:00:00Z,accuracy,0.5",
                                "2026-01-01T00:00:01Z,accuracy,0.6", "2026-01-01T00:00:02Z,accuracy,0.7"]
