"""The ledger stays bounded: recipient keys instead of addresses, provider references only while
an outcome may still edit its start, finished runs as counts; sizes at the schema's maximum."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from deploybell.deploy.run import Phase, RunState, Trigger
from deploybell.deploy.status import JobStatus
from deploybell.notify import ledger
from deploybell.notify.ledger import ERROR_LIMIT, Due, add_event, compact, expand, sent

T = "2026-11-27T10:00:00Z"
NOW = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)
KIB = 1024

# The CRD's maxima: 20 Notifications per hook (names of 63 characters), 50 recipients each (of
# 320 characters), 500 manifests. onStart names 20; an outcome names up to 40 (its own hook
# and `always`, which are told once each). References as the largest kept type writes them
# (Mattermost: a channel and a post id of 26 characters each).
NAME = 63
START = [f"s{i:02d}".ljust(NAME, "x") for i in range(20)]
OUTCOME = [f"o{i:02d}".ljust(NAME, "x") for i in range(20)] + [
    f"a{i:02d}".ljust(NAME, "x") for i in range(20)
]
RECIPIENTS = [f"{i:02d}".ljust(308, "x") + "@example.com" for i in range(50)]
REFS = {"channel": "c" * 26, "post": "p" * 26}
K = ledger.recipient_key(RECIPIENTS[0])


def size(value: Any) -> int:
    """Bytes as the API server stores and `kubectl get -o json` prints them (compact JSON)."""
    return len(json.dumps(value, separators=(",", ":")))


def record(rows: list[dict[str, Any]], run: int, event: str, names: list[str]) -> list:
    """`event` recorded and expanded for every Notification, as the runner does in one write."""
    rows = add_event(rows, run, event, names, T)
    for name in names:
        rows = expand(rows, ledger.entry_id(run, event, name), RECIPIENTS)
    return rows


def deliver(rows: list[dict[str, Any]], run: int, event: str, refs: Any = None) -> list:
    """Every pending key of `run`'s `event` rows sent, then compacted as the outbox does."""
    out = []
    for row in rows:
        if row["run"] == run and row["event"] == event and row["state"] == "Pending":
            wave = int(row["attempts"])
            for key in list(row["pending"]):
                row = sent(row, Due(row["id"], key, wave), NOW, refs)
        out.append(row)
    return compact(out)


def failing(rows: list[dict[str, Any]]) -> list:
    """Every pending row retried with an error of the longest kept length (an outage)."""
    return [
        {**r, "attempts": 9, "lastError": "e" * ERROR_LIMIT, "nextAttemptAt": T}
        if r["state"] == "Pending"
        else r
        for r in rows
    ]


def test_finished_runs_keep_counts_not_references() -> None:
    rows = deliver(record([], 1, "start", ["chat"]), 1, "start", {"post": "p1"})
    assert rows[0]["refKeys"] == ["post"]
    assert rows[0]["refs"] == {ledger.recipient_key(r): ["p1"] for r in RECIPIENTS}, (
        "the start keeps what its outcome edits, as values in refKeys' order"
    )
    assert ledger.start_refs(rows, {**rows[0], "event": "success"}, K) == {"post": "p1"}
    rows = deliver(record(rows, 1, "success", ["chat"]), 1, "success")
    assert rows == [
        {"id": "1/start/chat", "run": 1, "event": "start", "notification": "chat",
         "state": "Sent", "attempts": 1, "queuedAt": T, "recipients": 50, "sent": 50,
         "failed": 0, "sentAt": "2026-11-27T10:00:05Z"},
        {"id": "1/success/chat", "run": 1, "event": "success", "notification": "chat",
         "state": "Sent", "attempts": 1, "queuedAt": T, "recipients": 50, "sent": 50,
         "failed": 0, "sentAt": "2026-11-27T10:00:05Z"},
    ]  # fmt: skip


def test_a_run_still_delivering_keeps_its_references() -> None:
    rows = deliver(record([], 1, "start", ["chat"]), 1, "start", REFS)
    rows = record(rows, 1, "failure", ["chat"])
    assert compact(rows) == rows
    assert compact(rows, 2) == rows, "not even once a newer run exists"


def test_the_ledger_at_the_schema_maximum() -> None:
    """Every moment of five runs at the maximum, receivers failing and then delivering."""
    rows: list[dict[str, Any]] = []
    moments: dict[str, int] = {}
    for run in range(1, 6):
        rows = failing(record(rows, run, "start", START))
        moments[f"run {run}: starts failing"] = size(rows)
        rows = failing(record(rows, run, "success", OUTCOME))
        moments[f"run {run}: outcome recorded, starts failing"] = size(rows)
        rows = failing(deliver(rows, run, "start", REFS))
        moments[f"run {run}: starts sent, outcomes failing"] = size(rows)
        rows = deliver(rows, run, "success")
        moments[f"run {run}: all sent"] = size(rows)
    worst = max(moments, key=lambda m: moments[m])
    print(f"\nledger at the maximum: worst {moments[worst] / KIB:.0f} KiB ({worst}); "
          f"settled {moments['run 5: all sent'] / KIB:.0f} KiB")  # fmt: skip
    assert moments[worst] <= 140 * KIB
    assert moments["run 5: all sent"] <= 40 * KIB
    assert {r["run"] for r in rows} == {5}, "a run that delivered everything is history"


def test_a_new_user_redeploying_ten_times_stays_small() -> None:
    """The issue's trial: 300 objects, 5 e-mail Notifications x 20 recipients, 10 runs (it was
    533 KB with three runs of per-recipient entries kept)."""
    mail = [f"mail-{n}" for n in range(5)]
    status = JobStatus(
        state=RunState(10, Phase.SUCCEEDED, Trigger(10), T, T, "RolloutComplete", "ok", "r"),
        resources=[
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "namespace": "team-a",
                "name": f"service-{i:03d}",
                "status": "Current",
                "message": f"Deployment service-{i:03d} is available: 3 of 3 replicas",
            }
            for i in range(300)
        ],
    )
    rows: list[dict[str, Any]] = []
    for run in range(1, 11):
        for event in ("start", "success"):
            rows = add_event(rows, run, event, mail, T)
            for name in mail:
                key = ledger.entry_id(run, event, name)
                rows = expand(rows, key, [f"dev{i}@example.com" for i in range(20)])
            rows = deliver(rows, run, event)  # e-mail keeps no references
    status.notifications = rows
    total, ledger_size = size({"status": status.full(10)}), size(rows)
    print(f"\nstatus after 10 runs: {total / KIB:.0f} KiB, of it the ledger {ledger_size} B")
    assert ledger_size <= 8 * KIB
    assert total <= 64 * KIB
