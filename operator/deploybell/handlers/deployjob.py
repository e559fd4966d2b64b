"""kopf glue for DeployJobs: every event goes to the engine, which works only where work is."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import kopf

from deploybell import metrics
from deploybell.api.constants import FINALIZER, GROUP, VERSION
from deploybell.clients.errors import Conflict, Invalid, NotFound
from deploybell.clients.kube import KubeClient
from deploybell.deploy import dora
from deploybell.deploy.engine import resource_version
from deploybell.deploy.live import LiveJob
from deploybell.deploy.observe import Observer
from deploybell.deploy.runner import JobRunner
from deploybell.deploy.target import Place, Places
from deploybell.handlers.context import Context
from deploybell.notify.outbox import Outbox


def job_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/deployjobs/{name}"


class JobPorts:
    """JobPorts for one DeployJob: its status and Events, through the operator's client."""

    def __init__(self, kube: KubeClient, live: LiveJob, wrote: Callable[[int | None], None]):
        self.kube = kube
        self.wrote = wrote
        self.path = job_path(live.namespace, live.name)
        self.involved = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DeployJob",
            "metadata": {"name": live.name, "namespace": live.namespace, "uid": live.uid},
        }

    async def patch_status(self, status: Mapping[str, Any], only_at: int | None = None) -> None:
        patch: dict[str, Any] = {"status": dict(status)}
        if only_at is not None:  # optimistic concurrency: 409 Conflict if anyone wrote since
            patch["metadata"] = {"resourceVersion": str(only_at)}
        body = await self.kube.merge_patch(self.path, patch, "status")
        self.wrote(resource_version(body))

    async def record_event(self, warning: bool, reason: str, message: str) -> None:
        type_ = "Warning" if warning else "Normal"
        await self.kube.post_event(self.involved, type_, reason, message)

    def run_finished(
        self, phase: str, seconds: float | None, observation: dora.Observation
    ) -> None:
        metrics.RUNS.labels(phase).inc()
        if seconds is not None:
            metrics.RUN_SECONDS.observe(seconds)
        metrics.observe(observation)


class KopfHooks:
    """What the engine needs per DeployJob: its runner, and the finalizer held while it exists."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def runner(
        self, live: LiveJob, wake: Callable[[], None], wrote: Callable[[int | None], None]
    ) -> JobRunner:
        context, settings = self.context, self.context.settings
        outbox = Outbox(
            live.namespace,
            live.name,
            context.dispatcher,
            wake,
            context.limiter,
            timedelta(seconds=settings.delivery_give_up_seconds),
        )
        default_sa = settings.default_service_account
        home = Place("", context.applier, Observer(context.kube, context.watches, default_sa))
        places = Places(live.namespace, home, context.notifications, context.targets, default_sa)
        return JobRunner(
            live,
            JobPorts(context.kube, live, wrote),
            places,
            outbox,
            presentation=context.presentation,
            failfast_grace=settings.failfast_grace_seconds,
            history_limit=settings.history_limit,
        )

    async def hold(self, live: LiveJob) -> int | None:
        """Add the finalizer (once in a DeployJob's life): a deletion waits for its cancel."""
        patch = {"metadata": {"finalizers": [*live.finalizers, FINALIZER]}}
        body = await self.context.kube.merge_patch(job_path(live.namespace, live.name), patch)
        return resource_version(body)

    async def release(self, live: LiveJob) -> int | None:
        """Remove the finalizer, whatever else changed meanwhile; None if the job is gone."""
        path = job_path(live.namespace, live.name)
        for _ in range(5):
            fresh = await self.context.kube.get(f"{GROUP}/{VERSION}", "DeployJob", *live.key)
            finalizers = list(((fresh or {}).get("metadata") or {}).get("finalizers") or [])
            if FINALIZER not in finalizers:
                return None
            at = finalizers.index(FINALIZER)
            ops = [
                {"op": "test", "path": f"/metadata/finalizers/{at}", "value": FINALIZER},
                {"op": "remove", "path": f"/metadata/finalizers/{at}"},
            ]
            try:
                return resource_version(await self.context.kube.json_patch(path, ops))
            except (Conflict, Invalid):
                continue  # the list moved under us: read it again
            except NotFound:
                return None
        return None


@kopf.on.event(GROUP, VERSION, "deployjobs", id="runs")
async def on_deployjob(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A coroutine, so that runs are woken on the event loop's own thread."""
    context: Context = memo["context"]
    if type == "DELETED":
        metrics.JOBS.gone(body["metadata"]["namespace"], body["metadata"]["name"])
    else:
        metrics.JOBS.seen(body)  # the DORA counters are read from here at scrape time
    # A label selector filters the watch (sharding): a DeployJob relabelled away comes as
    # DELETED, one relabelled here as ADDED (kopf's first listing has type None).
    context.engine.observe(body, gone=type == "DELETED", added=type == "ADDED")
