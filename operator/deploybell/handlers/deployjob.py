"""kopf glue for DeployJobs: one daemon per DeployJob drives its runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from deploybell.api.constants import GROUP, VERSION
from deploybell.clients.errors import ApiError
from deploybell.deploy.observe import Observer
from deploybell.deploy.runner import JobRunner, LiveJob
from deploybell.handlers.context import Context, IndexCache
from deploybell.handlers.watches import INDEX_IDS

TRANSIENT_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


class KopfJobPorts:
    """JobPorts for one DeployJob, over the Kubernetes client and kopf's event poster."""

    def __init__(
        self, context: Context, body: kopf.Body, notifications: kopf.Index[Any, Any]
    ) -> None:
        self.context = context
        self.body = body
        self.notifications = notifications
        meta = body["metadata"]
        self.namespace, self.name = meta["namespace"], meta["name"]

    async def patch_status(self, status: Mapping[str, Any]) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/deployjobs/{self.name}"
        await self.context.kube.merge_patch(path, {"status": dict(status)}, "status")

    async def record_event(self, warning: bool, reason: str, message: str) -> None:
        kopf.event(
            self.body, type="Warning" if warning else "Normal", reason=reason, message=message
        )

    def lookup(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        for spec in self.notifications.get((namespace, name), ()):
            return dict(spec)
        return None

    def report(self, warning: bool, reason: str, message: str) -> None:
        kopf.event(
            self.body, type="Warning" if warning else "Normal", reason=reason, message=message
        )

    async def deliver(self, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return await self.context.sink.deliver(
            self.namespace, self.name, entries, self.lookup, self.report
        )


@kopf.daemon(GROUP, VERSION, "deployjobs", id="runs", cancellation_polling=0.5)  # type: ignore[arg-type]
async def drive_runs(
    stopped: kopf.DaemonStopped,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: logging.Logger,
    notifications_index: kopf.Index[Any, Any],
    **kwargs: Any,
) -> None:
    context: Context = memo["context"]
    live = LiveJob.from_body(body)
    key = (live.namespace, live.name)
    cache = IndexCache(kwargs[index_id] for index_id in INDEX_IDS)
    settings = context.settings
    runner = JobRunner(
        live,
        KopfJobPorts(context, body, notifications_index),
        context.applier,
        Observer(context.kube, cache, settings.default_service_account),
        failfast_grace=settings.failfast_grace_seconds,
        history_limit=settings.history_limit,
    )
    waker = context.wakers.register(key)
    failures = 0
    try:
        while True:
            waker.clear()
            live = LiveJob.from_body(body)
            if stopped and not live.deleting:
                return  # the operator is stopping: the run resumes from status on restart
            try:
                delay = await runner.step(live)
                failures = 0
            except ApiError as e:
                delay = TRANSIENT_BACKOFF[min(failures, len(TRANSIENT_BACKOFF) - 1)]
                failures += 1
                logger.warning(
                    "API error (%s %s), retrying in %.0fs: %s", e.status, e.reason, delay, e.message
                )
                if live.deleting and failures > len(TRANSIENT_BACKOFF):
                    return
                await waker.sleep(delay, stopped if not live.deleting else _Never())
                continue
            if live.deleting:
                return
            await waker.sleep(delay, stopped)
    finally:
        context.wakers.unregister(key)


class _Never:
    """A stop flag that never fires: a deleted DeployJob's daemon finishes its cancel first."""

    async def wait(self) -> None:
        import asyncio

        await asyncio.Event().wait()


@kopf.on.event(GROUP, VERSION, "deployjobs", id="wake")  # type: ignore[arg-type]
def wake_on_change(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    context: Context = memo["context"]
    context.wakers.wake((namespace, name))
