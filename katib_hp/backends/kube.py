"""Find the cluster the way kubectl does and build an ``ApiClient`` for it.

Order: an explicit kubeconfig path, else ``$KUBECONFIG``, else ``~/.kube/config``, else the in-cluster service
account (when ``KUBERNETES_SERVICE_HOST`` is set). The namespace is the explicit one, else the context's
``namespace``, else the service account's namespace (in a pod), else ``default``.

``$KUBECONFIG`` may list several files separated by ``os.pathsep``. They are merged as kubectl merges them
(by the Kubernetes client's merger: the first file that defines a cluster, user or context by a name wins),
and the current context is taken from the first file that sets one, as kubectl does. Limits: the client's
merger ignores ``preferences`` and ``extensions``, and exec/auth-provider plugins run as the client runs them.

The global default configuration of the Kubernetes client is never touched, so several connections can live
side by side; credentials refreshed by a plugin are not written back to the kubeconfig.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from katib_hp.backends.errors import KubeconfigError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"


@dataclass(frozen=True)
class Connection:
    """An API client for one cluster, with the namespace and context it was resolved with.

    Attributes:
        api_client: a ``kubernetes.client.ApiClient`` bound to its own ``Configuration``.
        namespace: the namespace commands act in.
        context: the kubeconfig context used, or ``"in-cluster"``.
    """

    api_client: Any
    namespace: str
    context: str


def connect(kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None, *,
            environ: Mapping[str, str] | None = None, service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> Connection:
    """Resolve the cluster like kubectl and return a ``Connection``.

    Args:
        kubeconfig: a kubeconfig path (or an ``os.pathsep``-separated list); overrides ``$KUBECONFIG``.
        context: the context to use; defaults to the kubeconfig's current context.
        namespace: the namespace; defaults to the context's, then ``default``.
        environ: the environment to read (``os.environ`` by default).
        service_account_dir: where a pod's service account files live (for in-cluster use).

    Raises:
        KubeconfigError: no kubeconfig file and not in a cluster, or the kubeconfig cannot be used.
    """
    env = os.environ if environ is None else environ
    source = kubeconfig or env.get("KUBECONFIG") or ""
    paths = [os.path.expanduser(p) for p in (source or DEFAULT_KUBECONFIG).split(os.pathsep) if p]
    existing = [p for p in paths if os.path.exists(p)]
    if existing:
        return _from_kubeconfig(existing, context, namespace)
    if env.get("KUBERNETES_SERVICE_HOST") and not kubeconfig:
        return _in_cluster(namespace, env, service_account_dir)
    named = os.pathsep.join(paths) or DEFAULT_KUBECONFIG
    raise KubeconfigError("no kubeconfig found", path=named,
                          hint="set KUBECONFIG or pass --kubeconfig (or create one with `kind create cluster`)")


def _from_kubeconfig(paths: list[str], context: str | None, namespace: str | None) -> Connection:
    from kubernetes import client, config

    documents = [_read_yaml(p) for p in paths]
    current = context or next((str(d["current-context"]) for d in documents if d.get("current-context")), "")
    contexts: dict[str, dict[str, Any]] = {}
    for document in documents:  # the first file that defines a name wins, as in kubectl
        for entry in document.get("contexts") or []:
            if isinstance(entry, dict):
                contexts.setdefault(str(entry.get("name")), dict(entry.get("context") or {}))
    where = os.pathsep.join(paths)
    if not current:
        raise KubeconfigError("the kubeconfig sets no current-context", path=where,
                              hint="pass --context or run `kubectl config use-context <name>`")
    if current not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise KubeconfigError(f"context '{current}' is not in the kubeconfig (contexts: {known})", path=where,
                              hint="pass --context with one of them")
    configuration = client.Configuration()
    try:
        api_client = config.new_client_from_config(config_file=where, context=current, persist_config=False,
                                                   client_configuration=configuration)
    except (config.ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
        raise KubeconfigError(f"cannot use context '{current}': {exc}", path=where,
                              hint="fix the file or point KUBECONFIG/--kubeconfig at a working one") from exc
    chosen = namespace or str(contexts[current].get("namespace") or "") or "default"
    return Connection(api_client=api_client, namespace=chosen, context=current)


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise KubeconfigError(f"cannot read the kubeconfig: {exc}", path=path,
                              hint="fix the file or point KUBECONFIG/--kubeconfig at a working one") from exc
    if not isinstance(data, dict):
        raise KubeconfigError("the kubeconfig is empty or not a mapping", path=path,
                              hint="set KUBECONFIG or pass --kubeconfig with a valid file")
    return data


def _in_cluster(namespace: str | None, env: Mapping[str, str], service_account_dir: Path) -> Connection:
    from kubernetes import client
    from kubernetes.config import incluster_config

    configuration = client.Configuration()
    loader = incluster_config.InClusterConfigLoader(
        token_filename=str(service_account_dir / "token"), cert_filename=str(service_account_dir / "ca.crt"),
        environ=env)
    try:
        loader.load_and_set(configuration)
    except incluster_config.ConfigException as exc:
        raise KubeconfigError(f"in-cluster configuration failed: {exc}", path=str(service_account_dir),
                              hint="mount a service account token, or set KUBECONFIG or pass --kubeconfig") from exc
    ns_file = service_account_dir / "namespace"
    chosen = namespace or (ns_file.read_text().strip() if ns_file.exists() else "") or "default"
    return Connection(api_client=client.ApiClient(configuration), namespace=chosen, context="in-cluster")
