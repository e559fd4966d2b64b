"""The engine's decisions: which DeployJobs need a task, one timer for all, stale events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from deploybell.api.constants import ANNOTATION_CANCEL, ANNOTATION_REDEPLOY, FINALIZER
from deploybell.deploy import engine as engine_module
from deploybell.deploy import memory
from deploybell.deploy.engine import (
    LET_GO_SECONDS,
    Engine,
    Scheduler,
    handed_over,
    has_work,
    resource_version,
)
from deploybell.deploy.live import LiveJob


def body(
    *,
    generation: int = 1,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
    finalizers: tuple[str, ...] = (FINALIZER,),
    version: str = "100",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "namespace": "team-a",
        "name": "web",
        "uid": "u1",
        "generation": generation,
        "annotations": annotations or {},
        "finalizers": list(finalizers),
        "resourceVersion": version,
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-11-27T10:00:00Z"
    return {"metadata": meta, "spec": {}, "status": status or {}}


DONE = {"run": 1, "phase": "Succeeded", "trigger": {"generation": 1}}


@pytest.mark.parametrize(
    ("job", "work"),
    [
        pytest.param(body(), True, id="new: a first run"),
        pytest.param(body(status=DONE), False, id="done, unchanged: idle"),
        pytest.param(body(generation=2, status=DONE), True, id="new generation"),
        pytest.param(
            body(status=DONE, annotations={ANNOTATION_REDEPLOY: "x"}), True, id="redeploy"
        ),
        pytest.param(
            body(status=DONE, annotations={ANNOTATION_CANCEL: "x"}), False, id="cancel, idle"
        ),
        pytest.param(body(status={**DONE, "phase": "Deploying"}), True, id="in flight: resumed"),
        pytest.param(
            body(status={**DONE, "notifications": [{"state": "Pending"}]}),
            True,
            id="a message still to send",
        ),
        pytest.param(
            body(status={**DONE, "notifications": [{"state": "Failed"}, {"state": "Sent"}]}),
            False,
            id="messages all final",
        ),
        pytest.param(body(status=DONE, deleting=True), True, id="deleting, held"),
        pytest.param(
            body(status=DONE, deleting=True, finalizers=()), False, id="deleting, not held"
        ),
    ],
)
def test_has_work(job: dict[str, Any], work: bool) -> None:
    assert has_work(LiveJob.from_body(job)) is work


def test_resource_version_is_a_number_or_none() -> None:
    assert resource_version(body(version="123")) == 123
    assert resource_version(body(version="abc")) is None
    assert resource_version({"metadata": {}}) is None


async def test_one_scheduler_wakes_jobs_in_order_and_a_later_call_replaces() -> None:
    woken: list[tuple[tuple[str, str], float]] = []
    began = time.monotonic()
    done = asyncio.Event()

    def wake(key: tuple[str, str]) -> None:
        woken.append((key, time.monotonic() - began))
        if len(woken) == 2:
            done.set()

    scheduler = Scheduler(wake)
    scheduler.at(("ns", "b"), 0.2)
    scheduler.at(("ns", "a"), 0.1)
    scheduler.at(("ns", "c"), 0.05)
    scheduler.at(("ns", "c"), None)  # cancelled
    scheduler.at(("ns", "b"), 0.15)  # replaced: woken once, at the later call's time
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.2)  # nothing else may come (the replaced and cancelled timers)
    await scheduler.close()
    assert [key for key, _ in woken] == [("ns", "a"), ("ns", "b")]
    assert woken[0][1] >= 0.1
    assert len(scheduler) == 0


class NoHooks:
    """The engine must not start a task in these tests: any use is a failure."""

    def runner(self, *_: Any) -> Any:
        raise AssertionError("no task expected")

    async def hold(self, *_: Any) -> int | None:
        raise AssertionError("no task expected")

    async def release(self, *_: Any) -> int | None:
        raise AssertionError("no task expected")


async def test_idle_jobs_get_no_task_and_stale_events_are_ignored() -> None:
    engine = Engine(NoHooks())  # type: ignore[arg-type]
    engine.observe(body(status=DONE))
    assert engine.tasks == {}
    # A task that ended after writing version 200: an event queued before that write (100)
    # still shows the run in flight, and must not resume it.
    engine._written[("team-a", "web")] = 200
    engine.observe(body(status={**DONE, "phase": "Deploying"}, version="100"))
    assert engine.tasks == {}
    engine.observe(body(status=DONE, version="200"))  # its own write: from now on, current
    assert ("team-a", "web") not in engine._written
    engine.observe(body(status=DONE, version="300", deleting=True, finalizers=()), gone=True)
    assert engine.tasks == {}
    await engine.stop()


class FakeRunner:
    """Records what the engine asks of a job's runner: each step (whether it may settle, and
    when), let-go calls, closing; writes version 150 on its first step."""

    def __init__(self, wake_by_send: Any, wrote: Any) -> None:
        self.wake_by_send, self.wrote = wake_by_send, wrote
        self.steps: list[bool] = []
        self.times: list[float] = []
        self.let_go_calls: list[tuple[float, int | None]] = []
        self.stepped = asyncio.Event()
        self.closed = False
        self.idle = False

    async def step(self, live: LiveJob, settle: bool = False) -> float | None:
        if not self.steps:
            self.wrote(150)
        self.steps.append(settle)
        self.times.append(time.monotonic())
        self.stepped.set()
        return 60.0

    async def let_go(self, seconds: float, only_at: int | None) -> None:
        self.let_go_calls.append((seconds, only_at))

    async def close(self) -> None:
        self.closed = True


class FakeHooks:
    def __init__(self) -> None:
        self.runners: list[FakeRunner] = []
        self.made = asyncio.Event()

    def runner(self, live: LiveJob, wake: Any, wrote: Any) -> FakeRunner:
        self.runners.append(FakeRunner(wake, wrote))
        self.made.set()
        return self.runners[-1]

    async def hold(self, live: LiveJob) -> int | None:
        return 120

    async def release(self, live: LiveJob) -> int | None:
        return None


async def first_runner(hooks: FakeHooks) -> FakeRunner:
    await asyncio.wait_for(hooks.made.wait(), 5)
    return hooks.runners[0]


async def steps(runner: FakeRunner, woken: bool = True) -> list[bool]:
    """The steps so far, after the one a wake-up causes (`woken`), or after making sure that
    none came: a woken task steps on the loop's next turns, before any timer fires."""
    if woken:
        await asyncio.wait_for(runner.stepped.wait(), 5)
    await asyncio.sleep(0.05)
    runner.stepped.clear()
    return list(runner.steps)


async def test_the_echo_of_its_own_write_wakes_nothing_anything_else_does() -> None:
    hooks = FakeHooks()
    released: list[None] = []
    engine = Engine(hooks, on_idle=lambda: released.append(None))  # type: ignore[arg-type]
    engine.observe(body(status={**DONE, "phase": "Deploying"}, version="100"))
    runner = await first_runner(hooks)
    assert await steps(runner) == [False]

    engine.observe(body(status={**DONE, "phase": "Deploying", "x": 1}, version="150"))
    assert await steps(runner, woken=False) == [False], "its own write came back: no step"
    engine.observe(body(status=DONE, version="160", annotations={ANNOTATION_CANCEL: "now"}))
    assert await steps(runner) == [False, False], "a cancel is looked at"
    engine.observe(body(status=DONE, version="140", annotations={ANNOTATION_REDEPLOY: "r"}))
    assert await steps(runner) == [False, False, False], "older than its write, but it changed"

    runner.wake_by_send()
    assert await steps(runner) == [False, False, False, True], "woken by sends alone: settle"
    runner.wake_by_send()
    engine.wake(("team-a", "web"))
    assert (await steps(runner))[-1] is False, "not when anything else woke it too"
    assert released == [], "a run in flight: nothing released"
    await engine.stop()


async def test_memory_is_released_once_the_last_task_has_been_gone_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module, "IDLE_SECONDS", 0.05)
    hooks = FakeHooks()
    released = asyncio.Event()
    engine = Engine(hooks, on_idle=released.set)  # type: ignore[arg-type]
    engine.observe(body(status={**DONE, "phase": "Deploying"}))
    runner = await first_runner(hooks)
    await steps(runner)
    runner.idle = True
    engine.observe(body(status=DONE, version="300"), gone=True)
    await asyncio.wait_for(released.wait(), 5)
    assert engine.tasks == {}
    await engine.stop()


def test_release_runs_here() -> None:
    """Collecting and trimming works on this platform (glibc) and is harmless elsewhere."""
    memory.release()


# --- sharding: DeployJobs relabelled between shards ------------------------------------------

IN_FLIGHT = {**DONE, "phase": "Verifying"}


@pytest.mark.parametrize(
    ("status", "handed"),
    [
        pytest.param({}, False, id="new: nobody worked on it"),
        pytest.param(DONE, False, id="finished, all sent"),
        pytest.param(IN_FLIGHT, True, id="a run in flight"),
        pytest.param({**DONE, "notifications": [{"state": "Pending"}]}, True, id="messages due"),
    ],
)
def test_handed_over(status: dict[str, Any], handed: bool) -> None:
    assert handed_over(LiveJob.from_body(body(status=status))) is handed


async def test_a_job_relabelled_away_records_its_last_sends_only_if_nobody_wrote_since() -> None:
    hooks = FakeHooks()
    engine = Engine(hooks)  # type: ignore[arg-type]
    engine.observe(body(status=IN_FLIGHT, version="100"))  # first listing: no grace; writes 150
    task = engine.tasks[("team-a", "web")]
    assert task.grace == 0
    await asyncio.wait_for(_until(lambda: hooks.runners and hooks.runners[0].steps), 5)
    engine.observe(body(status=IN_FLIGHT, version="200"), gone=True)  # left the selector
    await asyncio.wait_for(task.task, 5)
    runner = hooks.runners[0]
    assert runner.let_go_calls == [(LET_GO_SECONDS, 200)]
    assert runner.closed
    assert engine.tasks == {}
    await engine.stop()


async def test_a_job_relabelled_here_mid_run_waits_before_acting() -> None:
    hooks = FakeHooks()
    engine = Engine(hooks, handoff_grace=0.3)  # type: ignore[arg-type]
    began = time.monotonic()
    engine.observe(body(status=IN_FLIGHT), added=True)
    task = engine.tasks[("team-a", "web")]
    assert task.grace == 0.3
    await asyncio.wait_for(_until(lambda: hooks.runners and hooks.runners[0].steps), 5)
    assert hooks.runners[0].times[0] - began >= 0.3
    await engine.stop()
    created = Engine(FakeHooks(), handoff_grace=0.3)  # type: ignore[arg-type]
    created.observe(body(), added=True)  # a new DeployJob: nothing to hand over
    assert created.tasks[("team-a", "web")].grace == 0
    await created.stop()


async def _until(probe: Any) -> None:
    while not probe():  # noqa: ASYNC110 (a fake's list, no event to wait on)
        await asyncio.sleep(0.01)
