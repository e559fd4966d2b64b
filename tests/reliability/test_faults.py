"""Faults: operator crashes and receiver outages lose no notification and spam no one.

Short variants run under `make test`; `make reliability` (RELIABILITY_LONG=1) runs the long ones
(50 DeployJobs and 5 kills; a 60 s outage, 20 s in the short variant). Each test prints its figures.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import pytest

from tests.reliability.receivers import (
    irc_arrivals,
    job_names,
    mail_arrivals,
    sent_events,
    statuses,
    tally,
    webhook_arrivals,
)
from tests.support.cluster import ClusterAccess, wait_for
from tests.support.deploybell import (
    deployjob,
    deployment,
    finished,
    notification,
    secret,
    subscribed,
    wait_dj,
    webhook_secret,
)
from tests.support.operator import OperatorProcess
from tests.support.peers.irc import IrcListener, NgircdServer
from tests.support.peers.smtp import SmtpPeer
from tests.support.peers.webhook import WebhookPeer

pytestmark = pytest.mark.usefixtures("operator")
LONG = os.environ.get("RELIABILITY_LONG") == "1"


def test_operator_killed_repeatedly_mid_rollout(
    cluster: ClusterAccess,
    notification_ns: str,
    operator: OperatorProcess,
    webhook_peer: WebhookPeer,
) -> None:
    ns = notification_ns
    count, kills = (50, 5) if LONG else (16, 3)
    names = job_names(count)
    cluster.apply([subscribed(n, [deployment(n)], stabilitySeconds=4) for n in names], ns)
    killed = 0
    # Kill at progress points (a share of the runs has announced its start or finished), so each
    # kill lands while runs are in every phase: applying, verifying, delivering.
    for step in range(1, kills + 1):
        want = count * step // (kills + 1)

        def progressed(want: int = want) -> bool:
            done = sum(len(sent_events(s)) for s in statuses(cluster, ns).values())
            return done >= want

        wait_for(f"{want} messages sent", progressed, timeout=120)
        operator.kill()
        killed += 1
        operator.start()
    wait_for(
        "every run finished with its messages sent",
        lambda: (
            all(
                s.get("phase") == "Succeeded" and sent_events(s) == {"start", "success"}
                for s in statuses(cluster, ns).values()
            )
            and len(statuses(cluster, ns)) == count
        ),
        timeout=300,
    )
    webhook = tally("webhook", webhook_arrivals(webhook_peer, ns, names))
    print(
        f"\ncrash: {count} DeployJobs, {killed} SIGKILLs; {webhook}; duplicates with another "
        f"idempotency key: {len(webhook.keys_differ)}"
    )
    assert webhook.lost == 0
    assert not webhook.keys_differ, "a duplicate must carry the same idempotency key"
    assert not webhook.misordered
    final = statuses(cluster, ns)
    assert all(final[name]["run"] == 1 for name in names), "a restart must not start a new run"


# make test's short variant: long enough for every message to fail and be retried with backoff;
# make reliability holds the receivers down a full minute.
OUTAGE_SECONDS = 60.0 if LONG else 20.0
IRC_CHANNEL = "#outage"
RECEIVERS = ("deploy-notification", "mail", "irc")


def outage_notifications(
    webhook: WebhookPeer, smtp: SmtpPeer, ircd: NgircdServer, ns: str
) -> list[dict[str, Any]]:
    """A Notification per receiver: the webhook, e-mail through `smtp`, IRC on `ircd`."""
    smtp_secret = secret("smtp", {"host": smtp.host, "port": str(smtp.port)})
    mail = notification("mail", "email")
    mail["spec"].update(recipients=[f"{ns}@example.test"], secretRef={"name": "smtp"})
    irc = notification("irc", "irc")
    irc["spec"]["recipients"] = [ircd.recipient(IRC_CHANNEL)]
    return [webhook_secret(webhook), notification(), smtp_secret, mail, irc]


def to_every_receiver(name: str) -> dict[str, Any]:
    every = [{"notify": n} for n in RECEIVERS]
    return deployjob(name, [deployment(name)], onStart=every, always=every)


def all_failing(status: dict[str, Any]) -> bool:
    failing = {e["notification"] for e in status.get("notifications") or [] if e.get("lastError")}
    return status.get("phase") == "Succeeded" and failing == set(RECEIVERS)


def test_receivers_down_for_a_while_lose_nothing(
    cluster: ClusterAccess, namespace: str, webhook_peer: WebhookPeer
) -> None:
    """The webhook receiver, the SMTP server and ngircd all stop (20 s; 60 s in make reliability)
    while runs start and finish; once they are back every message arrives, once, start before
    outcome."""
    ns = namespace
    names = job_names(12 if LONG else 4)
    with SmtpPeer() as smtp, NgircdServer(penalties=False) as ircd:
        cluster.apply(outage_notifications(webhook_peer, smtp, ircd, ns), ns)
        webhook_peer.stop()
        smtp.stop()
        ircd.stop()
        down_since = time.monotonic()
        try:
            cluster.apply([to_every_receiver(n) for n in names], ns)
            for name in names:
                wait_dj(cluster, ns, name, "run done, every receiver failing", all_failing)
            wait_for(
                f"{OUTAGE_SECONDS:.0f}s of outage",
                lambda: time.monotonic() - down_since >= OUTAGE_SECONDS,
                timeout=OUTAGE_SECONDS + 5,
                interval=0.5,
            )
        finally:
            # The listener joins first, so that it hears the first line the operator sends.
            ircd.start()
            listener = IrcListener(ircd.host, ircd.port, [IRC_CHANNEL], nick="watcher").start()
            smtp.start()
            webhook_peer.start()
        down = time.monotonic() - down_since
        try:
            for name in names:
                status = wait_dj(
                    cluster,
                    ns,
                    name,
                    "delivered after the outage",
                    finished(1, "Succeeded"),
                    timeout=OUTAGE_SECONDS * 3,
                )["status"]
                for receiver in RECEIVERS:
                    assert sent_events(status, receiver) == {"start", "success"}, receiver
                # The start messages were retried through the outage; outcomes waited behind.
                starts = [e for e in status["notifications"] if e["event"] == "start"]
                assert all(e["attempts"] >= 2 for e in starts), starts
            tallies = [
                tally("webhook", webhook_arrivals(webhook_peer, ns, names)),
                tally("smtp", mail_arrivals(smtp, ns, names, f"{ns}@example.test")),
                tally("irc", irc_arrivals(listener, IRC_CHANNEL, ns, names)),
            ]
        finally:
            listener.stop()
    print(f"\noutage: receivers down {down:.0f}s; " + "; ".join(map(str, tallies)))
    for t in tallies:
        assert (t.lost, t.duplicates, t.misordered) == (0, 0, []), t


def test_slack_rate_limit_is_honoured(cluster: ClusterAccess, namespace: str) -> None:
    """Slack answers 429 with Retry-After: 3 twice: no request comes before the interval."""
    import threading

    from tests.support.peers.slack import TEST_TOKEN, SlackPeer

    with SlackPeer() as slack:
        slack.rate_limit(calls=2, retry_after=3)
        arrivals: list[float] = []
        stop = threading.Event()

        def clock() -> None:  # timestamps each request as it shows up at the peer
            while not stop.is_set():
                while len(arrivals) < len(slack.calls):
                    arrivals.append(time.monotonic())
                stop.wait(0.02)

        ticker = threading.Thread(target=clock, daemon=True)
        ticker.start()
        cluster.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "slack"},
                    "stringData": {"token": TEST_TOKEN, "apiUrl": slack.base_url},
                },
                {
                    "apiVersion": "deploybell.io/v1alpha1",
                    "kind": "Notification",
                    "metadata": {"name": "chat"},
                    "spec": {
                        "type": "slack",
                        "recipients": ["#deploys"],
                        "secretRef": {"name": "slack"},
                    },
                },
                subscribed("web", [deployment("web")], notification="chat"),
            ],
            namespace,
        )
        wait_dj(
            cluster,
            namespace,
            "web",
            "delivered after the rate limit",
            finished(1, "Succeeded"),
            timeout=120,
        )
        stop.set()
        ticker.join(5)
    statuses_ = [call.status for call in slack.calls]
    assert statuses_[:3] == [429, 429, 200], statuses_
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals[:3])]
    print(f"\nrate limit: gaps after each 429: {[f'{g:.2f}s' for g in gaps]}")
    assert all(gap >= 3.0 - 0.1 for gap in gaps), gaps
