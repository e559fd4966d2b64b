"""Microsoft Teams through a Workflows webhook (the "Post to a channel when a webhook request is
received" flow; Office 365 connectors are retired): each message is one Adaptive Card, its
header coloured by the outcome. The flow answers 202 without a message id, so nothing is edited
in place: every event is a new card in the channel the workflow posts to."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _http
from deploybell.notify.providers.base import (
    Destination,
    Preview,
    ProviderType,
    Sent,
    Title,
    headline,
)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"  # the newest version Teams renders on every client
# Teams refuses a message (the card and its envelope) over 28 KB. The body is measured as sent
# (ASCII-escaped JSON, the largest form), and a little is kept for the envelope Teams adds.
MAX_CARD_BYTES = 28 * 1024
BUDGET_BYTES = MAX_CARD_BYTES - 1024
# Container styles of the host's palette: blue, green, red, grey.
STYLES = {"start": "accent", "success": "good", "failure": "attention", "cancel": "emphasis"}
MAX_TITLE_CHARS = 256
MAX_LINK_CHARS = 2048


@dataclass(frozen=True)
class Level:
    """How much one card shows: diagnosis items per list and the longest text values."""

    items: int
    summary_chars: int
    value_chars: int


# How much a card holds, from the most to the least; the first that fits the budget is sent.
LEVELS = (
    Level(10, 2000, 1000),
    Level(5, 2000, 500),
    Level(3, 1000, 300),
    Level(1, 500, 200),
    Level(0, 300, 120),
)

RULES = ProviderRules(
    type="teams",
    title="Microsoft Teams",
    doc="An Adaptive Card coloured by outcome, posted by a Teams Workflows webhook.",
    recipients=Recipients(
        required=False, doc="the workflow behind `webhookUrl` picks the team and channel"
    ),
    options=(
        Field(
            "fullWidth",
            "boolean",
            "Let the card use the full width of the conversation. Defaults to true.",
            default=True,
        ),
    ),
    secret_keys=(
        SecretKey(
            "webhookUrl",
            "The URL of a Workflows webhook trigger (its `sig` parameter is the credential).",
        ),
    ),
    secret_needs=(frozenset({"webhookUrl"}),),
)


class TeamsProvider(_http.HttpProvider):
    """POSTs each message as a one-card Workflows webhook request."""

    kind = "teams"

    async def send(
        self, message: Message, destination: Destination, override: Title | None = None
    ) -> Sent:
        url = _http.http_url(
            destination.secret.get("webhookUrl", ""), "teams: Secret key 'webhookUrl'"
        )
        secrets = _http.secrets_of(destination.secret, str(url), *url.query.getall("sig", []))
        full_width = bool(destination.options.get("fullWidth", True))
        body = payload(message, override, full_width=full_width)
        reply = await self._http.post(url, secrets, json=body)
        sent = _http.outcome(reply, "teams", secrets)
        # The workflow run, not a message: Teams posts the card after answering.
        run = _http.header(reply.headers, "x-ms-workflow-run-id") or ""
        return Sent(refs={"run": run} if run else {}, detail=f"{sent.detail} (workflow accepted)")


# the card (pure)


def payload(
    message: Message, override: Title | None = None, *, full_width: bool = True
) -> dict[str, Any]:
    """The request body: a message with one Adaptive Card attachment, within Teams' size."""
    for level in LEVELS:
        body = _message(card(message, override, level, full_width=full_width))
        if size(body) <= BUDGET_BYTES:
            return body
    return body  # the last level keeps every value short enough to fit


def size(body: Any) -> int:
    """The body's size as the provider sends it (aiohttp's JSON: ASCII-escaped)."""
    return len(json.dumps(body).encode("utf-8"))


def _message(content: dict[str, Any]) -> dict[str, Any]:
    attachment = {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": content}
    return {"type": "message", "attachments": [attachment]}


def card(
    message: Message, override: Title | None, level: Level, *, full_width: bool = True
) -> dict[str, Any]:
    """The Adaptive Card: a coloured header, the summary, facts, diagnosis, a link button."""
    title, summary = headline(message, override)
    body: list[dict[str, Any]] = [
        {
            "type": "Container",
            "style": STYLES.get(message.event, "emphasis"),
            "bleed": True,
            "items": [_text(clip(title, MAX_TITLE_CHARS), weight="Bolder", size="Medium")],
        }
    ]
    if summary:
        body.append(_text(clip(summary, level.summary_chars)))
    facts = [
        {"title": name, "value": clip(value, level.value_chars)} for name, value in message.facts()
    ]
    body.append({"type": "FactSet", "facts": facts})
    body += _list("Objects", [o.line() for o in message.objects], level)
    body += _list("Failing pods", [p.line() for p in message.pods], level)
    body += _list("Recent warnings", [w.line() for w in message.warnings], level)
    link = _link(message.link)
    if message.link and not link:
        body.append(_text(f"Link: {clip(message.link, level.value_chars)}", subtle=True))
    body.append(_text(_footer(message), subtle=True, size="Small"))
    out: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "body": body,
    }
    if link:
        out["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": link}]
    if full_width:
        out["msteams"] = {"width": "Full"}
    return out


def _text(value: str, **style: Any) -> dict[str, Any]:
    """A RichTextBlock: its TextRun is shown as written (no Markdown), so `**` or `[x](y)` in a
    pod's message stays text."""
    run: dict[str, Any] = {"type": "TextRun", "text": value}
    if style.pop("subtle", False):
        run["isSubtle"] = True
    run.update(style)
    return {"type": "RichTextBlock", "inlines": [run]}


def _list(heading: str, lines: Sequence[str], level: Level) -> list[dict[str, Any]]:
    if not lines:
        return []
    shown = [f"• {clip(line, level.value_chars)}" for line in lines[: level.items]]
    hidden = len(lines) - len(shown)
    if hidden > 0:
        shown.append(f"… and {hidden} more")
    return [
        _text(heading, weight="Bolder"),
        *({**_text(line), "spacing": "None"} for line in shown),
    ]


def _link(link: str) -> str:
    """The link for the button: only an http(s) URL a client accepts, else none."""
    ok = link.startswith(("https://", "http://")) and len(link) <= MAX_LINK_CHARS
    return link if ok else ""


def _footer(message: Message) -> str:
    parts = ["deploybell"]
    if message.test:
        parts.append("test message")
    if message.started_at:
        parts.append(f"started {message.started_at}")
    if message.finished_at:
        parts.append(f"finished {message.finished_at}")
    return " · ".join(parts)


def _render(preview: Preview) -> dict[str, Any]:
    full_width = bool(preview.options.get("fullWidth", True))
    return payload(preview.message, preview.override, full_width=full_width)


def _preview(preview: Preview) -> list[str]:
    return [
        "POST <the Secret's webhookUrl> (a Workflows trigger; it answers 202 and posts the card)",
        _http.indented(_render(preview)),
    ]


PROVIDER = ProviderType(
    rules=RULES,
    sender=TeamsProvider,
    render=_render,
    preview=_preview,
    preview_once=True,
    setup="In the Teams channel, open *Workflows*, pick the template *Post to a channel when a "
    "webhook request is received*, choose the team and channel, and copy the URL it shows into "
    "the Secret's `webhookUrl`.",
)
