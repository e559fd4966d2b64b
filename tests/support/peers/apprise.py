"""A receiver for apprise's `json://` service: what apprise's JSON plugin posts, checked as a
consumer of it would — Basic auth from the URL's user and password (401 otherwise), a JSON body
with `version` 1.0, `title`, `message` and a `type` of info | success | warning | failure.

apprise itself sets no size limit (each of its services cuts to its own), so the contract's
limits are apprise's argument checks: a title and a non-empty text body of a known notify type.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpPeer

USER = "bell"
PASSWORD = "apprise-peer-password"
PATH = "/notify/t0ken-in-the-path"
NOTIFY_TYPES = frozenset({"info", "success", "warning", "failure"})


@dataclass(frozen=True)
class AppriseRequest:
    path: str
    authorized: bool
    json: Any
    status: int

    @property
    def text(self) -> str:
        body = self.json if isinstance(self.json, dict) else {}
        return f"{body.get('title', '')} {body.get('message', '')}"


def notification_problems(rendered: Any) -> list[str]:
    """Why `Apprise.notify` would refuse these arguments."""
    if not isinstance(rendered, dict):
        return ["not a mapping of notify() arguments"]
    out = []
    if not isinstance(rendered.get("title"), str):
        out.append("title is not text")
    if not isinstance(rendered.get("body"), str) or not rendered["body"].strip():
        out.append("body is empty")
    if rendered.get("notify_type") not in NOTIFY_TYPES:
        out.append(f"notify_type {rendered.get('notify_type')!r} is unknown")
    if rendered.get("body_format") not in ("text", "markdown", "html"):
        out.append(f"body_format {rendered.get('body_format')!r} is unknown")
    return out


class AppriseJsonPeer(HttpPeer[AppriseRequest]):
    """POST `PATH` with the right Basic auth → 200; the scripted answer when there is one."""

    rate_limits = False  # apprise does not hand a server's Retry-After on
    limits_size = False

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)

    @property
    def url(self) -> str:
        """The apprise URL of this receiver (credentials and the path are the secrets)."""
        return f"json://{USER}:{PASSWORD}@{self.host}:{self.port}{PATH}"

    # ---- the provider contract

    def secret(self) -> dict[str, str]:
        return {"urls": f"# the deploy receiver\n{self.url}\n"}

    def recipients(self) -> tuple[str, ...]:
        return ()

    def options(self) -> dict[str, Any]:
        return {}

    def visible(self) -> list[str]:
        return [r.text for r in self.received if r.status < 300]

    def problems(self, rendered: Any) -> list[str]:
        return notification_problems(rendered)

    def rate_limit_next(self, seconds: int) -> None:
        self.respond_next(1, 429, retry_after=str(seconds))

    # ---- the receiver

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        authorized = request.headers.get("Authorization") == expected
        try:
            body = json.loads(await request.text())
        except ValueError:
            body = None
        scripted = self._scripted()
        if request.method != "POST" or request.path != PATH:
            status = 404
        elif not authorized:
            status = 401
        elif scripted is not None:
            status = scripted.status
        elif request.content_type != "application/json" or _body_problem(body):
            status = 400
        else:
            status = 200
        self._record(AppriseRequest(request.path, authorized, body, status))
        headers = scripted.response_headers() if scripted is not None else {}
        return web.Response(status=status, headers=headers, text="ok" if status == 200 else "no")


def _body_problem(body: Any) -> str:
    if not isinstance(body, dict) or body.get("version") != "1.0":
        return "not apprise's JSON version 1.0"
    if not isinstance(body.get("message"), str) or not isinstance(body.get("title"), str):
        return "title and message must be strings"
    return "" if body.get("type") in NOTIFY_TYPES else "unknown type"
