"""Amazon SQS: each message as the CloudEvent the `webhook` type sends, in one SendMessage call
(the JSON protocol, `X-Amz-Target: AmazonSQS.SendMessage`) signed with Signature Version 4.

On a FIFO queue (its name ends in `.fifo`) the run's messages share a `MessageGroupId` (the
DeployJob), so consumers see start before its outcome, and each carries the idempotency key as
its `MessageDeduplicationId`: a message re-sent after a lost answer or a restart is accepted but
not delivered twice within SQS's five-minute deduplication interval. A standard queue gives no
such promise; consumers drop repeats by the CloudEvent `id` (the same key).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from yarl import URL

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _answers, _bus, _http, base

MAX_BODY = 256 * 1024  # SendMessage: "the maximum is 262,144 bytes (256 KiB)"
TARGET = "AmazonSQS.SendMessage"
CONTENT_TYPE = "application/x-amz-json-1.0"
MAX_ID = 128  # MessageGroupId and MessageDeduplicationId: 1-128 printable ASCII characters
_ID = re.compile(r"[\x21-\x7e]{1,128}")
_REGION_HOST = re.compile(r"sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
# Answers SQS gives when the caller, not the message, is too fast; retried with the
# operator's backoff (SQS names no wait).
_THROTTLED = ("RequestThrottled", "ThrottlingException", "KmsThrottled")

RULES = ProviderRules(
    type="awssqs",
    title="Amazon SQS",
    doc="A CloudEvents 1.0 JSON event per message, sent to an SQS queue (FIFO queues "
    "deduplicate by the idempotency key).",
    recipients=Recipients(required=False, doc="the Secret's `queueUrl` is the destination"),
    secret_keys=(
        SecretKey("queueUrl", "The queue's URL, `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`."),
        SecretKey("accessKeyId", "The IAM access key id."),
        SecretKey("secretAccessKey", "The IAM secret access key."),
        SecretKey("sessionToken", "Temporary credentials (STS): their session token."),
        SecretKey(
            "region",
            "The queue's region, when the URL does not name it (a VPC endpoint).",
            sensitive=False,
        ),
    ),
    secret_needs=(frozenset({"queueUrl", "accessKeyId", "secretAccessKey"}),),
    setup="An IAM user or role whose policy allows only `sqs:SendMessage` on the queue's ARN "
    "(plus `kms:GenerateDataKey` and `kms:Decrypt` on its key if the queue is encrypted with a "
    "customer managed key). A FIFO queue deduplicates repeats by the idempotency key; without "
    "content-based deduplication it needs nothing more.",
)


class AwssqsProvider(_http.HttpProvider):
    """SendMessage per message, signed with the Secret's credentials."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        queue = out.url("queueUrl")
        body = send_message(out.message, out.override, str(queue), datetime.now(UTC))
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        # The JSON protocol addresses the service endpoint; the queue is named in the body.
        endpoint = queue.with_path("/")
        headers = signed(endpoint, data, credentials(out), region(out, queue))
        reply = await out.request("POST", endpoint, data=data, headers=headers)
        return answer(out, reply, body["MessageBody"])


def credentials(out: _http.Outgoing) -> Credentials:
    return Credentials(
        out.word("accessKeyId"),
        out.word("secretAccessKey"),
        out.word("sessionToken", False) or None,
    )


def region(out: _http.Outgoing, queue: URL) -> str:
    """The Secret's `region`, else the one the queue's host names."""
    given = out.destination.secret.get("region", "").strip()
    named = _REGION_HOST.fullmatch(queue.host or "")
    found = given or (named.group(1) if named else "")
    if not _REGION.fullmatch(found):
        raise base.PermanentDeliveryError(
            "awssqs: the queue's region is unknown; set the Secret's `region` (e.g. eu-west-1)"
            if not given
            else "awssqs: Secret key 'region' is not an AWS region such as eu-west-1"
        )
    return found


def signed(endpoint: URL, data: bytes, keys: Credentials, where: str) -> dict[str, str]:
    """The request's headers with its Signature Version 4 (botocore signs; aiohttp sends)."""
    request = AWSRequest(
        method="POST",
        url=str(endpoint),
        data=data,
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET},
    )
    SigV4Auth(keys, "sqs", where).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


def answer(out: _http.Outgoing, reply: _answers.Reply, message_body: str) -> base.Sent:
    """Sent with the message's id, or the error SQS's `__type` means (throttling retried)."""
    said = reply.json() if not reply.ok else None
    kind = str(said.get("__type", "")) if isinstance(said, dict) else ""
    code = kind.rsplit("#", 1)[-1]
    out.check(
        reply,
        explain=f"{code}: {_answers.vendor_message(said)}" if code else "",
        limited=code in _THROTTLED,
    )
    got = reply.json() if isinstance(reply.json(), dict) else {}
    digest = hashlib.md5(message_body.encode("utf-8"), usedforsecurity=False).hexdigest()
    if got.get("MD5OfMessageBody") != digest:
        # What botocore checks too: a body changed on the way would be a different event.
        raise base.TemporaryDeliveryError("awssqs: the queue's MD5OfMessageBody does not match")
    # Nothing is kept for later messages: each event is a message of its own.
    return base.Sent(detail=f"message {got.get('MessageId', '')} queued".replace("  ", " "))


# the request body (pure)


def send_message(
    message: Message, override: base.Title | None, queue: str, now: datetime | None
) -> dict[str, Any]:
    """SendMessage's body; on a FIFO queue with the run's group and deduplication ids."""
    body: dict[str, Any] = {"QueueUrl": queue, **_render_at(message, override, now)}
    if URL(queue).path.rstrip("/").endswith(".fifo"):
        body["MessageGroupId"] = fifo_id(f"{message.namespace}/{message.job}")
        body["MessageDeduplicationId"] = fifo_id(
            message.idempotency_key or f"{message.ref}/{message.run}/{message.event}"
        )
    return body


def fifo_id(value: str) -> str:
    """`value` when SQS takes it as an id, else its SHA-256 (same value, same id)."""
    return value if _ID.fullmatch(value) else hashlib.sha256(value.encode()).hexdigest()


def _render_at(
    message: Message, override: base.Title | None, now: datetime | None
) -> dict[str, Any]:
    event = _bus.fitted(message, override, now, MAX_BODY)
    return {"MessageBody": event.decode("utf-8")}


def _render(draft: base.Draft) -> dict[str, Any]:
    return _render_at(draft.message, draft.override, _http.preview_time(draft.message))


def _preview(preview: base.Preview) -> list[str]:
    event = json.loads(_render(preview)["MessageBody"])
    return [
        "POST / of the Secret's queueUrl host, signed with Signature Version 4 (service sqs)",
        f"Content-Type: {CONTENT_TYPE}",
        f"X-Amz-Target: {TARGET}",
        "SendMessage {QueueUrl, MessageBody} where MessageBody is this CloudEvent, sent compact;",
        "a .fifo queue also gets MessageGroupId <namespace>/<job> and",
        f"MessageDeduplicationId {fifo_id(preview.message.idempotency_key or 'x')}",
        "",
        _http.indented(event),
    ]


PROVIDER = base.ProviderType(AwssqsProvider, _render, _preview)
