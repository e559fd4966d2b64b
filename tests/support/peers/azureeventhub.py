"""A local Azure Event Hubs namespace's REST endpoint: `POST /HUB/messages` as the Event Hubs
REST reference documents it (201 and an empty body on success).

What it enforces:
- `Authorization: SharedAccessSignature sr=…&sig=…&se=…&skn=…`: a policy the namespace has, an
  expiry in the future, a resource (`sr`) that is the hub addressed or a prefix of it, and the
  signature recomputed here (HMAC-SHA256 of the URL-encoded resource and the expiry with the
  policy's key); else 401 with the Service Bus REST error body
  (`<Error><Code>401</Code><Detail>…</Detail></Error>`);
- `api-version=2014-01`; a hub that exists (else 404); a `BrokerProperties` header, when sent,
  that is a JSON object;
- an event of at most 1 MB (Standard tier and above), else 413 (the REST reference lists only
  201, 401 and 500; the status for an oversize event is this peer's assumption);
- `rate_limit` scripts the throttling answer: 503 `ServerBusy` with a `Retry-After`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote

from aiohttp import web

from tests.support.peers._http import HttpPeer
from tests.support.peers.contract import PeerContract, texts
from tests.support.peers.webhook import cloudevent_problems

POLICY = "deploybell-send"
KEY = "dGhlLXNlbmQtcG9saWN5LWtleS1vZi10aGlzLWh1Yi0="
MAX_EVENT = 1024 * 1024
HUBS = ("deploys", "audit")


@dataclass(frozen=True)
class HubEvent:
    hub: str
    body: bytes
    content_type: str
    partition_key: str


@dataclass(frozen=True)
class HubRequest:
    path: str
    status: int
    detail: str


class EventHubPeer(HttpPeer[HubRequest]):
    """One namespace with hubs `deploys` and `audit` and a Send policy."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._events: list[HubEvent] = []
        self._lock = threading.Lock()

    def connection_string(self, hub: str | None = "deploys", key: str = KEY) -> str:
        """As the portal shows it (the endpoint is the real form; `apiUrl` points here)."""
        entity = f";EntityPath={hub}" if hub else ""
        return (
            "Endpoint=sb://deploys-ns.servicebus.windows.net/;"
            f"SharedAccessKeyName={POLICY};SharedAccessKey={key}{entity}"
        )

    def events(self, hub: str = "deploys") -> list[HubEvent]:
        with self._lock:
            return [e for e in self._events if e.hub == hub]

    def rate_limit(self, seconds: int) -> None:
        detail = "ServerBusy: The request was terminated because the namespace is being throttled."
        self.respond_next(1, 503, retry_after=str(seconds), body=_error(503, detail))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * MAX_EVENT)
        app.router.add_post("/{hub}/messages", self._send)
        return app

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.read()
        scripted = self._scripted()
        if scripted is not None:
            self._record(HubRequest(request.path, scripted.status, "scripted"))
            return web.Response(
                status=scripted.status,
                text=scripted.body or "",
                headers=scripted.response_headers(),
                content_type="application/xml",
            )
        status, detail = self._answer(request, body)
        self._record(HubRequest(request.path, status, detail))
        if status != 201:
            return web.Response(
                status=status, text=_error(status, detail), content_type="application/xml"
            )
        return web.Response(status=201)

    def _answer(self, request: web.Request, body: bytes) -> tuple[int, str]:
        hub = request.match_info["hub"]
        resource = f"{self.base_url}/{hub}"
        why = verify(request.headers.get("Authorization", ""), resource)
        if why:
            return 401, why
        if request.query.get("api-version") != "2014-01":
            return 400, "The api-version in the query string is not supported."
        if hub not in HUBS:
            return (
                404,
                f"The messaging entity 'sb://deploys-ns.servicebus.windows.net/{hub}' "
                "could not be found.",
            )
        if len(body) > MAX_EVENT:
            return (
                413,
                f"The received message (size: {len(body)}) exceeds the limit ({MAX_EVENT} bytes).",
            )
        try:
            broker = json.loads(request.headers.get("BrokerProperties", "{}"))
        except ValueError:
            broker = None
        if not isinstance(broker, dict):
            return 400, "The value of the BrokerProperties header is not a JSON object."
        with self._lock:
            self._events.append(
                HubEvent(
                    hub,
                    body,
                    request.headers.get("Content-Type", ""),
                    str(broker.get("PartitionKey", "")),
                )
            )
        return 201, ""


def verify(authorization: str, resource: str) -> str:
    """Why this SAS does not authorize sending to `resource` ("" when it does)."""
    scheme, _, token = authorization.partition(" ")
    if scheme != "SharedAccessSignature":
        return "MissingToken: The authorization header was not found."
    fields = dict(parse_qsl(token, keep_blank_values=True))
    raw = dict(part.partition("=")[::2] for part in token.split("&"))
    if not {"sr", "sig", "se", "skn"} <= set(fields):
        return "InvalidToken: The token is malformed."
    if fields["skn"] != POLICY:
        return f"InvalidSignature: The token has an invalid signature ({fields['skn']!r})."
    if not fields["se"].isdigit() or int(fields["se"]) < time.time():
        return "ExpiredToken: The token is expired."
    if not resource.lower().startswith(fields["sr"].lower().rstrip("/")):
        return f"InvalidAudience: The token audience {fields['sr']!r} is not this entity."
    signed = f"{raw['sr']}\n{fields['se']}".encode()
    expected = base64.b64encode(hmac.new(KEY.encode(), signed, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, unquote(raw["sig"])):
        return "InvalidSignature: The token has an invalid signature."
    if raw["sr"] != quote_plus(fields["sr"]):
        return "InvalidToken: sr is not URL-encoded."
    return ""


def _error(code: int, detail: str) -> str:
    return f"<Error><Code>{code}</Code><Detail>{detail}</Detail></Error>"


class AzureeventhubContract(PeerContract[EventHubPeer]):
    limits_size = False  # 1 MB: more than a DeployJob's status (at most 256 KiB) holds

    def __init__(self) -> None:
        super().__init__(EventHubPeer())

    def secret(self) -> dict[str, str]:
        return {"connectionString": self.peer.connection_string(), "apiUrl": self.peer.base_url}

    def options(self) -> dict[str, Any]:
        return {"partitionKey": True}

    def visible(self) -> list[str]:
        return [texts(json.loads(e.body).get("data")) for e in self.peer.events()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        body = rendered["body"].encode()
        out = (
            [f"an event of {len(body)} bytes (at most {MAX_EVENT})"]
            if len(body) > MAX_EVENT
            else []
        )
        return out + cloudevent_problems("application/cloudevents+json", json.loads(body))
