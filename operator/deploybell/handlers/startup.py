"""Operator startup: kopf settings and the shared context."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from deploybell import metrics
from deploybell.api.constants import FINALIZER
from deploybell.clients.kube import KubeClient
from deploybell.clients.watches import RunWatches
from deploybell.deploy.apply import Applier
from deploybell.deploy.observe import trim
from deploybell.deploy.report import Presentation
from deploybell.handlers.context import Context, NotificationCache, Wakers
from deploybell.notify import providers
from deploybell.notify.dispatch import Dispatcher
from deploybell.notify.providers.base import SmtpDefaults
from deploybell.settings import Settings


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours: Settings = memo.get("settings") or Settings.from_env()
    settings.persistence.finalizer = FINALIZER
    # Progress of kopf's own handlers is kept in annotations, leaving status to deploybell.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="deploybell.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="deploybell.io", key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    kube = await KubeClient.from_environment()
    cache = NotificationCache(kube)
    wakers = Wakers()
    smtp = SmtpDefaults(
        host=ours.smtp_host,
        port=ours.smtp_port,
        sender=ours.smtp_from,
        tls=ours.smtp_tls,
        username=ours.smtp_username,
        password=ours.smtp_password,
    )
    memo["context"] = Context(
        settings=ours,
        kube=kube,
        applier=Applier(kube, ours.default_service_account),
        dispatcher=Dispatcher(providers.build(), cache, smtp),
        notifications=cache,
        limiter=asyncio.Semaphore(ours.delivery_concurrency),
        presentation=Presentation(ours.cluster_name, ours.link_template),
        watches=RunWatches(kube, trim, wakers.wake),
        wakers=wakers,
    )
    metrics.serve(ours.metrics_port)


@kopf.on.cleanup()
async def close_providers(memo: kopf.Memo, **_: Any) -> None:
    context: Context | None = memo.get("context")
    if context is not None:
        for provider in context.dispatcher.providers.values():
            await provider.close()
        await context.watches.close()
        await context.kube.close()
