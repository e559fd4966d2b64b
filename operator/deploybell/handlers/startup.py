"""Operator startup: kopf settings and the shared context."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from deploybell.api.constants import FINALIZER
from deploybell.clients.kube import KubeClient
from deploybell.deploy.apply import Applier
from deploybell.handlers.context import Context
from deploybell.notify.sink import LogSink
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
    kube = KubeClient.from_environment()
    memo["context"] = Context(
        settings=ours,
        kube=kube,
        applier=Applier(kube, ours.default_service_account),
        sink=LogSink(),
    )
