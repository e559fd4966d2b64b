"""A webhook receiver that records each request and checks what a real consumer would: the HMAC
signature and the CloudEvents 1.0 structured-mode attributes. Independent of deploybell's code.

    with WebhookPeer(hmac_key="k") as peer:
        ...send to peer.url...
        request = peer.wait_for(lambda got: got and got[-1])
        assert request.verified and request.valid, request.problems
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from tests.support.peers._http import HttpPeer, json_or_none

SIGNATURE_HEADER = "X-Deploybell-Signature"
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,20}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class WebhookRequest:
    """One request as received, with the receiver's verdicts."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    json: Any  # the parsed body, None when it is not JSON
    verified: bool | None  # the HMAC matched; None when the peer has no key
    problems: tuple[str, ...]  # why it is not a valid structured-mode CloudEvent
    status: int  # what the peer answered

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def data(self) -> Any:
        return self.json.get("data") if isinstance(self.json, dict) else None


class WebhookPeer(HttpPeer[WebhookRequest]):
    """POST `url` → 204 (or the scripted answer); any other path → 404. With `require_signature`
    (and an `hmac_key`) a request whose signature does not match is refused with 401, as a
    consumer that checks signatures would."""

    def __init__(
        self,
        hmac_key: str | None = None,
        path: str = "/hooks/deploybell",
        status: int = 204,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        require_signature: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.hmac_key = hmac_key
        self.path = path
        self.status = status
        self.require_signature = require_signature

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        hook = request.path == self.path and request.method == "POST"
        verified = self._verify(body, request.headers.get(SIGNATURE_HEADER))
        scripted = self._scripted() if hook else None
        if not hook:
            status, headers, text = 404, {}, "no such hook"
        elif self.require_signature and not verified:
            status, headers, text = 401, {}, "signature mismatch"
        elif scripted is not None:
            status, text = scripted.status, scripted.body or ""
            headers = scripted.response_headers()
        else:
            status, headers, text = self.status, {}, ""
        parsed = json_or_none(body)
        self._record(
            WebhookRequest(
                method=request.method,
                path=request.path,
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                body=body,
                json=parsed,
                verified=verified,
                problems=tuple(cloudevent_problems(request.headers.get("Content-Type"), parsed)),
                status=status,
            )
        )
        return web.Response(status=status, headers=headers, text=text or None)

    def _verify(self, body: bytes, signature: str | None) -> bool | None:
        if self.hmac_key is None:
            return None
        expected = "sha256=" + hmac.new(self.hmac_key.encode(), body, hashlib.sha256).hexdigest()
        return signature is not None and hmac.compare_digest(signature, expected)


def cloudevent_problems(content_type: str | None, event: Any) -> list[str]:
    """What makes this not a CloudEvents 1.0 structured-mode JSON event (empty when fine)."""
    problems = []
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/cloudevents+json":
        problems.append(f"Content-Type is {content_type!r}")
    if not isinstance(event, dict):
        return [*problems, "the body is not a JSON object"]
    if event.get("specversion") != "1.0":
        problems.append(f"specversion is {event.get('specversion')!r}")
    for name in ("id", "source", "type"):
        if not isinstance(event.get(name), str) or not event[name]:
            problems.append(f"required attribute {name} is missing or empty")
    for name in ("subject", "datacontenttype", "time"):
        if name in event and (not isinstance(event[name], str) or not event[name]):
            problems.append(f"optional attribute {name} must be a non-empty string")
    problems += [f"attribute name {n!r} is not [a-z0-9]{{1,20}}" for n in event if not _name(n)]
    if isinstance(event.get("source"), str) and re.search(r"[\s\x00-\x1f]", event["source"]):
        problems.append("source is not a URI-reference")
    if isinstance(event.get("time"), str) and not _timestamp(event["time"]):
        problems.append(f"time {event['time']!r} is not RFC 3339")
    return problems


def _name(name: str) -> bool:
    return bool(_ATTRIBUTE_NAME.fullmatch(name))


def _timestamp(value: str) -> bool:
    if not _RFC3339.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
