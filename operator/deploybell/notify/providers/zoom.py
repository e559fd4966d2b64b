"""Zoom Team Chat through a channel's Incoming Webhook app: a chatbot message (`?format=full`:
a `head` in the outcome's colour, the run's line as `sub_head`, the summary, facts and lists as
`body` items, a link) POSTed to the connection's endpoint with its verification token as the
`Authorization` header. Webhook messages cannot be edited; each event is a new message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _http, _layout, base

# A chatbot message's content is kept within 4 KB as sent (ASCII-escaped JSON), with room.
MAX_CONTENT_BYTES = 4096
BUDGET_BYTES = 3800
MAX_HEAD = 200
# From the most to the least; the first that fits the budget is sent.
LEVELS = (
    _layout.Level(5, 800, 300),
    _layout.Level(3, 500, 200),
    _layout.Level(1, 300, 120),
    _layout.Level(0, 200, 80),
    _layout.Level(0, 120, 40),
)

RULES = ProviderRules(
    type="zoom",
    title="Zoom Team Chat",
    doc="A chatbot message with the outcome in colour, posted by a channel's Incoming Webhook "
    "connection.",
    recipients=Recipients(required=False, doc="the connection's endpoint picks the channel"),
    secret_keys=(
        SecretKey(
            "webhookUrl",
            "The connection's endpoint (`https://integrations.zoom.us/chat/webhooks/"
            "incomingwebhook/<id>`).",
        ),
        SecretKey("verificationToken", "The connection's verification token."),
    ),
    secret_needs=(frozenset({"webhookUrl", "verificationToken"}),),
    setup="An admin adds the *Incoming Webhook* app from the Zoom App Marketplace; in the "
    "channel, `/inc connect deploybell` answers with the endpoint (the Secret's `webhookUrl`) "
    "and the verification token (`verificationToken`).",
)


class ZoomProvider(_http.HttpProvider):
    """POSTs the message in the full format with the verification token."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        url = out.url("webhookUrl")
        out.headers["Authorization"] = out.word("verificationToken")
        reply = await out.request("POST", url.update_query({"format": "full"}), json=_render(out))
        out.check(reply)
        said = reply.json()
        message_id = str(said.get("message_id", "")) if isinstance(said, dict) else ""
        refs = {"messageId": message_id} if message_id else {}
        return base.Sent(refs=refs, detail=f"posted {message_id}".strip())


# the message (pure)


def payload(message: Message, override: base.Title | None = None) -> dict[str, Any]:
    """`head` and `body` of the full format, within the content budget."""
    return _layout.fit(
        LEVELS,
        lambda level: content(message, override, level),
        lambda body: _layout.json_size(body) <= BUDGET_BYTES,
    )


def content(message: Message, override: base.Title | None, level: _layout.Level) -> dict[str, Any]:
    title, summary = base.headline(message, override)
    head = {
        "text": clip(title, MAX_HEAD),
        "style": {"bold": True, "color": message.colour},
        "sub_head": {"text": clip(message.footer(), MAX_HEAD)},
    }
    body: list[dict[str, Any]] = []
    if summary:
        body.append({"type": "message", "text": clip(summary, level.summary_chars)})
    items = [
        {"key": name, "value": clip(value, level.value_chars), "short": len(value) <= 40}
        for name, value in message.facts()
    ]
    body.append({"type": "fields", "items": items})
    for heading, lines, omitted in message.lists():
        body += _section(heading, lines, level, omitted)
    link = _layout.web_link(message.link)
    if link:
        body.append({"type": "message", "text": "Open", "link": link})
    elif message.link:
        body.append({"type": "message", "text": f"Link: {clip(message.link, level.value_chars)}"})
    return {"head": head, "body": body}


def _section(
    heading: str, lines: Sequence[str], level: _layout.Level, omitted: int = 0
) -> list[dict[str, Any]]:
    if not lines:
        return []
    shown = _layout.listed(
        lines, level.items, lambda line: f"• {clip(line, level.value_chars)}", omitted=omitted
    )
    return [{"type": "message", "text": "\n".join([heading, *shown])}]


def _render(draft: base.Draft) -> dict[str, Any]:
    return payload(draft.message, draft.override)


def _preview(preview: base.Preview) -> list[str]:
    return [
        "POST <the Secret's webhookUrl>?format=full",
        "Authorization: <the Secret's verificationToken>",
        _http.indented(_render(preview)),
    ]


PROVIDER = base.ProviderType(ZoomProvider, _render, _preview)
