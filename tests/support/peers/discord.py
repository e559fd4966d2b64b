"""A local Discord: the channel-webhook endpoints deploybell uses, on 127.0.0.1. Point a Secret's
`webhookUrl` at `peer.url`.

What it enforces and answers, as Discord's webhook API does (limits from Discord's docs):
- `POST /api/webhooks/{id}/{token}` (execute; `?wait=true` answers 200 with the message object,
  else 204; `?thread_id=` posts into a thread of the webhook's channel) and
  `PATCH /api/webhooks/{id}/{token}/messages/{message_id}` (edit; 200 with the message);
- a wrong token → 401 `{"message": "Invalid Webhook Token", "code": 50027}`, an unknown webhook →
  404 code 10015, an unknown message (or one of another webhook or thread) → 404
  `{"message": "Unknown Message", "code": 10008}`, an unknown thread → 404 code 10003;
- a body must be JSON with `content` or `embeds`, else 400 code 50006; limits: content 2000,
  at most 10 embeds, embed title 256, description 4096, at most 25 fields (name 1 to 256, value
  1 to 1024), footer 2048, author name 256, and 6000 characters across all embeds of a message;
  `color` 0 to 0xFFFFFF; urls http(s); `username` 1 to 80 without "discord" or "clyde" — each
  refused with 400 `{"code": 50035, "message": "Invalid Form Body", "errors": {...}}`;
- rate limits: 429 with `{"message", "retry_after": <seconds, float>, "global": false}` and the
  `Retry-After` (whole seconds), `X-RateLimit-*` headers.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpPeer, json_answer, json_or_none
from tests.support.peers.contract import PeerContract, texts

WEBHOOK_ID = "1187654321098765432"
WEBHOOK_TOKEN = "dXNlZC1pbi10ZXN0cy1vbmx5_Zm9yLWRlcGxveWJlbGw-tOkEn"
CHANNEL_ID = "1100000000000000001"
THREAD_ID = "1100000000000000777"
LIMITS = {
    "content": 2000,
    "title": 256,
    "description": 4096,
    "fields": 25,
    "field.name": 256,
    "field.value": 1024,
    "footer": 2048,
    "author": 256,
    "embeds": 10,
    "total": 6000,
    "username": 80,
}
_ESCAPED = re.compile(r"\\([^0-9A-Za-z\s])")


@dataclass(frozen=True)
class DiscordRequest:
    """One request as received."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    status: int
    answer: Any  # the JSON answered (message object or error), None for 204


class DiscordPeer(HttpPeer[DiscordRequest]):
    """One webhook in one channel, with threads; keeps the channel's messages (after edits)."""

    def __init__(
        self,
        webhook_id: str = WEBHOOK_ID,
        token: str = WEBHOOK_TOKEN,
        threads: Iterable[str] = (THREAD_ID,),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.webhook_id = webhook_id
        self.token = token
        self.threads = set(threads)
        self._messages: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1300000000000000000)

    @property
    def url(self) -> str:
        return f"{self.base_url}/api/webhooks/{self.webhook_id}/{self.token}"

    def messages(self, channel: str = CHANNEL_ID) -> list[dict[str, Any]]:
        """The messages a channel (or thread) shows now, oldest first."""
        with self._changed:
            shown = [m for m in self._messages.values() if m["channel_id"] == channel]
        return sorted(shown, key=lambda m: int(m["id"]))

    def delete(self, message_id: str) -> None:
        """Someone deleted a message in Discord."""
        with self._changed:
            self._messages.pop(message_id, None)

    def rate_limit(self, seconds: float) -> None:
        """Answer the next request with Discord's 429."""
        body = json.dumps(
            {"message": "You are being rate limited.", "retry_after": seconds, "global": False}
        )
        headers = {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + seconds:.3f}",
            "X-RateLimit-Reset-After": f"{seconds:.3f}",
            "X-RateLimit-Bucket": "2b1a4c8e1f9d7e3a",
            "X-RateLimit-Scope": "shared",
        }
        retry = str(max(1, int(-(-seconds // 1))))
        self.respond_next(1, 429, retry_after=retry, body=body, headers=headers)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=25 * 1024 * 1024)
        app.router.add_post("/api/webhooks/{id}/{token}", self._execute)
        app.router.add_patch("/api/webhooks/{id}/{token}/messages/{message}", self._edit)
        return app

    async def _execute(self, request: web.Request) -> web.Response:
        return await self._handle(request, edit=False)

    async def _edit(self, request: web.Request) -> web.Response:
        return await self._handle(request, edit=True)

    async def _handle(self, request: web.Request, *, edit: bool) -> web.Response:
        body = json_or_none(await request.read())
        status, answer, headers = self._answer(request, body, edit=edit)
        self._record(
            DiscordRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                json=body,
                status=status,
                answer=answer,
            )
        )
        return json_answer(status, answer, headers)

    def _answer(
        self, request: web.Request, body: Any, *, edit: bool
    ) -> tuple[int, Any, dict[str, str]]:
        scripted = self._scripted()
        if scripted is not None:
            return scripted.status, scripted.body or "{}", scripted.response_headers()
        if request.match_info["id"] != self.webhook_id:
            return 404, {"message": "Unknown Webhook", "code": 10015}, {}
        if request.match_info["token"] != self.token:
            return 401, {"message": "Invalid Webhook Token", "code": 50027}, {}
        channel = CHANNEL_ID
        if thread := request.query.get("thread_id"):
            if thread not in self.threads:
                return 404, {"message": "Unknown Channel", "code": 10003}, {}
            channel = thread
        if request.content_type != "application/json" or not isinstance(body, dict):
            return 400, {"message": "Cannot send an empty message", "code": 50006}, {}
        errors = form_errors(body, edit=edit)
        if errors:
            return 400, {"code": 50035, "message": "Invalid Form Body", "errors": errors}, {}
        if not edit and not body.get("content") and not body.get("embeds"):
            return 400, {"message": "Cannot send an empty message", "code": 50006}, {}
        if edit:
            return self._apply_edit(request.match_info["message"], channel, body)
        message = self._new_message(channel, body)
        if request.query.get("wait", "false").lower() != "true":
            return 204, None, {}
        return 200, message, {}

    def _new_message(self, channel: str, body: dict[str, Any]) -> dict[str, Any]:
        message = {
            "id": str(next(self._ids)),
            "type": 0,
            "channel_id": channel,
            "webhook_id": self.webhook_id,
            "author": {
                "id": self.webhook_id,
                "username": body.get("username") or "Deploys",
                "bot": True,
            },
            "content": body.get("content", ""),
            "embeds": [_received_embed(e) for e in body.get("embeds") or []],
            "timestamp": _now(),
            "edited_timestamp": None,
            "mentions": [],
            "mention_everyone": False,
            "flags": 0,
        }
        with self._changed:
            self._messages[message["id"]] = message
        return message

    def _apply_edit(
        self, message_id: str, channel: str, body: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        with self._changed:
            message = self._messages.get(message_id)
            if message is None or message["channel_id"] != channel:
                return 404, {"message": "Unknown Message", "code": 10008}, {}
            if "content" in body:
                message["content"] = body["content"] or ""
            if "embeds" in body:
                message["embeds"] = [_received_embed(e) for e in body["embeds"] or []]
            message["edited_timestamp"] = _now()
            return 200, dict(message), {}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _received_embed(embed: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich", **embed}


def problems(body: Any) -> list[str]:
    """Why Discord would refuse this execute body (empty when it accepts it)."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    out = [f"{path}: {message}" for path, message in _problems(body, edit=False)]
    if not body.get("content") and not body.get("embeds"):
        out.append("Cannot send an empty message")
    return out


def form_errors(body: dict[str, Any], *, edit: bool) -> dict[str, Any]:
    """Discord's nested `errors` object of an Invalid Form Body answer."""
    errors: dict[str, Any] = {}
    for path, message in _problems(body, edit=edit):
        node = errors
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": "BASE_TYPE_INVALID", "message": message})
    return errors


def _problems(body: dict[str, Any], *, edit: bool) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    content = body.get("content")
    if content is not None and (not isinstance(content, str) or len(content) > LIMITS["content"]):
        out.append(("content", f"Must be {LIMITS['content']} or fewer in length."))
    if not edit and "username" in body:
        out += _username(body["username"])
    embeds = body.get("embeds") or []
    if not isinstance(embeds, list) or len(embeds) > LIMITS["embeds"]:
        return [*out, ("embeds", f"Must be {LIMITS['embeds']} or fewer in length.")]
    total = 0
    for i, embed in enumerate(embeds):
        found, size = _embed(embed, f"embeds.{i}")
        out += found
        total += size
    if total > LIMITS["total"]:
        out.append(("embeds", f"Embed size exceeds maximum size of {LIMITS['total']}"))
    return out


def _username(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, str) or not 1 <= len(value) <= LIMITS["username"]:
        return [("username", f"Must be between 1 and {LIMITS['username']} in length.")]
    if any(word in value.lower() for word in ("discord", "clyde")):
        return [("username", 'Username cannot contain "discord" or "clyde"')]
    return []


def _embed(embed: Any, path: str) -> tuple[list[tuple[str, str]], int]:
    if not isinstance(embed, dict):
        return [(path, "Must be an object.")], 0
    out: list[tuple[str, str]] = []

    def text(key: str, value: Any, limit: int, *, required: bool = False) -> int:
        if value is None and not required:
            return 0
        if not isinstance(value, str) or (required and not value.strip()):
            out.append((key, "This field is required"))
            return 0
        if len(value) > limit:
            out.append((key, f"Must be {limit} or fewer in length."))
        return len(value)

    size = text(f"{path}.title", embed.get("title"), LIMITS["title"])
    size += text(f"{path}.description", embed.get("description"), LIMITS["description"])
    footer = embed.get("footer")
    if footer is not None:
        size += text(
            f"{path}.footer.text", (footer or {}).get("text"), LIMITS["footer"], required=True
        )
    author = embed.get("author")
    if author is not None:
        size += text(
            f"{path}.author.name", (author or {}).get("name"), LIMITS["author"], required=True
        )
    fields = embed.get("fields") or []
    if len(fields) > LIMITS["fields"]:
        out.append((f"{path}.fields", f"Must be {LIMITS['fields']} or fewer in length."))
    for j, field in enumerate(fields):
        where = f"{path}.fields.{j}"
        size += text(f"{where}.name", field.get("name"), LIMITS["field.name"], required=True)
        size += text(f"{where}.value", field.get("value"), LIMITS["field.value"], required=True)
    colour = embed.get("color")
    if colour is not None and (not isinstance(colour, int) or not 0 <= colour <= 0xFFFFFF):
        out.append((f"{path}.color", "Int value should be less than or equal to 16777215."))
    url = embed.get("url")
    if url is not None and not str(url).startswith(("https://", "http://")):
        out.append((f"{path}.url", "Scheme must be one of ('http', 'https')."))
    stamp = embed.get("timestamp")
    if stamp is not None and not _iso8601(stamp):
        out.append((f"{path}.timestamp", "Could not parse timestamp."))
    return out, size


def _iso8601(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def readable(value: str) -> str:
    """Text as Discord shows it: Markdown escapes resolved."""
    return _ESCAPED.sub(r"\1", value)


class DiscordContract(PeerContract[DiscordPeer]):
    """The provider contract (tests/support/peers/contract.py) against a DiscordPeer."""

    def __init__(self) -> None:
        super().__init__(DiscordPeer())

    def secret(self) -> dict[str, str]:
        return {"webhookUrl": self.peer.url}

    def options(self) -> dict[str, Any]:
        return {"username": "Deploys"}

    def visible(self) -> list[str]:
        return [readable(texts([m["content"], m["embeds"]])) for m in self.peer.messages()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        return problems(rendered)
