"""The ledger's delivery side: expansion per recipient, ordering, retries and their schedule."""

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploybell.notify.ledger import (
    Delivery,
    backoff,
    due,
    entry_id,
    expand,
    failed_attempt,
    next_attempt_in,
    parse_stamp,
    sent,
    start_entry,
)

T0 = "2025-03-02T11:00:00Z"
NOW = datetime(2025, 3, 2, 11, 5, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def queued(run: int, event: str, name: str) -> dict[str, Any]:
    """A notification-level entry exactly as add_event writes it."""
    return {
        "id": f"{run}/{event}/{name}",
        "run": run,
        "event": event,
        "notification": name,
        "state": "Pending",
        "attempts": 0,
        "queuedAt": T0,
    }


def to(entry: dict[str, Any], recipient: str, **changes: Any) -> dict[str, Any]:
    """The entry expanded to one recipient, with `changes` applied."""
    key = f"{entry['id']}/{recipient}" if recipient else entry["id"]
    return {**entry, "recipient": recipient, "id": key, **changes}


def stamp_in(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- entry_id ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param((3, "start", "team-chat"), "3/start/team-chat", id="notification-level"),
        pytest.param((3, "start", "team-chat", ""), "3/start/team-chat", id="webhook-recipient"),
        pytest.param(
            (3, "failure", "team-chat", "#deploys"), "3/failure/team-chat/#deploys", id="channel"
        ),
        pytest.param(
            (12, "success", "mail", "ops@example.com"),
            "12/success/mail/ops@example.com",
            id="address",
        ),
    ],
)
def test_entry_id(args: tuple[Any, ...], expected: str) -> None:
    assert entry_id(*args) == expected


# --- expand -----------------------------------------------------------------------------------

START = queued(2, "start", "team-chat")
OTHER = queued(2, "start", "oncall-mail")


@pytest.mark.parametrize(
    ("ledger", "key", "recipients", "expected"),
    [
        pytest.param(
            [START],
            START["id"],
            ["#deploys", "@alice"],
            [to(START, "#deploys"), to(START, "@alice")],
            id="one-entry-per-recipient",
        ),
        pytest.param(
            [START], START["id"], [], [to(START, "")], id="webhook-keeps-notification-level-id"
        ),
        pytest.param([START], START["id"], [""], [to(START, "")], id="explicit-empty-recipient"),
        pytest.param(
            [to(START, "#deploys", state="Sent")],
            START["id"] + "/#deploys",
            ["#deploys", "@alice"],
            [to(START, "#deploys", state="Sent")],
            id="already-expanded-untouched",
        ),
        pytest.param(
            [to(START, "")],
            START["id"],
            ["#deploys"],
            [to(START, "")],
            id="expanded-webhook-entry-with-same-id-untouched",
        ),
        pytest.param(
            [OTHER, START, queued(2, "success", "team-chat")],
            START["id"],
            ["#deploys", "@alice"],
            [OTHER, to(START, "#deploys"), to(START, "@alice"), queued(2, "success", "team-chat")],
            id="other-entries-untouched-and-order-kept",
        ),
        pytest.param(
            [START], "9/start/team-chat", ["#deploys"], [START], id="unknown-key-changes-nothing"
        ),
        pytest.param(
            [{**START, "lastError": "Notification team-chat not found", "attempts": 2}],
            START["id"],
            ["#a"],
            [to(START, "#a", lastError="Notification team-chat not found", attempts=2)],
            id="children-inherit-fields",
        ),
    ],
)
def test_expand(
    ledger: list[dict[str, Any]], key: str, recipients: list[str], expected: list[dict[str, Any]]
) -> None:
    before = copy.deepcopy(ledger)
    assert expand(ledger, key, recipients) == expected
    assert ledger == before


# --- start_entry ------------------------------------------------------------------------------

S_A = to(queued(4, "start", "chat"), "#a", state="Sent", refs={"ts": "1.1"})
S_B = to(queued(4, "start", "chat"), "#b")
HOOK_START = to(queued(4, "start", "hook"), "")
OLD_START = to(queued(3, "start", "chat"), "#a", state="Sent")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(to(queued(4, "success", "chat"), "#a"), S_A, id="same-recipient"),
        pytest.param(to(queued(4, "failure", "chat"), "#b"), S_B, id="other-recipient"),
        pytest.param(to(queued(4, "cancel", "hook"), ""), HOOK_START, id="webhook"),
        pytest.param(to(queued(4, "success", "chat"), "#c"), None, id="recipient-added-later"),
        pytest.param(to(queued(5, "success", "chat"), "#a"), None, id="no-start-for-run"),
        pytest.param(to(queued(4, "success", "mail"), "#a"), None, id="other-notification"),
        pytest.param(S_A, S_A, id="a-start-finds-itself"),
    ],
)
def test_start_entry(entry: dict[str, Any], expected: dict[str, Any] | None) -> None:
    ledger = [OLD_START, S_A, S_B, HOOK_START, entry]
    assert start_entry(ledger, entry) == expected


# --- due --------------------------------------------------------------------------------------


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in entries]


@pytest.mark.parametrize(
    ("ledger", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param(
            [to(queued(1, "start", "chat"), "#a")], ["1/start/chat/#a"], id="pending-expanded"
        ),
        pytest.param([queued(1, "start", "chat")], [], id="un-expanded-excluded"),
        pytest.param(
            [
                to(queued(1, "start", "chat"), "#a", state="Sent"),
                to(queued(1, "start", "chat"), "#b", state="Failed"),
            ],
            [],
            id="sent-and-failed-excluded",
        ),
        pytest.param(
            [to(queued(1, "start", "chat"), "#a", nextAttemptAt=stamp_in(1))],
            [],
            id="retry-in-the-future-excluded",
        ),
        pytest.param(
            [
                to(queued(1, "start", "chat"), "#a", nextAttemptAt=stamp_in(0)),
                to(queued(1, "start", "chat"), "#b", nextAttemptAt=stamp_in(-30)),
            ],
            ["1/start/chat/#a", "1/start/chat/#b"],
            id="retry-time-come",
        ),
        pytest.param(
            [to(queued(1, "start", "chat"), "#a"), to(queued(1, "success", "chat"), "#a")],
            ["1/start/chat/#a"],
            id="outcome-waits-for-pending-start",
        ),
        pytest.param(
            [
                to(queued(1, "start", "chat"), "#a", nextAttemptAt=stamp_in(60)),
                to(queued(1, "failure", "chat"), "#a"),
            ],
            [],
            id="outcome-waits-for-retrying-start",
        ),
        pytest.param(
            [
                to(queued(1, "start", "chat"), "#a", state="Sent"),
                to(queued(1, "success", "chat"), "#a"),
            ],
            ["1/success/chat/#a"],
            id="outcome-goes-after-sent-start",
        ),
        pytest.param(
            [
                to(queued(1, "start", "chat"), "#a", state="Failed"),
                to(queued(1, "failure", "chat"), "#a"),
            ],
            ["1/failure/chat/#a"],
            id="outcome-goes-after-failed-start",
        ),
        pytest.param(
            [
                to(queued(1, "start", "chat"), "#a"),
                to(queued(1, "start", "chat"), "#b", state="Sent"),
                to(queued(1, "success", "chat"), "#a"),
                to(queued(1, "success", "chat"), "#b"),
            ],
            ["1/start/chat/#a", "1/success/chat/#b"],
            id="ordering-is-per-destination",
        ),
        pytest.param(
            [
                to(queued(1, "start", "chat"), "#a"),
                to(queued(2, "start", "chat"), "#a", state="Sent"),
                to(queued(2, "success", "chat"), "#a"),
            ],
            ["1/start/chat/#a", "2/success/chat/#a"],
            id="ordering-is-per-run",
        ),
        pytest.param(
            [to(queued(1, "success", "chat"), "#a")],
            ["1/success/chat/#a"],
            id="outcome-without-start",
        ),
        pytest.param(
            [to(queued(1, "start", "hook"), ""), to(queued(1, "success", "hook"), "")],
            ["1/start/hook"],
            id="webhook-ordering",
        ),
    ],
)
def test_due(ledger: list[dict[str, Any]], expected: list[str]) -> None:
    assert ids(due(ledger, NOW)) == expected


def test_due_returns_copies() -> None:
    ledger = [to(queued(1, "start", "chat"), "#a")]
    due(ledger, NOW)[0]["state"] = "Sent"
    assert ledger[0]["state"] == "Pending"


# --- next_attempt_in --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ledger", "expected"),
    [
        pytest.param([], None, id="empty"),
        pytest.param([to(queued(1, "start", "c"), "#a")], None, id="nothing-scheduled"),
        pytest.param(
            [to(queued(1, "start", "c"), "#a", nextAttemptAt=stamp_in(30))], 30.0, id="one"
        ),
        pytest.param(
            [
                to(queued(1, "start", "c"), "#a", nextAttemptAt=stamp_in(30)),
                to(queued(1, "start", "c"), "#b", nextAttemptAt=stamp_in(7)),
                to(queued(1, "start", "c"), "#c", nextAttemptAt=stamp_in(90)),
            ],
            7.0,
            id="earliest",
        ),
        pytest.param(
            [to(queued(1, "start", "c"), "#a", nextAttemptAt=stamp_in(-20))],
            0.0,
            id="overdue-is-now",
        ),
        pytest.param(
            [
                to(queued(1, "start", "c"), "#a", state="Failed", nextAttemptAt=stamp_in(2)),
                to(queued(1, "start", "c"), "#b", state="Sent", nextAttemptAt=stamp_in(3)),
                to(queued(1, "start", "c"), "#c", nextAttemptAt=stamp_in(40)),
            ],
            40.0,
            id="only-pending-count",
        ),
    ],
)
def test_next_attempt_in(ledger: list[dict[str, Any]], expected: float | None) -> None:
    assert next_attempt_in(ledger, NOW) == expected


# --- backoff ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [
        (0, 1.0, 1.0),
        (1, 1.0, 1.0),
        (2, 1.0, 2.0),
        (3, 2.0, 4.0),
        (4, 4.0, 8.0),
        (5, 8.0, 16.0),
        (9, 128.0, 256.0),
        (10, 150.0, 300.0),
        (20, 150.0, 300.0),
        (1024, 150.0, 300.0),
    ],
)
def test_backoff_bounds(attempts: int, low: float, high: float) -> None:
    assert backoff(attempts, jitter=0) == low
    assert backoff(attempts, jitter=1) == high
    assert low <= backoff(attempts, jitter=0.5) <= high
    for _ in range(20):
        assert low <= backoff(attempts) <= high


@pytest.mark.parametrize("attempts", range(2, 9))
def test_backoff_doubles(attempts: int) -> None:
    assert backoff(attempts + 1, jitter=1) == 2 * backoff(attempts, jitter=1)


def test_backoff_base_and_cap() -> None:
    assert backoff(3, base=5.0, jitter=1) == 20.0
    assert backoff(3, base=5.0, jitter=0) == 10.0
    assert backoff(8, cap=60.0, jitter=1) == 60.0
    assert backoff(1, base=5.0, jitter=0) == 5.0, "never less than base"


def test_backoff_capped_for_any_attempt_count() -> None:
    assert backoff(1025, jitter=1) == 300.0


# --- sent -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "refs", "expected"),
    [
        pytest.param(
            to(queued(1, "start", "chat"), "#a"),
            {"channel": "C1", "ts": "1700000000.000100"},
            to(
                queued(1, "start", "chat"),
                "#a",
                state="Sent",
                sentAt="2025-03-02T11:05:00Z",
                attempts=1,
                refs={"channel": "C1", "ts": "1700000000.000100"},
            ),
            id="refs-stored",
        ),
        pytest.param(
            to(
                queued(1, "start", "chat"),
                "#a",
                attempts=3,
                lastError="slack: 503",
                nextAttemptAt="2025-03-02T11:04:59Z",
            ),
            {},
            to(
                queued(1, "start", "chat"),
                "#a",
                state="Sent",
                sentAt="2025-03-02T11:05:00Z",
                attempts=4,
            ),
            id="retry-fields-cleared-no-refs",
        ),
    ],
)
def test_sent(entry: dict[str, Any], refs: dict[str, str], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(entry)
    got = sent(entry, NOW.replace(microsecond=999_999), refs)
    assert got == expected
    assert entry == before


def test_sent_copies_refs() -> None:
    refs = {"ts": "1"}
    got = sent(to(queued(1, "start", "chat"), "#a"), NOW, refs)
    refs["ts"] = "2"
    assert got["refs"] == {"ts": "1"}


# --- failed_attempt ---------------------------------------------------------------------------


def fail(
    entry: dict[str, Any],
    now: datetime = NOW,
    *,
    permanent: bool = False,
    retry_after: float | None = None,
    give_up_after: timedelta = HOUR,
    error: str = "slack: 503 Service Unavailable",
) -> dict[str, Any]:
    return failed_attempt(
        entry,
        now,
        error,
        permanent=permanent,
        retry_after=retry_after,
        give_up_after=give_up_after,
    )


def test_temporary_failure_is_rescheduled() -> None:
    entry = to(queued(1, "start", "chat"), "#a")
    got = fail(entry)
    assert got["state"] == "Pending"
    assert got["attempts"] == 1
    assert got["lastError"] == "slack: 503 Service Unavailable"
    # backoff(1) is exactly one second whatever the jitter.
    assert got["nextAttemptAt"] == "2025-03-02T11:05:01Z"
    assert entry == to(queued(1, "start", "chat"), "#a")


@pytest.mark.parametrize(
    ("now", "retry_after", "expected"),
    [
        pytest.param(
            datetime(2025, 3, 2, 11, 5, 0, 250_000, tzinfo=UTC),
            3,
            "2025-03-02T11:05:04Z",
            id="microseconds-round-up",
        ),
        pytest.param(
            datetime(2025, 3, 2, 11, 5, 0, 999_999, tzinfo=UTC),
            3,
            "2025-03-02T11:05:04Z",
            id="almost-a-second",
        ),
        pytest.param(
            datetime(2025, 3, 2, 11, 5, 0, tzinfo=UTC), 3, "2025-03-02T11:05:03Z", id="exact"
        ),
        pytest.param(
            datetime(2025, 3, 2, 11, 5, 0, tzinfo=UTC), 2.5, "2025-03-02T11:05:03Z", id="fraction"
        ),
        pytest.param(
            datetime(2025, 3, 2, 11, 5, 59, 500_000, tzinfo=UTC),
            120,
            "2025-03-02T11:08:00Z",
            id="minute-boundary",
        ),
    ],
)
def test_retry_after_is_rounded_up(now: datetime, retry_after: float, expected: str) -> None:
    got = fail(to(queued(1, "start", "chat"), "#a"), now, retry_after=retry_after)
    assert got["state"] == "Pending"
    assert got["nextAttemptAt"] == expected
    assert parse_stamp(got["nextAttemptAt"]) >= now + timedelta(seconds=retry_after)


@pytest.mark.parametrize("attempts", [1, 4, 8, 12])
def test_backoff_wins_over_a_shorter_retry_after(attempts: int) -> None:
    entry = to(queued(1, "start", "chat"), "#a", attempts=attempts)
    got = fail(entry, retry_after=0.5, give_up_after=timedelta(days=1))
    wait = (parse_stamp(got["nextAttemptAt"]) - NOW).total_seconds()
    assert backoff(attempts + 1, jitter=0) <= wait <= backoff(attempts + 1, jitter=1) + 1
    assert got["attempts"] == attempts + 1


@pytest.mark.parametrize(
    ("entry", "now", "permanent", "retry_after", "expected_state"),
    [
        pytest.param(
            to(queued(1, "start", "chat"), "#a", nextAttemptAt=stamp_in(-1)),
            NOW,
            True,
            None,
            "Failed",
            id="permanent",
        ),
        pytest.param(
            to(queued(1, "start", "chat"), "#a"),
            datetime(2025, 3, 2, 12, 0, 1, tzinfo=UTC),
            False,
            None,
            "Failed",
            id="past-give-up-after",
        ),
        pytest.param(
            to(queued(1, "start", "chat"), "#a"),
            datetime(2025, 3, 2, 11, 58, 0, tzinfo=UTC),
            False,
            300,
            "Failed",
            id="next-retry-would-be-past-give-up-after",
        ),
        pytest.param(
            to(queued(1, "start", "chat"), "#a"),
            datetime(2025, 3, 2, 11, 58, 0, tzinfo=UTC),
            False,
            60,
            "Pending",
            id="last-retry-within-give-up-after",
        ),
    ],
)
def test_failed_attempt_gives_up(
    entry: dict[str, Any],
    now: datetime,
    permanent: bool,
    retry_after: float | None,
    expected_state: str,
) -> None:
    got = fail(entry, now, permanent=permanent, retry_after=retry_after)
    assert got["state"] == expected_state
    assert got["attempts"] == 1
    assert got["lastError"] == "slack: 503 Service Unavailable"
    if expected_state == Delivery.FAILED:
        assert "nextAttemptAt" not in got
    else:
        assert parse_stamp(got["nextAttemptAt"]) >= now + timedelta(seconds=60)


def test_entry_without_queued_at_counts_from_now() -> None:
    entry = to(queued(1, "start", "chat"), "#a")
    del entry["queuedAt"]
    got = fail(entry, give_up_after=timedelta(seconds=10), retry_after=5)
    assert got["state"] == "Pending"
    assert got["nextAttemptAt"] == stamp_in(5)


def test_last_error_is_bounded() -> None:
    got = fail(to(queued(1, "start", "chat"), "#a"), error="x" * 2000)
    assert got["lastError"] == "x" * 500
