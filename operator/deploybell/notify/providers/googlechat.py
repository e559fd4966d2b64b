"""Google Chat through a space's incoming webhook: a `cardsV2` card (status in the outcome's
colour, facts, diagnosis, a link button) with a plain `text` line for notifications. A run's
messages share one thread: the thread key is derived from the namespace, job and run, and the
request asks Chat to reply in that thread (or start it). Webhooks cannot edit messages."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from yarl import URL

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

REPLY_OPTION = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
# Google Chat's documented limits: a message (text and cards) is at most 32,000 bytes, its text
# at most 4,096 characters, a card shows at most 100 widgets. The body is measured as sent
# (ASCII-escaped JSON, its largest form) against a budget with room to spare.
MAX_MESSAGE_BYTES = 32_000
BUDGET_BYTES = 30_000
MAX_TEXT_CHARS = 4096
MAX_WIDGETS = 100
MAX_THREAD_KEY = 4000
MAX_LINK_CHARS = 2048
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
)


class GooglechatProvider(_http.HttpProvider):
    """POSTs each message to the webhook, in the run's thread."""

    kind = "googlechat"

    async def send(
        self, message: Message, destination: Destination, override: Title | None = None
    ) -> Sent:
        raw = destination.secret.get("webhookUrl", "")
        base = _http.http_url(raw, "googlechat: Secret key 'webhookUrl'")
        credentials = [*base.query.getall("key", []), *base.query.getall("token", [])]
        secrets = _http.secrets_of(destination.secret, str(base), *credentials)
        threads = bool(destination.options.get("threads", True))
        reply = await self._http.post(
            request_url(base, threads), secrets, json=payload(message, override, threads=threads)
        )
        sent = _http.outcome(reply, "googlechat", secrets)
        said = reply.json()
        if not isinstance(said, dict):
            return sent
        refs = {"name": str(said.get("name", ""))}
        thread = said.get("thread")
        if isinstance(thread, dict) and thread.get("name"):
            refs["thread"] = str(thread["name"])
        return Sent(refs=refs, detail=f"posted {refs['name']}")


def request_url(base: URL, threads: bool) -> URL:
    """The webhook URL (its `key` and `token` kept) asking to reply in the keyed thread."""
    if not threads:
        return base
    return base.update_query({"messageReplyOption": REPLY_OPTION})


# the message (pure)


def thread_key(message: Message) -> str:
    """One key per run of a DeployJob, so the outcome lands under the start."""
    return clip(f"deploybell/{message.namespace}/{message.job}/run-{message.run}", MAX_THREAD_KEY)


@dataclass(frozen=True)
class Level:
    """How much one card shows: diagnosis items per list and the longest values."""

    items: int
    summary_chars: int
    value_chars: int


LEVELS = (
    Level(10, 2000, 1000),
    Level(5, 2000, 500),
    Level(3, 1000, 300),
    Level(1, 500, 200),
    Level(0, 300, 120),
)


def payload(
    message: Message, override: Title | None = None, *, threads: bool = True
) -> dict[str, Any]:
    """The webhook body: `text` (the title) and one card, within Chat's size limits."""
    title, _ = headline(message, override)
    for level in LEVELS:
        body: dict[str, Any] = {
            "text": plain(clip(title, MAX_TEXT_CHARS // 2)),
            "cardsV2": [
                {"cardId": f"deploybell-{message.event}", "card": card(message, override, level)}
            ],
        }
        if threads:
            body["thread"] = {"threadKey": thread_key(message)}
        if size(body) <= BUDGET_BYTES:
            break
    return body


def size(body: Any) -> int:
    return len(json.dumps(body).encode("utf-8"))


def plain(text: str) -> str:
    """Text for Chat's `text` field, where `<users/all>` would mention everyone and `<url|x>`
    would be a link: an invisible space after each `<` keeps them text."""
    return text.replace("<", "<\u200b")


def card(message: Message, override: Title | None, level: Level) -> dict[str, Any]:
    title, summary = headline(message, override)
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
    sections += _section("Objects", [o.line() for o in message.objects], level)
    sections += _section("Failing pods", [p.line() for p in message.pods], level)
    sections += _section("Recent warnings", [w.line() for w in message.warnings], level)
    link = _link(message.link)
    if link:
        button = {"text": "Open", "onClick": {"openLink": {"url": link}}}
        sections.append({"widgets": [{"buttonList": {"buttons": [button]}}]})
    elif message.link:
        text = _h(f"Link: {clip(message.link, level.value_chars)}")
        sections.append({"widgets": [{"textParagraph": {"text": text}}]})
    header = {"title": clip(title, 200), "subtitle": clip(_footer(message), 200)}
    return {"header": header, "sections": sections}


def _section(heading: str, lines: Sequence[str], level: Level) -> list[dict[str, Any]]:
    if not lines:
        return []
    shown = [f"• {clip(line, level.value_chars)}" for line in lines[: level.items]]
    if len(lines) > level.items:
        shown.append(f"… and {len(lines) - level.items} more")
    text = "<br>".join(_h(line) for line in shown)
    return [{"header": heading, "widgets": [{"textParagraph": {"text": text}}]}]


def _h(text: str) -> str:
    """Card text is HTML: values are escaped, line breaks kept."""
    return html.escape(text, quote=False).replace("\n", "<br>")


def _link(link: str) -> str:
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
    threads = bool(preview.options.get("threads", True))
    return payload(preview.message, preview.override, threads=threads)


def _preview(preview: Preview) -> list[str]:
    threads = bool(preview.options.get("threads", True))
    query = f"&messageReplyOption={REPLY_OPTION}" if threads else ""
    return [
        f"POST <the Secret's webhookUrl>{query}",
        _http.indented(_render(preview)),
    ]


PROVIDER = ProviderType(
    rules=RULES,
    sender=GooglechatProvider,
    render=_render,
    preview=_preview,
    preview_once=True,
    setup="In the space, *Apps & integrations → Webhooks → Add webhook*, and copy its URL (with "
    "its `key` and `token` parameters) into the Secret's `webhookUrl`.",
)
