"""The only code that talks to the Kubernetes API outside kopf's own watches.

Built on the `kubernetes` client's transport (auth, TLS, retries) with a small lazy discovery
map, so applying any kind costs one request and no full DynamicClient discovery.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from deploybell.api.constants import FIELD_MANAGER
from deploybell.clients.errors import ApiError, UnknownKind

USER_AGENT = "deploybell/0.1.0"


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
            raise UnknownKind(404, "NotFound", f'the server has no kind "{kind}" in {api_version}')
        return self._known[key]

    async def _load(self, kube: KubeClient, api_version: str) -> None:
        group, version = split_api_version(api_version)
        path = "/api/v1" if not group else f"/apis/{group}/{version}"
        try:
            doc = await kube.request("GET", path)
        except ApiError as e:
            if e.status == 404:
                raise UnknownKind(404, "NotFound", f'the server serves no "{api_version}"') from e
            raise
        for res in doc.get("resources", []):
            if "/" in res["name"]:  # subresources such as deployments/status
                continue
            info = ResourceInfo(group, version, res["name"], res["kind"], bool(res["namespaced"]))
            self._known[(api_version, res["kind"])] = info


class KubeClient:
    """Async facade over the kubernetes client; one per identity (self or an impersonated SA)."""

    max_identities = 64
    """Impersonating clients kept (each with its own connection pool); the oldest goes first."""

    def __init__(
        self,
        api: k8s.ApiClient,
        discovery: Discovery,
        user: str | None = None,
        identities: dict[str, KubeClient] | None = None,
    ) -> None:
        self._api = api
        self._discovery = discovery
        self.user = user
        self._identities = {} if identities is None else identities

    @classmethod
    def from_environment(cls) -> KubeClient:
        configuration = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        configuration.connection_pool_maxsize = 32
        api = k8s.ApiClient(configuration)
        api.user_agent = USER_AGENT
        return cls(api, Discovery())

    def impersonating(self, user: str | None) -> KubeClient:
        """A client that acts as `user` (e.g. system:serviceaccount:ns:sa); None: as self.

        Kept per user, so that a job's requests reuse their TLS connections instead of opening
        new ones for every apply and every look at the rollout.
        """
        if user is None:
            return self
        client = self._identities.get(user)
        if client is None:
            if len(self._identities) >= self.max_identities:
                oldest = self._identities.pop(next(iter(self._identities)))
                oldest._api.rest_client.pool_manager.clear()  # idle sockets only; calls finish
            api = k8s.ApiClient(self._api.configuration, "Impersonate-User", user)
            api.user_agent = USER_AGENT
            client = KubeClient(api, self._discovery, user, self._identities)
            self._identities[user] = client
        return client

    def forget_kinds(self, api_version: str) -> None:
        self._discovery.forget(api_version)

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            request = self._api.param_serialize(
                method,
                path,
                query_params=list((query or {}).items()),
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(*request, _request_timeout=30)
            raw = response.read() or b"{}"  # type: ignore[no-untyped-call]
            try:
                data = json.loads(raw)
            except ValueError:
                data = {"message": raw.decode(errors="replace")[:500]}
            if not 200 <= response.status <= 299:
                raise ApiError(
                    int(response.status),
                    str(data.get("reason") or response.reason or ""),
                    str(data.get("message") or response.reason or ""),
                )
            return cast(dict[str, Any], data)

        return await asyncio.to_thread(call)

    async def resource(self, api_version: str, kind: str) -> ResourceInfo:
        return await self._discovery.lookup(self, api_version, kind)

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply with field manager `deploybell`, taking ownership on conflicts."""
        info = await self.resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        path = info.path(meta.get("namespace"), meta["name"])
        return await self.request(
            "PATCH",
            path,
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=json.dumps(obj),
            content_type="application/apply-patch+yaml",
        )

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        info = await self.resource(api_version, kind)
        try:
            return await self.request("GET", info.path(namespace, name))
        except ApiError as e:
            if e.status == 404:
                return None
            raise

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
        except ApiError as e:
            if e.status == 404:
                return False
            raise
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
        except ApiError as e:
            if e.status == 404 or (e.status == 403 and "being terminated" in e.message):
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
