"""A local Lark / Feishu custom bot: one group's webhook on 127.0.0.1. Point a Secret's
`webhookUrl` at `peer.url` (the vendor's `/open-apis/bot/v2/hook/<token>` path).

What it enforces and answers, from the vendor's custom-bot guide:
- the bot answers HTTP 200 with `{"code", "msg", "data"}`; `code` 0 is success. An unknown
  hook token: code 19001 ("param invalid: incoming webhook access token invalid"); a body that
  is not JSON, over 20 KB, or not a known `msg_type` with its content: 9499 "Bad Request";
- signature check (on when the peer has a secret): `timestamp` (seconds) within an hour of now
  and `sign` = base64(HMAC-SHA256 keyed by "timestamp\\nsecret" over an empty message), else
  19021 "sign match fail or timestamp is not within one hour from current time";
- custom keywords (when set): a message containing none of them, 19024 "Key Words Not Found";
- the frequency limit, 5 a second and 100 a minute per bot: code 11232 "frequency limited";
  the open platform's gateway answers 429 with `x-ogw-ratelimit-reset` (seconds) and code
  99991400 ("request trigger frequency limit"), which `rate_limit` scripts;
- an interactive card needs `card.elements` (known tags) and a `header.title` of `plain_text`
  or `lark_md`, with a known `template` colour.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpPeer, json_or_none
from tests.support.peers.contract import PeerContract, texts

TOKEN = "8c3f0d6e-2b4a-4f1e-9d7c-5a6b7c8d9e0f"
SECRET = "lark-peer-signing-secret"
MAX_BODY_BYTES = 20 * 1024
MSG_TYPES = frozenset({"text", "post", "image", "share_chat", "interactive"})
ELEMENT_TAGS = frozenset({"div", "hr", "action", "note", "img", "markdown", "column_set"})
TEXT_TAGS = frozenset({"plain_text", "lark_md"})
TEMPLATES = frozenset(
    {"blue", "wathet", "turquoise", "green", "yellow", "orange", "red", "carmine", "violet",
     "purple", "indigo", "grey", "default"}
)  # fmt: skip
PER_SECOND = 5
PER_MINUTE = 100


@dataclass(frozen=True)
class LarkRequest:
    """One webhook request as received, with the code it was answered with."""

    token: str
    json: Any
    code: int


class LarkPeer(HttpPeer[LarkRequest]):
    """One custom bot: its token, optional signature secret and keywords, its messages."""

    def __init__(
        self,
        token: str = TOKEN,
        secret: str | None = SECRET,
        keywords: tuple[str, ...] = (),
        frequency: bool = True,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.secret = secret
        self.keywords = keywords
        self.frequency = frequency
        self.clock = clock  # a test may stop it, so that a burst is one instant
        self._times: collections.deque[float] = collections.deque()
        self._messages: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"{self.base_url}/open-apis/bot/v2/hook/{self.token}"

    def messages(self) -> list[dict[str, Any]]:
        """The group's messages as posted (the card or content), oldest first."""
        with self._changed:
            return list(self._messages)

    def rate_limit(self, seconds: int) -> None:
        body = json.dumps({"code": 99991400, "msg": "request trigger frequency limit"})
        headers = {"x-ogw-ratelimit-limit": "100", "x-ogw-ratelimit-reset": str(seconds)}
        self.respond_next(1, 429, body=body, headers=headers)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/open-apis/bot/v2/hook/{token}", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json_or_none(raw)
        scripted = self._scripted()
        if scripted is not None:
            code = json.loads(scripted.body or "{}").get("code", -1)
            self._record(LarkRequest(request.match_info["token"], body, code))
            return scripted.text_response()
        code, msg = self._answer(request.match_info["token"], raw, body)
        self._record(LarkRequest(request.match_info["token"], body, code))
        return web.json_response({"code": code, "msg": msg, "data": {}})

    def _answer(self, token: str, raw: bytes, body: Any) -> tuple[int, str]:
        if token != self.token:
            return 19001, "param invalid: incoming webhook access token invalid"
        if len(raw) > MAX_BODY_BYTES or not isinstance(body, dict) or message_problems(body):
            return 9499, "Bad Request"
        if self.secret is not None and not self._signed(body):
            return 19021, "sign match fail or timestamp is not within one hour from current time"
        if self.keywords and not any(k in texts(body) for k in self.keywords):
            return 19024, "Key Words Not Found"
        if self.frequency and not self._within_frequency():
            return 11232, "frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"
        with self._changed:
            self._messages.append(body.get("card") or body.get("content") or {})
        return 0, "success"

    def _signed(self, body: dict[str, Any]) -> bool:
        stamp = str(body.get("timestamp", ""))
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 3600:
            return False
        key = f"{stamp}\n{self.secret}".encode()
        wanted = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
        return hmac.compare_digest(wanted, str(body.get("sign", "")))

    def _within_frequency(self) -> bool:
        now = self.clock()
        with self._changed:
            while self._times and now - self._times[0] > 60:
                self._times.popleft()
            last_second = sum(1 for t in self._times if now - t <= 1)
            if last_second >= PER_SECOND or len(self._times) >= PER_MINUTE:
                return False
            self._times.append(now)
            return True


def message_problems(body: Any) -> list[str]:
    """Why the bot answers 9499 "Bad Request" to this body."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    kind = body.get("msg_type")
    if kind not in MSG_TYPES:
        return [f"msg_type {kind!r} is unknown"]
    if kind != "interactive":
        return [] if isinstance(body.get("content"), dict) else ["content is missing"]
    return card_problems(body.get("card"))


def card_problems(card: Any) -> list[str]:
    if not isinstance(card, dict) or not isinstance(card.get("elements"), list):
        return ["card.elements is missing"]
    out = []
    header = card.get("header")
    if header is not None:
        title = (header or {}).get("title") or {}
        if title.get("tag") not in TEXT_TAGS or not isinstance(title.get("content"), str):
            out.append("header.title must be plain_text or lark_md content")
        if header.get("template", "default") not in TEMPLATES:
            out.append(f"header.template {header.get('template')!r} is unknown")
    for i, element in enumerate(card["elements"]):
        tag = element.get("tag") if isinstance(element, dict) else None
        if tag not in ELEMENT_TAGS:
            out.append(f"elements[{i}]: tag {tag!r} is unknown")
    return out


class LarkContract(PeerContract[LarkPeer]):
    """A signing bot with a keyword every message has. The frequency window is off here: the
    contract test's restarts send six messages from six fresh senders within a second, which
    the bot would answer with 11232 (tests/providers/test_lark.py proves that answer)."""

    def __init__(self) -> None:
        super().__init__(LarkPeer(keywords=("deploybell",), frequency=False))

    def secret(self) -> dict[str, str]:
        return {"webhookUrl": self.peer.url, "signingSecret": SECRET}

    def visible(self) -> list[str]:
        return [texts(card) for card in self.peer.messages()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        size = len(json.dumps(rendered).encode())
        too_big = [f"{size} bytes (at most {MAX_BODY_BYTES})"] if size > MAX_BODY_BYTES else []
        return too_big + message_problems(rendered)
