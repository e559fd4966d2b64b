"""The cluster operations the deploy layer needs; `clients.kube.KubeClient` provides them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from deploybell.clients.errors import ApiError
from deploybell.deploy import dora


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
    """Objects the operator's watches have seen, per DeployJob (namespace, name); namespaces are
    watched while some run holds them."""

    def objects(self, job_namespace: str, job: str) -> Iterable[Mapping[str, Any]]: ...
    def problem(self, namespaces: Iterable[str]) -> ApiError | None: ...
    async def acquire(self, namespaces: Iterable[str]) -> None: ...
    async def release(self, namespaces: Iterable[str]) -> None: ...


class JobPorts(Protocol):
    """What a runner needs from the outside world besides the cluster, for one DeployJob."""

    async def patch_status(self, status: Mapping[str, Any], only_at: int | None = None) -> None:
        """Merge `status`; with `only_at`, only if the object's resourceVersion is still that
        (else `Conflict`)."""
        ...

    async def record_event(self, warning: bool, reason: str, message: str) -> None: ...
    def run_finished(
        self, phase: str, seconds: float | None, observation: dora.Observation
    ) -> None: ...
