"""Operator-wide objects shared by all handlers, built once at startup."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deploybell.clients.kube import KubeClient
from deploybell.deploy.apply import Applier
from deploybell.deploy.report import Presentation
from deploybell.notify.dispatch import Dispatcher
from deploybell.settings import Settings

JobKey = tuple[str, str]


class Waker:
    """Wakes one DeployJob's daemon when something it watches changes."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def sleep(self, delay: float | None, stopped: Any) -> None:
        """Until woken, stopped, or `delay` seconds (None: no timer)."""
        if self._event.is_set():
            return
        waits = {asyncio.ensure_future(self._event.wait()), asyncio.ensure_future(stopped.wait())}
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()


@dataclass
class Wakers:
    by_job: dict[JobKey, Waker] = field(default_factory=dict)

    def register(self, key: JobKey) -> Waker:
        return self.by_job.setdefault(key, Waker())

    def unregister(self, key: JobKey) -> None:
        self.by_job.pop(key, None)

    def wake(self, key: JobKey) -> None:
        if waker := self.by_job.get(key):
            waker.wake()

    def wake_namespace(self, namespace: str) -> None:
        for (job_namespace, _), waker in self.by_job.items():
            if job_namespace == namespace:
                waker.wake()


class NotificationCache:
    """Notifications from kopf's index, Secrets read through the API (never cached)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.index: Mapping[JobKey, Iterable[Mapping[str, Any]]] = {}

    def spec(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        for spec in self.index.get((namespace, name), ()):
            return spec
        return None

    async def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        body = await self.kube.get("v1", "Secret", namespace, name)
        if body is None:
            return None
        data = {
            k: base64.b64decode(v).decode(errors="replace")
            for k, v in (body.get("data") or {}).items()
        }
        return {**data, **(body.get("stringData") or {})}


@dataclass
class Context:
    settings: Settings
    kube: KubeClient
    applier: Applier
    dispatcher: Dispatcher
    notifications: NotificationCache
    limiter: asyncio.Semaphore
    presentation: Presentation
    wakers: Wakers = field(default_factory=Wakers)


class IndexCache:
    """The watch cache over kopf's label-filtered indexes, keyed by (job namespace, job)."""

    def __init__(self, indexes: Iterable[Mapping[JobKey, Iterable[Mapping[str, Any]]]]) -> None:
        self.indexes = list(indexes)

    def objects(self, job_namespace: str, job: str) -> Iterable[Mapping[str, Any]]:
        key = (job_namespace, job)
        for index in self.indexes:
            yield from index.get(key, ())
