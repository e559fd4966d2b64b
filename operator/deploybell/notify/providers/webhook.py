"""Webhook: each message as one CloudEvents 1.0 JSON request (structured mode) to the Secret's
URL, with an optional Authorization header and HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from deploybell.api.errors import SpecError, as_mapping, shown
from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _http, base

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
SIGNATURE_HEADER = "X-Deploybell-Signature"
EVENT_TYPE_PREFIX = "io.deploybell.deployjob."
MAX_HEADERS = 50
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Set by deploybell (or by aiohttp from the body); a configured value would break the request.
_RESERVED = frozenset(
    {"content-type", "content-length", "transfer-encoding", "host", SIGNATURE_HEADER.lower()}
)


def _check_headers(value: Mapping[str, str], path: str) -> dict[str, str]:
    for name, header_value in value.items():
        if not _HEADER_NAME.fullmatch(name) or len(name) > 256:
            raise SpecError(path, f"must be an HTTP header name, got {shown(name)}")
        if name.lower() in _RESERVED:
            raise SpecError(f"{path}.{name}", "is set by deploybell and cannot be configured")
        if any(c in header_value for c in "\r\n\0"):
            raise SpecError(f"{path}.{name}", "must not contain line breaks or NUL")
    return dict(value)


RULES = ProviderRules(
    type="webhook",
    title="Webhook",
    doc="A CloudEvents 1.0 JSON event per message, POSTed to any HTTP endpoint.",
    recipients=Recipients(required=False, doc="the Secret's `url` is the destination"),
    options=(
        Field(
            "headers",
            "map",
            "Extra HTTP headers sent with every request. Put secret values in the Secret, "
            "not here.",
            max_entries=MAX_HEADERS,
            check=_check_headers,
        ),
    ),
    secret_keys=(
        SecretKey("url", "The endpoint (http or https); redirects are not followed."),
        SecretKey("authorization", "Sent as the Authorization header, e.g. `Bearer <token>`."),
        SecretKey("hmacKey", f"Signs the body: `{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256>`."),
        SecretKey("headers", "More headers: a JSON object or one `Name: value` per line."),
    ),
    secret_needs=(frozenset({"url"}),),
    setup="Any endpoint that accepts a JSON POST; verify `X-Deploybell-Signature` with the "
    "shared `hmacKey` and drop repeats by the CloudEvent `id` (the idempotency key).",
)


class WebhookProvider(_http.HttpProvider):
    """Sends each message as one CloudEvents 1.0 JSON request (structured mode)."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        url = out.url("url")
        body = serialize(out.message, out.override, now=datetime.now(UTC))
        headers = request_headers(out.destination)
        if key := out.destination.secret.get("hmacKey", "").strip():
            headers[SIGNATURE_HEADER] = signature(body, key)
        return out.check(await out.request("POST", url, headers=headers, data=body))


# the request (pure)


def event(
    message: Message, override: base.Title | None = None, now: datetime | None = None
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


def data(message: Message, override: base.Title | None = None) -> dict[str, Any]:
    """The message model; a template's title and text replace `title` and `summary`."""
    payload = message.as_data()
    payload["title"], payload["summary"] = base.headline(message, override)
    return payload


def serialize(
    message: Message, override: base.Title | None = None, now: datetime | None = None
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


def request_headers(destination: base.Destination) -> dict[str, str]:
    """Option-block headers, then the Secret's, then Authorization; Content-Type always ours."""
    headers: dict[str, str] = {}
    _merge(headers, destination.options.get("headers") or {}, "option 'webhook.headers'")
    raw = destination.secret.get("headers", "")
    if raw.strip():
        _merge(headers, parse_headers(raw), "Secret key 'headers'")
    if authorization := destination.secret.get("authorization", "").strip():
        _merge(headers, {"Authorization": authorization}, "Secret key 'authorization'")
    headers["Content-Type"] = CONTENT_TYPE
    return headers


def parse_headers(raw: str) -> dict[str, str]:
    """A JSON object of strings, or one `Name: value` per line (values never echoed in errors)."""
    where = "webhook: Secret key 'headers'"
    if raw.lstrip().startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise base.PermanentDeliveryError(f"{where} is not a valid JSON object") from None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise base.PermanentDeliveryError(f"{where} must map header names to strings")
        return parsed
    headers: dict[str, str] = {}
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise base.PermanentDeliveryError(f"{where}: line {number} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _merge(headers: dict[str, str], extra: Mapping[str, object], where: str) -> None:
    try:
        checked = _check_headers(as_mapping(extra, where), where)
    except SpecError as e:  # names the header, never its value
        raise base.PermanentDeliveryError(f"webhook: {e}") from None
    for name, value in checked.items():
        if not isinstance(value, str):
            raise base.PermanentDeliveryError(f"webhook: {where}: the value of {name} must be text")
        # Replace case-insensitively so a later source wins instead of sending both.
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value


def _rfc3339(now: datetime | None) -> str:
    if now is None:
        return ""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _render(preview: base.Preview) -> dict[str, Any]:
    return event(preview.message, preview.override, now=_http.preview_time(preview.message))


def _preview(preview: base.Preview) -> list[str]:
    destination = base.Destination(type="webhook", recipient="", options=preview.options, secret={})
    return [
        "POST <the Secret's url> (the body is sent compact; indented here)",
        *(f"{k}: {v}" for k, v in request_headers(destination).items()),
        "(and Authorization from the Secret's `authorization`, "
        f"{SIGNATURE_HEADER} when it has `hmacKey`)",
        "",
        _http.indented(_render(preview)),
    ]


PROVIDER = base.ProviderType(WebhookProvider, _render, _preview)
