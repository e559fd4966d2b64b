"""A local Webex Messages API (`/v1/messages`) on 127.0.0.1.

What it enforces, as the API documents it:
- `Authorization: Bearer <token>` or 401 `The request requires a valid access token set in the
  Authorization request header.`;
- a new message names exactly one of `roomId`, `toPersonId`, `toPersonEmail`, and has `text`,
  `markdown` or `files` (400); a room the bot is not a member of answers 404;
- `text` and `markdown` hold at most 7439 bytes each (400);
- `parentId` must be a message of the same room that is not itself a reply (400);
- an edit (`PUT /v1/messages/{id}`) needs `roomId` and `text` or `markdown`; a message that does
  not exist answers 404, one of another room 400, another person's 403;
- errors are `{"message": …, "errors": [{"description": …}], "trackingId": …}`;
- rate limits: 429 with `Retry-After` (seconds).
Ids are base64 of `ciscospark://us/<KIND>/<uuid>`, as Webex makes them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpCall, HttpPeer
from tests.support.peers.mattermost import readable

TOKEN = "webex-bot-token-0123456789abcdef_ZmFrZQ"
MAX_BYTES = 7439
BOT_EMAIL = "deploybell@webex.bot"


def new_id(kind: str) -> str:
    raw = f"ciscospark://us/{kind}/{uuid.uuid4()}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class WebexMessage:
    id: str
    room_id: str
    person_email: str
    markdown: str
    created: float
    parent_id: str = ""
    updated: float = 0.0

    def as_json(self) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(self.created, UTC).isoformat()[:23] + "Z"
        out: dict[str, Any] = {
            "id": self.id,
            "roomId": self.room_id,
            "roomType": "group",
            "text": readable(self.markdown),
            "markdown": self.markdown,
            "personId": new_id("PEOPLE"),
            "personEmail": self.person_email,
            "created": stamp,
        }
        if self.parent_id:
            out["parentId"] = self.parent_id
        if self.updated:
            out["updated"] = stamp
        return out


class WebexPeer(HttpPeer[HttpCall]):
    """A space `deploys` the bot is in, one it is not in, and 1:1 spaces made on demand."""

    rate_limits = True
    limits_size = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.token = TOKEN
        self.room = new_id("ROOM")
        self.other_room = new_id("ROOM")
        self.members = {self.room}
        self.direct: dict[str, str] = {}
        self.messages: dict[str, WebexMessage] = {}
        self._lock = threading.Lock()

    # ---- the provider contract

    def secret(self) -> dict[str, str]:
        return {"token": self.token, "apiUrl": self.url}

    def recipients(self) -> tuple[str, ...]:
        return (self.room,)

    def options(self) -> dict[str, Any]:
        return {}

    def visible(self) -> list[str]:
        return [readable(m.markdown) for m in self.shown()]

    def shown(self) -> list[WebexMessage]:
        with self._lock:
            return sorted(self.messages.values(), key=lambda m: (m.created, m.id))

    def rate_limit_next(self, seconds: int) -> None:
        self.respond_next(
            1, 429, retry_after=str(seconds), body=json.dumps(_error("Too many requests."))
        )

    def problems(self, rendered: Any) -> list[str]:
        if not isinstance(rendered, dict):
            return ["not a JSON object"]
        return [p for p in (_create_problem(rendered),) if p]

    # ---- the server

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self._handle)
        app.router.add_put("/v1/messages/{id}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
        except ValueError:
            body = None
        scripted = self._scripted()
        if scripted is not None:
            self._record(HttpCall(request.method, request.path, body, scripted.status))
            return scripted.text_response()
        status, answer = self._answer(request, body)
        self._record(HttpCall(request.method, request.path, body, status))
        return web.json_response(answer, status=status)

    def _answer(self, request: web.Request, body: Any) -> tuple[int, dict[str, Any]]:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, _error(
                "The request requires a valid access token set in the Authorization request header."
            )
        if not isinstance(body, dict):
            return 400, _error("Unable to parse the request body as JSON.")
        if request.method == "PUT":
            return self._edit(request.match_info["id"], body)
        return self._create(body)

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        problem = _create_problem(body)
        if problem:
            return 400, _error(problem)
        room = body.get("roomId")
        if "toPersonEmail" in body:
            room = self.direct.setdefault(str(body["toPersonEmail"]), new_id("ROOM"))
            self.members.add(room)
        if room not in self.members:
            return 404, _error("Could not find a room with provided ID.")
        parent = str(body.get("parentId") or "")
        if parent:
            with self._lock:
                found = self.messages.get(parent)
            if found is None or found.room_id != room or found.parent_id:
                return 400, _error("Unable to post message to room: invalid parentId.")
        markdown = str(body.get("markdown") or body.get("text") or "")
        message = WebexMessage(
            new_id("MESSAGE"), str(room), BOT_EMAIL, markdown, time.time(), parent
        )
        with self._lock:
            self.messages[message.id] = message
        return 200, message.as_json()

    def _edit(self, message_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            message = self.messages.get(message_id)
        if message is None:
            return 404, _error("Unable to find the message.")
        if not body.get("roomId"):
            return 400, _error("roomId is required.")
        if body["roomId"] != message.room_id:
            return 400, _error("Message does not belong to the room.")
        if message.person_email != BOT_EMAIL:
            return 403, _error("Only the sender can edit a message.")
        text = body.get("markdown") or body.get("text")
        if not isinstance(text, str) or not text:
            return 400, _error("text or markdown is required.")
        if len(text.encode()) > MAX_BYTES:
            return 400, _error(f"Message length exceeds the maximum of {MAX_BYTES} bytes.")
        with self._lock:
            message.markdown, message.updated = text, time.time()
        return 200, message.as_json()

    def edit_by_someone_else(self, message_id: str) -> None:
        with self._lock:
            self.messages[message_id].person_email = "alice@example.com"


def _create_problem(body: dict[str, Any]) -> str:
    targets = [k for k in ("roomId", "toPersonId", "toPersonEmail") if body.get(k)]
    if len(targets) != 1:
        return "Exactly one of roomId, toPersonId or toPersonEmail is required."
    if not any(isinstance(body.get(k), str) and body[k] for k in ("text", "markdown", "files")):
        return "text, markdown or files is required."
    for key in ("text", "markdown"):
        value = body.get(key)
        if isinstance(value, str) and len(value.encode()) > MAX_BYTES:
            return f"{key} of {len(value.encode())} bytes exceeds the maximum of {MAX_BYTES}."
    return ""


def _error(message: str) -> dict[str, Any]:
    return {
        "message": message,
        "errors": [{"description": message}] if message else [],
        "trackingId": f"ROUTER_{uuid.uuid4()}",
    }
