"""The outbox of one DeployJob: deliver its Pending ledger rows in the background.

The runner owns the ledger (the only writer of status); the outbox only reads it, starts bounded
concurrent sends off the reconcile path (one per pending recipient of a due row), and hands
finished attempts back through `pump`, which the runner calls on every wake-up and then persists.
A crash between a send and its record can repeat that one message (at-least-once); the
idempotency key lets receivers spot it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from deploybell.notify import ledger
from deploybell.notify import providers as registry
from deploybell.notify.dispatch import Attempt, Dispatcher
from deploybell.notify.ledger import Delivery, Due
from deploybell.notify.model import Message
from deploybell.notify.providers.base import mask

MISSING_RECHECK_SECONDS = 60.0


@dataclass(frozen=True)
class Report:
    """Something worth an Event on the DeployJob."""

    warning: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Send:
    """One message in flight: which key of which row, to whom, and its task."""

    due: Due
    recipient: str
    task: asyncio.Task[Attempt]


class Outbox:
    def __init__(
        self,
        namespace: str,
        job: str,
        dispatcher: Dispatcher,
        wake: Callable[[], None],
        limiter: asyncio.Semaphore,
        give_up_after: timedelta = timedelta(hours=1),
    ) -> None:
        self.namespace = namespace
        self.job = job
        self.dispatcher = dispatcher
        self.wake = wake
        self.limiter = limiter
        self.give_up_after = give_up_after
        self.tasks: dict[str, Send] = {}  # by the message's id (entry_id with the recipient)
        self.log = logging.getLogger("deploybell.run")

    def pump(
        self,
        entries: Sequence[Mapping[str, Any]],
        message_for: Callable[[Mapping[str, Any]], Message],
        start: bool = True,
    ) -> tuple[list[dict[str, Any]], list[Report]]:
        """Apply finished sends, expand newly resolvable rows, start the due messages (unless
        `start` is False: the job is being handed to another operator)."""
        now = datetime.now(UTC)
        current, reports = self.collect(entries, now)
        current, more = self.resolve(current, now)
        reports += more
        current = ledger.compact(current)  # a run's last send recorded: its refs are done
        names: dict[str, dict[str, str] | None] = {}
        for item in ledger.due(current, now) if start else ():
            row = next(e for e in current if e["id"] == item.row_id)
            notification = str(row["notification"])
            if notification not in names:
                known = self.dispatcher.recipients(self.namespace, notification)
                names[notification] = (
                    None if known is None else {ledger.recipient_key(r): r for r in known or [""]}
                )
            by_key = names[notification]
            recipient = None if by_key is None else by_key.get(item.key)
            if recipient is None:
                current = ledger.replace_row(current, self.unsendable(row, item, by_key, now))
                continue
            message_id = ledger.entry_id(row["run"], row["event"], notification, recipient)
            if message_id in self.tasks:
                continue
            entry = {**_identity(row), "id": message_id, "recipient": recipient}
            refs = ledger.start_refs(current, row, item.key)
            task = asyncio.create_task(
                self.attempt(entry, message_for(entry), refs), name=f"deliver {message_id}"
            )
            self.tasks[message_id] = Send(item, recipient, task)
        return current, reports

    def unsendable(
        self,
        row: Mapping[str, Any],
        item: Due,
        by_key: Mapping[str, str] | None,
        now: datetime,
    ) -> dict[str, Any]:
        """A due key with no recipient to send to: its Notification is gone or invalid now
        (retried like any failed send), or the recipient was removed from it (never sent)."""
        name = row["notification"]
        if by_key is None:
            error = f"Notification {name} not found or invalid in namespace {self.namespace}"
            permanent = False
        else:
            error = f"a recipient was removed from Notification {name} before it was sent"
            permanent = True
        return ledger.failed_attempt(
            row,
            item,
            now,
            error,
            permanent=permanent,
            retry_after=None,
            give_up_after=self.give_up_after,
        )

    async def attempt(
        self, entry: Mapping[str, Any], message: Message, previous: Mapping[str, Any]
    ) -> Attempt:
        try:
            async with self.limiter:
                return await self.dispatcher.deliver(self.namespace, entry, message, previous)
        except Exception as e:  # e.g. the API refused to read the Secret: retry later
            return Attempt(False, error=mask(f"{type(e).__name__}: {e}", ()))
        finally:
            self.wake()

    def collect(
        self, entries: Sequence[Mapping[str, Any]], now: datetime
    ) -> tuple[list[dict[str, Any]], list[Report]]:
        current = [dict(e) for e in entries]
        reports: list[Report] = []
        for message_id, send in list(self.tasks.items()):
            if not send.task.done():
                continue
            del self.tasks[message_id]
            if send.task.cancelled():
                continue
            row = next((e for e in current if e["id"] == send.due.row_id), None)
            if row is None or send.due.key not in (row.get("pending") or ()):
                continue  # the row was dropped or settled meanwhile
            updated = self.apply(row, send, send.task.result(), now, reports)
            current = ledger.replace_row(current, updated)
        return current, reports

    def apply(
        self,
        row: dict[str, Any],
        send: Send,
        attempt: Attempt,
        now: datetime,
        reports: list[Report],
    ) -> dict[str, Any]:
        where = describe(row, send.recipient)
        if attempt.warning:
            reports.append(
                Report(True, "NotificationTemplateFailed", f"{where}: {attempt.warning}")
            )
        if attempt.sent:
            self._log(logging.INFO, row, "delivered", f"{where}: sent")
            refs = attempt.refs if self.keeps_refs(row) else None
            return ledger.sent(row, send.due, now, refs)
        error = f"{send.recipient}: {attempt.error}" if send.recipient else attempt.error
        out = ledger.failed_attempt(
            row,
            send.due,
            now,
            error,
            permanent=attempt.permanent,
            retry_after=attempt.retry_after,
            give_up_after=self.give_up_after,
        )
        attempts = send.due.attempts + 1
        if send.due.key not in (out.get("pending") or ()):
            why = "permanent error" if attempt.permanent else f"gave up after {attempts} attempts"
            reports.append(Report(True, "NotificationFailed", f"{where}: {why}: {attempt.error}"))
            self._log(logging.WARNING, row, "delivery-failed", f"{where}: {why}: {attempt.error}")
            return out
        if attempts == 1:
            reports.append(Report(True, "NotificationRetrying", f"{where}: {attempt.error}"))
        retry = f"{where}: attempt {attempts} failed, again at {out['nextAttemptAt']}"
        self._log(logging.WARNING, row, "delivery-retrying", f"{retry}: {attempt.error}")
        return out

    def keeps_refs(self, row: Mapping[str, Any]) -> bool:
        """Whether a sent message's provider references are kept: a start message whose
        outcome edits it or replies in its thread (the registry says which types do)."""
        if row.get("event") != "start":
            return False
        spec = self.dispatcher.source.spec(self.namespace, str(row["notification"]))
        kind = registry.TYPES.get(str((spec or {}).get("type")))
        return kind is None or kind.rules.edits_in_place or kind.rules.threads

    def _log(self, level: int, row: Mapping[str, Any], step: str, message: str) -> None:
        """One line of the run's story (deploy.runlog's fields), errors already masked."""
        if self.log.isEnabledFor(level):
            extra = {
                "namespace": self.namespace,
                "deployjob": self.job,
                "run": row["run"],
                "event": step,
                "notification": row["notification"],
                "message_event": row["event"],
            }
            self.log.log(
                level,
                "%s/%s run %s: %s",
                self.namespace,
                self.job,
                row["run"],
                message,
                extra=extra,
            )

    def expand_known(self, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Recipient keys for every row whose Notification is known now: done when an event is
        recorded, so that its status write already holds them (no separate write to expand)."""
        current = [dict(e) for e in entries]
        for row in [e for e in current if not ledger.expanded(e)]:
            if row.get("state") != Delivery.PENDING.value:
                continue
            recipients = self.dispatcher.recipients(self.namespace, row["notification"])
            if recipients is not None:
                current = ledger.expand(current, row["id"], recipients)
        return current

    def resolve(
        self, entries: list[dict[str, Any]], now: datetime
    ) -> tuple[list[dict[str, Any]], list[Report]]:
        """Expand rows whose Notification exists; note (once) the ones still waiting for it."""
        entries = self.expand_known(entries)
        reports: list[Report] = []
        for row in [e for e in entries if not ledger.expanded(e)]:
            if row.get("state") != Delivery.PENDING.value:
                continue
            problem = (
                f"Notification {row['notification']} not found or invalid in namespace "
                f"{self.namespace}"
            )
            queued = ledger.parse_stamp(str(row.get("queuedAt") or ledger.stamp(now)))
            if now - queued > self.give_up_after:
                entries = ledger.replace_row(entries, ledger.given_up(row, problem))
                reports.append(Report(True, "NotificationFailed", f"{problem}; gave up"))
            elif row.get("lastError") != problem:
                entries = ledger.update(entries, row["id"], lastError=problem)
                reports.append(
                    Report(
                        True,
                        "NotificationMissing",
                        f"{problem}; the {row['event']} message of run {row['run']} waits for it",
                    )
                )
        return entries, reports

    def next_wake(self, entries: Sequence[Mapping[str, Any]]) -> float | None:
        """When the runner should look again for retries (sends in flight wake it themselves)."""
        waits = []
        retry = ledger.next_attempt_in(entries, datetime.now(UTC))
        if retry is not None:
            waits.append(retry + 0.05)
        if any(
            not ledger.expanded(e) and e.get("state") == Delivery.PENDING.value for e in entries
        ):
            waits.append(MISSING_RECHECK_SECONDS)
        return min(waits) if waits else None

    @property
    def busy(self) -> bool:
        return bool(self.tasks)

    async def settle(self, seconds: float = 0.25) -> None:
        """Let sends that are nearly done finish, so their results are written in one patch."""
        if self.tasks:
            await asyncio.wait([s.task for s in self.tasks.values()], timeout=seconds)

    async def drain(self, seconds: float) -> None:
        """Wait for sends in flight (e.g. before a deleted DeployJob lets go)."""
        if self.tasks:
            await asyncio.wait([s.task for s in self.tasks.values()], timeout=seconds)

    def close(self) -> None:
        """Stop sending: what was not recorded as Sent stays Pending and goes after a restart."""
        for send in self.tasks.values():
            send.task.cancel()
        self.tasks.clear()


def _identity(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("run", "event", "notification")}


def describe(row: Mapping[str, Any], recipient: str = "") -> str:
    to = f" to {recipient}" if recipient else ""
    return f"{row['event']} of run {row['run']} via {row['notification']}{to}"
