"""The outbox with the real Dispatcher: expansion, ordering, retries, masking, reports.

The provider and the Notification source are small in-test doubles: no real peer can stand in
for "a provider that raises exactly this", and the source is the watch cache's Protocol.
"""

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploybell.clients.errors import Forbidden
from deploybell.notify import ledger
from deploybell.notify.dispatch import Dispatcher
from deploybell.notify.ledger import recipient_key as K
from deploybell.notify.model import Message, sample
from deploybell.notify.outbox import MISSING_RECHECK_SECONDS, Outbox, Report
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    Sent,
    TemporaryDeliveryError,
    Title,
)

NAMESPACE = "team-a"
URL = "https://hooks.example/T0/secret-token"
HOOK = {"type": "webhook", "secretRef": {"name": "hook"}}
SLACK = {"type": "slack", "recipients": ["#deploys", "@alice"], "secretRef": {"name": "slack"}}
SECRETS = {"hook": {"url": URL}, "slack": {"token": "xoxb-0000-secret"}}
HANG = "hang"
DRAIN_SECONDS = 5.0


@dataclass
class Call:
    message: Message
    destination: Destination
    override: Title | None


@dataclass
class ScriptedProvider:
    """Records every send; answers with the next scripted behaviour, else a Sent with refs."""

    script: list[BaseException | str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    async def send(
        self, message: Message, destination: Destination, override: Title | None = None
    ) -> Sent:
        self.calls.append(Call(message, destination, override))
        behaviour = self.script.pop(0) if self.script else None
        if behaviour == HANG:
            await asyncio.Event().wait()
        if isinstance(behaviour, BaseException):
            raise behaviour
        number = len(self.calls)
        return Sent(refs={"id": f"msg-{number}", "to": destination.recipient}, detail="ok")

    async def close(self) -> None:
        return None


@dataclass
class Source:
    """Notifications and Secrets of NAMESPACE, by name."""

    specs: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    secrets: dict[str, Mapping[str, str]] = field(default_factory=dict)
    secret_error: Exception | None = None

    def spec(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.specs.get(name) if namespace == NAMESPACE else None

    async def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        if self.secret_error is not None:
            raise self.secret_error
        return self.secrets.get(name) if namespace == NAMESPACE else None


@dataclass
class Rig:
    outbox: Outbox
    provider: ScriptedProvider
    source: Source
    wakes: list[None]

    def pump(self, entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Report]]:
        return self.outbox.pump(entries, message_for)

    async def cycle(
        self, entries: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[Report]]:
        """Start what is due, wait for it, record it: one runner wake-up after a send."""
        entries, reports = self.pump(entries)
        await self.outbox.drain(DRAIN_SECONDS)
        assert not [s for s in self.outbox.tasks.values() if not s.task.done()], "still sending"
        entries, more = self.pump(entries)
        return entries, reports + more


def message_for(entry: Mapping[str, Any]) -> Message:
    base = sample(str(entry["event"]))
    return replace(base, run=int(entry["run"]), idempotency_key=f"team-a/web/{entry['id']}")


def make_rig(
    specs: dict[str, Mapping[str, Any]] | None = None,
    secrets: dict[str, Mapping[str, str]] | None = None,
    script: list[BaseException | str] | None = None,
    send_timeout: float = 60.0,
) -> Rig:
    provider = ScriptedProvider(script=list(script or []))
    source = Source(
        dict({"hook": HOOK, "slack": SLACK} if specs is None else specs),
        dict(SECRETS if secrets is None else secrets),
    )
    dispatcher = Dispatcher(
        {"webhook": provider, "slack": provider}, source, send_timeout=send_timeout
    )
    wakes: list[None] = []
    outbox = Outbox(NAMESPACE, "web", dispatcher, lambda: wakes.append(None), asyncio.Semaphore(4))
    return Rig(outbox, provider, source, wakes)


def now_stamp(delta: timedelta = timedelta()) -> str:
    return ledger.stamp(datetime.now(UTC) + delta)


def queue(*events: str, name: str = "hook", run: int = 3) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for event in events:
        entries = ledger.add_event(entries, run, event, [name], now_stamp())
    return entries


def by_id(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in entries}


def retry_now(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """As if the scheduled retry time had come."""
    past = now_stamp(-timedelta(seconds=1))
    return [{**e, "nextAttemptAt": past} if "nextAttemptAt" in e else e for e in entries]


# --- expansion and delivery -------------------------------------------------------------------


async def test_one_send_per_recipient() -> None:
    rig = make_rig()
    entries, reports = rig.pump(queue("start", name="slack"))
    [row] = entries
    assert row["id"] == "3/start/slack"
    assert (row["recipients"], row["pending"]) == (2, [K("#deploys"), K("@alice")])
    assert set(rig.outbox.tasks) == {"3/start/slack/#deploys", "3/start/slack/@alice"}
    assert reports == []

    await rig.outbox.drain(DRAIN_SECONDS)
    entries, reports = rig.pump(entries)
    assert reports == []
    assert sorted(c.destination.recipient for c in rig.provider.calls) == ["#deploys", "@alice"]
    assert sorted(c.message.idempotency_key for c in rig.provider.calls) == [
        "team-a/web/3/start/slack/#deploys",
        "team-a/web/3/start/slack/@alice",
    ]
    assert all(c.destination.secret == SECRETS["slack"] for c in rig.provider.calls)
    assert all(c.destination.options == {"threads": True} for c in rig.provider.calls)
    [row] = entries
    assert (row["state"], row["attempts"], row["sent"], row["failed"]) == ("Sent", 1, 2, 0)
    assert "pending" not in row
    outcome = {**row, "event": "success"}
    assert {
        recipient: ledger.start_refs(entries, outcome, K(recipient))["to"]
        for recipient in ("#deploys", "@alice")
    } == {"#deploys": "#deploys", "@alice": "@alice"}, (
        "a Slack start keeps what its outcome edits, per recipient"
    )
    assert len(rig.wakes) == 2

    again, reports = await rig.cycle(entries)
    assert again == entries
    assert reports == []
    assert len(rig.provider.calls) == 2, "a Sent entry is never sent again"


def test_expand_known_sends_nothing_and_leaves_unknown_notifications() -> None:
    """Expansion at record time: per-recipient entries for known Notifications, nothing started;
    an unknown one stays whole for pump to explain (and expand once it appears)."""
    rig = make_rig()
    entries = queue("start", name="slack") + queue("start", name="absent")
    expanded_now = rig.outbox.expand_known(entries)
    assert [(e["id"], e.get("pending")) for e in expanded_now] == [
        ("3/start/slack", [K("#deploys"), K("@alice")]),
        ("3/start/absent", None),
    ]
    assert "recipients" not in expanded_now[1]
    assert rig.outbox.tasks == {}
    assert rig.provider.calls == []
    assert rig.outbox.expand_known(expanded_now) == expanded_now, "expanding twice changes nothing"


async def test_webhook_entry_keeps_its_id() -> None:
    rig = make_rig()
    entries, _ = await rig.cycle(queue("start"))
    assert [(e["id"], e["recipients"], e["sent"], e["state"]) for e in entries] == [
        ("3/start/hook", 1, 1, "Sent")
    ]
    assert "refs" not in entries[0], "a webhook's outcome edits nothing: no references kept"
    [call] = rig.provider.calls
    assert call.destination.type == "webhook"
    assert call.destination.secret == {"url": URL}
    assert call.message.idempotency_key == "team-a/web/3/start/hook"
    assert call.override is None


async def test_start_is_sent_before_success() -> None:
    rig = make_rig(script=[TemporaryDeliveryError("slack: 503")])
    entries, _ = rig.pump(queue("start", "success", name="slack"))
    assert set(rig.outbox.tasks) == {"3/start/slack/#deploys", "3/start/slack/@alice"}, (
        "success waits while start is Pending"
    )
    await rig.outbox.drain(DRAIN_SECONDS)
    entries, _ = rig.pump(entries)
    start = by_id(entries)["3/start/slack"]
    assert (start["state"], start["pending"], start["sent"]) == ("Pending", [K("#deploys")], 1)
    assert set(rig.outbox.tasks) == {"3/success/slack/@alice"}, (
        "per recipient: @alice's success goes, #deploys' waits for its start's retry"
    )
    entries, _ = await rig.cycle(entries)
    entries, _ = await rig.cycle(retry_now(entries))
    entries, _ = await rig.cycle(entries)
    calls = [(c.message.event, c.destination.recipient) for c in rig.provider.calls]
    assert calls.index(("start", "#deploys"), 1) < calls.index(("success", "#deploys"))
    assert calls.index(("start", "@alice")) < calls.index(("success", "@alice"))
    previous = {
        c.destination.recipient: c.destination.previous
        for c in rig.provider.calls
        if c.message.event == "success"
    }
    assert previous == {
        "#deploys": {"id": "msg-4", "to": "#deploys"},
        "@alice": {"id": "msg-2", "to": "@alice"},
    }, "each outcome edits its own recipient's start message"
    assert [e["state"] for e in entries] == ["Sent", "Sent"]
    assert "refs" not in by_id(entries)["3/success/slack"], "only a start's references are kept"


async def test_success_goes_after_a_failed_start_without_previous_refs() -> None:
    rig = make_rig(script=[PermanentDeliveryError("webhook: 410 Gone")])
    entries, _ = await rig.cycle(queue("start", "failure"))
    assert by_id(entries)["3/start/hook"]["state"] == "Failed"
    entries, _ = await rig.cycle(entries)
    assert by_id(entries)["3/failure/hook"]["state"] == "Sent"
    assert rig.provider.calls[1].destination.previous == {}


async def test_a_recipient_removed_before_its_message_is_not_sent() -> None:
    rig = make_rig()
    entries = rig.outbox.expand_known(queue("start", name="slack"))
    rig.source.specs["slack"] = {**SLACK, "recipients": ["@alice", "#new"]}
    entries, _ = await rig.cycle(entries)
    [row] = entries
    assert (row["state"], row["sent"], row["failed"]) == ("Failed", 1, 1)
    assert row["lastError"] == "a recipient was removed from Notification slack before it was sent"
    assert [c.destination.recipient for c in rig.provider.calls] == ["@alice"], (
        "#new was added after the event was recorded: not due"
    )


async def test_a_notification_gone_after_expansion_is_retried() -> None:
    rig = make_rig()
    entries = rig.outbox.expand_known(queue("start", name="slack"))
    del rig.source.specs["slack"]
    entries, _ = await rig.cycle(entries)
    [row] = entries
    assert (row["state"], row["attempts"], len(row["pending"])) == ("Pending", 1, 2)
    assert row["lastError"] == f"Notification slack not found or invalid in namespace {NAMESPACE}"
    rig.source.specs["slack"] = SLACK
    entries, _ = await rig.cycle(retry_now(entries))
    assert entries[0]["state"] == "Sent"


# --- failures ---------------------------------------------------------------------------------


async def test_temporary_error_is_retried_and_reported_once() -> None:
    rig = make_rig(
        script=[
            TemporaryDeliveryError("webhook: 429 Too Many Requests", retry_after=30),
            TemporaryDeliveryError("webhook: 503 Service Unavailable"),
        ]
    )
    before = datetime.now(UTC)
    entries, reports = await rig.cycle(queue("start"))
    [entry] = entries
    assert entry["state"] == "Pending"
    assert entry["attempts"] == 1
    assert entry["lastError"] == "webhook: 429 Too Many Requests"
    assert ledger.parse_stamp(entry["nextAttemptAt"]) >= before + timedelta(seconds=30)
    assert reports == [
        Report(
            True, "NotificationRetrying", "start of run 3 via hook: webhook: 429 Too Many Requests"
        )
    ]
    assert rig.outbox.tasks == {}, "not due before nextAttemptAt"
    wake = rig.outbox.next_wake(entries)
    assert wake is not None
    assert 28.0 < wake <= 31.1

    entries, reports = await rig.cycle(retry_now(entries))
    [entry] = entries
    assert (entry["state"], entry["attempts"]) == ("Pending", 2)
    assert entry["lastError"] == "webhook: 503 Service Unavailable"
    assert reports == [], "NotificationRetrying only for the first failure"

    entries, reports = await rig.cycle(retry_now(entries))
    [entry] = entries
    assert (entry["state"], entry["attempts"]) == ("Sent", 3)
    assert "lastError" not in entry
    assert "nextAttemptAt" not in entry
    assert reports == []
    assert len(rig.provider.calls) == 3


async def test_permanent_error_fails_the_entry() -> None:
    rig = make_rig(script=[PermanentDeliveryError("webhook: 404 Not Found")])
    entries, reports = await rig.cycle(queue("start"))
    [entry] = entries
    assert entry["state"] == "Failed"
    assert entry["lastError"] == "webhook: 404 Not Found"
    assert "nextAttemptAt" not in entry
    assert reports == [
        Report(
            True,
            "NotificationFailed",
            "start of run 3 via hook: permanent error: webhook: 404 Not Found",
        )
    ]
    assert await rig.cycle(entries) == (entries, [])
    assert len(rig.provider.calls) == 1


async def test_giving_up_after_retries() -> None:
    rig = make_rig(script=[TemporaryDeliveryError("webhook: 502 Bad Gateway")])
    entries = [{**e, "queuedAt": now_stamp(-timedelta(hours=2))} for e in queue("start")]
    entries, reports = await rig.cycle(entries)
    [entry] = entries
    assert entry["state"] == "Failed"
    assert reports == [
        Report(
            True,
            "NotificationFailed",
            "start of run 3 via hook: gave up after 1 attempts: webhook: 502 Bad Gateway",
        )
    ]


async def test_plain_exception_is_temporary_and_masked() -> None:
    rig = make_rig(script=[RuntimeError(f"POST {URL} refused (token secret-token)")])
    entries, reports = await rig.cycle(queue("start"))
    [entry] = entries
    assert entry["state"] == "Pending"
    assert "nextAttemptAt" in entry
    assert entry["lastError"] == "webhook: RuntimeError: POST *** refused (token secret-token)"
    assert URL not in entry["lastError"]
    assert reports == [
        Report(True, "NotificationRetrying", f"start of run 3 via hook: {entry['lastError']}")
    ]


async def test_plain_exception_is_not_logged_with_secrets(caplog: pytest.LogCaptureFixture) -> None:
    rig = make_rig(script=[RuntimeError(f"POST {URL} refused")])
    with caplog.at_level(logging.DEBUG, logger="deploybell"):
        await rig.cycle(queue("start"))
    assert "raised unexpectedly" in caplog.text
    assert URL not in caplog.text


async def test_a_send_that_hangs_times_out_as_temporary() -> None:
    rig = make_rig(script=[HANG], send_timeout=0.05)
    entries, reports = await rig.cycle(queue("start"))
    [entry] = entries
    assert entry["state"] == "Pending"
    assert entry["lastError"].startswith("webhook: no answer within ")
    assert [r.reason for r in reports] == ["NotificationRetrying"]


# --- missing Notification, Secret, template ---------------------------------------------------


async def test_missing_notification_waits_then_sends() -> None:
    rig = make_rig(specs={})
    problem = f"Notification hook not found or invalid in namespace {NAMESPACE}"
    entries, reports = await rig.cycle(queue("start"))
    [entry] = entries
    assert entry["id"] == "3/start/hook"
    assert "recipients" not in entry
    assert entry["state"] == "Pending"
    assert entry["lastError"] == problem
    assert reports == [
        Report(
            True,
            "NotificationMissing",
            f"{problem}; the start message of run 3 waits for it",
        )
    ]
    assert rig.outbox.next_wake(entries) == MISSING_RECHECK_SECONDS

    assert await rig.cycle(entries) == (entries, []), "reported once"
    assert rig.provider.calls == []

    rig.source.specs["hook"] = HOOK
    entries, reports = await rig.cycle(entries)
    [entry] = entries
    assert (entry["recipients"], entry["state"], entry["attempts"]) == (1, "Sent", 1)
    assert "lastError" not in entry
    assert reports == []
    assert len(rig.provider.calls) == 1


async def test_invalid_notification_counts_as_missing() -> None:
    rig = make_rig(specs={"hook": {"type": "pager", "secretRef": {"name": "hook"}}})
    entries, reports = await rig.cycle(queue("start"))
    assert "recipients" not in entries[0]
    assert [r.reason for r in reports] == ["NotificationMissing"]


async def test_missing_notification_gives_up() -> None:
    rig = make_rig(specs={})
    entries = [{**e, "queuedAt": now_stamp(-timedelta(hours=2))} for e in queue("start")]
    entries, reports = await rig.cycle(entries)
    [entry] = entries
    assert entry["state"] == "Failed"
    assert [(r.reason, r.message.endswith("; gave up")) for r in reports] == [
        ("NotificationFailed", True)
    ]
    assert rig.outbox.next_wake(entries) is None


@pytest.mark.parametrize(
    ("secrets", "error"),
    [
        pytest.param({}, "Notification hook: Secret hook not found", id="secret-missing"),
        pytest.param(
            {"hook": {"token": "abcd"}},
            "Notification hook: Secret hook has no key url (needed by webhook)",
            id="key-missing",
        ),
    ],
)
async def test_secret_problems_are_temporary(
    secrets: dict[str, Mapping[str, str]], error: str
) -> None:
    rig = make_rig(secrets=secrets)
    entries, reports = await rig.cycle(queue("start"))
    [entry] = entries
    assert (entry["state"], entry["attempts"], entry["lastError"]) == ("Pending", 1, error)
    assert "nextAttemptAt" in entry
    assert reports == [Report(True, "NotificationRetrying", f"start of run 3 via hook: {error}")]
    assert rig.provider.calls == []

    rig.source.secrets["hook"] = {"url": URL}
    entries, _ = await rig.cycle(retry_now(entries))
    assert entries[0]["state"] == "Sent"


async def test_source_error_is_a_temporary_error() -> None:
    rig = make_rig()
    rig.source.secret_error = Forbidden("Forbidden", 'secrets "hook" is forbidden')
    entries, _ = await rig.cycle(queue("start"))
    [entry] = entries
    assert entry["state"] == "Pending"
    assert "forbidden" in entry["lastError"]


async def test_template_that_fails_to_render_falls_back() -> None:
    spec = {**HOOK, "template": {"title": "{{ job }}", "text": "{{ nope.attr }}"}}
    rig = make_rig(specs={"hook": spec})
    entries, reports = await rig.cycle(queue("start"))
    assert entries[0]["state"] == "Sent"
    [call] = rig.provider.calls
    assert call.override is None
    assert reports == [
        Report(
            True,
            "NotificationTemplateFailed",
            "start of run 3 via hook: template not used, default message sent instead: "
            "spec.template.text: UndefinedError: 'nope' is undefined",
        )
    ]


async def test_template_renders_an_override() -> None:
    spec = {**HOOK, "template": {"text": "{{ namespace }}/{{ job }} run {{ run }}: {{ event }}"}}
    rig = make_rig(specs={"hook": spec})
    entries, reports = await rig.cycle(queue("start"))
    assert entries[0]["state"] == "Sent"
    assert rig.provider.calls[0].override == Title(None, "team-a/web run 3: start")
    assert reports == []


# --- next_wake and close ----------------------------------------------------------------------


def expanded(**changes: Any) -> dict[str, Any]:
    return {**ledger.expand(queue("start"), "3/start/hook", [])[0], **changes}


def retry_in(seconds: float, **changes: Any) -> dict[str, Any]:
    return expanded(nextAttemptAt=now_stamp(timedelta(seconds=seconds)), **changes)


# Built when the test runs, so the time between collection and the run does not count.
LedgerFactory = Callable[[], list[dict[str, Any]]]


@pytest.mark.parametrize(
    ("entries", "low", "high"),
    [
        pytest.param(list, None, None, id="empty"),
        pytest.param(lambda: [expanded(state="Sent")], None, None, id="all-sent"),
        pytest.param(lambda: [expanded()], None, None, id="due-now-sends-wake-themselves"),
        pytest.param(lambda: [retry_in(5, state="Failed")], None, None, id="failed-ignored"),
        pytest.param(lambda: queue("start"), 60.0, 60.0, id="unexpanded-recheck"),
        pytest.param(lambda: [retry_in(10)], 8.0, 10.1, id="retry"),
        pytest.param(lambda: [retry_in(-10)], 0.05, 0.05, id="overdue"),
        pytest.param(lambda: [retry_in(30), retry_in(3)], 1.0, 3.1, id="earliest-retry"),
        pytest.param(lambda: [*queue("success"), retry_in(120)], 60.0, 60.0, id="recheck-first"),
        pytest.param(lambda: [*queue("success"), retry_in(20)], 18.0, 20.1, id="retry-first"),
    ],
)
def test_next_wake(entries: LedgerFactory, low: float | None, high: float | None) -> None:
    wake = make_rig().outbox.next_wake(entries())
    if low is None or high is None:
        assert wake is None
    else:
        assert wake is not None
        assert low <= wake <= high


async def test_close_cancels_sends_and_leaves_entries_pending() -> None:
    rig = make_rig(script=[HANG, HANG])
    entries, _ = rig.pump(queue("start", name="slack"))
    tasks = [s.task for s in rig.outbox.tasks.values()]
    assert len(tasks) == 2
    assert rig.outbox.busy

    rig.outbox.close()
    assert rig.outbox.tasks == {}
    assert not rig.outbox.busy
    await asyncio.gather(*tasks, return_exceptions=True)
    assert all(t.cancelled() for t in tasks)

    after, reports = rig.outbox.collect(entries, datetime.now(UTC))
    assert after == entries
    assert reports == []
    assert [(e["state"], e["attempts"], len(e["pending"])) for e in after] == [("Pending", 0, 2)]
    assert all("lastError" not in e for e in after)
