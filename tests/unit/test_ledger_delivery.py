"""The ledger's delivery side: rows of recipient keys, ordering, retries, their schedule."""

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploybell.notify.ledger import (
    ERROR_LIMIT,
    Delivery,
    Due,
    backoff,
    due,
    entry_id,
    expand,
    failed_attempt,
    given_up,
    next_attempt_in,
    parse_stamp,
    recipient_key,
    sent,
    start_refs,
    start_row,
)

T0 = "2025-03-02T11:00:00Z"
NOW = datetime(2025, 3, 2, 11, 5, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
K = recipient_key


def queued(run: int, event: str, name: str) -> dict[str, Any]:
    """A row exactly as add_event writes it."""
    return {
        "id": f"{run}/{event}/{name}",
        "run": run,
        "event": event,
        "notification": name,
        "state": "Pending",
        "attempts": 0,
        "queuedAt": T0,
    }


def row(
    run: int, event: str, name: str, waiting: tuple[str, ...] = ("#a",), **changes: Any
) -> dict[str, Any]:
    """An expanded row whose `waiting` recipients are still to send."""
    keys = [K(r) for r in waiting]
    return {
        **queued(run, event, name),
        "recipients": len(keys),
        "sent": 0,
        "failed": 0,
        "pending": keys,
        **changes,
    }


def done(run: int, event: str, name: str, count: int = 1, **changes: Any) -> dict[str, Any]:
    """An expanded row with every recipient sent."""
    base = {k: v for k, v in row(run, event, name).items() if k != "pending"}
    return {**base, "state": "Sent", "recipients": count, "sent": count, "attempts": 1, **changes}


def stamp_in(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- entry_id and recipient_key ---------------------------------------------------------------


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


def test_recipient_keys_are_short_stable_and_distinct() -> None:
    longest = "x" * 310 + "@example.com"
    assert K("#deploys") == K("#deploys")
    assert len({K(r) for r in ["", "#deploys", "#Deploys", "@alice", longest]}) == 5
    assert all(len(K(r)) == 8 and K(r).isascii() for r in ["", "#a", longest])
    # 50 recipients as a Notification allows them: no two keys alike.
    assert len({K(f"dev{i}@example.com") for i in range(5000)}) == 5000


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
            [row(2, "start", "team-chat", ("#deploys", "@alice"))],
            id="one-key-per-recipient",
        ),
        pytest.param([START], START["id"], [], [row(2, "start", "team-chat", ("",))], id="webhook"),
        pytest.param(
            [START], START["id"], [""], [row(2, "start", "team-chat", ("",))], id="explicit-empty"
        ),
        pytest.param(
            [row(2, "start", "team-chat", ("#deploys",), sent=1, pending=[])],
            START["id"],
            ["#deploys", "@alice"],
            [row(2, "start", "team-chat", ("#deploys",), sent=1, pending=[])],
            id="already-expanded-untouched",
        ),
        pytest.param(
            [OTHER, START, queued(2, "success", "team-chat")],
            START["id"],
            ["#deploys", "@alice"],
            [
                OTHER,
                row(2, "start", "team-chat", ("#deploys", "@alice")),
                queued(2, "success", "team-chat"),
            ],
            id="other-rows-untouched-and-order-kept",
        ),
        pytest.param(
            [START], "9/start/team-chat", ["#deploys"], [START], id="unknown-key-changes-nothing"
        ),
        pytest.param(
            [{**START, "lastError": "Notification team-chat not found", "attempts": 2}],
            START["id"],
            ["#a"],
            [
                row(
                    2,
                    "start",
                    "team-chat",
                    lastError="Notification team-chat not found",
                    attempts=2,
                )
            ],
            id="keeps-its-fields",
        ),
    ],
)
def test_expand(
    ledger: list[dict[str, Any]], key: str, recipients: list[str], expected: list[dict[str, Any]]
) -> None:
    before = copy.deepcopy(ledger)
    assert expand(ledger, key, recipients) == expected
    assert ledger == before


def test_a_row_at_the_maximum_is_small() -> None:
    """50 recipients of the longest allowed address: the row holds keys, not addresses."""
    recipients = [f"{i:02d}" + "x" * 306 + "@example.com" for i in range(50)]
    [expanded] = expand([queued(1, "start", "n" * 63)], "1/start/" + "n" * 63, recipients)
    assert len(str(expanded)) < 1000


# --- start_row and start_refs ----------------------------------------------------------------

S = row(4, "start", "chat", ("#b",), sent=1, refs={K("#a"): {"ts": "1.1"}})
HOOK_START = row(4, "start", "hook", ("",))
OLD_START = done(3, "start", "chat", refs={K("#a"): {"ts": "0.9"}})


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(row(4, "success", "chat"), S, id="same-run-and-notification"),
        pytest.param(row(4, "cancel", "hook", ("",)), HOOK_START, id="webhook"),
        pytest.param(row(5, "success", "chat"), None, id="no-start-for-run"),
        pytest.param(row(4, "success", "mail"), None, id="other-notification"),
        pytest.param(S, S, id="a-start-finds-itself"),
    ],
)
def test_start_row(entry: dict[str, Any], expected: dict[str, Any] | None) -> None:
    ledger = [OLD_START, S, HOOK_START, entry]
    assert start_row(ledger, entry) == expected


@pytest.mark.parametrize(
    ("entry", "key", "expected"),
    [
        pytest.param(row(4, "success", "chat"), K("#a"), {"ts": "1.1"}, id="same-recipient"),
        pytest.param(row(4, "failure", "chat", ("#b",)), K("#b"), {}, id="start-not-sent-yet"),
        pytest.param(row(4, "success", "chat", ("#c",)), K("#c"), {}, id="recipient-added-later"),
        pytest.param(row(5, "success", "chat"), K("#a"), {}, id="no-start-for-run"),
        pytest.param(S, K("#a"), {}, id="a-start-edits-nothing"),
    ],
)
def test_start_refs(entry: dict[str, Any], key: str, expected: dict[str, str]) -> None:
    assert start_refs([OLD_START, S, entry], entry, key) == expected


# --- due --------------------------------------------------------------------------------------


def keys(items: list[Due]) -> list[tuple[str, str]]:
    return [(d.row_id, d.key) for d in items]


@pytest.mark.parametrize(
    ("ledger", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([row(1, "start", "chat")], [("1/start/chat", K("#a"))], id="pending-key"),
        pytest.param(
            [row(1, "start", "chat", ("#a", "#b"))],
            [("1/start/chat", K("#a")), ("1/start/chat", K("#b"))],
            id="every-pending-key",
        ),
        pytest.param([queued(1, "start", "chat")], [], id="un-expanded-excluded"),
        pytest.param(
            [done(1, "start", "chat"), {**done(1, "success", "chat"), "state": "Failed"}],
            [],
            id="sent-and-failed-excluded",
        ),
        pytest.param(
            [row(1, "start", "chat", nextAttemptAt=stamp_in(1))],
            [],
            id="retry-in-the-future-excluded",
        ),
        pytest.param(
            [
                row(1, "start", "chat", nextAttemptAt=stamp_in(0)),
                row(1, "start", "mail", nextAttemptAt=stamp_in(-30)),
            ],
            [("1/start/chat", K("#a")), ("1/start/mail", K("#a"))],
            id="retry-time-come",
        ),
        pytest.param(
            [row(1, "start", "chat"), row(1, "success", "chat")],
            [("1/start/chat", K("#a"))],
            id="outcome-waits-for-pending-start",
        ),
        pytest.param(
            [row(1, "start", "chat", nextAttemptAt=stamp_in(60)), row(1, "failure", "chat")],
            [],
            id="outcome-waits-for-retrying-start",
        ),
        pytest.param(
            [queued(1, "start", "chat"), row(1, "failure", "chat")],
            [],
            id="outcome-waits-for-start-waiting-for-its-notification",
        ),
        pytest.param(
            [done(1, "start", "chat"), row(1, "success", "chat")],
            [("1/success/chat", K("#a"))],
            id="outcome-goes-after-sent-start",
        ),
        pytest.param(
            [
                {**done(1, "start", "chat"), "state": "Failed", "sent": 0, "failed": 1},
                row(1, "failure", "chat"),
            ],
            [("1/failure/chat", K("#a"))],
            id="outcome-goes-after-failed-start",
        ),
        pytest.param(
            [row(1, "start", "chat", ("#a",), sent=1), row(1, "success", "chat", ("#a", "#b"))],
            [("1/start/chat", K("#a")), ("1/success/chat", K("#b"))],
            id="ordering-is-per-recipient",
        ),
        pytest.param(
            [row(1, "start", "chat"), done(2, "start", "chat"), row(2, "success", "chat")],
            [("1/start/chat", K("#a")), ("2/success/chat", K("#a"))],
            id="ordering-is-per-run",
        ),
        pytest.param(
            [row(1, "success", "chat")], [("1/success/chat", K("#a"))], id="outcome-without-start"
        ),
        pytest.param(
            [row(1, "start", "hook", ("",)), row(1, "success", "hook", ("",))],
            [("1/start/hook", K(""))],
            id="webhook-ordering",
        ),
    ],
)
def test_due(ledger: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert keys(due(ledger, NOW)) == expected


def test_due_carries_the_rows_attempts() -> None:
    assert due([row(1, "start", "chat", attempts=3)], NOW) == [Due("1/start/chat", K("#a"), 3)]


# --- next_attempt_in --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ledger", "expected"),
    [
        pytest.param([], None, id="empty"),
        pytest.param([row(1, "start", "c")], None, id="nothing-scheduled"),
        pytest.param([row(1, "start", "c", nextAttemptAt=stamp_in(30))], 30.0, id="one"),
        pytest.param(
            [
                row(1, "start", "c", nextAttemptAt=stamp_in(30)),
                row(1, "start", "d", nextAttemptAt=stamp_in(7)),
                row(1, "start", "e", nextAttemptAt=stamp_in(90)),
            ],
            7.0,
            id="earliest",
        ),
        pytest.param([row(1, "start", "c", nextAttemptAt=stamp_in(-20))], 0.0, id="overdue-is-now"),
        pytest.param(
            [
                row(1, "start", "c", state="Failed", nextAttemptAt=stamp_in(2)),
                row(1, "start", "d", state="Sent", nextAttemptAt=stamp_in(3)),
                row(1, "start", "e", nextAttemptAt=stamp_in(40)),
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
    ("entry", "key", "refs", "expected"),
    [
        pytest.param(
            row(1, "start", "chat"),
            "#a",
            {"channel": "C1", "ts": "1700000000.000100"},
            {
                **done(1, "start", "chat"),
                "sentAt": "2025-03-02T11:05:00Z",
                "refKeys": ["channel", "ts"],
                "refs": {K("#a"): ["C1", "1700000000.000100"]},
            },
            id="the-last-key-sent-with-refs",
        ),
        pytest.param(
            row(1, "start", "chat", ("#a", "#b")),
            "#b",
            None,
            {
                **row(1, "start", "chat", ("#a",)),
                "recipients": 2,
                "sent": 1,
                "attempts": 1,
                "sentAt": "2025-03-02T11:05:00Z",
            },
            id="one-of-two",
        ),
        pytest.param(
            row(
                1,
                "start",
                "chat",
                attempts=3,
                lastError="#a: slack: 503",
                nextAttemptAt="2025-03-02T11:04:59Z",
            ),
            "#a",
            {},
            {**done(1, "start", "chat"), "attempts": 4, "sentAt": "2025-03-02T11:05:00Z"},
            id="retry-fields-cleared-no-refs",
        ),
        pytest.param(
            row(1, "start", "chat", ("#a", "#b"), failed=1, pending=[K("#a")], lastError="#b: x"),
            "#a",
            None,
            {
                **done(1, "start", "chat"),
                "state": "Failed",
                "recipients": 2,
                "sent": 1,
                "failed": 1,
                "lastError": "#b: x",
                "sentAt": "2025-03-02T11:05:00Z",
            },
            id="a-failed-key-makes-the-row-failed",
        ),
    ],
)
def test_sent(
    entry: dict[str, Any], key: str, refs: dict[str, str] | None, expected: dict[str, Any]
) -> None:
    before = copy.deepcopy(entry)
    item = Due(entry["id"], K(key), int(entry["attempts"]))
    got = sent(entry, item, NOW.replace(microsecond=999_999), refs)
    assert got == expected
    assert entry == before


def test_sent_copies_refs() -> None:
    refs = {"ts": "1"}
    got = sent(row(1, "start", "chat"), Due("1/start/chat", K("#a"), 0), NOW, refs)
    refs["ts"] = "2"
    assert got["refs"] == {K("#a"): ["1"]}


def test_refs_with_other_names_are_kept_whole() -> None:
    first = sent(row(1, "start", "chat", ("#a", "#b")), Due("1/start/chat", K("#a"), 0), NOW,
                 {"channel": "C1", "ts": "1.1"})  # fmt: skip
    both = sent(first, Due("1/start/chat", K("#b"), 0), NOW, {"channel": "D2"})
    assert both["refs"] == {K("#a"): ["C1", "1.1"], K("#b"): {"channel": "D2"}}
    outcome = row(1, "success", "chat", ("#a", "#b"))
    assert start_refs([both], outcome, K("#a")) == {"channel": "C1", "ts": "1.1"}
    assert start_refs([both], outcome, K("#b")) == {"channel": "D2"}


# --- failed_attempt ---------------------------------------------------------------------------


def fail(
    entry: dict[str, Any],
    now: datetime = NOW,
    *,
    key: str = "#a",
    permanent: bool = False,
    retry_after: float | None = None,
    give_up_after: timedelta = HOUR,
    error: str = "#a: slack: 503 Service Unavailable",
    wave: int | None = None,
) -> dict[str, Any]:
    """The row after `key` failed in the wave that began with `wave` attempts (the row's own)."""
    attempts = int(entry.get("attempts", 0)) if wave is None else wave
    return failed_attempt(
        entry,
        Due(entry["id"], K(key), attempts),
        now,
        error,
        permanent=permanent,
        retry_after=retry_after,
        give_up_after=give_up_after,
    )


def test_temporary_failure_is_rescheduled() -> None:
    entry = row(1, "start", "chat")
    got = fail(entry)
    assert got["state"] == "Pending"
    assert got["pending"] == [K("#a")]
    assert got["attempts"] == 1
    assert got["lastError"] == "#a: slack: 503 Service Unavailable"
    # backoff(1) is exactly one second whatever the jitter.
    assert got["nextAttemptAt"] == "2025-03-02T11:05:01Z"
    assert entry == row(1, "start", "chat")


def test_keys_of_one_row_are_retried_together_at_the_latest_time_asked() -> None:
    entry = row(1, "start", "chat", ("#a", "#b"))
    first = fail(entry, retry_after=30)
    second = fail(first, key="#b", retry_after=5, wave=0)
    assert second["nextAttemptAt"] == first["nextAttemptAt"] == stamp_in(30)
    assert second["attempts"] == 1, "one wave, one attempt"
    later = fail(first, NOW + timedelta(seconds=31), key="#b", retry_after=5)
    assert later["nextAttemptAt"] == stamp_in(36), "a time from an earlier wave is replaced"
    assert later["attempts"] == 2


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
    got = fail(row(1, "start", "chat"), now, retry_after=retry_after)
    assert got["state"] == "Pending"
    assert got["nextAttemptAt"] == expected
    assert parse_stamp(got["nextAttemptAt"]) >= now + timedelta(seconds=retry_after)


@pytest.mark.parametrize("attempts", [1, 4, 8, 12])
def test_backoff_wins_over_a_shorter_retry_after(attempts: int) -> None:
    entry = row(1, "start", "chat", attempts=attempts)
    got = fail(entry, retry_after=0.5, give_up_after=timedelta(days=1))
    wait = (parse_stamp(got["nextAttemptAt"]) - NOW).total_seconds()
    assert backoff(attempts + 1, jitter=0) <= wait <= backoff(attempts + 1, jitter=1) + 1
    assert got["attempts"] == attempts + 1


@pytest.mark.parametrize(
    ("entry", "now", "permanent", "retry_after", "expected_state"),
    [
        pytest.param(
            row(1, "start", "chat", nextAttemptAt=stamp_in(-1)),
            NOW,
            True,
            None,
            "Failed",
            id="permanent",
        ),
        pytest.param(
            row(1, "start", "chat"),
            datetime(2025, 3, 2, 12, 0, 1, tzinfo=UTC),
            False,
            None,
            "Failed",
            id="past-give-up-after",
        ),
        pytest.param(
            row(1, "start", "chat"),
            datetime(2025, 3, 2, 11, 58, 0, tzinfo=UTC),
            False,
            300,
            "Failed",
            id="next-retry-would-be-past-give-up-after",
        ),
        pytest.param(
            row(1, "start", "chat"),
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
    assert got["lastError"] == "#a: slack: 503 Service Unavailable"
    if expected_state == Delivery.FAILED:
        assert "nextAttemptAt" not in got
        assert "pending" not in got
        assert (got["sent"], got["failed"]) == (0, 1)
    else:
        assert parse_stamp(got["nextAttemptAt"]) >= now + timedelta(seconds=60)


def test_a_key_given_up_leaves_the_others_pending() -> None:
    got = fail(row(1, "start", "chat", ("#a", "#b")), permanent=True)
    assert (got["state"], got["pending"], got["failed"]) == ("Pending", [K("#b")], 1)


def test_entry_without_queued_at_counts_from_now() -> None:
    entry = row(1, "start", "chat")
    del entry["queuedAt"]
    got = fail(entry, give_up_after=timedelta(seconds=10), retry_after=5)
    assert got["state"] == "Pending"
    assert got["nextAttemptAt"] == stamp_in(5)


def test_last_error_is_bounded() -> None:
    got = fail(row(1, "start", "chat"), error="x" * 2000)
    assert got["lastError"] == "x" * ERROR_LIMIT


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            queued(1, "start", "later"),
            {**queued(1, "start", "later"), "state": "Failed", "lastError": "gone"},
            id="never-expanded",
        ),
        pytest.param(
            row(1, "start", "chat", ("#a", "#b"), sent=1, nextAttemptAt=stamp_in(9)),
            {
                **done(1, "start", "chat"),
                "state": "Failed",
                "recipients": 2,
                "sent": 1,
                "failed": 2,
                "attempts": 0,
                "lastError": "gone",
            },
            id="expanded",
        ),
    ],
)
def test_given_up(entry: dict[str, Any], expected: dict[str, Any]) -> None:
    assert given_up(entry, "gone") == expected
