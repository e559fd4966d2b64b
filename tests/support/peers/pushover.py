"""A local Pushover Message API. Point a Secret's `apiUrl` at `peer.base_url` and `token` at
`peer.token`; recipients are `peer.user` (and its devices) or `peer.group`.

What it enforces and answers, from Pushover's API documentation:
- `POST /1/messages.json`, JSON or form-encoded; every answer is JSON with `status` and a
  `request` id. Success: 200 `status: 1` (and a 30-character `receipt` for priority 2);
- a refused message: 400 with `status: 0`, an `errors` list and the bad field named
  (`"user": "invalid"`): an unknown application token, an unknown user or group key, a device
  the user does not have, an empty message or one over 1,024 characters, a title over 250, a
  URL over 512, a URL title over 100, a priority outside -2…2, an emergency message without
  `retry` (at least 30) and `expire` (at most 10,800);
- every answer carries the application's monthly quota: `X-Limit-App-Limit`,
  `X-Limit-App-Remaining`, `X-Limit-App-Reset` (the epoch second it renews); past the quota,
  429 with `status: 0` until then (`rate_limit` scripts one such answer).
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpPeer
from tests.support.peers.contract import PeerContract

TOKEN = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
GROUP = "gznej3rKEVAvPUxu9vvNnqpmZpokzF"
DEVICES = frozenset({"phone", "tablet"})
LIMITS = {"message": 1024, "title": 250, "url": 512, "url_title": 100}
MONTHLY = 10_000


@dataclass(frozen=True)
class PushoverRequest:
    """One request as received (its fields) and the status it was answered with."""

    fields: dict[str, Any]
    status: int


class PushoverPeer(HttpPeer[PushoverRequest]):
    """One application and the users and groups it may reach; the messages delivered."""

    def __init__(self, quota: int = MONTHLY, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.token = TOKEN
        self.user = USER
        self.group = GROUP
        self.quota = quota
        self.reset = int(time.time()) + 30 * 86400
        self._sent: list[dict[str, Any]] = []
        self._receipts = itertools.count(1)

    def delivered(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._sent)

    def rate_limit(self, seconds: int) -> None:
        body = json.dumps({"status": 0, "request": str(uuid.uuid4()), "errors": [_OVER]})
        headers = self._limits(remaining=0, reset=int(time.time()) + seconds)
        self.respond_next(1, 429, body=body, headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/1/messages.json", self._messages)
        return app

    async def _messages(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            try:
                fields = dict(await request.json())
            except (ValueError, TypeError):
                fields = {}
        else:
            fields = dict(await request.post())
        scripted = self._scripted()
        if scripted is not None:
            self._record(PushoverRequest(fields, scripted.status))
            return scripted.text_response()
        status, answer = self._answer(fields)
        self._record(PushoverRequest(fields, status))
        headers = self._limits(remaining=self.quota - len(self.delivered()), reset=self.reset)
        return web.json_response(answer, status=status, headers=headers)

    def _answer(self, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = str(uuid.uuid4())
        if len(self.delivered()) >= self.quota:
            return 429, {"status": 0, "request": request, "errors": [_OVER]}
        bad = self.problems(fields)
        if bad:
            field, error = bad[0]
            return 400, {field: "invalid", "errors": [error], "status": 0, "request": request}
        answer: dict[str, Any] = {"status": 1, "request": request}
        if int(fields.get("priority", 0)) == 2:
            answer["receipt"] = f"r{next(self._receipts):029d}"
        with self._changed:
            self._sent.append({**fields, "request": request})
        return 200, answer

    def problems(self, fields: dict[str, Any]) -> list[tuple[str, str]]:
        """(field, error) for each reason the API refuses these fields."""
        out = []
        if fields.get("token") != self.token:
            out.append(("token", "application token is invalid"))
        if fields.get("user") not in (self.user, self.group):
            out.append(
                ("user", "user identifier is not a valid user, group, or subscribed user key")
            )
        device = fields.get("device")
        if device and not set(str(device).split(",")) <= DEVICES:
            out.append(("devices", "device name is not valid for user"))
        return out + message_problems(fields)

    def _limits(self, remaining: int, reset: int) -> dict[str, str]:
        return {
            "X-Limit-App-Limit": str(self.quota),
            "X-Limit-App-Remaining": str(max(remaining, 0)),
            "X-Limit-App-Reset": str(reset),
        }


_SUBSCRIBED = "or subscribed user key"
_OVER = "application has exceeded its monthly message limit"


def message_problems(fields: dict[str, Any]) -> list[tuple[str, str]]:
    """What the API refuses in a message's own fields."""
    out = []
    if not str(fields.get("message", "")).strip():
        out.append(("message", "message cannot be blank"))
    for name, most in LIMITS.items():
        if len(str(fields.get(name, ""))) > most:
            out.append((name, f"{name} is too long, limit is {most} characters"))
    try:
        priority = int(fields.get("priority", 0))
    except (TypeError, ValueError):
        priority = 99
    if priority not in range(-2, 3):
        out.append(("priority", "priority must be -2, -1, 0, 1, or 2"))
    if priority == 2:
        retry, expire = int(fields.get("retry", 0)), int(fields.get("expire", 0))
        if retry < 30:
            out.append(("retry", "retry must be at least 30 seconds"))
        if not 0 < expire <= 10_800:
            out.append(("expire", "expire must be at most 10800 seconds"))
    return out


class PushoverContract(PeerContract[PushoverPeer]):
    def __init__(self) -> None:
        super().__init__(PushoverPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.base_url}

    def recipients(self) -> tuple[str, ...]:
        return (f"{USER}:phone",)

    def visible(self) -> list[str]:
        return [f"{m.get('title', '')} {m['message']}" for m in self.peer.delivered()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        return [error for _, error in message_problems(rendered)]
