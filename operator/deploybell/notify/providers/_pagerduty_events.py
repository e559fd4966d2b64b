"""PagerDuty Events API v2 request bodies (pure).

Limits: `payload.summary` at most 1024 characters, `dedup_key` at most 255, a whole event at most
512 KB; `custom_details` is cut here to a few KB (bounded lists, cut values) so it never nears it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _layout, base

SUMMARY_CHARS = 1024
DEDUP_KEY_CHARS = 255
VALUE_CHARS = 1000
LINE_CHARS = 500
MAX_ITEMS = 10
LINK_CHARS = 2000


@dataclass(frozen=True)
class Request:
    path: str
    body: dict[str, Any]
    what: str
    alert: bool = False


def requests(
    message: Message, override: base.Title | None, options: Mapping[str, Any], routing_key: str
) -> list[Request]:
    """The calls one message makes, in order: the alert action (if any), then the change event."""
    out = []
    if options.get("alertOnFailure") and message.event in ("failure", "success"):
        action = "trigger" if message.event == "failure" else "resolve"
        severity = str(options.get("severity", "error"))
        body = alert(message, override, routing_key, action, severity)
        out.append(Request("/v2/enqueue", body, f"{action} alert {body['dedup_key']}", alert=True))
    out.append(
        Request("/v2/change/enqueue", change(message, override, routing_key), "change event")
    )
    return out


def summary(message: Message, override: base.Title | None) -> str:
    title, text = base.headline(message, override)
    return clip(f"{title}: {text}" if text else title, SUMMARY_CHARS)


def dedup_key(message: Message) -> str:
    """`<namespace>/<job>`; a longer one keeps its start and a hash of the whole."""
    key = message.ref
    if len(key) <= DEDUP_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{key[: DEDUP_KEY_CHARS - 17]}#{digest}"


def change(message: Message, override: base.Title | None, routing_key: str) -> dict[str, Any]:
    """`POST /v2/change/enqueue`."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "payload": {
            "summary": summary(message, override),
            "source": _source(message),
            "custom_details": details(message),
        },
    }
    if when := message.finished_at or message.started_at:
        body["payload"]["timestamp"] = when
    if links := _links(message):
        body["links"] = links
    return body


def alert(
    message: Message, override: base.Title | None, routing_key: str, action: str, severity: str
) -> dict[str, Any]:
    """`POST /v2/enqueue`: trigger (a failed run) or resolve (a successful one)."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(message),
    }
    if action != "trigger":
        return body
    payload: dict[str, Any] = {
        "summary": summary(message, override),
        "source": _source(message),
        "severity": severity,
        "component": clip(message.ref, VALUE_CHARS),
        "group": clip(message.namespace, VALUE_CHARS),
        "class": clip(message.reason or "DeployFailed", VALUE_CHARS),
        "custom_details": details(message),
    }
    if message.finished_at:
        payload["timestamp"] = message.finished_at
    body.update(payload=payload, client="deploybell")
    if links := _links(message):
        body["links"] = links
        body["client_url"] = links[0]["href"]
    return body


def details(message: Message) -> dict[str, Any]:
    """The run's facts, objects and diagnosis as `custom_details` (bounded)."""
    out: dict[str, Any] = {name: clip(value, VALUE_CHARS) for name, value in message.facts()}
    out["Reason"] = clip(message.reason, VALUE_CHARS)
    if message.message:
        out["Message"] = clip(message.message, VALUE_CHARS)
    for name, lines, omitted in message.lists():
        if lines:
            out[name] = _layout.listed(
                lines, MAX_ITEMS, lambda line: clip(line, LINE_CHARS), "…and {} more", omitted
            )
    if message.test:
        out["Test"] = "a deploybell notify-test message"
    return out


def _source(message: Message) -> str:
    return clip(f"deploybell/{message.cluster}" if message.cluster else "deploybell", VALUE_CHARS)


def _links(message: Message) -> list[dict[str, str]]:
    if link := _layout.web_link(message.link, LINK_CHARS):
        return [{"href": link, "text": clip(message.ref, VALUE_CHARS)}]
    return []
