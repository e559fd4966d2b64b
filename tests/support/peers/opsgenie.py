"""A local Opsgenie Alert API v2 (create, close, add note), with Opsgenie's checks and answers.
Point a Secret's `apiUrl` at `peer.url`.

What it enforces, from Opsgenie's Alert API documentation:
- `Authorization: GenieKey <key>` of an API integration, else 401 `{"message": "Could not
  authenticate", ...}`; the body JSON (`Content-Type: application/json`), else 422;
- create (`POST /v2/alerts`): `message` required, at most 130 characters; `alias` at most 512,
  `description` 15000, `entity` 512, `source` and `user` 100, `note` 25000; at most 20 `tags` of
  at most 50 characters; `details` a map of strings (8000 characters together); `priority`
  P1-P5; `responders[]` with `type` and `id` or `name`. Invalid → 422 `{"message": "Request
  body is not processable. Please check the errors.", "errors": {field: why}, ...}`;
- close and notes (`POST /v2/alerts/{identifier}/close|notes?identifierType=alias|id|tiny`):
  the identifier type must be known (else 422); a note is required for notes;
- every valid request is answered 202 `{"result": "Request will be processed", "took": …,
  "requestId": …}` and processed afterwards, as Opsgenie does: a create whose alias is open is
  deduplicated into that alert (its count grows, its message stays); a close or a note of an
  alias with no open alert fails in processing (kept in `failed`), never in the answer;
- rate limit: 429 with `X-RateLimit-State: THROTTLED`, `X-RateLimit-Reason` and
  `X-RateLimit-Period-In-Sec` (no Retry-After), and Opsgenie's JSON message.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.peers._http import JsonApiPeer
from tests.support.peers.contract import PeerContract

API_KEY = "0a1b2c3d-opsgenie-integration-key"
PRIORITIES = frozenset({"P1", "P2", "P3", "P4", "P5"})
LIMITS = {
    "message": 130,
    "alias": 512,
    "description": 15000,
    "entity": 512,
    "source": 100,
    "user": 100,
    "note": 25000,
}


@dataclass
class Alert:
    alias: str
    message: str
    description: str
    priority: str
    status: str = "open"  # open | closed
    count: int = 1
    notes: list[str] = field(default_factory=list)


def field_problems(body: Any, *, create: bool) -> dict[str, str]:
    """What Opsgenie's validation answers in `errors` (empty when the body is valid)."""
    if not isinstance(body, dict):
        return {"body": "Request body must be a JSON object"}
    errors = {}
    if create and not (isinstance(body.get("message"), str) and body["message"].strip()):
        errors["message"] = "Message can not be empty."
    for name, most in LIMITS.items():
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > most):
            errors[name] = f"{name} must be a string of at most {most} characters"
    tags = body.get("tags") or []
    if len(tags) > 20 or not all(isinstance(t, str) and 0 < len(t) <= 50 for t in tags):
        errors["tags"] = "At most 20 tags of at most 50 characters"
    details = body.get("details") or {}
    if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
        errors["details"] = "Details must be a map of strings"
    elif sum(len(k) + len(v) for k, v in details.items()) > 8000:
        errors["details"] = "Details can be at most 8000 characters in total"
    if "priority" in body and body["priority"] not in PRIORITIES:
        errors["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]"
    for responder in body.get("responders") or []:
        if not isinstance(responder, dict) or not (responder.get("id") or responder.get("name")):
            errors["responders"] = "Responder must have an id or a name"
    return errors


class OpsgeniePeer(JsonApiPeer):
    """One API integration's alerts, by alias."""

    def __init__(self, api_key: str = API_KEY, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.alerts: dict[str, Alert] = {}
        self.failed: list[str] = []  # requests accepted and then failed in processing

    def open_alerts(self) -> list[Alert]:
        with self._changed:
            return [a for a in self.alerts.values() if a.status == "open"]

    def rate_limit(self, seconds: int) -> None:
        headers = {
            "X-RateLimit-State": "THROTTLED",
            "X-RateLimit-Reason": "INTEGRATION",
            "X-RateLimit-Period-In-Sec": str(seconds),
        }
        body = {
            "message": "You are making too many requests! To avoid errors, we recommend you "
            "limit requests.",
            "took": 0.001,
            "requestId": str(uuid.uuid4()),
        }
        self.respond_next(1, 429, body=json.dumps(body), headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v2/alerts", self._handle)
        app.router.add_post("/v2/alerts/{identifier}/{action}", self._handle)
        return app

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        if request.headers.get("Authorization") != f"GenieKey {self.api_key}":
            return 401, _said("Could not authenticate"), {}
        if request.content_type != "application/json" or body is ValueError:
            return 422, _said("Request body is not processable. Please check the errors."), {}
        action = request.match_info.get("action")
        if action not in (None, "close", "notes"):
            return 404, _said("Not found"), {}
        errors = field_problems(body, create=action is None)
        if action == "notes" and not body.get("note"):
            errors["note"] = "Note can not be empty."
        if action and request.query.get("identifierType", "id") not in ("id", "alias", "tiny"):
            errors["identifierType"] = "identifierType should be one of [id, alias, tiny]"
        if errors:
            answer = _said("Request body is not processable. Please check the errors.")
            return 422, {**answer, "errors": errors}, {}
        with self._changed:
            self._process(action, request.match_info.get("identifier", ""), body)
        return 202, {**_said(""), "result": "Request will be processed"}, {}

    def _process(self, action: str | None, identifier: str, body: dict[str, Any]) -> None:
        """What Opsgenie does after its 202."""
        if action is None:
            alias = body.get("alias") or body["message"]
            found = self.alerts.get(alias)
            if found is not None and found.status == "open":
                found.count += 1
                return
            self.alerts[alias] = Alert(
                alias, body["message"], body.get("description", ""), body.get("priority", "P3")
            )
            return
        found = self.alerts.get(identifier)
        if found is None or found.status != "open":
            self.failed.append(f"{action} {identifier}: Alert does not exist")
            return
        if body.get("note"):
            found.notes.append(body["note"])
        if action == "close":
            found.status = "closed"


def _said(message: str) -> dict[str, Any]:
    out: dict[str, Any] = {"took": 0.002, "requestId": str(uuid.uuid4())}
    if message:
        out["message"] = message
    return out


class OpsgenieContract(PeerContract[OpsgeniePeer]):
    """The team's open alerts, as Opsgenie's alert list shows them (message and description)."""

    alerting = True

    def __init__(self) -> None:
        super().__init__(OpsgeniePeer())

    def secret(self) -> dict[str, str]:
        return {"apiKey": self.peer.api_key, "apiUrl": self.peer.url}

    def visible(self) -> list[str]:
        return [f"{a.message} {a.description}" for a in self.peer.open_alerts()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        out = []
        for call in rendered:
            create = call["path"] == "/v2/alerts"
            out += [f"{k}: {v}" for k, v in field_problems(call["body"], create=create).items()]
        return out
