"""The outbox of one DeployJob: deliver its Pending ledger entries in the background.

The runner owns the ledger (the only writer of status); the outbox only reads it, starts bounded
concurrent sends off the reconcile path, and hands finished attempts back through `pump`, which
the runner calls on every wake-up and then persists. A crash between a send and its record can
repeat that one message (at-least-once); the idempotency key lets receivers spot it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from deploybell.notify import ledger
from deploybell.notify.dispatch import Attempt, Dispatcher
from deploybell.notify.ledger import Delivery
from deploybell.notify.model import Message
from deploybell.notify.providers.base import mask

MISSING_RECHECK_SECONDS = 60.0


@dataclass(frozen=True)
class Report:
    """Something worth an Event on the DeployJob."""

    warning: bool
    reason: str
    message: str


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
        self.tasks: dict[str, asyncio.Task[Attempt]] = {}
        self.log = logging.getLogger("deploybell.run")

    def pump(
        self,
        entries: Sequence[Mapping[str, Any]],
        message_for: Callable[[Mapping[str, Any]], Message],
        start: bool = True,
    ) -> tuple[list[dict[str, Any]], list[Report]]:
        """Apply finished sends, expand newly resolvable entries, start the due ones (unless
        `start` is False: the job is being handed to another operator)."""
        now = datetime.now(UTC)
        current, reports = self.collect(entries, now)
        current, more = self.resolve(current, now)
        reports += more
        for entry in ledger.due(current, now) if start else ():
            if entry["id"] not in self.tasks:
                previous = ledger.start_entry(current, entry) if entry["event"] != "start" else None
                refs = dict((previous or {}).get("refs") or {})
                self.tasks[entry["id"]] = asyncio.create_task(
                    self.attempt(entry, message_for(entry), refs), name=f"deliver {entry['id']}"
                )
        return current, reports

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
        for key, task in list(self.tasks.items()):
            if not task.done():
                continue
            del self.tasks[key]
            if task.cancelled():
                continue
            attempt = task.result()
            current = [
                self.apply(e, attempt, now, reports) if e["id"] == key else e for e in current
            ]
        return current, reports

    def apply(
        self, entry: dict[str, Any], attempt: Attempt, now: datetime, reports: list[Report]
    ) -> dict[str, Any]:
        where = describe(entry)
        if attempt.warning:
            reports.append(
                Report(True, "NotificationTemplateFailed", f"{where}: {attempt.warning}")
            )
        if attempt.sent:
            self._log(logging.INFO, entry, "delivered", f"{where}: sent")
            return ledger.sent(entry, now, attempt.refs)
        out = ledger.failed_attempt(
            entry,
            now,
            attempt.error,
            permanent=attempt.permanent,
            retry_after=attempt.retry_after,
            give_up_after=self.give_up_after,
        )
        if out["state"] == Delivery.FAILED.value:
            why = (
                "permanent error"
                if attempt.permanent
                else f"gave up after {out['attempts']} attempts"
            )
            reports.append(Report(True, "NotificationFailed", f"{where}: {why}: {attempt.error}"))
            self._log(logging.WARNING, entry, "delivery-failed", f"{where}: {why}: {attempt.error}")
        elif int(out["attempts"]) == 1:
            reports.append(Report(True, "NotificationRetrying", f"{where}: {attempt.error}"))
        if out["state"] != Delivery.FAILED.value:
            retry = f"{where}: attempt {out['attempts']} failed, again at {out['nextAttemptAt']}"
            self._log(logging.WARNING, entry, "delivery-retrying", f"{retry}: {attempt.error}")
        return out

    def _log(self, level: int, entry: Mapping[str, Any], step: str, message: str) -> None:
        """One line of the run's story (deploy.runlog's fields), errors already masked."""
        if self.log.isEnabledFor(level):
            extra = {
                "namespace": self.namespace,
                "deployjob": self.job,
                "run": entry["run"],
                "event": step,
                "notification": entry["notification"],
                "message_event": entry["event"],
            }
            self.log.log(
                level,
                "%s/%s run %s: %s",
                self.namespace,
                self.job,
                entry["run"],
                message,
                extra=extra,
            )

    def expand_known(self, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One entry per recipient for every Notification known now: done when an event is
        recorded, so that its status write already holds them (no separate write to expand)."""
        current = [dict(e) for e in entries]
        for entry in [e for e in current if "recipient" not in e]:
            if entry.get("state") != Delivery.PENDING.value:
                continue
            recipients = self.dispatcher.recipients(self.namespace, entry["notification"])
            if recipients is not None:
                current = ledger.expand(current, entry["id"], recipients)
        return current

    def resolve(
        self, entries: list[dict[str, Any]], now: datetime
    ) -> tuple[list[dict[str, Any]], list[Report]]:
        """Expand entries whose Notification exists; note (once) the ones still waiting for it."""
        entries = self.expand_known(entries)
        reports: list[Report] = []
        for entry in [e for e in entries if "recipient" not in e]:
            if entry.get("state") != Delivery.PENDING.value:
                continue
            problem = (
                f"Notification {entry['notification']} not found or invalid in namespace "
                f"{self.namespace}"
            )
            queued = ledger.parse_stamp(str(entry.get("queuedAt") or ledger.stamp(now)))
            if now - queued > self.give_up_after:
                entries = ledger.update(
                    entries, entry["id"], state=Delivery.FAILED.value, lastError=problem
                )
                reports.append(Report(True, "NotificationFailed", f"{problem}; gave up"))
            elif entry.get("lastError") != problem:
                entries = ledger.update(entries, entry["id"], lastError=problem)
                reports.append(
                    Report(
                        True,
                        "NotificationMissing",
                        f"{problem}; the {entry['event']} message of run "
                        f"{entry['run']} waits for it",
                    )
                )
        return entries, reports

    def next_wake(self, entries: Sequence[Mapping[str, Any]]) -> float | None:
        """When the runner should look again for retries (sends in flight wake it themselves)."""
        waits = []
        retry = ledger.next_attempt_in(entries, datetime.now(UTC))
        if retry is not None:
            waits.append(retry + 0.05)
        if any("recipient" not in e and e.get("state") == Delivery.PENDING.value for e in entries):
            waits.append(MISSING_RECHECK_SECONDS)
        return min(waits) if waits else None

    @property
    def busy(self) -> bool:
        return bool(self.tasks)

    async def settle(self, seconds: float = 0.25) -> None:
        """Let sends that are nearly done finish, so their results are written in one patch."""
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=seconds)

    async def drain(self, seconds: float) -> None:
        """Wait for sends in flight (e.g. before a deleted DeployJob lets go)."""
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=seconds)

    def close(self) -> None:
        """Stop sending: what was not recorded as Sent stays Pending and goes after a restart."""
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()


def describe(entry: Mapping[str, Any]) -> str:
    recipient = f" to {entry['recipient']}" if entry.get("recipient") else ""
    return f"{entry['event']} of run {entry['run']} via {entry['notification']}{recipient}"
