"""Delivery of ledger entries. Until the providers land this sink only logs each message.

It already does what the providers will rely on: it resolves the Notification by name (GitOps
tools apply in any order, so a missing one is waited for, not an error) and updates the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from deploybell.notify.ledger import Delivery

GIVE_UP_AFTER = timedelta(hours=1)

NotificationLookup = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) → the Notification's spec, or None when it does not exist (yet)."""

Reporter = Callable[[bool, str, str], None]
"""(warning, reason, message) → an Event on the DeployJob."""


def _parse_time(raw: str) -> datetime:
    return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


class LogSink:
    """Marks entries Sent after logging them; waits for missing Notifications."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("deploybell.notify")

    async def deliver(
        self,
        namespace: str,
        job: str,
        ledger: Sequence[Mapping[str, Any]],
        lookup: NotificationLookup,
        report: Reporter,
    ) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        out = []
        for raw in ledger:
            entry = dict(raw)
            if entry.get("state") == Delivery.PENDING.value:
                entry = self._deliver_one(namespace, job, entry, lookup, report, now)
            out.append(entry)
        return out

    def _deliver_one(
        self,
        namespace: str,
        job: str,
        entry: dict[str, Any],
        lookup: NotificationLookup,
        report: Reporter,
        now: datetime,
    ) -> dict[str, Any]:
        name = str(entry["notification"])
        spec = lookup(namespace, name)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        if spec is None:
            problem = f"Notification {name} not found in namespace {namespace}"
            if now - _parse_time(str(entry.get("queuedAt") or stamp)) > GIVE_UP_AFTER:
                report(True, "NotificationFailed", f"{problem}; gave up on {entry['id']}")
                return {**entry, "state": Delivery.FAILED.value, "lastError": problem}
            if entry.get("lastError") != problem:
                report(
                    True,
                    "NotificationMissing",
                    f"{problem}; the {entry['event']} message of run {entry['run']} waits for it",
                )
            return {**entry, "lastError": problem}
        self.logger.info(
            "notify %s: %s of %s/%s run %s (type %s)",
            name,
            entry["event"],
            namespace,
            job,
            entry["run"],
            spec.get("type"),
        )
        entry.pop("lastError", None)
        return {
            **entry,
            "state": Delivery.SENT.value,
            "sentAt": stamp,
            "attempts": int(entry.get("attempts", 0)) + 1,
        }
