"""The bench's own watch on Deployments: when each appeared and when it was fully rolled out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from bench.cluster import Api, ApiError

Key = tuple[str, str]  # (namespace, name)


def rolled_out(deployment: Mapping[str, Any]) -> bool:
    """`kubectl rollout status`'s rule for a Deployment: the new pods all updated and available."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False
    for condition in status.get("conditions") or []:
        if (condition.get("type"), condition.get("reason")) == (
            "Progressing",
            "ProgressDeadlineExceeded",
        ):
            return False
    updated = int(status.get("updatedReplicas") or 0)
    if updated < int(spec.get("replicas", 1)):
        return False
    if int(status.get("replicas") or 0) > updated:
        return False
    return int(status.get("availableReplicas") or 0) >= updated


class DeploymentWatch:
    """One watch per namespace, each in a thread; timestamps are time.monotonic()."""

    def __init__(self, api: Api, namespaces: list[str]) -> None:
        self.api = api
        self.namespaces = namespaces
        self.on_added: Callable[[str, str], None] | None = None
        self._added: dict[Key, float] = {}
        self._ready: dict[Key, list[tuple[float, int]]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listed = threading.Barrier(len(namespaces) + 1)
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def start(self) -> None:
        for namespace in self.namespaces:
            thread = threading.Thread(
                target=self._run, args=(namespace,), name=f"watch {namespace}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._listed.wait(60)  # every namespace listed: later changes are seen as they happen

    def stop(self) -> None:
        self._stopping.set()
        self.api.close_watches()
        for thread in self._threads:
            thread.join(10)

    def _run(self, namespace: str) -> None:
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        first = True
        while not self._stopping.is_set():
            try:
                listing = self.api.request("GET", path)
                for item in listing.get("items") or []:
                    self._seen("ADDED", item, time.monotonic())
                if first:
                    first = False
                    self._listed.wait(60)
                version = str(listing["metadata"]["resourceVersion"])
                query = {"resourceVersion": version, "timeoutSeconds": "600"}
                for event in self.api.watch(path, query):
                    if event.get("type") == "ERROR":
                        break  # e.g. 410 Gone: list again
                    self._seen(str(event.get("type")), event["object"], time.monotonic())
            except (ApiError, OSError, ValueError) as e:
                if not self._stopping.is_set():
                    self.errors.append(f"{namespace}: {e}")
                    time.sleep(0.5)
            except Exception as e:  # urllib3's errors when the stream is shut down
                if not self._stopping.is_set():
                    self.errors.append(f"{namespace}: {type(e).__name__}: {e}")
                    time.sleep(0.5)

    def _seen(self, kind: str, obj: Mapping[str, Any], at: float) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if kind == "DELETED":
            return
        new = False
        with self._lock:
            if key not in self._added:
                self._added[key] = at
                new = True
            if rolled_out(obj):
                generation = int(meta.get("generation") or 0)
                history = self._ready.setdefault(key, [])
                if not history or history[-1][1] != generation:
                    history.append((at, generation))
        callback = self.on_added
        if new and callback is not None:
            callback(*key)

    def added(self, key: Key) -> float | None:
        with self._lock:
            return self._added.get(key)

    def ready_after(self, key: Key, since: float, min_generation: int = 1) -> float | None:
        """When the Deployment was first seen rolled out at `min_generation` or later, after
        `since`."""
        with self._lock:
            for at, generation in self._ready.get(key, []):
                if at >= since and generation >= min_generation:
                    return at
        return None
