"""The notification ledger in status.notifications (pure).

One entry per (run, event, notification). An entry is written as Pending in the same status
patch that records the run transition, so an event can neither be lost nor emitted twice across
restarts; the outbox then delivers Pending entries and marks them Sent or Failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any


class Delivery(StrEnum):
    PENDING = "Pending"
    SENT = "Sent"
    FAILED = "Failed"


def entry_id(run: int, event: str, notification: str) -> str:
    """The idempotency key of one message: stable across restarts and retries."""
    return f"{run}/{event}/{notification}"


def add_event(
    ledger: Sequence[Mapping[str, Any]],
    run: int,
    event: str,
    subscribers: Iterable[str],
    now: str,
    keep_runs: int = 3,
) -> list[dict[str, Any]]:
    """The ledger with Pending entries for `event` of `run`; entries of old runs are dropped."""
    entries = [dict(e) for e in ledger if int(e.get("run", 0)) > run - keep_runs]
    known = {e.get("id") for e in entries}
    for name in subscribers:
        key = entry_id(run, event, name)
        if key in known:
            continue
        entries.append(
            {
                "id": key,
                "run": run,
                "event": event,
                "notification": name,
                "state": Delivery.PENDING.value,
                "attempts": 0,
                "queuedAt": now,
            }
        )
        known.add(key)
    return entries


def pending(ledger: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(e) for e in ledger if e.get("state") == Delivery.PENDING.value]


def update(ledger: Sequence[Mapping[str, Any]], key: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**e, **changes} if e.get("id") == key else dict(e) for e in ledger]
