"""How an HTTP provider reads a vendor's answer: one classification of answers into Sent,
retryable or permanent errors, for every HTTP provider.

Rate limits are honoured from the `Retry-After` header (seconds or an HTTP-date) and from the JSON
bodies vendors use instead or as well: `retry_after` (Discord, Slack-likes),
`parameters.retry_after` (Telegram) and the `RetryInfo` detail of Google's error model."""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deploybell.notify.providers import base

_EXCERPT_CHARS = 200
# Statuses worth retrying besides 5xx: request timeout, too early, rate limited.
_TEMPORARY_4XX = frozenset({408, 425, 429})
_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]+)?")


@dataclass(frozen=True)
class Reply:
    """What the peer answered: the status, its headers and the start of its body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON, None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def outcome(
    reply: Reply,
    kind: str,
    secrets: Iterable[str],
    *,
    context: str = "",
    explain: str = "",
    default_delay: float | None = None,
    limited: bool = False,
    now: datetime | None = None,
) -> base.Sent:
    """2xx → Sent; 5xx, 408, 425 and 429 → temporary (honouring the delay the answer asks for);
    anything else → permanent.

    `context` names what was addressed (e.g. "room 'ops'"); `explain` replaces the vendor's error
    message found in a JSON body; `default_delay` is the retry delay when the answer names none;
    `limited` says the vendor marked this answer as a rate limit although its status is not 429
    (GitHub answers 403 with `x-ratelimit-remaining: 0`), so it is retried like a 429.
    """
    if reply.ok:
        return base.Sent(detail=f"HTTP {reply.status}")
    body = reply.json()
    where = f" for {context}" if context else ""
    said = explain or vendor_message(body) or excerpt(reply.body)
    text = f"{kind}: HTTP {reply.status} {reply.reason}{where}".rstrip()
    if said:
        text = f"{text}: {said}"
    if 300 <= reply.status < 400:
        text += " (redirects are not followed; configure the final URL)"
    text = base.mask(text, secrets)
    if reply.status >= 500 or reply.status in _TEMPORARY_4XX or limited:
        delay = retry_after(header(reply.headers, "Retry-After"), now or datetime.now(UTC))
        if delay is None:
            delay = body_retry_after(body)
        raise base.TemporaryDeliveryError(
            text, retry_after=default_delay if delay is None else delay
        )
    raise base.PermanentDeliveryError(text)


def body_retry_after(body: Any) -> float | None:
    """Seconds to wait from a JSON body: `retry_after` (Discord), `parameters.retry_after`
    (Telegram's Bot API) or a `google.rpc.RetryInfo` detail's `retryDelay` ("7s", Google APIs)."""
    if not isinstance(body, dict):
        return None
    parameters = body.get("parameters")
    for value in (
        body.get("retry_after"),
        (parameters or {}).get("retry_after") if isinstance(parameters, dict) else None,
        _google_retry_delay(body.get("error")),
    ):
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return None


def _google_retry_delay(error: Any) -> float | None:
    """`error.details[].retryDelay` of Google's error model: a Duration as JSON, e.g. "7s"."""
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith(
            "google.rpc.RetryInfo"
        ):
            continue
        delay = str(detail.get("retryDelay", ""))
        if delay.endswith("s") and _SECONDS.fullmatch(delay[:-1]):
            return float(delay[:-1])
    return None


def vendor_message(body: Any) -> str:
    """The error text vendors put in JSON bodies: `message` (Discord, GitHub, Mattermost, ...),
    `description` (Telegram), `error.message` (Google), `error` or `errors` as text."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    candidates = [
        body.get("message"),
        body.get("description"),
        error.get("message") if isinstance(error, dict) else error,
    ]
    said = next((c for c in candidates if isinstance(c, str) and c.strip()), "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        said = f"{said}: {'; '.join(errors)}" if said else "; ".join(errors)
    return excerpt(said) if said else ""


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def seconds(headers: Mapping[str, str], name: str) -> float | None:
    """A header counting whole seconds from now (Mattermost's and Datadog's rate-limit resets);
    None when it is absent or not a number."""
    raw = (header(headers, name) or "").strip()
    return float(raw) if raw.isdigit() else None


def reset_delay(headers: Mapping[str, str], name: str, now: datetime) -> float | None:
    """Seconds until the UTC epoch second in header `name` (GitHub's `x-ratelimit-reset`,
    GitLab's `RateLimit-Reset`); None when the header is absent or not a number."""
    raw = (header(headers, name) or "").strip()
    if not raw.isdigit():
        return None
    return max(0.0, int(raw) - now.timestamp())


def excerpt(body: str, limit: int = _EXCERPT_CHARS) -> str:
    """The body on one line, cut to `limit` characters (callers mask it)."""
    flat = re.sub(r"\s+", " ", body).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
