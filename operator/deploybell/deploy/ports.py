"""The cluster operations the deploy layer needs; `clients.kube.KubeClient` provides them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol


class ResourceLike(Protocol):
    @property
    def namespaced(self) -> bool: ...

    def path(self, namespace: str | None, name: str | None = None) -> str: ...


class ClusterAPI(Protocol):
    """A Kubernetes API client acting as one identity."""

    @property
    def user(self) -> str | None: ...

    def impersonating(self, user: str | None) -> ClusterAPI: ...
    def forget_kinds(self, api_version: str) -> None: ...
    async def resource(self, api_version: str, kind: str) -> ResourceLike: ...
    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]: ...
    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None: ...
    async def list(
        self, api_version: str, kind: str, namespace: str | None, field_selector: str = ""
    ) -> list[dict[str, Any]]: ...
    async def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> bool: ...


class WatchCache(Protocol):
    """Objects the operator's watches have seen, per DeployJob (namespace, name)."""

    def objects(self, job_namespace: str, job: str) -> Iterable[Mapping[str, Any]]: ...
