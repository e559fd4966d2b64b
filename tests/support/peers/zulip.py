"""A local Zulip REST API (`/api/v1/messages`) on 127.0.0.1.

What it enforces, as Zulip does:
- HTTP basic auth with the bot's e-mail and API key, else 401 `INVALID_API_KEY`;
- form-encoded parameters; a missing one answers 400 `REQUEST_VARIABLE_MISSING` with `var_name`;
- `type=stream` needs an existing channel (400 `STREAM_DOES_NOT_EXIST`) and a `topic`;
  `type=private`/`direct` a JSON list of known e-mail addresses (400);
- content over 10000 characters is cut by the server (`[message truncated]`) and a topic over 60
  characters likewise (`...`): what `problems()` reports, since deploybell must stay within them;
  empty content answers 400;
- `PATCH /api/v1/messages/{id}`: an unknown message answers 400 `Invalid message(s)`, another
  user's 400, and one older than the organization's edit limit (10 minutes by default) 400
  `The time limit for editing this message has passed`;
- answers are `{"result": "success", "msg": "", "id": …}`; errors `{"result": "error", "msg": …,
  "code": …}`;
- rate limits: 429 `RATE_LIMIT_HIT` with `Retry-After`, `X-RateLimit-Limit`,
  `X-RateLimit-Remaining`, `X-RateLimit-Reset` and the body's `retry-after`.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from tests.support.peers._http import HttpCall, HttpPeer
from tests.support.peers.mattermost import readable

EMAIL = "deploybell-bot@zulip.local.test"
API_KEY = "zulipbotapikey0123456789abcdefAB"
CONTENT_LIMIT = 10000
TOPIC_LIMIT = 60
EDIT_LIMIT_SECONDS = 600


@dataclass
class ZulipMessage:
    id: int
    sender: str
    recipient: str  # "stream:<name>" or "private:<emails>"
    topic: str
    content: str
    timestamp: float
    edited: bool = False


class ZulipPeer(HttpPeer[HttpCall]):
    """Channels `deploys` and `platform ops`, users alice and the bot."""

    rate_limits = True
    limits_size = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.streams = {"deploys", "platform ops"}
        self.users = {EMAIL, "alice@zulip.local.test"}
        self.edit_limit_seconds = EDIT_LIMIT_SECONDS
        self.messages: dict[int, ZulipMessage] = {}
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()

    # ---- the provider contract

    def secret(self) -> dict[str, str]:
        return {"email": EMAIL, "apiKey": API_KEY, "url": self.url}

    def recipients(self) -> tuple[str, ...]:
        return ("#deploys",)

    def options(self) -> dict[str, Any]:
        return {}

    def visible(self) -> list[str]:
        return [readable(m.content) for m in self.shown()]

    def shown(self) -> list[ZulipMessage]:
        with self._lock:
            return sorted(self.messages.values(), key=lambda m: m.id)

    def rate_limit_next(self, seconds: int) -> None:
        body = {
            "result": "error",
            "msg": "API usage exceeded rate limit",
            "retry-after": seconds - 0.25,
            "code": "RATE_LIMIT_HIT",
        }
        headers = {
            "X-RateLimit-Limit": "200",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time()) + seconds),
            "Content-Type": "application/json",
        }
        self.respond_next(1, 429, retry_after=str(seconds), body=json.dumps(body), headers=headers)

    def problems(self, rendered: Any) -> list[str]:
        out = []
        content = rendered.get("content", "")
        if not content.strip():
            out.append("empty content")
        if len(content) > CONTENT_LIMIT:
            out.append(f"content of {len(content)} characters would be truncated")
        if len(rendered.get("topic", "")) > TOPIC_LIMIT:
            out.append("the topic would be truncated")
        return out

    def age(self, message_id: int, seconds: float) -> None:
        """Make a message look `seconds` old (past the edit limit, for tests)."""
        with self._lock:
            self.messages[message_id].timestamp -= seconds

    # ---- the server

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/messages", self._handle)
        app.router.add_patch("/api/v1/messages/{id}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        scripted = self._scripted()
        if scripted is not None:
            self._record(HttpCall(request.method, request.path, form, scripted.status))
            return scripted.text_response()
        status, answer = self._answer(request, form)
        self._record(HttpCall(request.method, request.path, form, status))
        if status != 200:
            answer = {"result": "error", **answer}
        return web.json_response({"msg": "", **answer}, status=status)

    def _answer(self, request: web.Request, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        login = base64.b64encode(f"{EMAIL}:{API_KEY}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {login}":
            return 401, {"msg": "Invalid API key", "code": "INVALID_API_KEY"}
        if request.content_type != "application/x-www-form-urlencoded":
            return 400, {"msg": "Missing 'content' argument", "code": "REQUEST_VARIABLE_MISSING"}
        if request.method == "PATCH":
            return self._edit(request.match_info["id"], form)
        return self._send(form)

    def _send(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        for name in ("type", "to", "content"):
            if name not in form:
                return 400, _missing(name)
        if not form["content"].strip():
            return 400, {"msg": "Message must not be empty", "code": "BAD_REQUEST"}
        kind, to = form["type"], form["to"]
        if kind == "stream":
            if "topic" not in form:
                return 400, _missing("topic")
            if to not in self.streams:
                return 400, {
                    "msg": f"Channel '{to}' does not exist",
                    "code": "STREAM_DOES_NOT_EXIST",
                    "stream": to,
                }
            recipient, topic = f"stream:{to}", form["topic"]
        elif kind in ("private", "direct"):
            try:
                emails = json.loads(to)
            except ValueError:
                emails = to.split(",")
            if not isinstance(emails, list) or not set(emails) <= self.users:
                return 400, {"msg": f"Invalid email '{to}'", "code": "BAD_REQUEST"}
            recipient, topic = "private:" + ",".join(sorted(emails)), ""
        else:
            return 400, {"msg": "Invalid message type", "code": "BAD_REQUEST"}
        message = ZulipMessage(
            next(self._ids),
            EMAIL,
            recipient,
            _truncated(topic, TOPIC_LIMIT, "..."),
            _truncated(form["content"], CONTENT_LIMIT, "\n[message truncated]"),
            time.time(),
        )
        with self._lock:
            self.messages[message.id] = message
        return 200, {"result": "success", "id": message.id}

    def _edit(self, raw_id: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            message = self.messages.get(int(raw_id)) if raw_id.isdigit() else None
        if message is None:
            return 400, {"msg": "Invalid message(s)", "code": "BAD_REQUEST"}
        if message.sender != EMAIL:
            return 400, {"msg": "You don't have permission to edit this message"}
        if "content" in form:
            if time.time() - message.timestamp > self.edit_limit_seconds:
                return 400, {"msg": "The time limit for editing this message has passed"}
            with self._lock:
                message.content = _truncated(
                    form["content"], CONTENT_LIMIT, "\n[message truncated]"
                )
                message.edited = True
        return 200, {"result": "success", "detached_uploads": []}


def _missing(name: str) -> dict[str, Any]:
    return {
        "msg": f"Missing '{name}' argument",
        "code": "REQUEST_VARIABLE_MISSING",
        "var_name": name,
    }


def _truncated(text: str, limit: int, marker: str) -> str:
    return text if len(text) <= limit else text[: limit - len(marker)] + marker
