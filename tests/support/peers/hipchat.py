"""A local HipChat v2 API: the room-notification and private-message endpoints, the bearer
token check and HipChat's error shapes. Point a Secret's `url` at `peer.url`.

    with HipchatPeer(token="t", rooms={"deploys"}) as peer:
        ...send to "#deploys"...
        request = peer.wait_for(lambda got: got and got[-1])
        assert request.kind == "room" and request.json["color"] == "green"
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from tests.support.peers._http import HttpPeer

DEFAULT_TOKEN = "hipchat-test-token"
COLOURS = frozenset({"yellow", "green", "red", "purple", "gray", "random"})
MAX_MESSAGE = 10_000
_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}


@dataclass(frozen=True)
class HipchatRequest:
    """One API call as received."""

    kind: str  # "room" or "user"
    target: str  # the room or user as the API saw it (decoded): "deploys", "@alice", "42"
    path: str  # the raw (encoded) path
    headers: CIMultiDictProxy[str]
    json: Any  # the parsed body, None when it is not JSON
    status: int  # what the peer answered

    @property
    def message(self) -> str:
        return str(self.json.get("message", "")) if isinstance(self.json, dict) else ""


class HipchatPeer(HttpPeer[HipchatRequest]):
    """Known rooms and users answer 204; a wrong token 401, an unknown room or user 404."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        rooms: Iterable[str] = ("deploys",),
        users: Iterable[str] = ("@alice", "alice@example.com", "42"),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.rooms = set(rooms)
        self.users = set(users)

    @property
    def url(self) -> str:
        """The base URL for the Secret's `url` key (the API lives under /v2)."""
        return self.base_url

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/room/{target}/notification", self._room)
        app.router.add_post("/v2/user/{target}/message", self._user)
        return app

    async def _room(self, request: web.Request) -> web.Response:
        return await self._handle(request, "room", self.rooms)

    async def _user(self, request: web.Request) -> web.Response:
        return await self._handle(request, "user", self.users)

    async def _handle(self, request: web.Request, kind: str, known: set[str]) -> web.Response:
        target = request.match_info["target"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        status, headers, message = self._answer(request, kind, target, known, body)
        self._record(
            HipchatRequest(
                kind=kind,
                target=target,
                path=request.raw_path,
                headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                json=body,
                status=status,
            )
        )
        if status == 204:
            return web.Response(status=204)
        error = {"code": status, "message": message, "type": _REASONS.get(status, "Error")}
        return web.json_response({"error": error}, status=status, headers=headers)

    def _answer(
        self, request: web.Request, kind: str, target: str, known: set[str], body: Any
    ) -> tuple[int, dict[str, str], str]:
        scripted = self._scripted()
        if scripted is not None:
            headers = scripted.response_headers()
            return scripted.status, headers, scripted.body or "You have exceeded the rate limit"
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {}, "Invalid OAuth session"
        if target not in known:
            return 404, {}, f"{kind.capitalize()} not found"
        problem = _body_problem(kind, body)
        return (400, {}, problem) if problem else (204, {}, "")


def _body_problem(kind: str, body: Any) -> str:
    if not isinstance(body, dict):
        return "The request body must be a JSON object"
    message = body.get("message")
    if not isinstance(message, str) or not 1 <= len(message) <= MAX_MESSAGE:
        return f"message must be 1 to {MAX_MESSAGE} characters"
    if body.get("message_format", "html" if kind == "room" else "text") not in ("html", "text"):
        return "message_format must be html or text"
    if not isinstance(body.get("notify", False), bool):
        return "notify must be a boolean"
    if kind == "room" and body.get("color", "yellow") not in COLOURS:
        return f"color must be one of {sorted(COLOURS)}"
    return ""
