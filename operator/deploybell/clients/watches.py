"""Watches opened only where runs are in flight: per namespace, reference-counted.

A run acquires the namespaces of the objects it applied and releases them when it ends; the
first run in a namespace starts one label-selected informer per watched kind there, the last
one to leave stops them. An idle operator has no workload or pod watches at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from deploybell.api.constants import LABEL_JOB, LABEL_JOB_NAMESPACE
from deploybell.api.kinds import WATCHED_KINDS, WatchedKind
from deploybell.clients.errors import ApiError
from deploybell.clients.informer import Informer, Trim
from deploybell.clients.kube import KubeClient

logger = logging.getLogger("deploybell.watches")

JobKey = tuple[str, str]
ObjectKey = tuple[str, str, str]  # kind, namespace, name
SELECTOR = f"{LABEL_JOB},{LABEL_JOB_NAMESPACE}"  # both labels present, filtered by the server
SYNC_TIMEOUT = 30.0


class RunWatches:
    """The watch cache of every run in flight: objects by the job that applied them."""

    def __init__(
        self,
        kube: KubeClient,
        trim: Trim,
        on_change: Callable[[JobKey], None],
        kinds: Iterable[WatchedKind] = WATCHED_KINDS,
        on_watching: Callable[[str, int], None] | None = None,
    ) -> None:
        self.kube = kube
        self.trim = trim
        self.on_change = on_change
        self.kinds = tuple(kinds)
        self.on_watching = on_watching or (lambda namespace, count: None)
        self._users: dict[str, int] = {}
        self._informers: dict[str, list[Informer]] = {}
        self._by_job: dict[JobKey, dict[ObjectKey, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    @property
    def namespaces(self) -> list[str]:
        """Namespaces watched now."""
        return sorted(self._informers)

    @property
    def relists(self) -> int:
        return sum(i.relists for group in self._informers.values() for i in group)

    def objects(self, job_namespace: str, job: str) -> Iterable[Mapping[str, Any]]:
        return list(self._by_job.get((job_namespace, job), {}).values())

    def problem(self, namespaces: Iterable[str]) -> ApiError | None:
        """Why the objects of these namespaces may be stale (a list or watch failing), or None."""
        for namespace in namespaces:
            for informer in self._informers.get(namespace, ()):
                if informer.problem is not None:
                    return informer.problem
        return None

    async def acquire(self, namespaces: Iterable[str]) -> None:
        """Watch these namespaces (once more each) and wait until their first lists are in (or
        failed: `problem` says why)."""
        started: list[Informer] = []
        async with self._lock:
            for namespace in set(namespaces):
                self._users[namespace] = self._users.get(namespace, 0) + 1
                if namespace not in self._informers:
                    group = [self._informer(kind, namespace) for kind in self.kinds]
                    self._informers[namespace] = group
                    for informer in group:
                        informer.start()
                    self.on_watching(namespace, len(group))
                    logger.info("watching namespace %s", namespace)
                started += self._informers[namespace]
        waits = [asyncio.ensure_future(i.settled.wait()) for i in started]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=SYNC_TIMEOUT)
            for task in pending:
                task.cancel()

    async def release(self, namespaces: Iterable[str]) -> None:
        async with self._lock:
            for namespace in set(namespaces):
                left = self._users.get(namespace, 0) - 1
                if left > 0:
                    self._users[namespace] = left
                    continue
                self._users.pop(namespace, None)
                for informer in self._informers.pop(namespace, []):
                    await informer.stop()
                    for obj in informer.objects():
                        self._forget(obj)
                self.on_watching(namespace, 0)
                logger.info("stopped watching namespace %s", namespace)

    async def close(self) -> None:
        async with self._lock:
            for namespace, group in self._informers.items():
                for informer in group:
                    await informer.stop()
                self.on_watching(namespace, 0)
            self._informers.clear()
            self._users.clear()
            self._by_job.clear()

    def _informer(self, kind: WatchedKind, namespace: str) -> Informer:
        return Informer(
            self.kube,
            kind.path(namespace),
            label_selector=SELECTOR,
            type_meta={"apiVersion": kind.api_version, "kind": kind.kind},
            trim=self.trim,
            on_change=self._changed,
        )

    def _changed(self, obj: Mapping[str, Any], gone: bool) -> None:
        job = _job_of(obj)
        if job is None:
            return
        if gone:
            self._forget(obj)
        else:
            self._by_job.setdefault(job, {})[_key_of(obj)] = dict(obj)
        self.on_change(job)

    def _forget(self, obj: Mapping[str, Any]) -> None:
        job = _job_of(obj)
        if job is None or job not in self._by_job:
            return
        self._by_job[job].pop(_key_of(obj), None)
        if not self._by_job[job]:
            del self._by_job[job]


def _job_of(obj: Mapping[str, Any]) -> JobKey | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if LABEL_JOB not in labels or LABEL_JOB_NAMESPACE not in labels:
        return None
    return str(labels[LABEL_JOB_NAMESPACE]), str(labels[LABEL_JOB])


def _key_of(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name"))
