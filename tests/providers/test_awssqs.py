"""The awssqs provider against a local SQS JSON-protocol endpoint that recomputes every
Signature Version 4: FIFO grouping and deduplication by the idempotency key, the webhook's
CloudEvent as the body, the 256 KiB limit, and SQS's errors (auth, unknown queue, throttling)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from deploybell.notify.model import PodDiagnosis, sample
from deploybell.notify.providers import awssqs, webhook
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from tests.support.peers.awssqs import ACCESS_KEY, MAX_BODY, REGION, SECRET_KEY, SqsPeer


@pytest.fixture
def peer() -> Iterator[SqsPeer]:
    with SqsPeer(session_token="FwoGZXIvYXdzEXAMPLE") as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[awssqs.AwssqsProvider]:
    sqs = awssqs.AwssqsProvider()
    yield sqs
    await sqs.close()


def destination(peer: SqsPeer, queue: str = "deploys.fifo", **secret: str) -> Destination:
    values = {
        "queueUrl": peer.queue_url(queue),
        "accessKeyId": ACCESS_KEY,
        "secretAccessKey": SECRET_KEY,
        "sessionToken": peer.session_token,
        "region": REGION,
        **secret,
    }
    return Destination(type="awssqs", recipient="", options={}, secret=values)


async def test_a_runs_events_share_a_group_and_a_resend_is_not_delivered_twice(
    peer: SqsPeer, provider: awssqs.AwssqsProvider
) -> None:
    start, success = sample("start"), sample("success")
    await provider.send(start, destination(peer))
    await provider.send(success, destination(peer))
    again = awssqs.AwssqsProvider()  # a restarted operator re-sends the outcome
    try:
        sent = await again.send(success, destination(peer))
    finally:
        await again.close()

    assert sent.detail.startswith("message ")  # SQS accepted the repeat...
    delivered = peer.delivered("deploys.fifo")
    assert len(delivered) == 2  # ...and delivered it once
    assert [m["MessageGroupId"] for m in delivered] == ["team-a/web", "team-a/web"]
    assert [m["MessageDeduplicationId"] for m in delivered] == [
        start.idempotency_key,
        success.idempotency_key,
    ]
    events = [json.loads(m["MessageBody"]) for m in delivered]
    assert [e["type"] for e in events] == [
        "io.deploybell.deployjob.start",
        "io.deploybell.deployjob.success",
    ]
    assert events[1] == json.loads(webhook.serialize(success))  # the webhook's CloudEvent


async def test_a_standard_queue_gets_the_event_without_fifo_ids(
    peer: SqsPeer, provider: awssqs.AwssqsProvider
) -> None:
    await provider.send(sample("failure"), destination(peer, "deploys"))

    (message,) = peer.delivered("deploys")
    assert "MessageGroupId" not in message
    assert "MessageDeduplicationId" not in message
    assert json.loads(message["MessageBody"])["id"] == sample("failure").idempotency_key


async def test_every_request_is_signed_with_the_secrets_key(
    peer: SqsPeer, provider: awssqs.AwssqsProvider
) -> None:
    await provider.send(sample("start"), destination(peer))

    (request,) = peer.received
    authorization = request.headers["Authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert f"/{REGION}/sqs/aws4_request, SignedHeaders=" in authorization
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "x-amz-security-token", "x-amz-target"} <= set(signed)
    assert request.status == 200  # the peer recomputed the signature and it matched


@pytest.mark.parametrize(
    ("secret", "code"),
    [
        ({"secretAccessKey": "not-the-key"}, "InvalidSignatureException"),
        ({"accessKeyId": "AKIAUNKNOWNKEY000000"}, "UnrecognizedClientException"),
        ({"sessionToken": ""}, "UnrecognizedClientException"),
        ({"region": "us-east-1"}, "InvalidSignatureException"),
        ({"queueUrl": "QUEUE/elsewhere"}, "QueueDoesNotExist"),
    ],
)
async def test_what_sqs_refuses_is_permanent_and_says_why_without_the_secret(
    peer: SqsPeer, provider: awssqs.AwssqsProvider, secret: dict[str, str], code: str
) -> None:
    if "queueUrl" in secret:
        secret = {"queueUrl": peer.queue_url("elsewhere")}
    with pytest.raises(PermanentDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer, **secret))

    assert f"HTTP 400 Bad Request: {code}: " in caught.value.message
    assert SECRET_KEY not in caught.value.message
    assert peer.delivered("deploys.fifo") == []


async def test_a_throttled_send_is_retried_with_the_operators_backoff(
    peer: SqsPeer, provider: awssqs.AwssqsProvider
) -> None:
    peer.throttle_next()
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), destination(peer))
    assert "RequestThrottled" in caught.value.message
    assert caught.value.retry_after is None  # SQS names no wait

    await provider.send(sample("start"), destination(peer))
    assert len(peer.delivered("deploys.fifo")) == 1


async def test_a_huge_run_is_sent_within_256_kib(
    peer: SqsPeer, provider: awssqs.AwssqsProvider
) -> None:
    huge = dataclasses.replace(
        sample("failure"),
        message="x" * 300_000,
        pods=tuple(PodDiagnosis(f"p{i}", "c", "CrashLoopBackOff", "y" * 9000) for i in range(40)),
    )
    await provider.send(huge, destination(peer))

    (message,) = peer.delivered("deploys.fifo")
    assert len(message["MessageBody"].encode()) <= MAX_BODY
    data = json.loads(message["MessageBody"])["data"]
    assert data["message"].endswith("…")
    assert len(data["pods"]) + data["pods_omitted"] == 40  # every failing pod still counted


async def test_the_peer_refuses_a_body_over_256_kib(peer: SqsPeer) -> None:
    """The limit the renderer keeps to is the one the peer enforces on a signed request."""
    endpoint = URL(peer.base_url + "/")
    body: dict[str, Any] = {
        "QueueUrl": peer.queue_url("deploys"),
        "MessageBody": "z" * (MAX_BODY + 1),
    }
    data = json.dumps(body).encode()
    keys = awssqs.Credentials(ACCESS_KEY, SECRET_KEY, peer.session_token)
    headers = awssqs.signed(endpoint, data, keys, REGION)
    async with (
        aiohttp.ClientSession() as session,
        session.post(endpoint, data=data, headers=headers) as response,
    ):
        answer = await response.json(content_type=None)
    assert response.status == 400
    assert answer["__type"] == "com.amazonaws.sqs#InvalidParameterValue"
    assert "262144 bytes" in answer["message"]


async def test_a_queue_url_without_a_region_needs_the_secrets_region(
    peer: SqsPeer, provider: awssqs.AwssqsProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match="set the Secret's `region`"):
        await provider.send(sample("start"), destination(peer, region=""))
    assert peer.received == []
