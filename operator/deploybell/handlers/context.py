"""Operator-wide objects shared by all handlers, built once at startup.

The Notification cache lives in `notification_cache` (re-exported here); the wakers became the
engine (`deploy.engine`); the watch cache became the run watches (`clients.watches`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from deploybell.clients.kube import KubeClient
from deploybell.clients.targets import TargetPool
from deploybell.clients.watches import RunWatches
from deploybell.deploy.apply import Applier
from deploybell.deploy.engine import Engine
from deploybell.deploy.report import Presentation
from deploybell.handlers.notification_cache import JobKey, NotificationCache, secret_data
from deploybell.notify.dispatch import Dispatcher
from deploybell.settings import Settings


@dataclass
class Context:
    settings: Settings
    kube: KubeClient
    applier: Applier
    dispatcher: Dispatcher
    notifications: NotificationCache
    limiter: asyncio.Semaphore
    presentation: Presentation
    watches: RunWatches
    targets: TargetPool
    engine: Engine = field(init=False)

    @property
    def wakers(self) -> Engine:
        """Wakes the runs of a DeployJob, or of every DeployJob in a namespace."""
        return self.engine


__all__ = ["Context", "JobKey", "NotificationCache", "secret_data"]
