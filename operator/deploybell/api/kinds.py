"""The kinds a run watches: one list, read by the informers, observation, RBAC and the bench."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class WatchedKind:
    group: str
    version: str
    kind: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        where = f"/namespaces/{namespace}" if namespace else ""
        return f"{base}{where}/{self.plural}"


# Watched (label-selected, only in namespaces where a run is in flight): their state comes from
# memory. Any other kind a run applies is read with a GET while it is not yet ready.
WATCHED_KINDS: Final[tuple[WatchedKind, ...]] = (
    WatchedKind("apps", "v1", "Deployment", "deployments"),
    WatchedKind("apps", "v1", "StatefulSet", "statefulsets"),
    WatchedKind("apps", "v1", "DaemonSet", "daemonsets"),
    WatchedKind("apps", "v1", "ReplicaSet", "replicasets"),
    WatchedKind("batch", "v1", "Job", "jobs"),
    WatchedKind("", "v1", "Pod", "pods"),
)
