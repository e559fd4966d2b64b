"""The notification ledger in status.notifications: queueing, pruning, pending, updates."""

import copy
from typing import Any

import pytest

from deploybell.notify.ledger import (
    Delivery,
    add_event,
    entry_id,
    migrate,
    pending,
    recipient_key,
    update,
)

T0 = "2025-03-02T11:00:00Z"
T1 = "2025-03-02T11:04:12Z"


def queued(run: int, event: str, name: str, now: str = T0) -> dict[str, Any]:
    """An entry exactly as add_event writes it."""
    return {
        "id": f"{run}/{event}/{name}",
        "run": run,
        "event": event,
        "notification": name,
        "state": "Pending",
        "attempts": 0,
        "queuedAt": now,
    }


def sent(run: int, event: str, name: str) -> dict[str, Any]:
    """An entry after the sink delivered it."""
    return {**queued(run, event, name), "state": "Sent", "sentAt": T1, "attempts": 1}


def missing(run: int, event: str, name: str) -> dict[str, Any]:
    """An entry waiting for its Notification to be created."""
    problem = f"Notification {name} not found in namespace ci"
    return {**queued(run, event, name), "lastError": problem}


def test_entry_id() -> None:
    assert entry_id(12, "failure", "team-chat") == "12/failure/team-chat"


@pytest.mark.parametrize(
    ("ledger", "run", "event", "subscribers", "expected"),
    [
        pytest.param(
            [],
            1,
            "start",
            ["team-chat", "oncall-mail"],
            [queued(1, "start", "team-chat", T1), queued(1, "start", "oncall-mail", T1)],
            id="one-pending-entry-per-subscriber",
        ),
        pytest.param(
            [sent(1, "start", "team-chat")],
            1,
            "success",
            ["team-chat"],
            [sent(1, "start", "team-chat"), queued(1, "success", "team-chat", T1)],
            id="next-event-of-the-same-run",
        ),
        pytest.param(
            [sent(1, "start", "team-chat"), missing(1, "start", "oncall-mail")],
            1,
            "start",
            ["team-chat", "oncall-mail"],
            [sent(1, "start", "team-chat"), missing(1, "start", "oncall-mail")],
            id="same-event-again-adds-nothing-and-resets-nothing",
        ),
        pytest.param(
            [sent(1, "start", "team-chat")],
            1,
            "start",
            ["team-chat", "oncall-mail"],
            [sent(1, "start", "team-chat"), queued(1, "start", "oncall-mail", T1)],
            id="only-the-new-subscriber",
        ),
        pytest.param(
            [],
            1,
            "start",
            ["team-chat", "team-chat"],
            [queued(1, "start", "team-chat", T1)],
            id="duplicate-subscriber-once",
        ),
        pytest.param(
            [sent(1, "start", "team-chat")],
            1,
            "success",
            [],
            [sent(1, "start", "team-chat")],
            id="no-subscribers",
        ),
        pytest.param(
            [
                sent(2, "start", "team-chat"),
                sent(2, "success", "team-chat"),
                sent(3, "start", "team-chat"),
                sent(3, "cancel", "team-chat"),
                sent(4, "start", "team-chat"),
            ],
            4,
            "success",
            ["team-chat"],
            [sent(4, "start", "team-chat"), queued(4, "success", "team-chat", T1)],
            id="earlier-runs-that-delivered-everything-dropped",
        ),
        pytest.param(
            [
                queued(2, "success", "team-chat"),
                sent(3, "start", "team-chat"),
                queued(3, "cancel", "team-chat"),
            ],
            4,
            "start",
            ["team-chat"],
            [
                sent(3, "start", "team-chat"),
                queued(3, "cancel", "team-chat"),
                queued(4, "start", "team-chat", T1),
            ],
            id="the-previous-run-kept-while-it-delivers-older-ones-dropped",
        ),
        pytest.param(
            [sent(1, "success", "team-chat"), sent(2, "success", "team-chat")],
            5,
            "start",
            ["team-chat"],
            [queued(5, "start", "team-chat", T1)],
            id="all-older-runs-dropped",
        ),
    ],
)
def test_add_event(
    ledger: list[dict[str, Any]],
    run: int,
    event: str,
    subscribers: list[str],
    expected: list[dict[str, Any]],
) -> None:
    before = copy.deepcopy(ledger)
    assert add_event(ledger, run, event, subscribers, T1) == expected
    assert ledger == before


@pytest.mark.parametrize(
    ("keep_runs", "kept_runs"),
    [(1, [6]), (2, [5, 6]), (3, [4, 5, 6]), (10, [1, 2, 3, 4, 5, 6])],
)
def test_add_event_keep_runs(keep_runs: int, kept_runs: list[int]) -> None:
    """Runs still delivering are kept up to `keep_runs` back."""
    ledger = [queued(run, "success", "team-chat") for run in range(1, 6)]
    got = add_event(ledger, 6, "start", ["team-chat"], T1, keep_runs=keep_runs)
    assert [e["run"] for e in got] == kept_runs
    assert got[-1] == queued(6, "start", "team-chat", T1)


def test_add_event_twice_is_idempotent() -> None:
    once = add_event([], 3, "failure", ["team-chat", "oncall-mail"], T0)
    assert add_event(once, 3, "failure", ["team-chat", "oncall-mail"], T1) == once


@pytest.mark.parametrize(
    ("ledger", "ids"),
    [
        pytest.param([], [], id="empty"),
        pytest.param(
            [
                sent(1, "start", "team-chat"),
                queued(1, "start", "oncall-mail"),
                missing(1, "success", "pager"),
                {**queued(1, "success", "team-chat"), "state": Delivery.FAILED.value},
                queued(1, "success", "oncall-mail"),
            ],
            ["1/start/oncall-mail", "1/success/pager", "1/success/oncall-mail"],
            id="mixed",
        ),
        pytest.param([sent(2, "start", "team-chat")], [], id="all-sent"),
    ],
)
def test_pending(ledger: list[dict[str, Any]], ids: list[str]) -> None:
    got = pending(ledger)
    assert [e["id"] for e in got] == ids
    if got:
        got[0]["state"] = "Sent"
        assert any(e["state"] == "Pending" and e["id"] == ids[0] for e in ledger)


LEDGER = [queued(2, "start", "team-chat"), queued(2, "start", "oncall-mail")]


@pytest.mark.parametrize(
    ("key", "changes", "expected"),
    [
        pytest.param(
            "2/start/team-chat",
            {"state": "Sent", "sentAt": T1, "attempts": 1},
            [
                {**queued(2, "start", "team-chat"), "state": "Sent", "sentAt": T1, "attempts": 1},
                queued(2, "start", "oncall-mail"),
            ],
            id="one-entry",
        ),
        pytest.param(
            "2/start/oncall-mail",
            {"lastError": "Notification oncall-mail not found in namespace ci"},
            [
                queued(2, "start", "team-chat"),
                missing(2, "start", "oncall-mail"),
            ],
            id="add-a-field",
        ),
        pytest.param(
            "9/start/team-chat", {"state": "Sent"}, LEDGER, id="unknown-id-changes-nothing"
        ),
    ],
)
def test_update(key: str, changes: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    before = copy.deepcopy(LEDGER)
    assert update(LEDGER, key, **changes) == expected
    assert before == LEDGER


# --- migrate: the per-recipient format an older operator wrote --------------------------------

OLD = [
    {"id": "1/start/chat", "run": 1, "event": "start", "notification": "chat", "state": "Sent",
     "sent": 2, "failed": 0, "queuedAt": T0},
    {"id": "2/start/chat/#a", "run": 2, "event": "start", "notification": "chat",
     "recipient": "#a", "state": "Sent", "attempts": 1, "queuedAt": T0, "sentAt": T1,
     "refs": {"channel": "C1", "ts": "1.1"}},
    {"id": "2/start/chat/#b", "run": 2, "event": "start", "notification": "chat",
     "recipient": "#b", "state": "Pending", "attempts": 2, "queuedAt": T0,
     "lastError": "slack: 503", "nextAttemptAt": T1},
    {"id": "2/success/hook", "run": 2, "event": "success", "notification": "hook",
     "recipient": "", "state": "Failed", "attempts": 1, "queuedAt": T0, "lastError": "404"},
    {"id": "2/success/later", "run": 2, "event": "success", "notification": "later",
     "state": "Pending", "attempts": 0, "queuedAt": T0},
]  # fmt: skip


def test_migrate_folds_recipients_into_rows() -> None:
    assert migrate(OLD) == [
        {**OLD[0], "recipients": 2},
        {"id": "2/start/chat", "run": 2, "event": "start", "notification": "chat",
         "state": "Pending", "attempts": 2, "queuedAt": T0, "recipients": 2, "sent": 1,
         "failed": 0, "pending": [recipient_key("#b")], "sentAt": T1,
         "refs": {recipient_key("#a"): {"channel": "C1", "ts": "1.1"}},
         "lastError": "slack: 503", "nextAttemptAt": T1},
        {"id": "2/success/hook", "run": 2, "event": "success", "notification": "hook",
         "state": "Failed", "attempts": 1, "queuedAt": T0, "lastError": "404", "recipients": 1,
         "sent": 0, "failed": 1},
        OLD[4],
    ]  # fmt: skip


def test_migrate_leaves_rows_alone() -> None:
    rows = migrate(OLD)
    assert migrate(rows) == rows
