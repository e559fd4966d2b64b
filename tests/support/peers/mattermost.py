"""A local Mattermost: incoming webhooks and the REST API v4 calls deploybell makes, on 127.0.0.1.

What it enforces, as the server does (Mattermost 9/10, API v4):
- REST: `Authorization: Bearer <token>` or 401; a post's `message` at most 16383 characters
  (runes) and its `props` at most 800000 characters of JSON, else 400; `root_id` must name a root
  post of the same channel (400); posting needs channel membership (403); patching a post that
  does not exist (or was deleted) answers 404, another user's post 403; unknown teams, channels
  and users 404. Errors are Mattermost's AppError JSON (`id`, `message`, `status_code`).
- Incoming webhooks: `/hooks/<id>` with a JSON body holding `text` or `attachments` (400 without);
  a `channel` override must name a channel of the hook's team or `@user` (400); 200 `ok`. (The
  server splits webhook text over the limit into several posts; deploybell stays under it, so the
  peer refuses instead, to catch a renderer that does not.)
- Rate limits: 429 `limit exceeded` with `X-Ratelimit-Limit`, `X-Ratelimit-Remaining`,
  `X-Ratelimit-Reset` (seconds to wait) and `Retry-After`.
Post and channel ids are 26 lowercase letters and digits, as the server makes them.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpCall, HttpPeer
from tests.support.peers.contract import texts

TOKEN = "mm-bot-token-0123456789abcdef"
MESSAGE_RUNES = 16383
PROPS_RUNES = 800_000
TEAM = "platform"
HOOK_ID = "h00kid0123456789abcdefghij"
_ESCAPE = re.compile(r"\\([\\`*_~\[\]<>|#])")


def new_id() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=26))


def readable(markdown: str) -> str:
    """What a reader sees of deploybell's escaped Markdown."""
    return _ESCAPE.sub(r"\1", markdown).replace("\u2060", "")


@dataclass
class MattermostPost:
    id: str
    channel_id: str
    user_id: str
    message: str
    props: dict[str, Any]
    root_id: str = ""
    create_at: int = 0
    update_at: int = 0
    deleted: bool = False
    via: str = "api"  # api | webhook
    overrides: dict[str, str] = field(default_factory=dict)  # webhook channel/username/icon

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "create_at": self.create_at,
            "update_at": self.update_at,
            "edit_at": self.update_at if self.update_at != self.create_at else 0,
            "delete_at": 0,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "root_id": self.root_id,
            "message": self.message,
            "type": "",
            "props": self.props,
        }

    def visible(self) -> str:
        return readable(f"{self.message} {texts(self.props.get('attachments', []))}")


class MattermostPeer(HttpPeer[HttpCall]):
    """One team `platform` with channels `deploys`, `town-square` (the webhook's) and `private`
    (the bot is not a member); users alice and the bot. Its contract (tests/providers/
    test_contract.py) uses the REST API, which edits in place."""

    rate_limits = True
    limits_size = True

    def __init__(self, token: str = TOKEN, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.token = token
        self.bot = {"id": new_id(), "username": "deploybell-bot"}
        self.users = {"alice": {"id": new_id(), "username": "alice"}}
        self.channels: dict[str, dict[str, Any]] = {}
        for name in ("deploys", "town-square", "private"):
            cid = new_id()
            self.channels[cid] = {"id": cid, "team": TEAM, "name": name, "type": "O"}
        self.members = {c for c, ch in self.channels.items() if ch["name"] != "private"}
        self.hook_channel = self.channel_id("town-square")
        self.posts: dict[str, MattermostPost] = {}
        self._lock = threading.Lock()
        self._clock = itertools.count(int(time.time() * 1000))

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/hooks/{HOOK_ID}"

    def channel_id(self, name: str) -> str:
        return next(c for c, ch in self.channels.items() if ch["name"] == name)

    # ---- the provider contract

    def secret(self) -> dict[str, str]:
        return {"token": self.token, "url": self.url}

    def recipients(self) -> tuple[str, ...]:
        return (f"#{TEAM}/deploys",)

    def options(self) -> dict[str, Any]:
        return {}

    def visible(self) -> list[str]:
        return [post.visible() for post in self.visible_posts()]

    def problems(self, rendered: Any) -> list[str]:
        return post_problems(rendered)

    def rate_limit_next(self, seconds: int) -> None:
        headers = {
            "X-Ratelimit-Limit": "10",
            "X-Ratelimit-Remaining": "0",
            "X-Ratelimit-Reset": str(seconds),
        }
        self.respond_next(
            1, 429, retry_after=str(seconds), body="limit exceeded\n", headers=headers
        )

    def delete(self, post_id: str) -> None:
        with self._lock:
            self.posts[post_id].deleted = True

    def visible_posts(self) -> list[MattermostPost]:
        """Posts a person sees, oldest first (deleted ones are gone)."""
        with self._lock:
            posts = [p for p in self.posts.values() if not p.deleted]
        return sorted(posts, key=lambda p: (p.create_at, p.id))

    def replies(self, root_id: str) -> list[MattermostPost]:
        return [p for p in self.visible_posts() if p.root_id == root_id]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/hooks/{hook}", self._hook)
        app.router.add_route("*", "/api/v4/{tail:.*}", self._api)
        return app

    # ---- incoming webhooks

    async def _hook(self, request: web.Request) -> web.Response:
        body = await _json(request)
        status, answer = self._scripted_or(lambda: self._hook_answer(request, body))
        self._record(HttpCall("POST", request.path, body, status))
        if isinstance(answer, web.Response):
            return answer
        if status != 200:
            return _error(status, answer)
        return web.Response(text="ok", content_type="text/plain")

    def _hook_answer(self, request: web.Request, body: Any) -> tuple[int, str]:
        if request.match_info["hook"] != HOOK_ID:
            return 400, "Invalid webhook."
        if request.content_type != "application/json" or not isinstance(body, dict):
            return 400, "Unable to parse incoming data."
        if not body.get("text") and not body.get("attachments"):
            return 400, "No text specified."
        channel = self.hook_channel
        override = body.get("channel")
        if override:
            found = self._override(str(override))
            if found is None:
                return 400, "Couldn't find the channel."
            channel = found
        problem = _post_problem(str(body.get("text", "")), {"attachments": body.get("attachments")})
        if problem:
            return 400, problem
        overrides = {k: str(body[k]) for k in ("channel", "username", "icon_url") if k in body}
        self._store(
            channel,
            str(body.get("text", "")),
            {"attachments": body.get("attachments")},
            via="webhook",
            overrides=overrides,
        )
        return 200, ""

    def _override(self, name: str) -> str | None:
        if name.startswith("@"):
            return self.users.get(name[1:], {}).get("id")
        return next((c for c, ch in self.channels.items() if ch["name"] == name), None)

    # ---- REST API v4

    async def _api(self, request: web.Request) -> web.Response:
        body = await _json(request) if request.can_read_body else None
        status, answer = self._scripted_or(lambda: self._api_answer(request, body))
        self._record(HttpCall(request.method, request.path, body, status))
        if isinstance(answer, web.Response):
            return answer
        if status >= 400:
            return _error(status, str(answer))
        return web.json_response(answer, status=status)

    def _api_answer(self, request: web.Request, body: Any) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, "Invalid or expired session, please login again."
        path, method = request.match_info["tail"], request.method
        if method == "GET" and path == "users/me":
            return 200, self.bot
        if method == "GET" and (m := re.fullmatch(r"users/username/([^/]+)", path)):
            user = self.users.get(m.group(1))
            return (200, user) if user else (404, "Unable to find an existing account matching.")
        if method == "GET" and (
            m := re.fullmatch(r"teams/name/([^/]+)/channels/name/([^/]+)", path)
        ):
            team, name = m.groups()
            found = next(
                (ch for ch in self.channels.values() if ch["team"] == team and ch["name"] == name),
                None,
            )
            return (200, found) if found else (404, "Unable to find the existing channel.")
        if method == "POST" and path == "channels/direct":
            return self._direct(body)
        if method == "POST" and path == "posts":
            return self._create(body)
        if method == "PUT" and (m := re.fullmatch(r"posts/([^/]+)/patch", path)):
            return self._patch(m.group(1), body)
        return 404, "Sorry, we could not find the page."

    def _direct(self, body: Any) -> tuple[int, Any]:
        ids = {u["id"] for u in [self.bot, *self.users.values()]}
        if not isinstance(body, list) or len(body) != 2 or not set(body) <= ids:
            return 400, "Invalid user_ids parameter."
        name = "__".join(sorted(body))
        found = next((c for c, ch in self.channels.items() if ch["name"] == name), None)
        if found is None:
            found = new_id()
            self.channels[found] = {"id": found, "team": "", "name": name, "type": "D"}
            self.members.add(found)
        return 201, self.channels[found]

    def _create(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("channel_id"), str):
            return 400, "Invalid channel_id parameter."
        channel, message = body["channel_id"], body.get("message", "")
        if channel not in self.channels:
            return 403, "You do not have the appropriate permissions."
        if channel not in self.members:
            return 403, "You do not have the appropriate permissions."
        root = body.get("root_id") or ""
        with self._lock:
            parent = self.posts.get(root) if root else None
        if root and (
            parent is None or parent.deleted or parent.root_id or parent.channel_id != channel
        ):
            return 400, "Invalid RootId parameter."
        props = body.get("props") or {}
        problem = _post_problem(message, props)
        if problem:
            return 400, problem
        post = self._store(channel, message, props, root=root)
        return 201, post.as_json()

    def _patch(self, post_id: str, body: Any) -> tuple[int, Any]:
        with self._lock:
            post = self.posts.get(post_id)
        if post is None or post.deleted:
            return 404, "Unable to find the existing post or comment to update."
        if post.user_id != self.bot["id"]:
            return 403, "You do not have the appropriate permissions."
        if not isinstance(body, dict):
            return 400, "Invalid patch."
        message = body.get("message", post.message)
        props = body.get("props", post.props)
        problem = _post_problem(message, props)
        if problem:
            return 400, problem
        with self._lock:
            post.message, post.props, post.update_at = message, props, next(self._clock)
        return 200, post.as_json()

    # ---- plumbing

    def _store(
        self,
        channel: str,
        message: str,
        props: dict[str, Any],
        *,
        root: str = "",
        via: str = "api",
        overrides: dict[str, str] | None = None,
    ) -> MattermostPost:
        now = next(self._clock)
        post = MattermostPost(
            new_id(),
            channel,
            self.bot["id"],
            message,
            props,
            root,
            now,
            now,
            via=via,
            overrides=overrides or {},
        )
        with self._lock:
            self.posts[post.id] = post
        return post

    def _scripted_or(self, answer: Any) -> tuple[int, Any]:
        scripted = self._scripted()
        if scripted is None:
            return answer()  # type: ignore[no-any-return]
        return scripted.status, scripted.text_response()


def _post_problem(message: Any, props: Any) -> str:
    if not isinstance(message, str):
        return "Invalid message."
    if len(message) > MESSAGE_RUNES:
        return f"Invalid message: {len(message)} characters (at most {MESSAGE_RUNES})."
    if len(json.dumps(props, ensure_ascii=False)) > PROPS_RUNES:
        return "Invalid props: too long."
    return ""


def post_problems(body: Any) -> list[str]:
    """The server's checks of a REST post body, as a pure function."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    out = []
    if not isinstance(body.get("channel_id"), str) or not body["channel_id"]:
        out.append("channel_id is missing")
    problem = _post_problem(body.get("message", ""), body.get("props") or {})
    if problem:
        out.append(problem)
    for attachment in (body.get("props") or {}).get("attachments") or []:
        if not isinstance(attachment, dict):
            out.append("an attachment is not an object")
    return out


def _error(status: int, message: str) -> web.Response:
    error = {
        "id": "api.deploybell_peer.app_error",
        "message": message,
        "detailed_error": "",
        "request_id": new_id(),
        "status_code": status,
    }
    return web.json_response(error, status=status)


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.text())
    except ValueError:
        return None
