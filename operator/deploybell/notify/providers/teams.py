"""Microsoft Teams through a Workflows webhook (the "Post to a channel when a webhook request is
received" flow; Office 365 connectors are retired): each message is one Adaptive Card, its
header coloured by the outcome. The flow answers 202 without a message id, so nothing is edited
in place: every event is a new card in the channel the workflow posts to."""

from __future__ import annotations

from typing import Any

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Listing, Message, clip
from deploybell.notify.providers import _answers, _http, _layout, base

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
    setup="In the Teams channel, open *Workflows*, pick the template *Post to a channel when a "
    "webhook request is received*, choose the team and channel, and copy the URL it shows into "
    "the Secret's `webhookUrl`.",
)


class TeamsProvider(_http.HttpProvider):
    """POSTs each message as a one-card Workflows webhook request."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        url = out.url("webhookUrl")
        out.hide(*url.query.getall("sig", []))
        reply = await out.request("POST", url, json=_render(out))
        sent = out.check(reply)
        # The workflow run, not a message: Teams posts the card after answering.
        run = _answers.header(reply.headers, "x-ms-workflow-run-id") or ""
        return base.Sent(
            refs={"run": run} if run else {}, detail=f"{sent.detail} (workflow accepted)"
        )


# the card (pure)


def payload(
    message: Message, override: base.Title | None = None, *, full_width: bool = True
) -> dict[str, Any]:
    """The request body: a message with one Adaptive Card attachment, within Teams' size."""
    return _layout.fit(
        _layout.CARD_LEVELS,
        lambda level: _message(card(message, override, level, full_width=full_width)),
        lambda body: _layout.json_size(body) <= BUDGET_BYTES,
    )


def _message(content: dict[str, Any]) -> dict[str, Any]:
    attachment = {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": content}
    return {"type": "message", "attachments": [attachment]}


def card(
    message: Message,
    override: base.Title | None,
    level: _layout.Level,
    *,
    full_width: bool = True,
) -> dict[str, Any]:
    """The Adaptive Card: a coloured header, the summary, facts, diagnosis, a link button."""
    title, summary = base.headline(message, override)
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
    for listing in message.lists():
        body += _list(listing, level)
    link = _layout.web_link(message.link)
    if message.link and not link:
        body.append(_text(f"Link: {clip(message.link, level.value_chars)}", subtle=True))
    body.append(_text(message.footer(), subtle=True, size="Small"))
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


def _list(listing: Listing, level: _layout.Level) -> list[dict[str, Any]]:
    if not listing.lines:
        return []
    shown = _layout.listed(
        listing.lines,
        level.items,
        lambda line: f"• {clip(line, level.value_chars)}",
        omitted=listing.omitted,
    )
    return [
        _text(listing.heading, weight="Bolder"),
        *({**_text(line), "spacing": "None"} for line in shown),
    ]


def _render(draft: base.Draft) -> dict[str, Any]:
    full_width = bool(draft.options.get("fullWidth", True))
    return payload(draft.message, draft.override, full_width=full_width)


def _preview(preview: base.Preview) -> list[str]:
    return [
        "POST <the Secret's webhookUrl> (a Workflows trigger; it answers 202 and posts the card)",
        _http.indented(_render(preview)),
    ]


PROVIDER = base.ProviderType(TeamsProvider, _render, _preview)
