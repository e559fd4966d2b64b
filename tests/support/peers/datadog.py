"""A local Datadog API for DORA Metrics deployment events: send, get and patch, with Datadog's
key checks, validation and answers. Point a Secret's `apiUrl` at `peer.url`.

What it enforces, from Datadog's API reference (DORA Metrics):
- `POST /api/v2/dora/deployment` needs a valid `DD-API-KEY` (else 403 `{"errors":
  ["Forbidden"]}`); `GET` and `PATCH /api/v2/dora/deployments/{id}` need an application key too
  (`DD-APPLICATION-KEY`), with the `dora_metrics_read` / `dora_metrics_write` scopes.
- the body is `{"data": {"attributes": …}}` (JSON); `service`, `started_at` and `finished_at`
  are required, the times integers (Unix seconds, milliseconds or nanoseconds; the end not
  before the start); `git` needs both `commit_sha` and `repository_url`; `id` is 16 to 128
  characters of `[A-Za-z0-9_.:-]`; at most 100 `custom_tags`, each `key:value`. Errors are
  400 with JSON:API error objects. Older reference versions said `finished_at` should not be
  older than one (earlier three) hours; the current one states no limit, so none is enforced.
- a sent event answers 200 `{"data": {"id": …, "type": "dora_deployment"}}`; a patch of an
  unknown id 404; a patch is `{"data": {"id", "type": "dora_deployment_patch_request",
  "attributes": {"change_failure": bool}}}`, answered 202.
- `GET /api/v1/validate` answers `{"valid": true}` for a valid API key, else 403.
- rate limits: 429 `{"errors": ["Too many requests"]}` with `X-RateLimit-Limit`,
  `X-RateLimit-Period`, `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset` (seconds to wait).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpCall, JsonApiPeer
from tests.support.peers.contract import PeerContract

DEFAULT_API_KEY = "dd-api-key-0123456789abcdef"
DEFAULT_APP_KEY = "dd-app-key-fedcba9876543210"
MAX_TAGS = 100
_ID = re.compile(r"[A-Za-z0-9_.:-]{16,128}")
VERBS = {"succeeded": "succeeded", "failed": "failed", "canceled": "was canceled"}


class DatadogPeer(JsonApiPeer):
    """One organization's DORA deployment events."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        app_key: str = DEFAULT_APP_KEY,
        app_scopes: frozenset[str] = frozenset({"dora_metrics_read", "dora_metrics_write"}),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.app_key = app_key
        self.app_scopes = app_scopes
        self._events: list[dict[str, Any]] = []

    def events(self) -> list[dict[str, Any]]:
        """The deployment events, oldest first: their attributes, `id` and `change_failure`."""
        with self._changed:
            return [dict(e) for e in self._events]

    def rate_limit(self, seconds: int) -> None:
        headers = {
            "X-RateLimit-Limit": "60",
            "X-RateLimit-Period": "60",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(seconds),
            "X-RateLimit-Name": "dora_metrics",
        }
        self.respond_next(
            1, 429, body=json.dumps({"errors": ["Too many requests"]}), headers=headers
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v2/dora/deployment", self._handle)
        app.router.add_get("/api/v1/validate", self._validate)
        app.router.add_route("*", "/api/v2/dora/deployments/{id}", self._handle)
        return app

    async def _validate(self, request: web.Request) -> web.Response:
        """Datadog's API key check: 200 `{"valid": true}`, else 403."""
        valid = request.headers.get("DD-API-KEY") == self.api_key
        self._record(HttpCall(request.method, request.path, None, 200 if valid else 403))
        if valid:
            return web.json_response({"valid": True})
        return web.json_response({"errors": ["Forbidden"]}, status=403)

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        if request.headers.get("DD-API-KEY") != self.api_key:
            return 403, {"errors": ["Forbidden"]}, {}
        number = request.match_info.get("id")
        if number is not None:
            scope = "dora_metrics_read" if request.method == "GET" else "dora_metrics_write"
            if request.headers.get("DD-APPLICATION-KEY") != self.app_key:
                return 403, {"errors": ["Forbidden"]}, {}
            if scope not in self.app_scopes:
                return 403, {"errors": [f"Forbidden: the application key lacks {scope}"]}, {}
        if request.method != "GET" and (body is ValueError or not isinstance(body, dict)):
            return 400, _error("Invalid JSON body"), {}
        with self._changed:
            if number is None:
                return (*self._send(body), {})
            found = next((e for e in self._events if e["id"] == number), None)
            if found is None:
                return 404, {"errors": ["Not found"]}, {}
            if request.method == "GET":
                return (
                    200,
                    {"data": {"id": number, "type": "dora_deployment", "attributes": found}},
                    {},
                )
            return (*self._patch(found, number, body), {})

    def _send(self, body: dict[str, Any]) -> tuple[int, Any]:
        data = body.get("data")
        attributes = data.get("attributes") if isinstance(data, dict) else None
        if not isinstance(attributes, dict):
            return 400, _error("data.attributes is required")
        problem = _attributes_problem(attributes)
        if problem:
            return 400, _error(problem)
        key = attributes.get("id") or uuid.uuid4().hex
        self._events.append({**attributes, "id": key, "change_failure": None})
        return 200, {"data": {"id": key, "type": "dora_deployment"}}

    def _patch(self, found: dict[str, Any], key: str, body: dict[str, Any]) -> tuple[int, Any]:
        data = body.get("data")
        if not isinstance(data, dict) or data.get("type") != "dora_deployment_patch_request":
            return 400, _error("data.type must be dora_deployment_patch_request")
        if data.get("id") != key:
            return 400, _error("data.id must be the deployment id of the path")
        attributes = data.get("attributes") or {}
        if not isinstance(attributes.get("change_failure", False), bool):
            return 400, _error("change_failure must be a boolean")
        if "change_failure" in attributes:
            found["change_failure"] = attributes["change_failure"]
        return 202, None


def _attributes_problem(attributes: dict[str, Any]) -> str:
    for key in ("service", "started_at", "finished_at"):
        if key not in attributes:
            return f"{key} is required"
    if not isinstance(attributes["service"], str) or not attributes["service"]:
        return "service must be a non-empty string"
    times = [attributes["started_at"], attributes["finished_at"]]
    if any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in times):
        return "started_at and finished_at must be integers"
    if times[1] < times[0]:
        return "finished_at must not be before started_at"
    git = attributes.get("git")
    if git is not None and not (
        isinstance(git, dict) and git.get("commit_sha") and git.get("repository_url")
    ):
        return "git needs commit_sha and repository_url"
    if "id" in attributes and not _ID.fullmatch(str(attributes["id"])):
        return "id must be 16-128 characters of a-z, A-Z, 0-9, -, _, . and :"
    tags = attributes.get("custom_tags") or []
    if len(tags) > MAX_TAGS or not all(isinstance(t, str) and ":" in t for t in tags):
        return f"custom_tags must be at most {MAX_TAGS} key:value strings"
    return ""


def _error(detail: str) -> dict[str, Any]:
    return {"errors": [{"status": "400", "title": "Bad Request", "detail": detail}]}


def describe(event: dict[str, Any]) -> str:
    """How the DORA deployments list reads an event: its tags in words."""
    tags = dict(t.split(":", 1) for t in event.get("custom_tags") or [])
    verb = VERBS.get(tags.get("deploybell.outcome", ""), tags.get("deploybell.outcome", "?"))
    failure = " — change failure" if event.get("change_failure") else ""
    return (
        f"{tags.get('deploybell.job', event['service'])} {verb} on "
        f"{tags.get('deploybell.cluster', '?')} (run {tags.get('deploybell.run', '?')}) "
        f"to {event.get('env', '?')}: {event['service']} {event.get('version', '')}{failure}"
    )


class DatadogContract(PeerContract[DatadogPeer]):
    """The provider contract over a DatadogPeer: the deployment events as the DORA Metrics
    deployments list shows them (nothing at start: the record is made at the outcome)."""

    limits_size = False  # the event carries no free text, only names and tags

    def __init__(self) -> None:
        super().__init__(DatadogPeer())

    def secret(self) -> dict[str, str]:
        return {"apiKey": self.peer.api_key, "appKey": self.peer.app_key, "apiUrl": self.peer.url}

    def options(self) -> dict[str, Any]:
        return {"service": "web"}

    def visible(self) -> list[str]:
        return [describe(e) for e in self.peer.events()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        if rendered is None:
            return []
        problem = _attributes_problem(rendered["data"]["attributes"])
        return [problem] if problem else []
