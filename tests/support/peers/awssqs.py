"""A local Amazon SQS endpoint speaking the JSON protocol (AWS JSON 1.0), as the SDKs call it
since 2023: `POST /` with `X-Amz-Target: AmazonSQS.SendMessage`, the queue in `QueueUrl`.

ElasticMQ, the SQS-compatible server one could run here, does not check credentials or
signatures at all (its maintainers: "these are not checked"); this peer does, as SQS does.
What it enforces, from SQS's API reference and its Signature Version 4 documentation:
- every request signed (`Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
  Signature=…`): the signature recomputed here from the request as received (canonical request,
  string to sign, the derived key) must match; the scope must be this region and `sqs`; the
  `X-Amz-Date` within 15 minutes; `host` and `x-amz-date` signed; an unknown access key or a
  missing or wrong session token refused;
- SendMessage: a known `QueueUrl`; `MessageBody` of 1 to 262,144 bytes; on a FIFO queue a
  `MessageGroupId` and (no content-based deduplication) a `MessageDeduplicationId`, each 1-128
  printable ASCII characters; neither id's deduplication on a standard queue; a repeated
  deduplication id within 5 minutes accepted but not delivered again;
- errors as JSON-protocol services answer them: HTTP 400, `{"__type": "<namespace>#<Code>",
  "message": …}` and the `x-amzn-query-error` header; `throttle_next` scripts
  `RequestThrottled`, which names no wait.
Answers `{"MD5OfMessageBody", "MessageId"}` (and a `SequenceNumber` on FIFO queues).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpPeer
from tests.support.peers.contract import PeerContract, texts
from tests.support.peers.webhook import cloudevent_problems

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
MAX_BODY = 262_144
DEDUP_SECONDS = 300
SKEW_SECONDS = 15 * 60
_SQS = "com.amazonaws.sqs#"
_CORAL = "com.amazon.coral.service#"
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})"
)
_ID = re.compile(r"[\x21-\x7e]{1,128}")


class SqsError(Exception):
    def __init__(self, code: str, message: str, namespace: str = _SQS) -> None:
        super().__init__(message)
        self.code, self.message, self.namespace = code, message, namespace


@dataclass
class Queue:
    name: str
    content_based: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)  # delivered, oldest first
    seen: dict[str, float] = field(default_factory=dict)  # deduplication id → when

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")


@dataclass(frozen=True)
class SqsRequest:
    """One request as received, what it asked and what the peer answered."""

    headers: dict[str, str]
    body: Any
    status: int
    code: str  # the error code answered ("" on success)


class SqsPeer(HttpPeer[SqsRequest]):
    """Queues `deploys` (standard) and `deploys.fifo`, one account, one IAM key."""

    def __init__(self, session_token: str = "", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.session_token = session_token
        self.queues = {n: Queue(n) for n in ("deploys", "deploys.fifo")}
        self._lock = threading.Lock()
        self._sequence = 10**19

    def queue_url(self, name: str) -> str:
        return f"{self.base_url}/{ACCOUNT}/{name}"

    def delivered(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.queues[name].messages)

    def throttle_next(self, count: int = 1) -> None:
        body = {"__type": f"{_SQS}RequestThrottled", "message": "Rate exceeded"}
        self.respond_next(
            count, 400, body=json.dumps(body), headers=_query_error("RequestThrottled")
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        scripted = self._scripted()
        if scripted is not None:
            self._record(SqsRequest(headers, body, scripted.status, "scripted"))
            return scripted.text_response()
        try:
            verify(request, raw, self.session_token)
            answer = self._send(request, body)
        except SqsError as e:
            self._record(SqsRequest(headers, body, 400, e.code))
            error = {"__type": f"{e.namespace}{e.code}", "message": e.message}
            return web.json_response(error, status=400, headers=_query_error(e.code))
        self._record(SqsRequest(headers, body, 200, ""))
        return web.Response(text=json.dumps(answer), content_type="application/x-amz-json-1.0")

    def _send(self, request: web.Request, body: Any) -> dict[str, Any]:
        if request.method != "POST" or request.path != "/":
            raise SqsError("InvalidAction", "The action or operation requested is invalid.")
        if request.headers.get("X-Amz-Target") != "AmazonSQS.SendMessage":
            raise SqsError("UnknownOperationException", "Unknown operation.", _CORAL)
        if request.content_type != "application/x-amz-json-1.0" or not isinstance(body, dict):
            raise SqsError(
                "SerializationException",
                "Start of structure or map found where not expected.",
                _CORAL,
            )
        queue = self._queue(str(body.get("QueueUrl", "")))
        text = body.get("MessageBody")
        for problem in message_problems(body, queue.fifo, queue.content_based):
            raise SqsError(*problem)
        assert isinstance(text, str)
        md5 = hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()
        answer: dict[str, Any] = {"MD5OfMessageBody": md5, "MessageId": str(uuid.uuid4())}
        with self._lock:
            if queue.fifo:
                self._sequence += 1
                answer["SequenceNumber"] = str(self._sequence)
                dedup = (
                    body.get("MessageDeduplicationId") or hashlib.sha256(text.encode()).hexdigest()
                )
                now = time.monotonic()
                if now - queue.seen.get(dedup, -DEDUP_SECONDS - 1) < DEDUP_SECONDS:
                    return answer  # accepted, not delivered again
                queue.seen[dedup] = now
            queue.messages.append({**body, "MessageId": answer["MessageId"]})
        return answer

    def _queue(self, url: str) -> Queue:
        prefix = f"{self.base_url}/{ACCOUNT}/"
        name = url[len(prefix) :] if url.startswith(prefix) else ""
        if name not in self.queues:
            raise SqsError("QueueDoesNotExist", "The specified queue does not exist.")
        return self.queues[name]


def message_problems(
    body: dict[str, Any], fifo: bool, content_based: bool
) -> list[tuple[str, str]]:
    """(code, message) for each reason SendMessage refuses this body on such a queue."""
    text = body.get("MessageBody")
    if not isinstance(text, str) or not text:
        return [("MissingParameter", "The request must contain the parameter MessageBody.")]
    out = []
    if len(text.encode("utf-8")) > MAX_BODY:
        out.append(
            (
                "InvalidParameterValue",
                "One or more parameters are invalid. "
                f"Reason: Message must be shorter than {MAX_BODY} bytes.",
            )
        )
    group, dedup = body.get("MessageGroupId"), body.get("MessageDeduplicationId")
    if fifo and group is None:
        out.append(("MissingParameter", "The request must contain the parameter MessageGroupId."))
    if fifo and dedup is None and not content_based:
        out.append(
            (
                "InvalidParameterValue",
                "The queue should either have ContentBasedDeduplication enabled or "
                "MessageDeduplicationId provided explicitly",
            )
        )
    if not fifo and dedup is not None:
        out.append(
            (
                "InvalidParameterValue",
                "The request include parameter that is not valid for this queue type",
            )
        )
    for name, value in (("MessageGroupId", group), ("MessageDeduplicationId", dedup)):
        if value is not None and not (isinstance(value, str) and _ID.fullmatch(value)):
            out.append(
                ("InvalidParameterValue", f"Value {value!r} for parameter {name} is invalid.")
            )
    return out


def verify(request: web.Request, body: bytes, session_token: str) -> None:
    """Signature Version 4 as SQS checks it, recomputed from the request as received."""
    found = _AUTH.fullmatch(request.headers.get("Authorization", ""))
    if found is None:
        raise SqsError(
            "MissingAuthenticationTokenException", "Request is missing Authentication Token", _CORAL
        )
    key, day, region, service, signed, signature = found.groups()
    if key != ACCESS_KEY:
        raise SqsError(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            _CORAL,
        )
    if session_token and request.headers.get("X-Amz-Security-Token") != session_token:
        raise SqsError(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            _CORAL,
        )
    names = signed.split(";")
    if "host" not in names or "x-amz-date" not in names:
        raise SqsError(
            "IncompleteSignatureException", "Host and X-Amz-Date must be signed.", _CORAL
        )
    if session_token and "x-amz-security-token" not in names:
        raise SqsError(
            "IncompleteSignatureException", "X-Amz-Security-Token must be signed.", _CORAL
        )
    stamp = request.headers.get("X-Amz-Date", "")
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SqsError(
            "IncompleteSignatureException", "X-Amz-Date is not ISO 8601 basic format.", _CORAL
        ) from None
    if abs((datetime.now(UTC) - when).total_seconds()) > SKEW_SECONDS or stamp[:8] != day:
        raise SqsError("InvalidSignatureException", "Signature expired or not yet current.", _CORAL)
    if (region, service) != (REGION, "sqs"):
        raise SqsError(
            "InvalidSignatureException",
            "Credential should be scoped to a valid region and service sqs, "
            f"not '{region}/{service}'.",
            _CORAL,
        )
    canonical = "\n".join(
        [
            request.method,
            request.raw_path.split("?")[0] or "/",
            _query(request.query_string),
            *(f"{n}:{' '.join(request.headers.get(n, '').split())}" for n in names),
            "",
            signed,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = (
        f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    derived = f"AWS4{SECRET_KEY}".encode()
    for part in (day, region, service, "aws4_request"):
        derived = hmac.new(derived, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(derived, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise SqsError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
            _CORAL,
        )


def _query(raw: str) -> str:
    pairs = [p.partition("=") for p in raw.split("&") if p]
    return "&".join(f"{k}={v}" for k, _, v in sorted(pairs))


def _query_error(code: str) -> dict[str, str]:
    return {"x-amzn-query-error": f"AWS.SimpleQueueService.{code};Sender"}


class AwssqsContract(PeerContract[SqsPeer]):
    """The FIFO queue: every event of a run in one group, each delivered once."""

    rate_limits = False  # SQS throttles with RequestThrottled, which names no wait

    def __init__(self) -> None:
        super().__init__(SqsPeer())

    def secret(self) -> dict[str, str]:
        return {
            "queueUrl": self.peer.queue_url("deploys.fifo"),
            "accessKeyId": ACCESS_KEY,
            "secretAccessKey": SECRET_KEY,
            "region": REGION,
        }

    def visible(self) -> list[str]:
        return [
            texts(json.loads(m["MessageBody"]).get("data"))
            for m in self.peer.delivered("deploys.fifo")
        ]

    def rate_limit_next(self, seconds: int) -> None:
        raise NotImplementedError("SQS's RequestThrottled names no wait")

    def problems(self, rendered: Any) -> list[str]:
        out = [m for _, m in message_problems(rendered, fifo=False, content_based=False)]
        try:
            event = json.loads(rendered["MessageBody"])
        except (TypeError, ValueError, KeyError):
            return [*out, "MessageBody is not JSON"]
        return out + cloudevent_problems("application/cloudevents+json", event)
