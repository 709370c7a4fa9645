"""A Kubernetes API server for tests: kmock's HTTP server with a small stateful store behind it.

kmock (``KubernetesScaffold``) provides the real HTTP server, request parsing and recording, Status errors and
reactions a test can inject (``api[kmock.method.POST, kmock.resource(...)] << kmock.KubernetesError(...)``),
which take priority over the store. The store adds what Katib's client needs and kmock's emulator lacks:
resourceVersions, label and field selectors, watches that resume from a resourceVersion (or answer 410 Gone
when it was compacted), server-side dry runs, JSON merge patches, pod logs, namespaces, missing CRDs, and a
watch that drops its connection mid-way.

The server runs on its own event loop in a background thread (the Kubernetes client is synchronous); tests
change the state from their own thread through the thread-safe methods ``put``, ``patch``, ``remove``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import kmock

Key = tuple[str, str, str]  # (resource path prefix, namespace, name)

_NAMESPACED = re.compile(r"/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
                         r"/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?")
_NAMESPACE = re.compile(r"/api/v1/namespaces/(?P<name>[^/]+)")
KINDS = {"experiments": "Experiment", "trials": "Trial", "suggestions": "Suggestion", "pods": "Pod",
         "events": "Event"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def matches(labels: dict[str, str], selector: str) -> bool:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, comma-separated."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def not_found(resource: str, name: str) -> kmock.KubernetesError:
    group = resource.split(".", 1)[1] if "." in resource else ""
    return kmock.KubernetesError(status=404, reason="NotFound", message=f'{resource} "{name}" not found',
                                 details={"name": name, "group": group, "kind": resource.split(".")[0]})


@attrs.define(kw_only=True)
class FakeKubeAPI(kmock.KubernetesScaffold):
    """The handler: everything under /api and /apis not caught by a test's own reaction lands in the store."""

    objects: dict[Key, dict[str, Any]] = attrs.field(factory=dict)
    namespaces: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    logs: dict[tuple[str, str, str], str] = attrs.field(factory=dict)  # (namespace, pod, container) -> text
    events: list[tuple[int, str, str, dict[str, Any]]] = attrs.field(factory=list)  # (rv, prefix, type, obj)
    resource_version: int = 1000
    compacted_below: int = 0  # a watch from an older resourceVersion gets 410 Gone
    missing_groups: set[str] = attrs.field(factory=set)  # API groups the cluster does not serve (no CRDs)
    watch_idle_close: float = 0.15  # end a watch stream after this long without events (real servers: minutes)
    drop_watch_after: int | None = None  # the next watch drops its connection after this many events
    linger_deletes: int = 0  # a deleted object stays visible (being finalized) for this many more GETs
    # kmock matches each request against its whole request history (so views like [:1] work), which grows
    # quadratically; ``direct`` serves from the store without reactions, for benchmarks with many requests.
    direct: bool = False
    _lingering: dict[Key, int] = attrs.field(factory=dict)
    _lock: threading.RLock = attrs.field(factory=threading.RLock)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback[re.compile(r"/api/.+|/apis/.+")] << self._serve

    async def _handle(self, request: kmock.Request) -> Any:
        if self.direct and request.url.path.startswith(("/api/", "/apis/")):
            return await kmock.Response(payload=await self._serve(request))(request)
        return await super()._handle(request)

    # -- state changes, callable from the test's thread ------------------------------------------------------

    def put(self, obj: dict[str, Any], prefix: str | None = None) -> dict[str, Any]:
        """Create or replace an object (ADDED or MODIFIED event); the prefix is guessed from its kind."""
        prefix = prefix or _prefix_for(obj)
        meta = obj.setdefault("metadata", {})
        key = (prefix, str(meta.get("namespace", "default")), str(meta["name"]))
        with self._lock:
            kind = "MODIFIED" if key in self.objects else "ADDED"
            meta.setdefault("namespace", key[1])
            meta.setdefault("uid", f"uid-{key[2]}")
            meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            return self._store(key, obj, kind)

    def patch(self, obj_or_key: dict[str, Any] | Key, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch a stored object (MODIFIED event)."""
        key = obj_or_key if isinstance(obj_or_key, tuple) else self.key_of(obj_or_key)
        with self._lock:
            return self._store(key, merge_patch(self.objects[key], changes), "MODIFIED")

    def remove(self, obj_or_key: dict[str, Any] | Key) -> None:
        """Delete a stored object (DELETED event)."""
        key = obj_or_key if isinstance(obj_or_key, tuple) else self.key_of(obj_or_key)
        with self._lock:
            obj = self.objects.pop(key)
            self._event(key[0], "DELETED", obj)

    def key_of(self, obj: dict[str, Any]) -> Key:
        meta = obj["metadata"]
        return (_prefix_for(obj), str(meta.get("namespace", "default")), str(meta["name"]))

    def get(self, prefix: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self.objects.get((prefix, namespace, name)))

    def request_count(self, predicate: Callable[[kmock.Request], bool] | None = None) -> int:
        """How many requests reached the server (optionally only those matching ``predicate``)."""
        return sum(1 for r in list(self._requests) if predicate is None or predicate(r))

    def _store(self, key: Key, obj: dict[str, Any], kind: str) -> dict[str, Any]:
        self.resource_version += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        self.objects[key] = obj
        self._event(key[0], kind, obj)
        return copy.deepcopy(obj)

    def _event(self, prefix: str, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.resource_version += 1
            obj = merge_patch(obj, {"metadata": {"resourceVersion": str(self.resource_version)}})
        self.events.append((self.resource_version, prefix, kind, copy.deepcopy(obj)))

    # -- HTTP ------------------------------------------------------------------------------------------------

    async def _serve(self, request: kmock.Request) -> Any:
        path = request.url.path
        group = path.split("/")[2] if path.startswith("/apis/") else ""
        if group in self.missing_groups:
            raise kmock.KubernetesError(status=404, reason="NotFound", details={},
                                        message="the server could not find the requested resource")
        if match := _NAMESPACE.fullmatch(path):
            return self._namespace(request, match["name"])
        match = _NAMESPACED.fullmatch(path)
        if match is None:
            raise kmock.KubernetesError(status=404, reason="NotFound", details={},
                                        message="the server could not find the requested resource")
        version = f"{match['group']}/{match['version']}" if match["group"] else "v1"
        prefix = f"{version}/{match['plural']}"
        resource = f"{match['plural']}.{match['group']}" if match["group"] else match["plural"]
        ns, name, sub = match["ns"], match["name"], match["sub"]
        params = request.params
        method = request.method.value
        if method == "GET" and str(params.get("watch", "")).lower() in ("true", "1"):
            return self._watch(request, prefix, ns, params)
        if method == "GET" and name and sub == "log":
            return self._log(ns, name, params)
        with self._lock:
            if method == "GET" and name:
                return self._fetch(prefix, resource, ns, name)
            if method == "GET":
                return self._list(prefix, ns, params)
            if method == "POST":
                return self._create(prefix, resource, ns, request.data or {}, params)
            if method == "PATCH" and name:
                key = (prefix, ns, name)
                if key not in self.objects:
                    raise not_found(resource, name)
                if params.get("dryRun") == "All":
                    return merge_patch(self.objects[key], request.data or {})
                return self._store(key, merge_patch(self.objects[key], request.data or {}), "MODIFIED")
            if method == "DELETE" and name:
                key = (prefix, ns, name)
                if key not in self.objects:
                    raise not_found(resource, name)
                if self.linger_deletes:
                    self._lingering[key] = self.linger_deletes
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    return self._store(key, merge_patch(self.objects[key],
                                                        {"metadata": {"deletionTimestamp": stamp}}), "MODIFIED")
                obj = self.objects.pop(key)
                self._event(prefix, "DELETED", obj)
                return {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name}}
        raise kmock.KubernetesError(status=405, reason="MethodNotAllowed", message=f"{method} {path}")

    def _fetch(self, prefix: str, resource: str, ns: str, name: str) -> dict[str, Any]:
        key = (prefix, ns, name)
        if key in self._lingering:
            self._lingering[key] -= 1
            if self._lingering[key] < 0:
                del self._lingering[key]
                self._event(prefix, "DELETED", self.objects.pop(key))
        if key not in self.objects:
            raise not_found(resource, name)
        return copy.deepcopy(self.objects[key])

    def _selected(self, prefix: str, ns: str, params: Any, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if meta.get("namespace") != ns:
            return False
        if not matches(dict(meta.get("labels") or {}), str(params.get("labelSelector") or "")):
            return False
        fields = str(params.get("fieldSelector") or "")
        return not fields.startswith("metadata.name=") or meta.get("name") == fields.split("=", 1)[1]

    def _list(self, prefix: str, ns: str, params: Any) -> dict[str, Any]:
        items = [copy.deepcopy(o) for (p, _, _), o in self.objects.items()
                 if p == prefix and self._selected(prefix, ns, params, o)]
        kind = KINDS.get(prefix.rsplit("/", 1)[1], "Object")
        return {"apiVersion": prefix.rsplit("/", 1)[0], "kind": f"{kind}List",
                "metadata": {"resourceVersion": str(self.resource_version)}, "items": items}

    def _create(self, prefix: str, resource: str, ns: str, body: dict[str, Any], params: Any) -> Any:
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{self.resource_version:05d}"
        name = str(meta.get("name", ""))
        meta["namespace"] = ns
        if (prefix, ns, name) in self.objects:
            raise kmock.KubernetesError(status=409, reason="AlreadyExists",
                                        message=f'{resource} "{name}" already exists',
                                        details={"name": name, "group": resource.partition(".")[2],
                                                 "kind": resource.split(".")[0]})
        meta.setdefault("uid", f"uid-{name}")
        meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if params.get("dryRun") == "All":
            return body
        return self._store((prefix, ns, name), body, "ADDED")

    async def _watch(self, request: kmock.Request, prefix: str, ns: str, params: Any) -> AsyncIterator[bytes]:
        since_text = str(params.get("resourceVersion") or "")
        since = int(since_text) if since_text.isdigit() else 0
        timeout = float(params.get("timeoutSeconds") or 60)
        drop_after, self.drop_watch_after = self.drop_watch_after, None
        yield b""  # send the headers now, as a real server does
        if since and since < self.compacted_below:
            gone = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410,
                    "message": f"too old resource version: {since} ({self.compacted_below})"}
            yield json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n"
            return
        with self._lock:
            if since:
                cursor = since
            else:  # no resourceVersion: the current state first, as ADDED events
                cursor = self.resource_version
                initial = [o for (p, _, _), o in self.objects.items() if p == prefix
                           and self._selected(prefix, ns, params, o)]
        sent = 0
        if not since:
            for obj in initial:
                yield json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n"
        started = idle_since = time.monotonic()
        while time.monotonic() - started < timeout and time.monotonic() - idle_since < self.watch_idle_close:
            with self._lock:
                fresh = [(rv, kind, obj) for rv, p, kind, obj in self.events
                         if rv > cursor and p == prefix and self._selected(prefix, ns, params, obj)]
                cursor = max([cursor, self.resource_version])
            for _, kind, obj in fresh:
                if drop_after is not None and sent >= drop_after:
                    assert request._raw_request is not None
                    transport = request._raw_request.transport
                    if transport is not None:
                        transport.abort()  # a dropped connection: no terminating chunk
                    return
                yield json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                sent += 1
            if fresh:
                idle_since = time.monotonic()
            await asyncio.sleep(0.01)

    def _log(self, ns: str, pod: str, params: Any) -> Any:
        with self._lock:
            found = self.objects.get(("v1/pods", ns, pod))
        if found is None:
            raise not_found("pods", pod)
        container = str(params.get("container") or "")
        names = [c["name"] for c in found.get("spec", {}).get("containers", [])]
        if container not in names:
            raise kmock.KubernetesError(status=400, reason="BadRequest",
                                        message=f"container {container} is not valid for pod {pod}")
        text = self.logs.get((ns, pod, container), "")
        tail = params.get("tailLines")
        if tail:
            text = "".join(text.splitlines(keepends=True)[-int(tail):])
        return kmock.Response(payload=text.encode(), headers={"Content-Type": "text/plain"})

    def _namespace(self, request: kmock.Request, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self.namespaces:
                raise not_found("namespaces", name)
            if request.method.value == "PATCH":
                self.namespaces[name] = merge_patch(self.namespaces[name], request.data or {})
            return copy.deepcopy(self.namespaces[name])


def _prefix_for(obj: dict[str, Any]) -> str:
    plural = {v: k for k, v in KINDS.items()}[obj["kind"]]
    return f"{obj.get('apiVersion', 'v1')}/{plural}"


class ServerThread:
    """Runs a ``FakeKubeAPI`` behind ``kmock.Server`` on an event loop in a daemon thread."""

    def __init__(self, api: FakeKubeAPI | None = None) -> None:
        self.api = api if api is not None else FakeKubeAPI()  # an empty handler is falsy (no requests yet)
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fake-apiserver", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake API server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self.api, kmock.Server(self.api) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()


def api_client(url: str) -> Any:
    """A ``kubernetes.client.ApiClient`` on its own ``Configuration`` pointed at ``url``."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = url
    return client.ApiClient(configuration)
