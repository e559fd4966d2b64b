"""incident.io: alert events to an HTTP alert source. A failed run fires an alert for its
DeployJob, the job's next successful run resolves it.

Each event is `POST <the alert source's URL>` with the source's token as a Bearer token and
`status` `firing` or `resolved`. The `deduplication_key` is the job's key
(`deploybell:<cluster>:<namespace>:<job>`), the same for every run and every operator process:
a repeated failure updates the open alert (its title and description become the latest run's)
and a success resolves it by that key alone. Starts and canceled runs send nothing: an alert
source raises alerts, and neither is a problem (a cancel leaves a failing job's alert open).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _http, _layout, base

# incident.io documents no length limit for these fields; a title is one line and the
# description a readable page, so each is bounded here.
TITLE_CHARS = 250
DESCRIPTION_CHARS = 10000
KEY_CHARS = 250
VALUE_CHARS = 500
MAX_ITEMS = 10
MAX_METADATA = 50
# A 429 without Retry-After: wait this long.
RATE_LIMIT_DELAY = 30.0

RULES = ProviderRules(
    type="incidentio",
    title="incident.io",
    doc="A failed run fires an alert of an HTTP alert source (deduplicated per DeployJob); the "
    "job's next successful run resolves it. Starts and cancels send nothing.",
    recipients=Recipients(required=False, doc="the alert source behind `url` routes the alert"),
    options=(
        Field(
            "metadata",
            "map",
            "Extra metadata on every alert (for alert routes and attributes).",
            max_entries=20,
        ),
    ),
    secret_keys=(
        SecretKey("url", "The HTTP alert source's URL (`…/v2/alert_events/http/<source id>`)."),
        SecretKey("token", "The alert source's token (sent as `Authorization: Bearer`)."),
    ),
    secret_needs=(frozenset({"url", "token"}),),
    edits_in_place=True,  # one alert per job, resolved in place
    setup="In incident.io, *Alerts → Configuration → Alert sources → Create alert source → "
    "HTTP*; copy its URL into `url` and the token of its Authorization header into `token`.",
)


def event(
    message: Message, override: base.Title | None, options: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The alert event of this message; None for events that raise or end no alert."""
    if message.event not in ("failure", "success"):
        return None
    title, text = base.headline(message, override)
    body: dict[str, Any] = {
        "title": clip(title.replace("\n", " "), TITLE_CHARS),
        "status": "firing" if message.event == "failure" else "resolved",
        "deduplication_key": dedup_key(message),
        "description": description(message, text),
        "metadata": metadata(message, options),
    }
    if link := _layout.web_link(message.link):
        body["source_url"] = link
    return body


def dedup_key(message: Message) -> str:
    key = f"deploybell:{message.cluster or 'cluster'}:{message.namespace}:{message.job}"
    if message.test:  # `deploybell notify-test` must never resolve a DeployJob's real alert
        key += ":notify-test"
    if len(key) <= KEY_CHARS:
        return key
    return f"{key[: KEY_CHARS - 17]}#{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def description(message: Message, text: str) -> str:
    lines = [text, ""]
    lines += [f"**{name}:** {value}" for name, value in message.facts()]
    for name, items, omitted in message.lists():
        if items:
            lines += ["", f"**{name}**"]
            lines += _layout.listed(
                items, MAX_ITEMS, lambda i: "- " + clip(i, VALUE_CHARS), omitted=omitted
            )
    lines += ["", message.footer()]
    return clip("\n".join(lines), DESCRIPTION_CHARS)


def metadata(message: Message, options: Mapping[str, Any]) -> dict[str, str]:
    """The run's facts for alert routes, then the Notification's own entries."""
    facts = {
        "namespace": message.namespace,
        "deployjob": message.job,
        "run": str(message.run),
        "phase": message.phase,
        "reason": message.reason,
        "cluster": message.cluster,
        "environment": message.environment,
        "commit": message.commit,
        "repository": message.repository,
    }
    out = {k: clip(v, VALUE_CHARS) for k, v in facts.items() if v}
    for key, value in (options.get("metadata") or {}).items():
        if len(out) < MAX_METADATA:
            out[str(key)] = clip(str(value), VALUE_CHARS)
    return out


class IncidentioProvider(_http.HttpProvider):
    """Sends alert events through the shared HTTP session."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        body = event(out.message, out.override, out.options)
        if body is None:
            return base.Sent(detail=f"nothing to send for a {out.message.event} (no alert)")
        url = out.url("url")
        out.headers["Authorization"] = f"Bearer {out.word('token')}"
        reply = await out.request("POST", url, json=body)
        delay = RATE_LIMIT_DELAY if reply.status == 429 else None
        out.check(reply, context=f"{body['status']} alert", default_delay=delay)
        return base.Sent(detail=f"{body['status']}: accepted")


def _render(preview: base.Preview) -> dict[str, Any] | None:
    return event(preview.message, preview.override, preview.options)


def _preview(preview: base.Preview) -> list[str]:
    body = _render(preview)
    if body is None:
        return [f"nothing is sent for a {preview.message.event}: it raises and ends no alert"]
    return [
        "POST <the Secret's url>",
        "Authorization: Bearer <the Secret's token>",
        "",
        _http.indented(body),
    ]


PROVIDER = base.ProviderType(IncidentioProvider, _render, _preview)
