"""The Alertmanager provider against a real Alertmanager built from its Go module: a failure's
alert appears in `GET /api/v2/alerts` with the job's labels and an explicit end (no
resolve_timeout expiry), the next success resolves it (from a fresh sender, as after a restart);
basic auth from its web config, a wrong password a permanent error, masked."""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.alertmanager import AlertmanagerProvider
from deploybell.notify.providers.base import Destination, PermanentDeliveryError
from tests.support.peers.alertmanager import AlertmanagerServer

PASSWORD = "am-basic-password"
# bcrypt (cost 4) of PASSWORD, as Alertmanager's web config takes it.
WEB_CONFIG = """\
basic_auth_users:
  deploybell: $2b$04$oZ.OXmHH72cxsF36bnYizuOkEC/7lu3dNSr9w.vIEgCCvHeiXSnIi
"""
BASIC = {"Authorization": "Basic " + base64.b64encode(f"deploybell:{PASSWORD}".encode()).decode()}


@pytest.fixture(scope="module")
def server() -> Iterator[AlertmanagerServer]:
    with AlertmanagerServer() as running:
        yield running


def target(url: str, **secret: str) -> Destination:
    options: dict[str, Any] = {"severity": "page", "labels": {"team": "platform"}, "firingHours": 2}
    return Destination(
        type="alertmanager", recipient="", options=options, secret={"url": url, **secret}
    )


async def send(event: str, destination: Destination, **changes: Any) -> str:
    provider = AlertmanagerProvider()  # a fresh sender each time: nothing kept in memory
    try:
        message = dataclasses.replace(sample(event), **changes)
        return (await provider.send(message, destination)).detail
    finally:
        await provider.close()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def test_a_failure_fires_and_the_next_success_resolves(server: AlertmanagerServer) -> None:
    failed_at = now()
    await send("failure", target(server.url), job="api", finished_at=failed_at)
    [alert] = [a for a in server.alerts() if a["labels"]["deployjob"] == "api"]
    assert alert["labels"] == {
        "alertname": "DeployJobFailed",
        "namespace": "team-a",
        "deployjob": "api",
        "environment": "production",
        "cluster": "prod-eu",
        "severity": "page",
        "team": "platform",
    }
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["summary"] == "✖ team-a/api failed on prod-eu (run 3)"
    assert alert["startsAt"].startswith(failed_at[:-1])
    # An explicit end firingHours later, not Alertmanager's 5-minute resolve_timeout.
    hours = int(alert["endsAt"][11:13]) - int(failed_at[11:13])
    assert hours % 24 == 2, alert["endsAt"]
    await send("start", target(server.url), job="api", run=4)  # nothing sent
    await send("cancel", target(server.url), job="api", run=4)  # a cancel leaves it firing
    assert [a["labels"]["deployjob"] for a in server.alerts()].count("api") == 1
    await send("success", target(server.url), job="api", run=5, finished_at=now())
    assert [a for a in server.alerts() if a["labels"]["deployjob"] == "api"] == []


async def test_basic_auth_from_alertmanagers_web_config() -> None:
    with AlertmanagerServer(web_config=WEB_CONFIG) as guarded:
        with pytest.raises(PermanentDeliveryError) as caught:
            await send("failure", target(guarded.url, username="deploybell", password="wrong-pw-1"))
        assert "HTTP 401" in caught.value.message
        assert "wrong-pw-1" not in caught.value.message
        ok = target(guarded.url, username="deploybell", password=PASSWORD)
        await send("failure", ok, job="guarded", finished_at=now())
        assert [a["labels"]["deployjob"] for a in guarded.alerts(BASIC)] == ["guarded"]


def test_a_notify_test_message_has_labels_of_its_own() -> None:
    from deploybell.notify.providers.alertmanager import labels
    from deploybell.tools.notify_test import labelled_message

    test = labelled_message("team-a", "web", "success")
    assert labels(test, {})["deploybell_test"] == "true"
    assert "deploybell_test" not in labels(sample("success"), {})
