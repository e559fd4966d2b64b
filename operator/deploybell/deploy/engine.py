"""Work only for DeployJobs that have some: one task per job with a run in flight, messages to
deliver or a deletion to finish, started by the event that needs it and ended with the work;
one scheduler for every timer (maxWait, stability, retries).

An idle DeployJob costs nothing but kopf's copy of it. After a restart the first event of each
DeployJob (kopf lists them all) says from its status whether a run must be resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from deploybell.api.constants import FINALIZER
from deploybell.clients.errors import ApiError
from deploybell.deploy import memory
from deploybell.deploy import run as runs
from deploybell.deploy.live import LiveJob
from deploybell.deploy.run import Action, RunState
from deploybell.deploy.runner import JobRunner
from deploybell.notify.ledger import Delivery

logger = logging.getLogger("deploybell.engine")

JobKey = tuple[str, str]
TRANSIENT_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
STOP_GRACE_SECONDS = 10.0
# After the last task ends, before the burst's memory is released: idle keep-alive connections
# (aiohttp closes them after 15 s) go first, with their TLS buffers.
IDLE_SECONDS = 20.0
LET_GO_SECONDS = 5.0
"""How long a DeployJob that left this shard (relabelled) may finish the sends it had started."""


def handed_over(live: LiveJob) -> bool:
    """Its status says another operator was working on it: a run in flight or messages Pending
    (a DeployJob that appears like this mid-life was relabelled into this shard)."""
    if RunState.from_status(live.status).in_flight:
        return True
    entries = live.status.get("notifications") or []
    return any(e.get("state") == Delivery.PENDING.value for e in entries)


def has_work(live: LiveJob) -> bool:
    """Whether this DeployJob, as its status says, needs a task now (pure)."""
    if live.deleting:
        return FINALIZER in live.finalizers
    state = RunState.from_status(live.status)
    if runs.decide(state, live.desired, deleting=False) != Action.IDLE:
        return True
    entries = live.status.get("notifications") or []
    return any(e.get("state") == Delivery.PENDING.value for e in entries)


class Scheduler:
    """One timer for all jobs: `at(key, delay)` wakes that job then (a later call replaces it)."""

    def __init__(self, wake: Callable[[JobKey], None]) -> None:
        self.wake = wake
        self._due: dict[JobKey, float] = {}
        self._heap: list[tuple[float, int, JobKey]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def at(self, key: JobKey, delay: float | None) -> None:
        if delay is None:
            self._due.pop(key, None)
            return
        when = time.monotonic() + max(delay, 0.0)
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._order), key))
        if self._heap[0][2] == key:
            self._changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="deploybell timers")

    def __len__(self) -> int:
        return len(self._due)

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                when, _, key = heapq.heappop(self._heap)
                if self._due.get(key) == when:
                    del self._due[key]
                    self.wake(key)
            # Superseded entries stay in the heap until they come up; drop them when it grows.
            if len(self._heap) > 4 * len(self._due) + 64:
                self._heap = [(w, o, k) for w, o, k in self._heap if self._due.get(k) == w]
                heapq.heapify(self._heap)
            timeout = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class JobHooks(Protocol):
    """What the engine needs per DeployJob besides its runner."""

    def runner(
        self, live: LiveJob, wake: Callable[[], None], wrote: Callable[[int | None], None]
    ) -> JobRunner: ...
    async def hold(self, live: LiveJob) -> int | None: ...
    async def release(self, live: LiveJob) -> int | None: ...


class JobTask:
    """The task of one DeployJob that has work; it ends when the work does."""

    def __init__(
        self, engine: Engine, live: LiveJob, version: int | None = None, grace: float = 0.0
    ) -> None:
        self.engine = engine
        self.key: JobKey = (live.namespace, live.name)
        self.live = live
        self.version = version  # resourceVersion of `live`
        self.grace = grace  # wait this long before the first step (a handover)
        self.woken = asyncio.Event()
        self.last_written = 0  # resourceVersion of this task's last write (0: none)
        self.held = FINALIZER in live.finalizers
        self.gone = False
        self.by_sends_only = False  # woken only by finished sends since the last step
        self.back: Mapping[str, Any] | None = None  # came back while letting go: start anew
        self.task = asyncio.create_task(self._run(), name=f"deployjob {live.namespace}/{live.name}")

    def wake(self) -> None:
        self.woken.set()
        self.by_sends_only = False

    def wake_by_send(self) -> None:
        """A send finished: worth a look, and worth letting its siblings finish too."""
        if not self.woken.is_set():
            self.by_sends_only = True
        self.woken.set()

    def echo(self, live: LiveJob, body: Mapping[str, Any]) -> bool:
        """The event shows this task's own write (or an older version) and nothing else moved:
        the same generation, annotations, deletion and finalizers as the task already has."""
        version = resource_version(body)
        seen = self.live
        return (
            version is not None
            and version <= self.last_written
            and (live.desired, live.deleting, live.finalizers)
            == (seen.desired, seen.deleting, seen.finalizers)
        )

    def wrote(self, version: int | None) -> None:
        if version:
            self.last_written = max(self.last_written, version)

    async def _run(self) -> None:
        if self.grace:
            logger.info("%s/%s: taken over mid-run; acting in %.0fs", *self.key, self.grace)
            await asyncio.sleep(self.grace)  # the operator it left records its last sends
        runner = self.engine.hooks.runner(self.live, self.wake_by_send, self.wrote)
        failures = 0
        try:
            while not self.engine.stopping and not self.gone:
                settle, self.by_sends_only = self.by_sends_only, False
                self.woken.clear()
                live = self.live
                try:
                    if not live.deleting and not self.held:
                        self.wrote(await self.engine.hooks.hold(live))
                        self.held = True
                    delay = await runner.step(live, settle=settle)
                    failures = 0
                except ApiError as e:
                    delay = TRANSIENT_BACKOFF[min(failures, len(TRANSIENT_BACKOFF) - 1)]
                    failures += 1
                    logger.warning("%s/%s: API error (%s), again in %.0fs", *self.key, e, delay)
                    if live.deleting and failures > len(TRANSIENT_BACKOFF):
                        return
                    await self._sleep(delay)
                    continue
                except Exception as e:  # a bug must end the run with an answer, not loop or crash
                    logger.exception("%s/%s: unexpected error in the run", *self.key)
                    delay = await runner.internal_error(live, f"{type(e).__name__}: {e}")
                if live.deleting:
                    await runner.drain_notifications(self.engine.deletion_grace)
                    self.wrote(await self.engine.hooks.release(live))
                    return
                if runner.idle and delay is None and not self.woken.is_set():
                    return
                await self._sleep(delay)
        finally:
            if self.gone and not self.live.deleting and not self.engine.stopping:
                await self._let_go(runner)
            await runner.close()
            self.engine.ended(self)

    async def _let_go(self, runner: JobRunner) -> None:
        """It left this shard's watch (relabelled): record the sends in flight, then stop."""
        known = max(self.version or 0, self.last_written) or None
        try:
            await runner.let_go(LET_GO_SECONDS, known)
        except ApiError as e:  # 409: the new shard wrote first; its ledger stands
            logger.info("%s/%s: handed over; last sends not recorded (%s)", *self.key, e)
        else:
            logger.info("%s/%s: left this shard; handed over", *self.key)

    async def _sleep(self, delay: float | None) -> None:
        if self.woken.is_set():
            return
        self.engine.scheduler.at(self.key, delay)
        await self.woken.wait()


class Engine:
    """The DeployJobs with work, each with its task; fed by every DeployJob event."""

    def __init__(
        self,
        hooks: JobHooks,
        deletion_grace: float = 30.0,
        handoff_grace: float = 10.0,
        on_idle: Callable[[], None] = memory.release,
    ) -> None:
        self.hooks = hooks
        self.deletion_grace = deletion_grace
        self.handoff_grace = handoff_grace
        self.on_idle = on_idle
        self._idle_call: asyncio.TimerHandle | None = None
        self.tasks: dict[JobKey, JobTask] = {}
        self.scheduler = Scheduler(self.wake)
        self.stopping = False
        self.paused = False
        self._written: dict[JobKey, int] = {}  # ended tasks' last writes, until seen again

    def observe(self, body: Mapping[str, Any], gone: bool = False, added: bool = False) -> None:
        """A DeployJob as an event shows it. `gone`: deleted, or no longer this shard's (its
        label changed); `added`: it appeared after the first listing (created, or relabelled
        into this shard)."""
        live = LiveJob.from_body(body)
        key = (live.namespace, live.name)
        task = self.tasks.get(key)
        if task is not None:
            if gone:
                task.gone = True
                task.version = resource_version(body)  # as it left: a later write is not ours
            elif task.gone:
                task.back = body  # relabelled back before this task ended
            elif task.echo(live, body):
                task.live = live
                task.version = resource_version(body)
                return  # our own status write coming back: nothing the run needs to look at
            else:
                task.live = live
                task.version = resource_version(body)
            task.wake()
            return
        if gone or self.stopping or self.paused or self._stale(key, body):
            return
        if has_work(live):
            grace = self.handoff_grace if added and handed_over(live) else 0.0
            self.tasks[key] = JobTask(self, live, resource_version(body), grace)
            if self._idle_call is not None:
                self._idle_call.cancel()
                self._idle_call = None

    def _stale(self, key: JobKey, body: Mapping[str, Any]) -> bool:
        """Older than this operator's last write to it: an event queued before that write."""
        written = self._written.get(key)
        if written is None:
            return False
        version = resource_version(body)
        if version is None or version >= written:
            del self._written[key]
            return False
        return True

    def wake(self, key: JobKey) -> None:
        if task := self.tasks.get(key):
            task.wake()

    def wake_namespace(self, namespace: str) -> None:
        for (job_namespace, _), task in self.tasks.items():
            if job_namespace == namespace:
                task.wake()

    def ended(self, task: JobTask) -> None:
        if self.tasks.get(task.key) is task:
            del self.tasks[task.key]
        self.scheduler.at(task.key, None)
        if task.last_written:
            self._written[task.key] = task.last_written
        if task.back is not None:
            self._written.pop(task.key, None)  # its newest state came after our last write
            self.observe(task.back, added=True)
        if not self.tasks and not self.stopping and self._idle_call is None:
            loop = asyncio.get_running_loop()
            self._idle_call = loop.call_later(IDLE_SECONDS, self._idle)

    def _idle(self) -> None:
        """No run in flight for IDLE_SECONDS: the burst is over, its memory can go back."""
        self._idle_call = None
        if not self.tasks:
            self.on_idle()

    async def pause(self) -> None:
        """Another operator took over (peering): let go of every run; they resume from status."""
        self.paused = True
        await self._stop_tasks()

    def resume(self) -> None:
        self.paused = False

    async def stop(self) -> None:
        self.stopping = True
        if self._idle_call is not None:
            self._idle_call.cancel()
        await self._stop_tasks()
        await self.scheduler.close()

    async def _stop_tasks(self) -> None:
        """Each task finishes its step and stops; the runs resume from status later."""
        stopping, self.stopping = self.stopping, True
        running = [job.task for job in self.tasks.values()]
        for job in self.tasks.values():
            job.wake()
        if running:
            _, late = await asyncio.wait(running, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self.stopping = stopping
        self._written.clear()


def resource_version(body: Mapping[str, Any]) -> int | None:
    """metadata.resourceVersion as a number (etcd's revision), None if it is not one."""
    raw = (body.get("metadata") or {}).get("resourceVersion")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None
