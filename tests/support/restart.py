"""The messages of a run as the operator sends them, with and without a restart in between.

A real `JobRunner` drives a run through its transitions (start, apply, outcome) and sends each
event's message through the real outbox and dispatcher; the "restart" is a second, fresh runner
built only from the status the first one had written when the event was recorded (what a SIGKILL
or a SIGTERM leaves behind: the event's ledger row Pending), which then sends it. The cluster side
(apply, observe) and the status writes are in-test doubles: the message depends on neither.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deploybell.deploy.apply import ApplyResult
from deploybell.deploy.dora import Observation
from deploybell.deploy.live import LiveJob
from deploybell.deploy.manifests import ObjectRef
from deploybell.deploy.run import Action, Phase
from deploybell.deploy.runner import JobRunner
from deploybell.deploy.target import Place, Places
from deploybell.notify.dispatch import Dispatcher
from deploybell.notify.model import Message
from deploybell.notify.outbox import Outbox
from deploybell.notify.providers.base import Destination, Sent, Title

NAMESPACE, JOB = "team-a", "web"
SOURCE = {
    "repository": "https://github.com/acme/web",
    "revision": "4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
    "environment": "production",
    "committedAt": "2026-11-27T09:40:00Z",
    "url": "https://github.com/acme/web/pull/42",
}
# What the spec says after the run, in the "spec changed since" cases: the messages of the run
# must still say what the run deployed.
NEW_SOURCE = {
    "repository": "https://github.com/acme/other",
    "revision": "0000000000000000000000000000000000000abc",
    "environment": "staging",
}
HOOKS = {e: [{"notify": "hook"}] for e in ("onStart", "onSuccess", "onFailure", "onCancel")}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": JOB},
    "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "web:1.4.3"}]}}},
}


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies a status patch."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


@dataclass
class Ports:
    """The status as the API server would hold it after each patch (JSON round-trip)."""

    status: dict[str, Any] = field(default_factory=dict)

    async def patch_status(self, status: Mapping[str, Any], only_at: int | None = None) -> None:
        self.status = json.loads(json.dumps(merge(self.status, status)))

    async def record_event(self, warning: bool, reason: str, message: str) -> None:
        return None

    def run_finished(self, phase: str, seconds: float | None, observation: Observation) -> None:
        return None


class Cluster:
    """Applies by answering what a Deployment's apply answers; observes nothing."""

    async def apply(self, namespace: str, name: str, spec: Any, run: int) -> ApplyResult:
        ref = ObjectRef("apps/v1", "Deployment", namespace, JOB)
        return ApplyResult([ref], "sha256:0123456789abcdef", ["web:1.4.3"], {ref: 1})

    async def save_last_good(self, *args: Any) -> None:
        return None

    async def unfollow(self) -> None:
        return None


@dataclass
class Capture:
    """The webhook type's provider, keeping each message it is given, by idempotency key."""

    sent: dict[str, Message] = field(default_factory=dict)

    async def send(
        self, message: Message, destination: Destination, override: Title | None = None
    ) -> Sent:
        self.sent.setdefault(message.idempotency_key, message)
        return Sent(refs={"id": message.idempotency_key})

    async def close(self) -> None:
        return None


class Notifications:
    """One Notification, `hook`, of the webhook type."""

    def spec(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return {"type": "webhook", "secretRef": {"name": "hook"}} if name == "hook" else None

    async def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        return {"url": "https://hooks.example/deploys"}


def job(spec: Mapping[str, Any], status: Mapping[str, Any], generation: int) -> LiveJob:
    return LiveJob(NAMESPACE, JOB, "uid-1", generation, {}, spec, status, False)


def runner(live: LiveJob, ports: Ports, capture: Capture) -> JobRunner:
    cluster: Any = Cluster()
    places = Places(NAMESPACE, Place("", cluster, cluster))
    dispatcher = Dispatcher({"webhook": capture}, Notifications())
    outbox = Outbox(NAMESPACE, JOB, dispatcher, lambda: None, asyncio.Semaphore(4))
    return JobRunner(live, ports, places, outbox)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Pair:
    """One message as sent without a restart (`before`) and by a fresh process (`after`)."""

    case: str
    before: Message
    after: Message


async def sent_by(run: JobRunner, capture: Capture) -> dict[str, Message]:
    """Every message the runner sends until nothing is pending (an outcome waits for its start:
    one wake-up each)."""
    for _ in range(5):
        await run.sync_notifications()
        await run.outbox.drain(5.0)
        if not run.messages.pending(run.status):
            break
    await run.sync_notifications()
    assert not run.messages.pending(run.status), run.status.notifications
    return dict(capture.sent)


async def one_run(outcome: str, source: Mapping[str, Any] | None) -> list[Pair]:
    """A run to `outcome`; after each event, fresh processes send what was pending: with the
    spec as it was, and with the spec changed since (a new generation, another source)."""
    spec: dict[str, Any] = {"manifests": [DEPLOYMENT], **HOOKS}
    if source is not None:
        spec["source"] = dict(source)
    changed = {**spec, "source": NEW_SOURCE}
    ports, capture = Ports(), Capture()
    first = runner(job(spec, {}, 1), ports, capture)
    live = job(spec, {}, 1)
    await first.start(live)  # applied: the start event recorded, written, not yet sent
    snapshots = [ports.status]
    if outcome == "success":
        await first.conclude(live, Phase.SUCCEEDED, "RolloutComplete", "all 1 objects", "success")
    elif outcome == "failure":
        await first.fail("CrashLoopBackOff", "pod web-1 container app crashed", live)
    else:
        await first.cancel(job(spec, {}, 1), Action.CANCEL)
    snapshots.append(ports.status)
    uninterrupted = await sent_by(first, capture)
    await first.close()

    pairs = []
    for when, status in zip(("in flight", "finished"), snapshots, strict=True):
        for label, now, generation in (("same spec", spec, 1), ("spec changed", changed, 2)):
            fresh_capture = Capture()
            fresh = runner(job(now, status, generation), Ports(dict(status)), fresh_capture)
            resent = await sent_by(fresh, fresh_capture)
            await fresh.close()
            case = f"{outcome}, source={source is not None}, restarted {when}, {label}"
            pairs += [Pair(f"{case}: {key}", uninterrupted[key], m) for key, m in resent.items()]
    return pairs


async def restart_pairs() -> list[Pair]:
    """Every event, with and without spec.source, restarted at each point."""
    pairs: list[Pair] = []
    for outcome in ("success", "failure", "cancel"):
        for source in (SOURCE, None):
            pairs += await one_run(outcome, source)
    return pairs
