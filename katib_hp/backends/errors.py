"""Errors from the Kubernetes API server, turned into one-line messages that say what, where and the fix.

Exit codes (on the class, read by the CLI):

| code | class | when |
|---|---|---|
| 1 | ClusterError | anything else the API server refused (the server's own message is kept) |
| 2 | KubeconfigError | no usable kubeconfig or in-cluster credentials |
| 3 | ResumeRefused | Katib's restart rules forbid resuming this experiment |
| 4 | NotFound | the experiment, trial or pod does not exist |
| 5 | AlreadyExists | an object of that name exists already |
| 6 | AdmissionDenied | Katib's admission webhook denied the object (its text verbatim) |
| 7 | Forbidden | 401 or 403 from RBAC |
| 8 | KatibNotInstalled | the Katib CRDs are missing from the cluster |
| 9 | Unreachable | connection refused, DNS, TLS or timeouts |
| 10 | WatchTimeout | a watch ran past its timeout before the experiment finished |
"""

from __future__ import annotations

import json
from typing import Any

from katib_hp.errors import KatibHPError

#: HTTP statuses worth another try for idempotent reads (throttling and transient server trouble).
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class ClusterError(KatibHPError):
    """The Kubernetes API server refused a request, or could not be reached."""

    exit_code = 1


class KubeconfigError(ClusterError):
    """No kubeconfig (or in-cluster service account) could be loaded."""

    exit_code = 2


class ResumeRefused(ClusterError):
    """The experiment cannot be restarted under Katib's rules."""

    exit_code = 3


class NotFound(ClusterError):
    """The named object does not exist."""

    exit_code = 4


class AlreadyExists(ClusterError):
    """An object with that name already exists (HTTP 409)."""

    exit_code = 5


class AdmissionDenied(ClusterError):
    """An admission webhook (Katib's validator) denied the object; the message is the webhook's own."""

    exit_code = 6


class Forbidden(ClusterError):
    """RBAC refused the request (HTTP 401 or 403)."""

    exit_code = 7


class KatibNotInstalled(ClusterError):
    """The cluster does not serve the kubeflow.org/v1beta1 Katib resources."""

    exit_code = 8


class Unreachable(ClusterError):
    """The API server could not be reached (refused, DNS, TLS, timeout)."""

    exit_code = 9


class WatchTimeout(ClusterError):
    """The experiment did not finish within the watch timeout."""

    exit_code = 10


def status_of(exc: Any) -> dict[str, Any]:
    """The Kubernetes ``Status`` object in an ``ApiException``'s body, or ``{}`` when there is none."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not isinstance(body, str) or not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        return {"message": body.strip()}
    return data if isinstance(data, dict) else {}


def from_api_exception(exc: Any, *, verb: str, resource: str, namespace: str, name: str | None = None) -> ClusterError:
    """Map an ``ApiException`` to the matching ``ClusterError``.

    Args:
        exc: the ``kubernetes.client.exceptions.ApiException``.
        verb: the Kubernetes verb tried (``get``, ``list``, ``create``, ``patch``, ``delete``, ``watch``).
        resource: the resource with its group, e.g. ``experiments.kubeflow.org`` or ``pods``.
        namespace: the namespace of the request.
        name: the object's name, when the request named one.
    """
    status_code = int(getattr(exc, "status", 0) or 0)
    status = status_of(exc)
    message = str(status.get("message") or getattr(exc, "reason", "") or "no message").strip()
    details = status.get("details") or {}
    what = f"{resource.split('.')[0].rstrip('s')} '{name}'" if name else resource
    where = f"in namespace '{namespace}'"
    if "admission webhook" in message and "denied the request" in message:
        return AdmissionDenied(message, value=name)
    if "failed calling webhook" in message:
        return ClusterError(message, value=name, hint="Katib's webhook is not answering; check the katib-controller "
                            "pod (`kubectl get pods -n kubeflow -l katib.kubeflow.org/component=controller`)")
    if status_code == 404:
        if resource.endswith("kubeflow.org") and not details.get("name"):
            return KatibNotInstalled(
                f"the cluster does not serve {resource} (v1beta1): {message}",
                hint="install Katib (`kubectl apply -k \"github.com/kubeflow/katib.git/manifests/v1beta1/installs/"
                     "katib-standalone?ref=v0.19.0\"`) or switch to the right context")
        return NotFound(f"{what} not found {where}", value=name,
                        hint=f"list what exists with `kubectl get {resource} -n {namespace}`")
    if status_code == 409:
        return AlreadyExists(f"{what} already exists {where}", value=name)
    if status_code == 401:
        return Forbidden(f"the API server rejected the credentials to {verb} {resource} {where}: {message}",
                            hint="refresh the credentials of your kubeconfig context (`kubectl auth whoami`)")
    if status_code == 403:
        return Forbidden(f"not allowed to {verb} {resource} {where}: {message}",
                            hint=f"check with `kubectl auth can-i {verb} {resource} -n {namespace}` "
                                 "and ask for a Role that grants it")
    return ClusterError(f"cannot {verb} {what} {where}: HTTP {status_code or '?'} {message}", value=name)


def unreachable(exc: BaseException, *, host: str, verb: str, resource: str) -> Unreachable:
    """Map a urllib3 connection error to ``Unreachable``."""
    reason = getattr(exc, "reason", None) or exc
    return Unreachable(f"cannot reach the Kubernetes API server at {host} to {verb} {resource}: {reason}",
                       hint="check that the cluster is up and the kubeconfig context is right (`kubectl cluster-info`)")
