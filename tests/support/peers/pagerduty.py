"""A local PagerDuty Events API v2: `/v2/enqueue` (alerts) and `/v2/change/enqueue`.

What it enforces, as the Events API v2 documents it:
- `Content-Type: application/json` and a JSON object, else 400;
- `routing_key`: 32 characters, and the integration's own (the peer knows one), else 400;
- alerts: `event_action` trigger | acknowledge | resolve; `dedup_key` at most 255 characters (and
  required for acknowledge/resolve); a trigger needs `payload.summary` (1-1024 characters),
  `payload.source` and `payload.severity` (critical | error | warning | info);
- change events: `payload.summary` (1-1024 characters);
- an event at most 512 KB; `links[].href` present;
- invalid events answer 400 `{"status": "invalid event", "message": "Event object is invalid",
  "errors": [...]}`; accepted ones 202 `{"status": "success", "message": ..., "dedup_key": ...}`
  (a trigger without a dedup key gets a new one);
- rate limits: 429. PagerDuty documents no wait time for it (its advice: back off and retry), so
  the peer sends none; deploybell then waits its own default.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpPeer

ROUTING_KEY = "R0UT1NGKEYdeploybell0123456789ab"
SUMMARY_CHARS = 1024
DEDUP_KEY_CHARS = 255
EVENT_BYTES = 512 * 1024
SEVERITIES = frozenset({"critical", "error", "warning", "info"})
ACTIONS = frozenset({"trigger", "acknowledge", "resolve"})


@dataclass(frozen=True)
class PagerdutyRequest:
    path: str
    json: Any
    status: int


@dataclass
class Alert:
    dedup_key: str
    summary: str
    severity: str
    status: str  # triggered | resolved
    triggers: int = 1


def event_problems(path: str, body: Any, size: int = 0) -> list[str]:
    """Why the Events API would refuse this event (the `errors` it answers)."""
    if not isinstance(body, dict):
        return ["Event object is not a JSON object"]
    errors = []
    size = size or len(json.dumps(body, ensure_ascii=False).encode())
    if size > EVENT_BYTES:
        errors.append(f"Event is {size} bytes, larger than {EVENT_BYTES}")
    if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
        errors.append("'routing_key' must be 32 characters")
    payload = body.get("payload")
    alert = path == "/v2/enqueue"
    action = body.get("event_action")
    if alert and action not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    key = body.get("dedup_key")
    if key is not None and (not isinstance(key, str) or len(key) > DEDUP_KEY_CHARS):
        errors.append(f"'dedup_key' must be a string of at most {DEDUP_KEY_CHARS} characters")
    if alert and action in ("acknowledge", "resolve") and not key:
        errors.append("'dedup_key' is required for acknowledge and resolve")
    if not alert or action == "trigger":
        errors += _payload_problems(payload, trigger=alert)
    for link in body.get("links") or []:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            errors.append("'links[].href' is missing")
    return errors


def _payload_problems(payload: Any, *, trigger: bool) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > SUMMARY_CHARS:
        errors.append(f"'payload.summary' is longer than {SUMMARY_CHARS} characters")
    if trigger and (not isinstance(payload.get("source"), str) or not payload["source"]):
        errors.append("'payload.source' is missing or blank")
    if trigger and payload.get("severity") not in SEVERITIES:
        errors.append("'payload.severity' is invalid (critical, error, warning or info)")
    return errors


class PagerdutyPeer(HttpPeer[PagerdutyRequest]):
    """One integration (one routing key); keeps change events and alerts by dedup key."""

    rate_limits = False  # PagerDuty's 429 names no wait time to honour
    limits_size = True

    def __init__(self, routing_key: str = ROUTING_KEY, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.routing_key = routing_key
        self.changes: list[dict[str, Any]] = []
        self.alerts: dict[str, Alert] = {}
        self._lock = threading.Lock()

    # ---- the provider contract

    def secret(self) -> dict[str, str]:
        return {"routingKey": self.routing_key, "apiUrl": self.base_url}

    def recipients(self) -> tuple[str, ...]:
        return ()

    def options(self) -> dict[str, Any]:
        return {"alertOnFailure": True}

    def visible(self) -> list[str]:
        """The service's timeline: change events, then the open alerts."""
        with self._lock:
            changes = [c["payload"]["summary"] for c in self.changes]
            alerts = [a.summary for a in self.alerts.values() if a.status == "triggered"]
        return changes + alerts

    def problems(self, rendered: Any) -> list[str]:
        """The rendered calls' problems; their routing key is the Secret's (the preview shows a
        placeholder), so this integration's own stands in for it."""
        return [
            problem
            for call in rendered
            for problem in event_problems(
                call["path"], {**call["body"], "routing_key": self.routing_key}
            )
        ]

    def rate_limit_next(self, seconds: int) -> None:
        body = {
            "status": "throttle event",
            "message": "Requests for this service are arriving too quickly. Please retry later.",
        }
        self.respond_next(
            1, 429, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )

    def alert(self, dedup_key: str) -> Alert | None:
        with self._lock:
            return self.alerts.get(dedup_key)

    # ---- the Events API

    def app(self) -> web.Application:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_post("/v2/enqueue", self._handle)
        app.router.add_post("/v2/change/enqueue", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        scripted = self._scripted()
        if scripted is not None:
            self._record(PagerdutyRequest(request.path, body, scripted.status))
            return scripted.text_response()
        errors = [] if request.content_type == "application/json" else ["Content-Type is not JSON"]
        errors += event_problems(request.path, body, len(raw))
        if not errors and body["routing_key"] != self.routing_key:
            errors.append("Invalid routing key")
        if errors:
            self._record(PagerdutyRequest(request.path, body, 400))
            answer = {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            }
            return web.json_response(answer, status=400)
        self._record(PagerdutyRequest(request.path, body, 202))
        if request.path == "/v2/change/enqueue":
            with self._lock:
                self.changes.append(body)
            return web.json_response(
                {"status": "success", "message": "Change event processed"}, status=202
            )
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": self._alert(body)},
            status=202,
        )

    def _alert(self, body: dict[str, Any]) -> str:
        key = body.get("dedup_key") or uuid.uuid4().hex
        with self._lock:
            found = self.alerts.get(key)
            if body["event_action"] == "trigger":
                payload = body["payload"]
                if found is not None and found.status == "triggered":
                    found.triggers += 1
                else:
                    self.alerts[key] = Alert(
                        key, payload["summary"], payload["severity"], "triggered"
                    )
            elif found is not None and body["event_action"] == "resolve":
                found.status = "resolved"
        return str(key)
