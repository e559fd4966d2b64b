"""Operator startup: kopf settings and the shared context."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from deploybell import metrics
from deploybell.api.constants import GROUP
from deploybell.clients.kube import KubeClient
from deploybell.clients.targets import TargetPool
from deploybell.clients.watches import RunWatches
from deploybell.deploy.apply import Applier
from deploybell.deploy.engine import Engine
from deploybell.deploy.observe import trim
from deploybell.deploy.report import Presentation
from deploybell.handlers.context import Context, NotificationCache
from deploybell.handlers.deployjob import KopfHooks
from deploybell.notify import providers
from deploybell.notify.dispatch import Dispatcher
from deploybell.notify.providers.base import SmtpDefaults
from deploybell.settings import Settings

# kopf's own finalizer: never needed (deploybell holds its own, FINALIZER, only where it must),
# and a different name, so that kopf never removes deploybell's.
KOPF_FINALIZER = "deploybell.io/kopf"
PEERING_LOGGER = "kopf._core.engines.peering"
LIST_CHUNK_SIZE = 500
"""Objects per page of kopf's first listing. Unpaged, a restart with 10,000 DeployJobs parsed
one response of them all at once: that peak of small objects left Python's allocator with
arenas it cannot give back (each still holds a few long-lived objects), ~100 MiB of idle RSS."""


class NoDiffBase(kopf.DiffBaseStorage):
    """deploybell has no create/update/delete handlers, only event handlers and an index: kopf
    needs no "last handled" essence. Its default builds one on every event by deep-copying the
    whole object (a DeployJob's manifests and status included), the largest share of kopf's
    own work per event; this one builds nothing and keeps nothing."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours: Settings = memo.get("settings") or Settings.from_env()
    settings.persistence.finalizer = KOPF_FINALIZER
    # Progress of kopf's own handlers is kept in annotations, leaving status to deploybell.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="deploybell.io")
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.chunk_size = LIST_CHUNK_SIZE
    # Sharding: the API server sends this shard only its DeployJobs (a label selector on the list
    # and watch requests). kopf's `labels=` handler filters would match in memory, after every
    # DeployJob of the cluster was received and kept.
    settings.watching.label_selectors[GROUP, "deployjobs"] = ours.deployjob_selector
    settings.peering.lifetime = ours.peering_lifetime_seconds
    kube = await KubeClient.from_environment()
    cache = NotificationCache(kube)
    engine: Engine | None = None

    def wake(key: tuple[str, str]) -> None:
        if engine is not None:
            engine.wake(key)

    smtp = SmtpDefaults(
        host=ours.smtp_host,
        port=ours.smtp_port,
        sender=ours.smtp_from,
        tls=ours.smtp_tls,
        username=ours.smtp_username,
        password=ours.smtp_password,
    )
    context = Context(
        settings=ours,
        kube=kube,
        applier=Applier(kube, ours.default_service_account),
        dispatcher=Dispatcher(providers.build(), cache, smtp),
        notifications=cache,
        limiter=asyncio.Semaphore(ours.delivery_concurrency),
        presentation=Presentation(ours.cluster_name, ours.link_template),
        watches=RunWatches(kube, trim, wake, on_watching=metrics.watching),
        targets=TargetPool(trim, wake, on_open=metrics.TARGET_CLUSTERS.set),
    )
    engine = context.engine = Engine(
        KopfHooks(context), ours.deletion_grace_seconds, ours.handoff_grace_seconds
    )
    logging.getLogger(PEERING_LOGGER).addHandler(PeeringListener(engine))
    memo["context"] = context
    metrics.serve(ours.metrics_port)


class PeeringListener(logging.Handler):
    """kopf pauses its watches when a peer with a higher priority appears and says so only in
    its log; the engine then lets go of its runs too (they resume from status)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(logging.INFO)
        self.engine = engine
        self.tasks: set[asyncio.Task[None]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Pausing "):
            task = asyncio.get_running_loop().create_task(self.engine.pause())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif message.startswith("Resuming "):
            self.engine.resume()


@kopf.on.cleanup()
async def close_providers(memo: kopf.Memo, **_: Any) -> None:
    context: Context | None = memo.get("context")
    if context is not None:
        await context.engine.stop()
        for provider in context.dispatcher.providers.values():
            await provider.close()
        await context.watches.close()
        await context.targets.close()
        await context.kube.close()
