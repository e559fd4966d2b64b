"""Counting at the receivers: per job, which events arrived and how often, in arrival order.

A tally is taken from what each real peer recorded (the webhook receiver, the SMTP server, an IRC
listener), never from the operator's own ledger, so it shows what people would have seen.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.support.cluster import ClusterAccess
from tests.support.deploybell import webhook_events
from tests.support.peers.irc import IrcListener
from tests.support.peers.smtp import SmtpPeer
from tests.support.peers.webhook import WebhookPeer

IRC_VERBS = {"started": "start", "succeeded": "success", "failed": "failure", "canceled": "cancel"}


def job_names(count: int) -> list[str]:
    return [f"app-{i:02d}" for i in range(count)]


def statuses(cluster: ClusterAccess, namespace: str) -> dict[str, dict[str, Any]]:
    """Every DeployJob's status in the namespace, by name."""
    items = json.loads(cluster.kubectl("get", "dj", "-n", namespace, "-o", "json"))["items"]
    return {i["metadata"]["name"]: i.get("status") or {} for i in items}


def sent_events(status: dict[str, Any], notification: str | None = None) -> set[str]:
    """The events whose ledger entries are Sent (for one Notification, or any)."""
    return {
        e["event"]
        for e in status.get("notifications") or []
        if e.get("state") == "Sent" and notification in (None, e.get("notification"))
    }


@dataclass
class Tally:
    """What one receiver got: a job's expected event missing is lost, one too many a duplicate."""

    receiver: str
    jobs: int = 0
    lost: int = 0
    duplicates: int = 0
    misordered: list[str] = field(default_factory=list)  # jobs whose outcome came before start
    keys_differ: list[str] = field(default_factory=list)  # duplicates with another idempotency key

    def __str__(self) -> str:
        return (
            f"{self.receiver}: {self.jobs} jobs, lost={self.lost}, duplicates={self.duplicates}, "
            f"outcome before start={len(self.misordered)}"
        )


def tally(
    receiver: str,
    arrivals: dict[str, list[tuple[str, str]]],
    outcome: str = "success",
) -> Tally:
    """`arrivals`: job → (event, idempotency key) in arrival order; each job expects one start
    and one `outcome`."""
    result = Tally(receiver, jobs=len(arrivals))
    for job, got in arrivals.items():
        keys = collections.defaultdict(list)
        for event, key in got:
            keys[event].append(key)
        for event in ("start", outcome):
            count = len(keys.get(event, []))
            result.lost += count == 0
            result.duplicates += max(count - 1, 0)
            if len(set(keys.get(event, []))) > 1:
                result.keys_differ.append(f"{job}/{event}")
        order = [event for event, _ in got]
        if "start" in order and outcome in order and order.index(outcome) < order.index("start"):
            result.misordered.append(job)
    return result


def webhook_arrivals(
    peer: WebhookPeer, namespace: str, names: Iterable[str]
) -> dict[str, list[tuple[str, str]]]:
    """CloudEvents by job; the key is the event `id`."""
    return {
        name: [
            (e["type"].rsplit(".", 1)[1], e["id"]) for e in webhook_events(peer, namespace, name)
        ]
        for name in names
    }


def mail_arrivals(
    peer: SmtpPeer, namespace: str, names: Iterable[str], rcpt: str
) -> dict[str, list[tuple[str, str]]]:
    """Mails to `rcpt` by job (the X-Deploybell-Job header); the key is the Message-ID."""
    mails = [m for m in peer.received if rcpt in m.rcpt_tos]
    return {
        name: [
            (str(m.message["X-Deploybell-Event"]), str(m.message["Message-ID"]))
            for m in mails
            if m.message["X-Deploybell-Job"] == f"{namespace}/{name}"
        ]
        for name in names
    }


def irc_arrivals(
    listener: IrcListener, channel: str, namespace: str, names: Iterable[str]
) -> dict[str, list[tuple[str, str]]]:
    """Lines in `channel` by job, read from their words ("<ns>/<job> succeeded on ..."); IRC has
    no idempotency key, so the key is the text itself."""
    result: dict[str, list[tuple[str, str]]] = {}
    heard = [h for h in listener.heard if h.target.lower() == channel.lower()]
    for name in names:
        ref = f"{namespace}/{name} "
        result[name] = [
            (IRC_VERBS[h.text.split(ref, 1)[1].split(" ", 1)[0]], h.text)
            for h in heard
            if ref in h.text and h.text.split(ref, 1)[1].split(" ", 1)[0] in IRC_VERBS
        ]
    return result
