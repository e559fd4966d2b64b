"""The notification ledger in status.notifications (pure).

One row per (run, event, Notification), written in the same status patch as the run transition,
so an event can neither be lost nor emitted twice across restarts. When its Notification is known
the row is expanded: `recipients` (how many) and `pending`, one short key per recipient still to
send (`recipient_key`: a digest, not the address, so a row stays small at 50 recipients of 320
characters). The outbox delivers the pending keys and moves each to `sent` (keeping, for a start
message whose outcome edits it or replies in its thread, the provider's `refs` under its key) or,
after retries, to `failed`. A row is Pending while any key is, else Failed if any failed, else
Sent. The message of one recipient keeps its own idempotency key (`entry_id` with the recipient).
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
ERROR_LIMIT = 300  # characters of a row's lastError

Row = dict[str, Any]


class Delivery(StrEnum):
    PENDING = "Pending"
    SENT = "Sent"
    FAILED = "Failed"


def entry_id(run: int, event: str, notification: str, recipient: str = "") -> str:
    """The idempotency key of one message: stable across restarts and retries."""
    base = f"{run}/{event}/{notification}"
    return f"{base}/{recipient}" if recipient else base


def recipient_key(recipient: str) -> str:
    """A recipient's key in a row: 8 characters of its SHA-256 (48 bits: two recipients of one
    Notification colliding is a one-in-10^11 event), stable across restarts and list edits."""
    digest = hashlib.sha256(recipient.encode()).digest()[:6]
    return base64.urlsafe_b64encode(digest).decode()


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def stamp_after(moment: datetime) -> str:
    """Rounded up to the next second: a retry is never scheduled before its interval."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return stamp(moment)


def parse_stamp(raw: str) -> datetime:
    return datetime.strptime(raw, TIME_FORMAT).replace(tzinfo=UTC)


# --- recording events -------------------------------------------------------------------------


def add_event(
    ledger: Sequence[Mapping[str, Any]],
    run: int,
    event: str,
    subscribers: Iterable[str],
    now: str,
    keep_runs: int = 2,
) -> list[Row]:
    """The ledger with a Pending row for each subscriber of `event` of `run`. Earlier runs keep
    their rows only while they still deliver, and only the `keep_runs` - 1 runs before `run`
    (the history keeps every run's outcome; the ledger is for what is still to send)."""
    busy = {e.get("run") for e in ledger if e.get("state") == Delivery.PENDING.value}
    kept = [
        e
        for e in ledger
        if int(e.get("run", 0)) >= run
        or (int(e.get("run", 0)) > run - keep_runs and e.get("run") in busy)
    ]
    rows = compact(kept, run)
    known = {(e.get("run"), e.get("event"), e.get("notification")) for e in rows}
    for name in subscribers:
        if (run, event, name) in known:
            continue
        rows.append(
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
    return rows


def expand(ledger: Sequence[Mapping[str, Any]], key: str, recipients: Sequence[str]) -> list[Row]:
    """The row `key`, not yet expanded, with one pending key per recipient ("" for webhooks)."""
    out: list[Row] = []
    for row in ledger:
        if row.get("id") != key or expanded(row):
            out.append(dict(row))
            continue
        keys = list(dict.fromkeys(recipient_key(r) for r in (recipients or [""])))
        out.append({**row, "recipients": len(keys), "sent": 0, "failed": 0, "pending": keys})
    return out


def expanded(row: Mapping[str, Any]) -> bool:
    """Whether the row knows its recipients (else it waits for its Notification)."""
    return "recipients" in row


STRIPPED = ("refs", "refKeys", "pending", "nextAttemptAt")  # what a settled, finished row drops


def compact(ledger: Sequence[Mapping[str, Any]], latest: int | None = None) -> list[Row]:
    """Rows of runs with nothing left to deliver, and either older than `latest` or finished
    (an outcome recorded), keep their counts and errors but not the provider references: only
    an outcome still to send edits its start message. Default `latest`: the newest run here."""
    if latest is None:
        latest = max((int(e.get("run", 0)) for e in ledger), default=0)
    busy = {e.get("run") for e in ledger if e.get("state") == Delivery.PENDING.value}
    finished = {e.get("run") for e in ledger if e.get("event") != "start"}
    out = []
    for row in ledger:
        run = row.get("run")
        if run not in busy and (int(run or 0) < latest or run in finished):
            row = {k: v for k, v in row.items() if k not in STRIPPED}
        out.append(dict(row))
    return out


def pending(ledger: Sequence[Mapping[str, Any]]) -> list[Row]:
    return [dict(e) for e in ledger if e.get("state") == Delivery.PENDING.value]


def update(ledger: Sequence[Mapping[str, Any]], key: str, **changes: Any) -> list[Row]:
    return [{**e, **changes} if e.get("id") == key else dict(e) for e in ledger]


def replace_row(ledger: Sequence[Mapping[str, Any]], row: Mapping[str, Any]) -> list[Row]:
    return [dict(row) if e.get("id") == row.get("id") else dict(e) for e in ledger]


# --- what is due ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """One message to send now: a pending key of a row, and the row's attempts so far."""

    row_id: str
    key: str
    attempts: int


def start_row(
    ledger: Sequence[Mapping[str, Any]], row: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The start row of the same run and Notification as `row` (for threading and ordering)."""
    for other in ledger:
        if (
            other.get("event") == "start"
            and other.get("run") == row.get("run")
            and other.get("notification") == row.get("notification")
        ):
            return other
    return None


def start_refs(ledger: Sequence[Mapping[str, Any]], row: Mapping[str, Any], key: str) -> Row:
    """The provider references of the start message to the same recipient ({} when none)."""
    if row.get("event") == "start":
        return {}
    start = start_row(ledger, row) or {}
    kept = (start.get("refs") or {}).get(key)
    if isinstance(kept, list):  # values in the order of the row's refKeys
        return dict(zip(start.get("refKeys") or (), kept, strict=False))
    return dict(kept or {})


def due(ledger: Sequence[Mapping[str, Any]], now: datetime) -> list[Due]:
    """Pending keys of rows whose retry time has come; per recipient, start before the outcome
    (an outcome waits while the start row is not expanded or still has that key pending)."""
    out = []
    for row in ledger:
        if row.get("state") != Delivery.PENDING.value or not expanded(row):
            continue
        if row.get("nextAttemptAt") and parse_stamp(row["nextAttemptAt"]) > now:
            continue
        blocked: set[str] = set()
        if row.get("event") != "start":
            start = start_row(ledger, row)
            if start is not None and start.get("state") == Delivery.PENDING.value:
                if not expanded(start):
                    continue
                blocked = set(start.get("pending") or ())
        attempts = int(row.get("attempts", 0))
        out += [Due(row["id"], k, attempts) for k in row.get("pending") or () if k not in blocked]
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


# --- results of sends -------------------------------------------------------------------------


def sent(
    row: Mapping[str, Any], due_: Due, now: datetime, refs: Mapping[str, str] | None = None
) -> Row:
    """The row after the message to `due_.key` was sent (`refs`: what its outcome edits)."""
    out = _without(row, due_)
    out["sent"] = int(out.get("sent", 0)) + 1
    out["sentAt"] = stamp(now)
    if refs:
        out.setdefault("refKeys", list(refs))
        # The same names for every recipient of a type: their values alone, in refKeys' order.
        kept = list(refs.values()) if list(refs) == out["refKeys"] else dict(refs)
        out["refs"] = {**(out.get("refs") or {}), due_.key: kept}
    return _settle(out)


def failed_attempt(
    row: Mapping[str, Any],
    due_: Due,
    now: datetime,
    error: str,
    *,
    permanent: bool,
    retry_after: float | None,
    give_up_after: timedelta,
) -> Row:
    """The row after a failed send to `due_.key`: that key rescheduled with the row, or moved to
    `failed` when the error is permanent or the next try would come too late."""
    attempts = due_.attempts + 1
    out = dict(row)
    out["attempts"] = max(int(row.get("attempts", 0)), attempts)
    out["lastError"] = error[:ERROR_LIMIT]
    queued = parse_stamp(str(row.get("queuedAt") or stamp(now)))
    delay = max(retry_after or 0.0, backoff(attempts))
    if permanent or now + timedelta(seconds=delay) - queued > give_up_after:
        out = _without(out, due_)
        out["failed"] = int(out.get("failed", 0)) + 1
        return _settle(out)
    retry = stamp_after(now + timedelta(seconds=delay))
    earlier = str(row.get("nextAttemptAt") or "")
    # Keys of one row are retried together: the latest time any of them asked for (a 429's
    # Retry-After), unless the row's time is from an earlier wave that has already passed.
    if not earlier or parse_stamp(earlier) <= now or earlier < retry:
        out["nextAttemptAt"] = retry
    return out


def given_up(row: Mapping[str, Any], error: str) -> Row:
    """The row Failed as a whole (its Notification never became usable)."""
    out = {k: v for k, v in row.items() if k not in ("pending", "nextAttemptAt")}
    if expanded(row):
        out["failed"] = int(row.get("failed", 0)) + len(row.get("pending") or ())
    return {**out, "state": Delivery.FAILED.value, "lastError": error[:ERROR_LIMIT]}


def _without(row: Mapping[str, Any], due_: Due) -> Row:
    out = dict(row)
    out["attempts"] = max(int(row.get("attempts", 0)), due_.attempts + 1)
    out["pending"] = [k for k in row.get("pending") or () if k != due_.key]
    return out


def _settle(row: Row) -> Row:
    """The row's state from its keys; a row with nothing pending drops its schedule."""
    if row.get("pending"):
        return row
    row.pop("pending", None)
    row.pop("nextAttemptAt", None)
    if int(row.get("failed", 0)):
        row["state"] = Delivery.FAILED.value
    else:
        row["state"] = Delivery.SENT.value
        row.pop("lastError", None)
    return row


# --- the format before rows -------------------------------------------------------------------


def migrate(entries: Sequence[Mapping[str, Any]]) -> list[Row]:
    """A ledger as an older operator wrote it (one entry per recipient, `recipient` set) as
    rows: an upgrade in the middle of a delivery neither repeats nor loses a message."""
    if not any("recipient" in e or ("sent" in e and "recipients" not in e) for e in entries):
        return [dict(e) for e in entries]
    rows: dict[str, Row] = {}
    for entry in entries:
        row_key = entry_id(int(entry.get("run", 0)), str(entry.get("event")), entry["notification"])
        if "recipient" not in entry:
            counted = int(entry.get("sent", 0)) + int(entry.get("failed", 0))
            rows[row_key] = {**entry, "recipients": counted} if "sent" in entry else dict(entry)
            continue
        row = rows.setdefault(
            row_key,
            {
                **{k: v for k, v in entry.items() if k not in ("recipient", "refs", "sentAt")},
                "id": row_key,
                "attempts": 0,
                "recipients": 0,
                "sent": 0,
                "failed": 0,
                "pending": [],
            },
        )
        _merge(row, entry)
    return [
        _settle(row) if row.get("recipients") and "pending" in row else row for row in rows.values()
    ]


def _merge(row: Row, entry: Mapping[str, Any]) -> None:
    """One old per-recipient entry folded into its row."""
    key = recipient_key(str(entry["recipient"]))
    row["recipients"] += 1
    row["attempts"] = max(row["attempts"], int(entry.get("attempts", 0)))
    state = entry.get("state")
    if state == Delivery.PENDING.value:
        row["pending"].append(key)
        row["state"] = Delivery.PENDING.value
        retry = entry.get("nextAttemptAt")
        if retry and (not row.get("nextAttemptAt") or retry > row["nextAttemptAt"]):
            row["nextAttemptAt"] = retry
    elif state == Delivery.SENT.value:
        row["sent"] += 1
        row["sentAt"] = max(str(row.get("sentAt") or ""), str(entry.get("sentAt") or "")) or None
        if entry.get("refs") and entry.get("event") == "start":
            row["refs"] = {**(row.get("refs") or {}), key: dict(entry["refs"])}
    else:
        row["failed"] += 1
    if entry.get("lastError") and (state != Delivery.SENT.value or "lastError" not in row):
        row["lastError"] = entry["lastError"]
