"""A local Rocket.Chat: the REST API calls deploybell makes and incoming webhooks, on 127.0.0.1.

What it enforces, as the server does (Rocket.Chat 6/7, REST API v1):
- `X-Auth-Token` and `X-User-Id` of a user or 401 `{"status": "error", "message": "You must be
  logged in to do this."}`;
- `chat.postMessage` needs `channel` (`#name`, `@user` or a room id) or `roomId`; an unknown
  room answers 400 `[invalid-channel]`, a private group the bot is not in likewise;
- a message's text holds at most `Message_MaxAllowedSize` characters (5000 by default, counted as
  JavaScript counts: UTF-16 units), else 400 `error-message-size-exceeded`;
- `chat.update` needs `roomId`, `msgId`, `text`; an unknown message answers 400 `No message found
  with the id of …`, one of another room 400, another user's message 400 `error-action-not-allowed`;
- `chat.sendMessage` with `tmid` needs the thread's first message in the same room (400);
- errors are `{"success": false, "error": …, "errorType": …}`;
- the rate limiter answers 429 with `X-RateLimit-Limit`, `X-RateLimit-Remaining`,
  `X-RateLimit-Reset` (epoch milliseconds) and `Error, too many requests. Please slow down. You
  must wait N seconds before trying this endpoint again. [error-too-many-requests]`;
- incoming webhooks at `/hooks/<id>/<token>` take `text` (and `channel`, `alias`), answer
  `{"success": true}`, and refuse a wrong id or token with 404.
Ids are 17 characters of Meteor's alphabet, as the server makes them.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpCall, HttpPeer
from tests.support.peers.mattermost import readable

TOKEN = "rc-personal-access-token-0123456789abcdef"
MAX_SIZE = 5000
HOOK = "h00k1d2345678abcd/hooktoken0123456789abcdefghijklmn"
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"


def new_id() -> str:
    return "".join(random.choices(_ALPHABET, k=17))


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class RocketMessage:
    id: str
    rid: str
    user: str
    msg: str
    ts: float
    tmid: str = ""
    alias: str = ""
    edited: bool = False

    def as_json(self) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(self.ts, UTC).isoformat().replace("+00:00", "Z")
        out: dict[str, Any] = {
            "_id": self.id,
            "rid": self.rid,
            "msg": self.msg,
            "ts": stamp,
            "u": {"_id": self.user, "username": "deploybell.bot"},
            "_updatedAt": stamp,
        }
        if self.tmid:
            out["tmid"] = self.tmid
        if self.alias:
            out["alias"] = self.alias
        if self.edited:
            out["editedAt"] = stamp
        return out


class RocketchatPeer(HttpPeer[HttpCall]):
    """Rooms `deploys` (public) and `ops` (private, the bot is not in it), the webhook's room
    `general`, a user alice. Its contract uses the REST API, which edits in place."""

    rate_limits = True
    limits_size = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.token = TOKEN
        self.bot_id = new_id()
        self.users = {"alice": new_id(), "deploybell.bot": self.bot_id}
        self.rooms: dict[str, dict[str, str]] = {}
        for name, kind in (("deploys", "c"), ("ops", "p"), ("general", "c")):
            rid = "GENERAL" if name == "general" else new_id()
            self.rooms[rid] = {"_id": rid, "name": name, "t": kind}
        self.members = {r for r, room in self.rooms.items() if room["name"] != "ops"}
        self.messages: dict[str, RocketMessage] = {}
        self._lock = threading.Lock()

    # ---- the provider contract

    def secret(self) -> dict[str, str]:
        return {"token": self.token, "userId": self.bot_id, "url": self.url}

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/hooks/{HOOK}"

    def recipients(self) -> tuple[str, ...]:
        return ("#deploys",)

    def options(self) -> dict[str, Any]:
        return {}

    def visible(self) -> list[str]:
        return [readable(m.msg) for m in self.shown()]

    def shown(self) -> list[RocketMessage]:
        with self._lock:
            return sorted(self.messages.values(), key=lambda m: (m.ts, m.id))

    def rate_limit_next(self, seconds: int) -> None:
        reset = int((time.time() + seconds) * 1000)
        body = {
            "success": False,
            "error": "Error, too many requests. Please slow down. You must wait "
            f"{seconds} seconds before trying this endpoint again. [error-too-many-requests]",
        }
        headers = {
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
            "Content-Type": "application/json",
        }
        self.respond_next(1, 429, body=json.dumps(body), headers=headers)

    def problems(self, rendered: Any) -> list[str]:
        text = rendered.get("text", "") if isinstance(rendered, dict) else None
        if not isinstance(text, str) or not text:
            return ["no text"]
        if units(text) > MAX_SIZE:
            return [f"text of {units(text)} characters (Message_MaxAllowedSize {MAX_SIZE})"]
        return []

    # ---- the server

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/{method}", self._api)
        app.router.add_post("/hooks/{hook:.*}", self._hook)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        body = await _json(request)
        scripted = self._scripted()
        if scripted is not None:
            self._record(HttpCall("POST", request.path, body, scripted.status))
            return scripted.text_response()
        status, answer = self._answer(request, body)
        self._record(HttpCall("POST", request.path, body, status))
        return web.json_response(answer, status=status)

    def _answer(self, request: web.Request, body: Any) -> tuple[int, dict[str, Any]]:
        headers = request.headers
        if headers.get("X-Auth-Token") != self.token or headers.get("X-User-Id") != self.bot_id:
            return 401, {"status": "error", "message": "You must be logged in to do this."}
        if not isinstance(body, dict):
            return 400, _failure("Invalid JSON body", "error-invalid-body")
        method = request.match_info["method"]
        if method == "chat.postMessage":
            return self._post(body)
        if method == "chat.update":
            return self._update(body)
        if method == "chat.sendMessage":
            return self._send(body.get("message"))
        return 404, {"success": False, "error": f"Unknown method {method}"}

    def _post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        rid = self._room(str(body.get("channel") or body.get("roomId") or ""))
        if rid is None:
            return 400, _failure("[invalid-channel]", "invalid-channel")
        text = body.get("text", "")
        problem = _size_problem(text)
        if problem:
            return 400, problem
        message = self._store(rid, str(text), alias=str(body.get("alias", "")))
        answer = {"ts": int(message.ts * 1000), "channel": self.rooms[rid]["name"]}
        return 200, {**answer, "message": message.as_json(), "success": True}

    def _update(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        msg_id, rid, text = body.get("msgId"), body.get("roomId"), body.get("text")
        if not (isinstance(msg_id, str) and isinstance(rid, str) and isinstance(text, str)):
            return 400, _failure('The required "roomId", "msgId" and "text" params', "")
        with self._lock:
            message = self.messages.get(msg_id)
        if message is None:
            return 400, _failure(f'No message found with the id of "{msg_id}".', "")
        if message.rid != rid:
            return 400, _failure(
                "The room id provided does not match where the message is from.", ""
            )
        if message.user != self.bot_id:
            return 400, _failure(
                "Not allowed [error-action-not-allowed]", "error-action-not-allowed"
            )
        problem = _size_problem(text)
        if problem:
            return 400, problem
        with self._lock:
            message.msg, message.edited = text, True
        return 200, {"message": message.as_json(), "success": True}

    def _send(self, message: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(message, dict) or message.get("rid") not in self.members:
            return 400, _failure("[invalid-channel]", "invalid-channel")
        tmid = str(message.get("tmid") or "")
        with self._lock:
            parent = self.messages.get(tmid) if tmid else None
        if tmid and (parent is None or parent.rid != message["rid"] or parent.tmid):
            return 400, _failure("Invalid thread [error-invalid-message]", "error-invalid-message")
        problem = _size_problem(message.get("msg", ""))
        if problem:
            return 400, problem
        stored = self._store(str(message["rid"]), str(message["msg"]), tmid=tmid)
        return 200, {"message": stored.as_json(), "success": True}

    def _room(self, channel: str) -> str | None:
        if channel.startswith("@"):
            user = self.users.get(channel[1:])
            if user is None:
                return None
            rid = "".join(sorted((self.bot_id, user)))
            self.rooms.setdefault(rid, {"_id": rid, "name": channel[1:], "t": "d"})
            self.members.add(rid)
            return rid
        name = channel[1:] if channel.startswith("#") else None
        for rid, room in self.rooms.items():
            if (room["name"] == name or rid == channel) and rid in self.members:
                return rid
        return None

    async def _hook(self, request: web.Request) -> web.Response:
        body = await _json(request)
        scripted = self._scripted()
        if scripted is not None:
            self._record(HttpCall("POST", request.path, body, scripted.status))
            return scripted.text_response()
        status, answer = self._hook_answer(request.match_info["hook"], body)
        self._record(HttpCall("POST", request.path, body, status))
        return web.json_response(answer, status=status)

    def _hook_answer(self, hook: str, body: Any) -> tuple[int, dict[str, Any]]:
        if hook != HOOK:
            return 404, _failure("Invalid integration id or token provided.", "")
        if not isinstance(body, dict) or not body.get("text"):
            return 400, _failure("No text specified", "")
        rid = self._room(str(body.get("channel") or "#general"))
        if rid is None:
            return 400, _failure("[invalid-channel]", "invalid-channel")
        problem = _size_problem(body["text"])
        if problem:
            return 400, problem
        self._store(rid, str(body["text"]), alias=str(body.get("alias", "")))
        return 200, {"success": True}

    def _store(self, rid: str, text: str, *, tmid: str = "", alias: str = "") -> RocketMessage:
        message = RocketMessage(new_id(), rid, self.bot_id, text, time.time(), tmid, alias)
        with self._lock:
            self.messages[message.id] = message
        return message

    def room_id(self, name: str) -> str:
        return next(rid for rid, room in self.rooms.items() if room["name"] == name)


def _size_problem(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return _failure("The text must be a string", "")
    if units(text) > MAX_SIZE:
        return _failure(
            "Message size exceeds the maximum allowed [error-message-size-exceeded]",
            "error-message-size-exceeded",
        )
    return None


def _failure(error: str, error_type: str) -> dict[str, Any]:
    out: dict[str, Any] = {"success": False, "error": error}
    if error_type:
        out["errorType"] = error_type
    return out


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.text())
    except ValueError:
        return None
