"""connect(): kubeconfig resolution like kubectl, in-cluster fallback, and errors that say how to fix them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from fake_apiserver import ServerThread
from katib_objects import experiment

from katib_hp.backends.cluster import KatibCluster
from katib_hp.backends.errors import KubeconfigError
from katib_hp.backends.kube import connect


def kubeconfig(path: Path, server: str, *, contexts: dict[str, str | None], current: str | None) -> Path:
    """Write a kubeconfig with one cluster and one context per entry (name -> namespace)."""
    data: dict = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": f"c-{path.stem}", "cluster": {"server": server}}],
        "users": [{"name": f"u-{path.stem}", "user": {"token": "secret"}}],
        "contexts": [{"name": name, "context": {"cluster": f"c-{path.stem}", "user": f"u-{path.stem}",
                                                **({"namespace": ns} if ns else {})}}
                     for name, ns in contexts.items()],
    }
    if current:
        data["current-context"] = current
    path.write_text(yaml.safe_dump(data))
    return path


def test_explicit_kubeconfig_reaches_the_server_with_the_context_namespace(tmp_path: Path,
                                                                           server: ServerThread) -> None:
    server.api.put(experiment("mnist", namespace="team-a"))
    path = kubeconfig(tmp_path / "config", server.url, contexts={"dev": "team-a"}, current="dev")
    connection = connect(str(path), environ={})
    assert (connection.namespace, connection.context) == ("team-a", "dev")
    assert connection.api_client.configuration.host == server.url
    names = [e["metadata"]["name"] for e in KatibCluster(connection.api_client, connection.namespace)
             .list_experiments()]
    assert names == ["mnist"]
    assert connection.api_client.configuration.api_key["authorization"] == "Bearer secret"


def test_explicit_namespace_and_context_win(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", "https://a:6443", contexts={"dev": "team-a", "prod": None},
                      current="dev")
    assert connect(str(path), context="prod", environ={}).namespace == "default"
    assert connect(str(path), context="dev", namespace="mine", environ={}).namespace == "mine"


def test_kubeconfig_list_merges_and_the_first_current_context_wins(tmp_path: Path) -> None:
    first = kubeconfig(tmp_path / "one", "https://one:6443", contexts={"one": "ns-one"}, current="one")
    second = kubeconfig(tmp_path / "two", "https://two:6443", contexts={"two": "ns-two"}, current="two")
    missing = tmp_path / "absent"
    env = {"KUBECONFIG": os.pathsep.join([str(missing), str(first), str(second)])}
    connection = connect(environ=env)
    assert (connection.context, connection.namespace) == ("one", "ns-one")
    assert connection.api_client.configuration.host == "https://one:6443"
    other = connect(context="two", environ=env)
    assert (other.namespace, other.api_client.configuration.host) == ("ns-two", "https://two:6443")


def test_the_global_client_configuration_is_left_alone(tmp_path: Path) -> None:
    from kubernetes import client

    before = client.Configuration.get_default_copy().host
    connect(str(kubeconfig(tmp_path / "config", "https://elsewhere:6443", contexts={"x": None}, current="x")),
            environ={})
    assert client.Configuration.get_default_copy().host == before


def test_home_kubeconfig_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    kubeconfig(tmp_path / ".kube" / "config", "https://home:6443", contexts={"home": "h"}, current="home")
    assert connect(environ={}).namespace == "h"


def test_no_kubeconfig_says_how_to_fix_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeconfigError, match=r"no kubeconfig found; set KUBECONFIG or pass --kubeconfig") as info:
        connect(environ={})
    assert str(tmp_path / ".kube" / "config") in str(info.value)
    assert info.value.exit_code == 2
    with pytest.raises(KubeconfigError, match=str(tmp_path / "nope")):
        connect(str(tmp_path / "nope"), environ={})


@pytest.mark.parametrize(("text", "expected"), [
    ("", "empty or not a mapping"),
    ("clusters: [unclosed", "cannot read the kubeconfig"),
    ("apiVersion: v1\ncontexts: []\n", "sets no current-context"),
], ids=["empty", "bad-yaml", "no-context"])
def test_invalid_kubeconfig(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(KubeconfigError, match=expected) as info:
        connect(str(path), environ={})
    assert str(path) in str(info.value)


def test_unknown_context_lists_the_known_ones(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", "https://a:6443", contexts={"dev": None, "prod": None}, current="dev")
    with pytest.raises(KubeconfigError, match=r"context 'stage' is not in the kubeconfig \(contexts: dev, prod\)"):
        connect(str(path), context="stage", environ={})


def test_in_cluster_uses_the_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    (tmp_path / "token").write_text("pod-token")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("kubeflow-user\n")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    connection = connect(environ=env, service_account_dir=tmp_path)
    assert (connection.context, connection.namespace) == ("in-cluster", "kubeflow-user")
    assert connection.api_client.configuration.host == "https://10.0.0.1:443"
    assert connect(namespace="other", environ=env, service_account_dir=tmp_path).namespace == "other"


def test_in_cluster_without_a_token_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(KubeconfigError, match="in-cluster configuration failed: Service token file does not exist"):
        connect(environ=env, service_account_dir=tmp_path)
