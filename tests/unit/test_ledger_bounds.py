"""The ledger stays bounded: runs that delivered everything keep counts, not recipients."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from deploybell.deploy.run import Phase, RunState, Trigger
from deploybell.deploy.status import JobStatus
from deploybell.notify import ledger
from deploybell.notify.ledger import add_event, compact, expand, sent

T = "2026-11-27T10:00:00Z"
NOW = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)


def delivered_run(entries: list[dict], run: int, notifications: dict[str, list[str]]) -> list:
    """`run`'s start and success entries for each Notification, expanded and sent."""
    for event in ("start", "success"):
        entries = add_event(entries, run, event, list(notifications), T)
        for name, recipients in notifications.items():
            entries = expand(entries, ledger.entry_id(run, event, name), recipients)
        entries = [
            sent(e, NOW, {"messageId": f"<{e['id']}@x>"}) if e["state"] == "Pending" else e
            for e in entries
        ]
    return entries


def test_finished_earlier_runs_become_counts() -> None:
    mail = {"mail": ["a@x.io", "b@x.io", "c@x.io"]}
    first = delivered_run([], 1, mail)
    assert compact(first, 1) == first, "the latest run is never compacted"
    entries = delivered_run(first, 2, mail)  # recording run 2's events compacts run 1
    old = [e for e in entries if e["run"] == 1]
    assert old == [
        {"id": "1/start/mail", "run": 1, "event": "start", "notification": "mail",
         "state": "Sent", "sent": 3, "failed": 0, "queuedAt": T},
        {"id": "1/success/mail", "run": 1, "event": "success", "notification": "mail",
         "state": "Sent", "sent": 3, "failed": 0, "queuedAt": T},
    ]  # fmt: skip
    latest = [e for e in entries if e["run"] == 2]
    assert len(latest) == 6
    assert all(e["refs"] for e in latest), "the latest run keeps its provider references"


def test_a_run_still_delivering_keeps_its_entries() -> None:
    entries = delivered_run([], 1, {"mail": ["a@x.io", "b@x.io"]})
    entries[-1] = {**entries[-1], "state": "Pending"}
    assert compact(entries, 2) == entries


def test_a_failed_recipient_is_counted_with_its_error() -> None:
    entries = delivered_run([], 1, {"mail": ["a@x.io", "b@x.io"]})
    entries[-1] = {**entries[-1], "state": "Failed", "lastError": "550 no such user"}
    [_, outcome] = compact(entries, 2)
    assert (outcome["state"], outcome["sent"], outcome["failed"]) == ("Failed", 1, 1)
    assert outcome["lastError"] == "550 no such user"


def test_a_new_user_redeploying_ten_times_stays_small() -> None:
    """The issue's trial: 300 objects, 5 e-mail Notifications x 20 recipients, 10 runs (it was
    533 KB with three runs of per-recipient entries kept)."""
    mail = {f"mail-{n}": [f"dev{i}@example.com" for i in range(20)] for n in range(5)}
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
    for run in range(1, 11):
        status.notifications = delivered_run(status.notifications, run, mail)
    size = len(json.dumps({"status": status.full(10)}))
    print(f"\nstatus after 10 runs: {size / 1024:.0f} KiB")
    assert size <= 256 * 1024
