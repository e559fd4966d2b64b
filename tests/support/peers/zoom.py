"""A local Zoom Team Chat Incoming Webhook connection: one channel's endpoint on 127.0.0.1.
Point a Secret's `webhookUrl` at `peer.url` and `verificationToken` at `peer.token`.

What it enforces and answers, from Zoom's Incoming Webhook guide and chatbot message format:
- `POST /chat/webhooks/incomingwebhook/<id>` with the connection's verification token as the
  whole `Authorization` header, else 401; an unknown connection 404; errors in Zoom's shape
  `{"code": …, "message": …}`;
- `?format=full`: the body is a chatbot message `{"head": {"text", "style", "sub_head"},
  "body": [items]}`: `head.text` required, each item a known `type` (`message` needs `text`,
  `fields` needs `items` of `key`/`value`), a `style.color` a hex colour; else 400. The content
  is held to 4 KB as sent (the budget the provider keeps; Zoom's guide names no larger one);
- without a format, the body is posted as plain text;
- a posted message is answered 200 with its `message_id`;
- rate limits: 429 with `Retry-After` (seconds) and Zoom's rate-limit message.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpPeer, json_answer, json_or_none
from tests.support.peers.contract import PeerContract, texts

CONNECTION = "Tn2hAAXbRxqBM3JwDPgvkQ"
TOKEN = "zoom-verification-token-3f9a"
MAX_CONTENT_BYTES = 4096
ITEM_TYPES = frozenset({"message", "fields", "attachments", "actions", "section", "select"})
_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")


@dataclass(frozen=True)
class ZoomRequest:
    """One request as received, with the status it was answered with."""

    query: dict[str, str]
    authorization: str
    json: Any
    status: int


class ZoomPeer(HttpPeer[ZoomRequest]):
    """One connection: its id and verification token, and the channel's messages."""

    def __init__(
        self,
        connection: str = CONNECTION,
        token: str = TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.connection = connection
        self.token = token
        self._messages: list[Any] = []
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/webhooks/incomingwebhook/{self.connection}"

    def messages(self) -> list[Any]:
        with self._changed:
            return list(self._messages)

    def rate_limit(self, seconds: int) -> None:
        body = json.dumps(
            {
                "code": 429,
                "message": "You have reached the maximum per-second rate limit for this API. "
                "Try again later.",
            }
        )
        self.respond_next(1, 429, retry_after=str(seconds), body=body)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/chat/webhooks/incomingwebhook/{connection}", self._post)
        return app

    async def _post(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json_or_none(raw)
        scripted = self._scripted()
        if scripted is not None:
            status, answer, headers = scripted.status, scripted.body, scripted.response_headers()
        else:
            status, answer = self._answer(request, raw, body)
            headers = {}
        auth = request.headers.get("Authorization", "")
        self._record(ZoomRequest(dict(request.query), auth, body, status))
        return json_answer(status, answer, headers)

    def _answer(self, request: web.Request, raw: bytes, body: Any) -> tuple[int, Any]:
        if request.match_info["connection"] != self.connection:
            return 404, {"code": 404, "message": "Incoming webhook connection not found."}
        if request.headers.get("Authorization") != self.token:
            return 401, {"code": 401, "message": "Invalid authorization token."}
        if request.query.get("format") == "full":
            found = content_problems(body, len(raw))
            if found:
                return 400, {"code": 300, "message": found[0]}
            shown: Any = body
        else:
            shown = raw.decode("utf-8", errors="replace")
        with self._changed:
            self._messages.append(shown)
            return 200, {"message_id": f"msg-{next(self._ids):06d}", "to_jid": "channel"}


def content_problems(body: Any, size: int) -> list[str]:
    """Why Zoom refuses a full-format chatbot message."""
    if not isinstance(body, dict):
        return ["Invalid JSON: a chatbot message object is required."]
    out = [f"Message content of {size} bytes is too large."] if size > MAX_CONTENT_BYTES else []
    head = body.get("head")
    if not isinstance(head, dict) or not isinstance(head.get("text"), str) or not head["text"]:
        out.append("head.text is required.")
    elif (colour := (head.get("style") or {}).get("color")) and not _COLOUR.fullmatch(colour):
        out.append(f"head.style.color {colour!r} is not a hex colour.")
    items = body.get("body", [])
    if not isinstance(items, list):
        return [*out, "body must be a list."]
    for i, item in enumerate(items):
        out += [f"body[{i}]: {p}" for p in _item_problems(item)]
    return out


def _item_problems(item: Any) -> list[str]:
    kind = item.get("type") if isinstance(item, dict) else None
    if kind not in ITEM_TYPES:
        return [f"type {kind!r} is unknown"]
    if kind == "message" and not isinstance(item.get("text"), str):
        return ["a message needs text"]
    if kind == "fields":
        fields = item.get("items")
        if not isinstance(fields, list) or not all(
            isinstance(f, dict)
            and isinstance(f.get("key"), str)
            and isinstance(f.get("value"), str)
            for f in fields
        ):
            return ["fields need items of key and value"]
    return []


def _field_ok(field: Any) -> bool:
    return isinstance(field, dict) and all(isinstance(field.get(k), str) for k in ("key", "value"))


class ZoomContract(PeerContract[ZoomPeer]):
    def __init__(self) -> None:
        super().__init__(ZoomPeer())

    def secret(self) -> dict[str, str]:
        return {"webhookUrl": self.peer.url, "verificationToken": self.peer.token}

    def visible(self) -> list[str]:
        return [texts(m) for m in self.peer.messages()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        return content_problems(rendered, len(json.dumps(rendered).encode()))
