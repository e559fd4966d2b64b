"""Webhook: POST the CloudEvent to the Secret's URL, optionally authorized and HMAC-signed."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from deploybell.notify.model import Message
from deploybell.notify.providers import _http
from deploybell.notify.providers.base import Destination, PermanentDeliveryError, Sent, Title
from deploybell.notify.render import webhook as render

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Set by deploybell (or by aiohttp from the body); a configured value would break the request.
_RESERVED = frozenset(
    {"content-type", "content-length", "transfer-encoding", "host", render.SIGNATURE_HEADER.lower()}
)


class WebhookProvider:
    """Sends each message as one CloudEvents 1.0 JSON request (structured mode)."""

    def __init__(self) -> None:
        self._http = _http.HttpSession("webhook")

    async def send(
        self, message: Message, destination: Destination, override: Title | None = None
    ) -> Sent:
        secret = destination.secret
        url = _http.http_url(secret.get("url", ""), "webhook: Secret key 'url'")
        body = render.serialize(message, override, now=datetime.now(UTC))
        headers = request_headers(destination)
        if key := secret.get("hmacKey", "").strip():
            headers[render.SIGNATURE_HEADER] = render.signature(body, key)
        secrets = _http.secrets_of(secret, str(url))
        reply = await self._http.post(url, secrets, headers=headers, data=body)
        return _http.outcome(reply, "webhook", secrets)

    async def close(self) -> None:
        await self._http.close()


def request_headers(destination: Destination) -> dict[str, str]:
    """Option-block headers, then the Secret's, then Authorization; Content-Type always ours."""
    headers: dict[str, str] = {}
    options = destination.options.get("headers") or {}
    if not isinstance(options, Mapping):
        raise PermanentDeliveryError("webhook: option 'webhook.headers' must be a map")
    _merge(headers, options, "option 'webhook.headers'")
    raw = destination.secret.get("headers", "")
    if raw.strip():
        _merge(headers, parse_headers(raw), "Secret key 'headers'")
    if authorization := destination.secret.get("authorization", "").strip():
        _merge(headers, {"Authorization": authorization}, "Secret key 'authorization'")
    headers["Content-Type"] = render.CONTENT_TYPE
    return headers


def parse_headers(raw: str) -> dict[str, str]:
    """A JSON object of strings, or one `Name: value` per line (values never echoed in errors)."""
    where = "webhook: Secret key 'headers'"
    if raw.lstrip().startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise PermanentDeliveryError(f"{where} is not a valid JSON object") from None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise PermanentDeliveryError(f"{where} must map header names to strings")
        return parsed
    headers: dict[str, str] = {}
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise PermanentDeliveryError(f"{where}: line {number} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _merge(headers: dict[str, str], extra: Mapping[str, object], where: str) -> None:
    for name, value in extra.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise PermanentDeliveryError(f"webhook: {where} has an invalid header name")
        if name.lower() in _RESERVED:
            raise PermanentDeliveryError(f"webhook: {where} must not set {name}")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise PermanentDeliveryError(
                f"webhook: {where}: the value of {name} must be one line of text"
            )
        # Replace case-insensitively so a later source wins instead of sending both.
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
