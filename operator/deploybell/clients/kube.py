"""The only code that talks to the Kubernetes API: one async client for every read and write.

Requests go through `clients.transport` (the API library: auth, TLS, one connection pool for
every identity) as JSON decoded with orjson; a small lazy discovery map makes applying any kind
cost one request. Impersonation is a header on the shared pool, not a client per identity.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import orjson

from deploybell.api.constants import FIELD_MANAGER
from deploybell.clients.errors import ApiError, Forbidden, NotFound, UnknownKind, error_for
from deploybell.clients.transport import APPLY_PATCH, Transport


@dataclass(frozen=True)
class ResourceInfo:
    """Where a kind lives in the API."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = "/api/v1" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


class Discovery:
    """apiVersion/kind → ResourceInfo, filled lazily one group-version at a time."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], ResourceInfo] = {}
        self._lock = asyncio.Lock()

    def forget(self, api_version: str) -> None:
        for key in [k for k in self._known if k[0] == api_version]:
            del self._known[key]

    async def lookup(self, kube: KubeClient, api_version: str, kind: str) -> ResourceInfo:
        key = (api_version, kind)
        if key in self._known:
            return self._known[key]
        async with self._lock:
            if key not in self._known:
                await self._load(kube, api_version)
        if key not in self._known:
            raise UnknownKind("NotFound", f'the server has no kind "{kind}" in {api_version}')
        return self._known[key]

    async def _load(self, kube: KubeClient, api_version: str) -> None:
        group, version = split_api_version(api_version)
        path = "/api/v1" if not group else f"/apis/{group}/{version}"
        try:
            doc = await kube.request("GET", path)
        except NotFound as e:
            raise UnknownKind("NotFound", f'the server serves no "{api_version}"') from e
        for res in doc.get("resources", []):
            if "/" in res["name"]:  # subresources such as deployments/status
                continue
            info = ResourceInfo(group, version, res["name"], res["kind"], bool(res["namespaced"]))
            self._known[(api_version, res["kind"])] = info


class KubeClient:
    """Acts as the operator, or (`impersonating`) as another user over the same connections."""

    def __init__(
        self,
        transport: Transport,
        discovery: Discovery | None = None,
        user: str | None = None,
        cluster: str = "",
    ) -> None:
        self.transport = transport
        self._discovery = discovery or Discovery()
        self.user = user
        self.cluster = cluster
        """A target cluster's API server ("" for the operator's own): its errors carry it."""
        self._headers = {"Impersonate-User": user} if user else {}

    @classmethod
    async def from_environment(cls) -> KubeClient:
        """In-cluster credentials in a pod, else $KUBECONFIG / ~/.kube/config."""
        return cls(await Transport.from_environment())

    def impersonating(self, user: str | None) -> KubeClient:
        """A client that acts as `user` (e.g. system:serviceaccount:ns:sa); None: as self."""
        if user == self.user:
            return self
        return KubeClient(self.transport, self._discovery, user, self.cluster)

    def forget_kinds(self, api_version: str) -> None:
        self._discovery.forget(api_version)

    async def close(self) -> None:
        await self.transport.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        try:
            status, raw, retry_after = await self.transport.request(
                method, path, query or {}, body, content_type, self._headers
            )
        except ApiError as e:
            e.cluster = self.cluster
            raise
        try:
            data = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            data = {"message": raw.decode(errors="replace")[:500]}
        if not 200 <= status <= 299:
            error = error_for(
                status,
                str(data.get("reason") or ""),
                str(data.get("message") or f"HTTP {status}"),
                retry_after,
            )
            error.cluster = self.cluster
            raise error
        return cast(dict[str, Any], data)

    async def watch(
        self, path: str, query: Mapping[str, str], idle_seconds: float
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request until the server ends it (`idle_seconds` of silence:
        a dead connection). An ERROR event becomes the error it carries (e.g. `Gone`)."""
        stream = self.transport.stream(path, {**query, "watch": "true"}, idle_seconds)
        try:
            async for line in stream:
                event = orjson.loads(line)
                if event.get("type") == "ERROR" or event.get("kind") == "Status":
                    status = event.get("object") or event
                    raise error_for(
                        int(status.get("code") or 500),
                        str(status.get("reason") or ""),
                        str(status.get("message") or "watch error"),
                    )
                yield event
        except ApiError as e:
            e.cluster = self.cluster
            raise

    async def resource(self, api_version: str, kind: str) -> ResourceInfo:
        return await self._discovery.lookup(self, api_version, kind)

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply with field manager `deploybell`, taking ownership on conflicts."""
        info = await self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        return await self.request(
            "PATCH",
            info.path(meta.get("namespace"), meta["name"]),
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=obj,
            content_type=APPLY_PATCH,
        )

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        info = await self.resource(api_version, kind)
        try:
            return await self.request("GET", info.path(namespace, name))
        except NotFound:
            return None

    async def list(
        self, api_version: str, kind: str, namespace: str | None, field_selector: str = ""
    ) -> list[dict[str, Any]]:
        info = await self.resource(api_version, kind)
        query = {"fieldSelector": field_selector} if field_selector else None
        return list(
            (await self.request("GET", info.path(namespace), query=query)).get("items") or []
        )

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete in the background (dependents by the garbage collector); False if absent."""
        info = await self.resource(api_version, kind)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            await self.request("DELETE", info.path(namespace, name), body=body)
        except NotFound:
            return False
        return True

    async def post_event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> bool:
        """A core/v1 Event about `involved`; False when its namespace is gone or being deleted
        (there is no one left to tell: the API refuses new objects there with 403)."""
        meta = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "deploybell"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=body)
        except NotFound:
            return False
        except Forbidden as e:
            if "being terminated" in e.message:
                return False
            raise
        return True

    async def merge_patch(
        self, path: str, patch: Mapping[str, Any], subresource: str = ""
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            f"{path}/{subresource}" if subresource else path,
            body=dict(patch),
            content_type="application/merge-patch+json",
        )

    async def json_patch(
        self, path: str, operations: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            path,
            body=[dict(o) for o in operations],
            content_type="application/json-patch+json",
        )

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body=dict(body))


__all__ = ["ApiError", "Discovery", "KubeClient", "ResourceInfo"]
