"""The notification ledger in status.notifications (pure).

One entry per (run, event, notification) when the run transition is recorded — in the same status
patch, so an event can neither be lost nor emitted twice across restarts. When its Notification
is known the entry is expanded into one entry per recipient. The outbox then delivers Pending
entries and marks them Sent (with provider references) or, after retries, Failed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class Delivery(StrEnum):
    PENDING = "Pending"
    SENT = "Sent"
    FAILED = "Failed"


def entry_id(run: int, event: str, notification: str, recipient: str = "") -> str:
    """The idempotency key of one message: stable across restarts and retries."""
    base = f"{run}/{event}/{notification}"
    return f"{base}/{recipient}" if recipient else base


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def stamp_after(moment: datetime) -> str:
    """Rounded up to the next second: a retry is never scheduled before its interval."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return stamp(moment)


def parse_stamp(raw: str) -> datetime:
    return datetime.strptime(raw, TIME_FORMAT).replace(tzinfo=UTC)


def add_event(
    ledger: Sequence[Mapping[str, Any]],
    run: int,
    event: str,
    subscribers: Iterable[str],
    now: str,
    keep_runs: int = 3,
) -> list[dict[str, Any]]:
    """The ledger with Pending entries for `event` of `run`; entries of old runs are dropped, and
    earlier runs that delivered everything keep counts instead of per-recipient entries."""
    entries = compact([e for e in ledger if int(e.get("run", 0)) > run - keep_runs], run)
    known = {(e.get("run"), e.get("event"), e.get("notification")) for e in entries}
    for name in subscribers:
        if (run, event, name) in known:
            continue
        entries.append(
            {
                "id": entry_id(run, event, name),
                "run": run,
                "event": event,
                "notification": name,
                "state": Delivery.PENDING.value,
                "attempts": 0,
                "queuedAt": now,
            }
        )
        known.add((run, event, name))
    return entries


def compact(ledger: Sequence[Mapping[str, Any]], latest: int) -> list[dict[str, Any]]:
    """Runs before `latest` with nothing left to deliver: one entry per (run, event,
    Notification) with counts, where they had one per recipient. The latest run keeps its
    entries (and the provider references of its messages, for edits in place)."""
    groups: dict[tuple[Any, Any, Any], list[Mapping[str, Any]]] = {}
    done_runs = {
        e.get("run")
        for e in ledger
        if int(e.get("run", 0)) < latest
        and not any(
            o.get("run") == e.get("run") and o.get("state") == Delivery.PENDING for o in ledger
        )
    }
    out: list[dict[str, Any]] = []
    for entry in ledger:
        key = (entry.get("run"), entry.get("event"), entry.get("notification"))
        if entry.get("run") not in done_runs or "recipient" not in entry:
            out.append(dict(entry))
            continue
        if key not in groups:
            groups[key] = []
            out.append({"_group": key})
        groups[key].append(entry)
    return [_summary(groups[e["_group"]]) if "_group" in e else e for e in out]


def _summary(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    first = entries[0]
    failed = [e for e in entries if e.get("state") == Delivery.FAILED]
    out = {
        "id": entry_id(first["run"], first["event"], first["notification"]),
        "run": first["run"],
        "event": first["event"],
        "notification": first["notification"],
        "state": (Delivery.FAILED if failed else Delivery.SENT).value,
        "sent": len(entries) - len(failed),
        "failed": len(failed),
        "queuedAt": first.get("queuedAt"),
    }
    if failed and failed[0].get("lastError"):
        out["lastError"] = failed[0]["lastError"]
    return out


def pending(ledger: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(e) for e in ledger if e.get("state") == Delivery.PENDING.value]


def update(ledger: Sequence[Mapping[str, Any]], key: str, **changes: Any) -> list[dict[str, Any]]:
    return [{**e, **changes} if e.get("id") == key else dict(e) for e in ledger]


def expand(
    ledger: Sequence[Mapping[str, Any]], key: str, recipients: Sequence[str]
) -> list[dict[str, Any]]:
    """Replace a notification-level entry by one entry per recipient ("" for webhooks)."""
    out: list[dict[str, Any]] = []
    for entry in ledger:
        if entry.get("id") != key or "recipient" in entry:
            out.append(dict(entry))
            continue
        for recipient in recipients or [""]:
            child = {**entry, "recipient": recipient}
            child["id"] = entry_id(entry["run"], entry["event"], entry["notification"], recipient)
            out.append(child)
    return out


def start_entry(
    ledger: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The start entry of the same run and destination as `entry` (for threading, ordering)."""
    for other in ledger:
        if (
            other.get("event") == "start"
            and other.get("run") == entry.get("run")
            and other.get("notification") == entry.get("notification")
            and other.get("recipient", "") == entry.get("recipient", "")
        ):
            return other
    return None


def due(ledger: Sequence[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Pending entries whose retry time has come, `start` before the outcome per destination."""
    out = []
    for entry in ledger:
        if entry.get("state") != Delivery.PENDING.value or "recipient" not in entry:
            continue
        if entry.get("nextAttemptAt") and parse_stamp(entry["nextAttemptAt"]) > now:
            continue
        if entry.get("event") != "start":
            start = start_entry(ledger, entry)
            if start is not None and start.get("state") == Delivery.PENDING.value:
                continue
        out.append(dict(entry))
    return out


def next_attempt_in(ledger: Sequence[Mapping[str, Any]], now: datetime) -> float | None:
    """Seconds until the earliest scheduled retry, None when none is scheduled."""
    waits = [
        (parse_stamp(e["nextAttemptAt"]) - now).total_seconds()
        for e in ledger
        if e.get("state") == Delivery.PENDING.value and e.get("nextAttemptAt")
    ]
    return max(min(waits), 0.0) if waits else None


def backoff(
    attempts: int, base: float = 1.0, cap: float = 300.0, jitter: float | None = None
) -> float:
    """Exponential backoff with full jitter: `attempts` failures so far → seconds to wait."""
    ceiling = min(cap, base * (2 ** min(max(attempts - 1, 0), 30)))
    spread = random.random() if jitter is None else jitter  # noqa: S311 (not cryptographic)
    return float(max(base, ceiling * (0.5 + spread / 2)))


def sent(entry: Mapping[str, Any], now: datetime, refs: Mapping[str, str]) -> dict[str, Any]:
    out = {
        **entry,
        "state": Delivery.SENT.value,
        "sentAt": stamp(now),
        "attempts": int(entry.get("attempts", 0)) + 1,
    }
    out.pop("lastError", None)
    out.pop("nextAttemptAt", None)
    if refs:
        out["refs"] = dict(refs)
    return out


def failed_attempt(
    entry: Mapping[str, Any],
    now: datetime,
    error: str,
    *,
    permanent: bool,
    retry_after: float | None,
    give_up_after: timedelta,
) -> dict[str, Any]:
    """The entry after a failed send: rescheduled, or Failed when permanent or too old."""
    attempts = int(entry.get("attempts", 0)) + 1
    out = {**entry, "attempts": attempts, "lastError": error[:500]}
    queued = parse_stamp(str(entry.get("queuedAt") or stamp(now)))
    delay = max(retry_after or 0.0, backoff(attempts))
    if permanent or now + timedelta(seconds=delay) - queued > give_up_after:
        out["state"] = Delivery.FAILED.value
        out.pop("nextAttemptAt", None)
        return out
    out["nextAttemptAt"] = stamp_after(now + timedelta(seconds=delay))
    return out
