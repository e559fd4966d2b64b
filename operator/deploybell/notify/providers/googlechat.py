"""Google Chat through a space's incoming webhook: a `cardsV2` card (status in the outcome's
colour, facts, diagnosis, a link button) with a plain `text` line for notifications. A run's
messages share one thread: the thread key is derived from the namespace, job and run, and the
request asks Chat to reply in that thread (or start it). Webhooks cannot edit messages."""

from __future__ import annotations

import html
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Listing, Message, clip
from deploybell.notify.providers import _http, _layout, base

REPLY_OPTION = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
# Google Chat's documented limits: a message (text and cards) is at most 32,000 bytes, its text
# at most 4,096 characters, a card shows at most 100 widgets. The body is measured as sent
# (ASCII-escaped JSON, its largest form) against a budget with room to spare.
MAX_MESSAGE_BYTES = 32_000
BUDGET_BYTES = 30_000
MAX_TEXT_CHARS = 4096
MAX_WIDGETS = 100
MAX_THREAD_KEY = 4000
STATUS = {"start": "Deploying", "success": "Succeeded", "failure": "Failed", "cancel": "Canceled"}

RULES = ProviderRules(
    type="googlechat",
    title="Google Chat",
    doc="A card with the outcome in colour, posted by a space's incoming webhook; a run's "
    "messages share one thread.",
    recipients=Recipients(required=False, doc="the webhook picks the space"),
    options=(
        Field(
            "threads",
            "boolean",
            "Post a run's messages in one thread (keyed by namespace, job and run). Defaults "
            "to true; false starts a thread per message.",
            default=True,
        ),
    ),
    secret_keys=(
        SecretKey(
            "webhookUrl",
            "The space's incoming-webhook URL, with its `key` and `token` parameters.",
        ),
    ),
    secret_needs=(frozenset({"webhookUrl"}),),
    threads=True,
    setup="In the space, *Apps & integrations → Webhooks → Add webhook*, and copy its URL (with "
    "its `key` and `token` parameters) into the Secret's `webhookUrl`.",
)


class GooglechatProvider(_http.HttpProvider):
    """POSTs each message to the webhook, in the run's thread."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        base_url = out.url("webhookUrl")
        out.hide(*base_url.query.getall("key", []), *base_url.query.getall("token", []))
        threads = bool(out.options.get("threads", True))
        reply = await out.request("POST", request_url(base_url, threads), json=_render(out))
        sent = out.check(reply)
        said = reply.json()
        if not isinstance(said, dict):
            return sent
        refs = {"name": str(said.get("name", ""))}
        thread = said.get("thread")
        if isinstance(thread, dict) and thread.get("name"):
            refs["thread"] = str(thread["name"])
        return base.Sent(refs=refs, detail=f"posted {refs['name']}")


def request_url(base: URL, threads: bool) -> URL:
    """The webhook URL (its `key` and `token` kept) asking to reply in the keyed thread."""
    if not threads:
        return base
    return base.update_query({"messageReplyOption": REPLY_OPTION})


# the message (pure)


def thread_key(message: Message) -> str:
    """One key per run of a DeployJob, so the outcome lands under the start."""
    return clip(f"deploybell/{message.namespace}/{message.job}/run-{message.run}", MAX_THREAD_KEY)


def payload(
    message: Message, override: base.Title | None = None, *, threads: bool = True
) -> dict[str, Any]:
    """The webhook body: `text` (the title) and one card, within Chat's size limits."""
    return _layout.fit(
        _layout.CARD_LEVELS,
        lambda level: _body(message, override, level, threads),
        lambda body: _layout.json_size(body) <= BUDGET_BYTES,
    )


def _body(
    message: Message, override: base.Title | None, level: _layout.Level, threads: bool
) -> dict[str, Any]:
    title, _ = base.headline(message, override)
    body: dict[str, Any] = {
        "text": plain(clip(title, MAX_TEXT_CHARS // 2)),
        "cardsV2": [
            {"cardId": f"deploybell-{message.event}", "card": card(message, override, level)}
        ],
    }
    if threads:
        body["thread"] = {"threadKey": thread_key(message)}
    return body


def plain(text: str) -> str:
    """Text for Chat's `text` field, where `<users/all>` would mention everyone and `<url|x>`
    would be a link: an invisible space after each `<` keeps them text."""
    return text.replace("<", "<\u200b")


def card(message: Message, override: base.Title | None, level: _layout.Level) -> dict[str, Any]:
    title, summary = base.headline(message, override)
    status = _h(STATUS.get(message.event, message.phase))
    top: list[dict[str, Any]] = [
        {
            "decoratedText": {
                "topLabel": "Status",
                "text": f'<font color="{message.colour}"><b>{status}</b></font>',
            }
        }
    ]
    if summary:
        top.append({"textParagraph": {"text": _h(clip(summary, level.summary_chars))}})
    facts = [
        {
            "decoratedText": {
                "topLabel": name,
                "text": _h(clip(value, level.value_chars)),
                "wrapText": True,
            }
        }
        for name, value in message.facts()
    ]
    sections: list[dict[str, Any]] = [{"widgets": top}, {"header": "Details", "widgets": facts}]
    for listing in message.lists():
        sections += _section(listing, level)
    link = _layout.web_link(message.link)
    if link:
        button = {"text": "Open", "onClick": {"openLink": {"url": link}}}
        sections.append({"widgets": [{"buttonList": {"buttons": [button]}}]})
    elif message.link:
        text = _h(f"Link: {clip(message.link, level.value_chars)}")
        sections.append({"widgets": [{"textParagraph": {"text": text}}]})
    header = {"title": clip(title, 200), "subtitle": clip(message.footer(), 200)}
    return {"header": header, "sections": sections}


def _section(listing: Listing, level: _layout.Level) -> list[dict[str, Any]]:
    if not listing.lines:
        return []
    shown = _layout.listed(
        listing.lines,
        level.items,
        lambda line: f"• {clip(line, level.value_chars)}",
        omitted=listing.omitted,
    )
    text = "<br>".join(_h(line) for line in shown)
    return [{"header": listing.heading, "widgets": [{"textParagraph": {"text": text}}]}]


def _h(text: str) -> str:
    """Card text is HTML: values are escaped, line breaks kept."""
    return html.escape(text, quote=False).replace("\n", "<br>")


def _render(draft: base.Draft) -> dict[str, Any]:
    threads = bool(draft.options.get("threads", True))
    return payload(draft.message, draft.override, threads=threads)


def _preview(preview: base.Preview) -> list[str]:
    threads = bool(preview.options.get("threads", True))
    query = f"&messageReplyOption={REPLY_OPTION}" if threads else ""
    return [
        f"POST <the Secret's webhookUrl>{query}",
        _http.indented(_render(preview)),
    ]


PROVIDER = base.ProviderType(GooglechatProvider, _render, _preview)
