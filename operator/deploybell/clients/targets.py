"""Clients of target clusters (a DeployJob's `spec.cluster`): one client and one set of run
watches per cluster and identity, shared by every DeployJob deploying there.

A target is opened by the first run that needs it and closed when the last one lets go, so an
operator whose runs are all finished holds no connection to any other cluster. A kubeconfig that
changes (a rotated Secret) has another fingerprint: the runs move to a new client at their next
step, and the old one closes when its last run has moved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from deploybell.api.kubeconfig import KubeConfig
from deploybell.clients.informer import Trim
from deploybell.clients.kube import KubeClient
from deploybell.clients.transport import Transport
from deploybell.clients.watches import JobKey, RunWatches

logger = logging.getLogger("deploybell.targets")


@dataclass
class TargetCluster:
    """An open client to one target cluster, as one identity, and its run watches."""

    key: str
    server: str
    kube: KubeClient
    watches: RunWatches
    users: int = 0


class TargetPool:
    """The target clusters open now, by kubeconfig fingerprint (server and credentials)."""

    def __init__(
        self,
        trim: Trim,
        on_change: Callable[[JobKey], None],
        on_open: Callable[[int], None] | None = None,
    ) -> None:
        self.trim = trim
        self.on_change = on_change
        self.on_open = on_open or (lambda count: None)
        self._open: dict[str, TargetCluster] = {}
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._open)

    @property
    def servers(self) -> list[str]:
        return sorted(t.server for t in self._open.values())

    async def acquire(self, config: KubeConfig) -> TargetCluster:
        """The shared client for this kubeconfig, opened if no run holds it yet; `ConfigError`
        when its certificates cannot be loaded."""
        async with self._lock:
            target = self._open.get(config.fingerprint)
            if target is None:
                kube = KubeClient(Transport.for_target(config), cluster=config.server)
                watches = RunWatches(kube, self.trim, self.on_change)
                target = TargetCluster(config.fingerprint, config.server, kube, watches)
                self._open[target.key] = target
                self.on_open(len(self._open))
                logger.info("opened a client to target cluster %s", config.server)
            target.users += 1
            return target

    async def release(self, target: TargetCluster) -> None:
        """One run less; the last one closes the watches and the connections."""
        async with self._lock:
            target.users -= 1
            if target.users > 0 or self._open.get(target.key) is not target:
                return
            del self._open[target.key]
            self.on_open(len(self._open))
        await target.watches.close()
        await target.kube.close()
        logger.info("closed the client to target cluster %s", target.server)

    async def close(self) -> None:
        async with self._lock:
            targets, self._open = list(self._open.values()), {}
        for target in targets:
            await target.watches.close()
            await target.kube.close()
        self.on_open(0)
