"""Webhook bodies: a CloudEvents 1.0 event in structured mode, built as data (pure)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from deploybell.notify.model import Message
from deploybell.notify.providers.base import Title

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
SIGNATURE_HEADER = "X-Deploybell-Signature"
EVENT_TYPE_PREFIX = "io.deploybell.deployjob."


def event(
    message: Message, override: Title | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The CloudEvent as a dict; `time` is the run's time, else `now`, else absent."""
    cloud_event: dict[str, Any] = {
        "specversion": "1.0",
        "id": message.idempotency_key or f"{message.ref}/{message.run}/{message.event}",
        "source": source(message),
        "type": f"{EVENT_TYPE_PREFIX}{message.event}",
        "subject": message.ref,
    }
    when = message.finished_at or message.started_at or _rfc3339(now)
    if when:
        cloud_event["time"] = when
    cloud_event["datacontenttype"] = "application/json"
    cloud_event["data"] = data(message, override)
    return cloud_event


def source(message: Message) -> str:
    """A URI-reference naming the DeployJob; each segment percent-encoded."""
    segments = (message.cluster or "cluster", message.namespace, message.job)
    cluster, namespace, job = (quote(s, safe="", errors="backslashreplace") for s in segments)
    return f"/deploybell/{cluster}/namespaces/{namespace}/deployjobs/{job}"


def data(message: Message, override: Title | None = None) -> dict[str, Any]:
    """The message model; a template's title and text replace `title` and `summary`."""
    payload = message.as_data()
    if override is not None and override.title is not None:
        payload["title"] = override.title
    if override is not None and override.text is not None:
        payload["summary"] = override.text
    return payload


def serialize(
    message: Message, override: Title | None = None, now: datetime | None = None
) -> bytes:
    """The serialized event: UTF-8 JSON, never assembled from strings."""
    text = json.dumps(event(message, override, now), ensure_ascii=False, default=str)
    # A lone surrogate (possible in data decoded from JSON) cannot be UTF-8; written as its
    # `\\u` escape (backslashreplace) it stays valid JSON and decodes back to the same string.
    return text.encode("utf-8", errors="backslashreplace")


def signature(body: bytes, key: str) -> str:
    """`sha256=<hex HMAC-SHA256 of the exact body>`, as GitHub-style receivers expect."""
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _rfc3339(now: datetime | None) -> str:
    if now is None:
        return ""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
