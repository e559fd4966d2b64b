"""The webhook provider against a real local receiver that checks CloudEvents and the HMAC."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    Title,
)
from deploybell.notify.providers.webhook import WebhookProvider
from tests.support.peers.webhook import WebhookPeer, WebhookRequest

HMAC_KEY = "whsec-0123456789abcdef"
AUTHORIZATION = "Bearer hook-token-5f3c9a"
HOOK_PATH = "/hooks/T0123/s3cr3t-hook-path"


@pytest.fixture
def peer() -> Iterator[WebhookPeer]:
    with WebhookPeer(hmac_key=HMAC_KEY, path=HOOK_PATH) as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[WebhookProvider]:
    webhook = WebhookProvider()
    yield webhook
    await webhook.close()


def destination(secret: Mapping[str, str], options: Mapping[str, Any] | None = None) -> Destination:
    return Destination(type="webhook", recipient="", options=options or {}, secret=secret)


def last(peer: WebhookPeer) -> WebhookRequest:
    request: WebhookRequest = peer.wait_for(lambda got: got and got[-1], what="a webhook request")
    return request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_delivers_a_signed_cloudevent(peer: WebhookPeer, provider: WebhookProvider) -> None:
    message = sample("failure")
    sent = await provider.send(message, destination({"url": peer.url, "hmacKey": HMAC_KEY}))

    assert sent.detail == "HTTP 204"
    request = last(peer)
    assert request.valid, request.problems
    assert request.verified is True
    assert request.headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    event = request.json
    assert event["type"] == "io.deploybell.deployjob.failure"
    assert event["id"] == "3/failure/deploy-notification/#deploys"
    assert event["subject"] == "team-a/web"
    assert event["source"] == "/deploybell/prod-eu/namespaces/team-a/deployjobs/web"
    assert event["time"] == "2026-11-27T10:01:05Z"
    assert event["data"] == json.loads(json.dumps(message.as_data()))
    assert event["data"]["pods"][0]["exit_code"] == 1


async def test_every_event_type(peer: WebhookPeer, provider: WebhookProvider) -> None:
    for event in ("start", "success", "failure", "cancel"):
        await provider.send(sample(event), destination({"url": peer.url, "hmacKey": HMAC_KEY}))
    requests = peer.wait_for(lambda got: len(got) == 4 and got, what="four events")
    assert [r.json["type"] for r in requests] == [
        f"io.deploybell.deployjob.{e}" for e in ("start", "success", "failure", "cancel")
    ]
    assert all(r.valid and r.verified for r in requests), [r.problems for r in requests]


async def test_a_wrong_or_missing_key_does_not_verify(
    peer: WebhookPeer, provider: WebhookProvider
) -> None:
    await provider.send(sample("success"), destination({"url": peer.url, "hmacKey": "other"}))
    await provider.send(sample("success"), destination({"url": peer.url}))
    wrong, unsigned = peer.wait_for(lambda got: len(got) == 2 and got, what="two requests")
    assert wrong.verified is False
    assert unsigned.verified is False
    assert "X-Deploybell-Signature" not in unsigned.headers


async def test_authorization_and_extra_headers(
    peer: WebhookPeer, provider: WebhookProvider
) -> None:
    secret = {
        "url": peer.url + "\n",  # `echo` into a Secret leaves a newline
        "authorization": AUTHORIZATION,
        "headers": '{"X-Team": "team-a", "X-Env": "from-secret"}',
    }
    options = {"headers": {"X-Env": "from-options", "X-Only-Options": "yes"}}
    await provider.send(sample("start"), destination(secret, options))

    headers = last(peer).headers
    assert headers["Authorization"] == AUTHORIZATION
    assert headers["X-Team"] == "team-a"
    assert headers.getall("X-Env") == ["from-secret"]  # the Secret wins, sent once
    assert headers["X-Only-Options"] == "yes"


async def test_headers_as_lines(peer: WebhookPeer, provider: WebhookProvider) -> None:
    secret = {"url": peer.url, "headers": "X-One: 1\n\nX-Two:  two words \n"}
    await provider.send(sample("start"), destination(secret))
    headers = last(peer).headers
    assert (headers["X-One"], headers["X-Two"]) == ("1", "two words")


@pytest.mark.parametrize(
    ("secret", "options", "named"),
    [
        ({"headers": "no colon here"}, {}, "Secret key 'headers': line 1"),
        ({"headers": "{not json"}, {}, "Secret key 'headers' is not a valid JSON object"),
        ({"headers": '{"X-A": 1}'}, {}, "Secret key 'headers' must map header names to strings"),
        (
            {"headers": "Bad Name: x"},
            {},
            "Secret key 'headers': must be an HTTP header name, got 'Bad Name'",
        ),
        (
            {},
            {"headers": {"Content-Type": "text/plain"}},
            "Content-Type: is set by deploybell and cannot be configured",
        ),
        ({}, {"headers": {"X-A": "a\r\nX-B: b"}}, "X-A: must not contain line breaks"),
    ],
)
async def test_bad_headers_are_permanent_and_name_the_key(
    peer: WebhookPeer,
    provider: WebhookProvider,
    secret: dict[str, str],
    options: dict[str, Any],
    named: str,
) -> None:
    with pytest.raises(PermanentDeliveryError, match="webhook") as caught:
        await provider.send(sample("start"), destination({"url": peer.url, **secret}, options))
    assert named in caught.value.message
    assert peer.received == []


@pytest.mark.parametrize("url", ["", "ftp://files.example/hook-secret", "hooks.example/s3cr3t"])
async def test_bad_url_is_permanent_and_not_shown(provider: WebhookProvider, url: str) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination({"url": url} if url else {}))
    assert caught.value.message == (
        "webhook: Secret key 'url' must be an absolute http:// or https:// URL"
    )


async def test_template_overrides_reach_the_body(
    peer: WebhookPeer, provider: WebhookProvider
) -> None:
    override = Title(title='"Quoted" title', text="line 1\nline 2 ✓")
    await provider.send(sample("success"), destination({"url": peer.url}), override)
    data = last(peer).data
    assert (data["title"], data["summary"]) == ('"Quoted" title', "line 1\nline 2 ✓")


async def test_hostile_text_stays_valid_json(peer: WebhookPeer, provider: WebhookProvider) -> None:
    hostile = 'he said "hi"\n\t}{\\ \u2028 \x00 🚀 \udc80'
    message = dataclasses.replace(sample("failure"), message=hostile)
    await provider.send(message, destination({"url": peer.url, "hmacKey": HMAC_KEY}))
    request = last(peer)
    assert request.valid, request.problems
    assert request.verified is True
    assert request.data["message"] == hostile


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [(429, "7", 7.0), (503, "120", 120.0), (500, None, None), (502, None, None)],
)
async def test_rate_limits_and_server_errors_are_temporary(
    peer: WebhookPeer,
    provider: WebhookProvider,
    status: int,
    retry_after: str | None,
    expected: float | None,
) -> None:
    peer.respond_next(1, status, retry_after=retry_after, body="busy")
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination({"url": peer.url}))
    assert caught.value.retry_after == expected
    assert f"HTTP {status}" in caught.value.message
    assert "busy" in caught.value.message
    # The same provider (and session) delivers once the receiver recovers.
    assert (await provider.send(sample("start"), destination({"url": peer.url}))).detail == (
        "HTTP 204"
    )


async def test_retry_after_as_an_http_date(peer: WebhookPeer, provider: WebhookProvider) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    peer.respond_next(1, 429, retry_after=when)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination({"url": peer.url}))
    assert caught.value.retry_after is not None
    assert 30 < caught.value.retry_after <= 90


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 302])
async def test_client_errors_are_permanent_and_masked(
    peer: WebhookPeer, provider: WebhookProvider, status: int
) -> None:
    # A receiver that echoes what it got must not make deploybell leak it.
    echo = f"rejected {peer.url} with {AUTHORIZATION} " + "x" * 500
    # A 302 back to the hook itself would be a second request if redirects were followed.
    peer.respond_next(1, status, body=echo, headers={"Location": peer.url})
    secret = {"url": peer.url, "authorization": AUTHORIZATION, "hmacKey": HMAC_KEY}
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("failure"), destination(secret))

    text = caught.value.message
    assert text.startswith(f"webhook: HTTP {status}")
    assert "rejected" in text
    for leak in ("s3cr3t", "hook-token", HOOK_PATH, peer.url, HMAC_KEY):
        assert leak not in text, text
    assert len(text) < 400
    assert len(peer.received) == 1  # not retried, no redirect followed


async def test_unreachable_receiver_is_temporary_without_the_url(
    provider: WebhookProvider,
) -> None:
    url = f"http://127.0.0.1:{free_port()}{HOOK_PATH}?token=q-secret"
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination({"url": url}))
    assert "webhook: request failed" in caught.value.message
    for leak in ("s3cr3t", "q-secret", url):
        assert leak not in caught.value.message, caught.value.message


async def test_close_then_send_again(peer: WebhookPeer, provider: WebhookProvider) -> None:
    await provider.send(sample("start"), destination({"url": peer.url}))
    await provider.close()
    await provider.close()  # idempotent
    await provider.send(sample("success"), destination({"url": peer.url}))
    requests = peer.wait_for(lambda got: len(got) == 2 and got, what="two requests")
    assert [r.json["type"].rsplit(".", 1)[1] for r in requests] == ["start", "success"]
