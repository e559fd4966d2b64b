"""kopf glue for DeployJobs: one daemon per DeployJob drives its runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import kopf

from deploybell import metrics
from deploybell.api.constants import GROUP, VERSION
from deploybell.clients.errors import ApiError
from deploybell.deploy.observe import Observer
from deploybell.deploy.runner import JobRunner, LiveJob
from deploybell.handlers.context import Context, Waker
from deploybell.notify.outbox import Outbox

TRANSIENT_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


class KopfJobPorts:
    """JobPorts for one DeployJob, over the Kubernetes client and kopf's event poster."""

    def __init__(self, context: Context, body: kopf.Body) -> None:
        self.context = context
        self.body = body
        meta = body["metadata"]
        self.path = (
            f"/apis/{GROUP}/{VERSION}/namespaces/{meta['namespace']}/deployjobs/{meta['name']}"
        )

    async def patch_status(self, status: Mapping[str, Any]) -> None:
        await self.context.kube.merge_patch(self.path, {"status": dict(status)}, "status")

    async def record_event(self, warning: bool, reason: str, message: str) -> None:
        kopf.event(
            self.body, type="Warning" if warning else "Normal", reason=reason, message=message
        )

    def run_finished(self, phase: str, seconds: float | None) -> None:
        metrics.RUNS.labels(phase).inc()
        if seconds is not None:
            metrics.RUN_SECONDS.observe(seconds)


class _Never:
    """A stop flag that never fires: a deleted DeployJob's daemon finishes its cancel first."""

    async def wait(self) -> None:
        await asyncio.Event().wait()


def build_runner(context: Context, body: kopf.Body, waker: Waker) -> JobRunner:
    live = LiveJob.from_body(body)
    settings = context.settings
    outbox = Outbox(
        live.namespace,
        live.name,
        context.dispatcher,
        waker.wake,
        context.limiter,
        timedelta(seconds=settings.delivery_give_up_seconds),
    )
    return JobRunner(
        live,
        KopfJobPorts(context, body),
        context.applier,
        Observer(context.kube, context.watches, settings.default_service_account),
        outbox,
        presentation=context.presentation,
        failfast_grace=settings.failfast_grace_seconds,
        history_limit=settings.history_limit,
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
    context.notifications.index = notifications_index
    live = LiveJob.from_body(body)
    key = (live.namespace, live.name)
    waker = context.wakers.register(key)
    runner = build_runner(context, body, waker)
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
                logger.warning("API error (%s), retrying in %.0fs", e, delay)
                if live.deleting and failures > len(TRANSIENT_BACKOFF):
                    return
                await waker.sleep(delay, stopped if not live.deleting else _Never())
                continue
            except Exception as e:  # a bug must end the run with an answer, not loop or crash
                logger.exception("unexpected error in the DeployJob's run")
                delay = await runner.internal_error(live, f"{type(e).__name__}: {e}")
            if live.deleting:
                await runner.drain_notifications(context.settings.deletion_grace_seconds)
                return
            await waker.sleep(delay, stopped)
    finally:
        runner.outbox.close()
        await runner.observer.unfollow()
        context.wakers.unregister(key)


@kopf.on.event(GROUP, VERSION, "deployjobs", id="wake")  # type: ignore[arg-type]
async def wake_on_change(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """A coroutine, so that the run's asyncio.Event is set on the event loop's own thread."""
    context: Context = memo["context"]
    context.wakers.wake((namespace, name))
