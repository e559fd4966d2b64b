"""A local Grafana HTTP API for annotations: create, patch and find, with Grafana's service
account auth, permissions and answers. Point a Secret's `url` at `peer.url`.

What it enforces, from Grafana's HTTP API documentation:
- `Authorization: Bearer <service account token>`, else 401 "Invalid API key"; a token without
  the permission an action needs (`annotations:create`, `annotations:write`,
  `annotations:read`) gets 403 naming it.
- create: JSON with a non-empty `text` (400 "Failed to save annotation"), `time`/`timeEnd` epoch
  milliseconds as integers, `tags` strings (a tag's key and value, split at the first `:`, at
  most 100 characters each, as Grafana stores them), an existing `dashboardUID` when one is given
  (404 "Dashboard not found"); 200 `{"message": "Annotation added", "id": …}`.
- patch: `PATCH /api/annotations/:id` changes the fields given; an unknown id 404 "Could not find
  annotation to update"; 200 `{"message": "Annotation patched"}`.
- find: `GET /api/annotations` with `from`/`to` (overlapping), every `tags` given, `type`,
  `limit` (default 100), newest first.
- the text is kept within 65,535 bytes (the MySQL backend's TEXT column).
- rate limits (Grafana Cloud): 429 `{"message": "Too many requests"}` with `Retry-After`.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

from tests.support.peers._http import JsonApiPeer
from tests.support.peers.contract import PeerContract

DEFAULT_TOKEN = "glsa_test_token_2b4c6d8e"
PERMISSIONS = frozenset({"annotations:create", "annotations:write", "annotations:read"})
MAX_TAG_PART = 100
MAX_TEXT_BYTES = 65_535


class GrafanaPeer(JsonApiPeer):
    """One organization's annotations and dashboards; one token with its permissions."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        permissions: frozenset[str] = PERMISSIONS,
        dashboards: frozenset[str] = frozenset({"deploys"}),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.permissions = permissions
        self.dashboards = dashboards
        self._annotations: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def annotations(self) -> list[dict[str, Any]]:
        """Every annotation, oldest first, as stored now (after patches)."""
        with self._changed:
            return [dict(a) for a in self._annotations]

    def delete(self, number: int) -> None:
        with self._changed:
            self._annotations = [a for a in self._annotations if a["id"] != number]

    def rate_limit(self, seconds: int) -> None:
        body = json.dumps({"message": "Too many requests"})
        self.respond_next(1, 429, retry_after=str(seconds), body=body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/annotations", self._handle)
        app.router.add_route("*", "/api/annotations/{id}", self._handle)
        return app

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"message": "Invalid API key", "messageId": "api-key.invalid"}, {}
        needed = {"GET": "annotations:read", "POST": "annotations:create"}.get(
            request.method, "annotations:write"
        )
        if needed not in self.permissions:
            return (
                403,
                {
                    "message": "You'll need additional permissions to perform this "
                    f"action. Permissions needed: {needed}"
                },
                {},
            )
        if body is ValueError or (request.method != "GET" and not isinstance(body, dict)):
            return 400, {"message": "bad request data"}, {}
        number = request.match_info.get("id")
        with self._changed:
            match request.method, number:
                case "POST", None:
                    return (*self._create(body), {})
                case "PATCH", str():
                    return (*self._patch(number, body), {})
                case "GET", None:
                    return 200, self._find(request.query), {}
        return 405, {"message": "Method Not Allowed"}, {}

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        if not str(body.get("text") or ""):
            return 400, {"message": "Failed to save annotation"}
        problem = _fields_problem(body)
        if problem:
            return 400, {"message": problem}
        uid = body.get("dashboardUID")
        if uid is not None and uid not in self.dashboards:
            return 404, {"message": "Dashboard not found"}
        annotation = {
            "id": next(self._ids),
            "dashboardUID": uid,
            "panelId": body.get("panelId", 0),
            "time": body.get("time", 0),
            "timeEnd": body.get("timeEnd", body.get("time", 0)),
            "tags": list(body.get("tags") or []),
            "text": body["text"],
            "patches": 0,
        }
        self._annotations.append(annotation)
        return 200, {"message": "Annotation added", "id": annotation["id"]}

    def _patch(self, number: str, body: dict[str, Any]) -> tuple[int, Any]:
        found = next((a for a in self._annotations if str(a["id"]) == number), None)
        if found is None:
            return 404, {"message": "Could not find annotation to update"}
        problem = _fields_problem(body)
        if problem:
            return 400, {"message": problem}
        found.update({k: body[k] for k in ("time", "timeEnd", "text", "tags") if k in body})
        found["patches"] += 1
        return 200, {"message": "Annotation patched"}

    def _find(self, query: Any) -> list[dict[str, Any]]:
        start, end = int(query.get("from", 0)), int(query.get("to", 2**62))
        wanted = set(query.getall("tags", []))
        found = [
            {k: v for k, v in a.items() if k != "patches"}
            for a in self._annotations
            if a["time"] <= end and a["timeEnd"] >= start and wanted <= set(a["tags"])
        ]
        found.sort(key=lambda a: a["time"], reverse=True)
        return found[: int(query.get("limit", 100))]


def _fields_problem(body: dict[str, Any]) -> str:
    for key in ("time", "timeEnd", "panelId"):
        if key in body and (isinstance(body[key], bool) or not isinstance(body[key], int)):
            return f"bad request data: {key} must be an integer"
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "bad request data: tags must be a list of strings"
    for tag in tags:
        key, _, value = tag.partition(":")
        if len(key.strip()) > MAX_TAG_PART or len(value.strip()) > MAX_TAG_PART:
            return f"Failed to save annotation: tag {tag[:20]!r}… is too long"
    if len(str(body.get("text") or "").encode()) > MAX_TEXT_BYTES:
        return "Failed to save annotation: text is too long"
    return ""


class GrafanaContract(PeerContract[GrafanaPeer]):
    """The provider contract over a GrafanaPeer: what a person sees is each annotation's text."""

    def __init__(self) -> None:
        super().__init__(GrafanaPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "url": self.peer.url}

    def options(self) -> dict[str, Any]:
        return {"dashboardUID": "deploys", "panelId": 2}

    def visible(self) -> list[str]:
        return [str(a["text"]) for a in self.peer.annotations()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        problem = _fields_problem(rendered)
        return [problem] if problem else ([] if rendered.get("text") else ["no text"])
