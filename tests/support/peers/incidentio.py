"""A local incident.io HTTP alert source (`POST /v2/alert_events/http/<source id>`), with its
checks and answers. Point a Secret's `url` at `peer.url`.

What it enforces, from incident.io's alert events documentation:
- `Authorization: Bearer <the source's token>`, else 401 with incident.io's error shape
  `{"type": "authentication_error", "status": 401, "request_id", "errors": [{"code",
  "message"}]}`; an unknown source id 404;
- a JSON object body (`Content-Type: application/json`) with `title` (non-empty) and `status`
  (`firing` | `resolved`), else 422 `{"type": "validation_error", ...}` naming the field;
  `description`, `deduplication_key` and `source_url` strings, `metadata` an object;
- accepted events: 202 `{"status": "success", "message": "Event accepted for processing",
  "deduplication_key": …}`; a firing event with the key of an open alert updates it (title and
  description), a resolved one resolves it (one for no open alert changes nothing);
- rate limit: 429 with a `Retry-After` header (seconds) and a `rate_limit` error.
incident.io documents no length limits for these fields, so none is enforced here.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.peers._http import JsonApiPeer
from tests.support.peers.contract import PeerContract

SOURCE_ID = "01JDEPLOYBELLALERTSOURCE0001"
TOKEN = "inc-alert-source-token-0123456789"


@dataclass
class IncidentAlert:
    key: str
    title: str
    description: str
    metadata: dict[str, Any]
    status: str  # firing | resolved


def event_problems(body: Any) -> list[tuple[str, str]]:
    """(field, why) for each reason incident.io refuses the event."""
    if not isinstance(body, dict):
        return [("body", "must be a JSON object")]
    out = []
    if not isinstance(body.get("title"), str) or not body["title"].strip():
        out.append(("title", "is required"))
    if body.get("status") not in ("firing", "resolved"):
        out.append(("status", "must be one of firing, resolved"))
    for name in ("description", "deduplication_key", "source_url"):
        if name in body and not isinstance(body[name], str):
            out.append((name, "must be a string"))
    if "metadata" in body and not isinstance(body["metadata"], dict):
        out.append(("metadata", "must be an object"))
    return out


def _error(kind: str, status: int, code: str, message: str, field: str = "") -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["source"] = {"field": field}
    return {"type": kind, "status": status, "request_id": str(uuid.uuid4()), "errors": [error]}


class IncidentioPeer(JsonApiPeer):
    """One HTTP alert source and the alerts it raised, by deduplication key."""

    def __init__(self, token: str = TOKEN, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.token = token
        self.alerts: dict[str, IncidentAlert] = {}

    @property
    def url(self) -> str:
        return f"{self.base_url}/v2/alert_events/http/{SOURCE_ID}"

    def firing(self) -> list[IncidentAlert]:
        with self._changed:
            return [a for a in self.alerts.values() if a.status == "firing"]

    def rate_limit(self, seconds: int) -> None:
        body = _error("rate_limit_error", 429, "rate_limited", "Too many requests")
        self.respond_next(1, 429, retry_after=str(seconds), body=json.dumps(body))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/alert_events/http/{source}", self._handle)
        return app

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            error = _error("authentication_error", 401, "unauthenticated", "Invalid token")
            return 401, error, {}
        if request.match_info["source"] != SOURCE_ID:
            return 404, _error("not_found", 404, "not_found", "Alert source not found"), {}
        if request.content_type != "application/json" or body is ValueError:
            return 422, _error("validation_error", 422, "invalid_body", "Body is not JSON"), {}
        problems = event_problems(body)
        if problems:
            field, why = problems[0]
            error = _error("validation_error", 422, "invalid_value", f"{field} {why}", field)
            return 422, error, {}
        key = body.get("deduplication_key") or str(uuid.uuid4())
        with self._changed:
            found = self.alerts.get(key)
            if body["status"] == "firing":
                self.alerts[key] = IncidentAlert(
                    key,
                    body["title"],
                    body.get("description", ""),
                    body.get("metadata", {}),
                    "firing",
                )
            elif found is not None:
                found.status = "resolved"
        answer = {
            "status": "success",
            "message": "Event accepted for processing",
            "deduplication_key": key,
        }
        return 202, answer, {}


class IncidentioContract(PeerContract[IncidentioPeer]):
    """The alert source's firing alerts, as incident.io's alert list shows them."""

    alerting = True
    limits_size = False  # no documented limits

    def __init__(self) -> None:
        super().__init__(IncidentioPeer())

    def secret(self) -> dict[str, str]:
        return {"url": self.peer.url, "token": self.peer.token}

    def visible(self) -> list[str]:
        return [f"{a.title} {a.description}" for a in self.peer.firing()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        if rendered is None:
            return []
        return [f"{field} {why}" for field, why in event_problems(rendered)]
