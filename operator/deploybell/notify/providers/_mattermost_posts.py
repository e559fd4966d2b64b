"""Mattermost post bodies: Markdown text and a Slack-compatible attachment (pure).

Limits: a post's message holds at most 16383 characters (runes) since Mattermost 5.0, and its
props (the attachment) at most 800000 characters of JSON. Values are cut and escaped so the message
stays far below both; a value can never format the post or mention `@channel` / `@all`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _layout, base

MESSAGE_LIMIT = 16383
TITLE_CHARS = 500
SUMMARY_CHARS = 4000
VALUE_CHARS = 1000
LINE_CHARS = 600
LINK_CHARS = 2000
MAX_OBJECTS = 20
MAX_PODS = 10
MAX_WARNINGS = 5
_SHORT_FACTS = frozenset(
    {"Job", "Run", "Phase", "Cluster", "Environment", "Duration", "Rolled back to"}
)
# CommonMark backslash-escapes any ASCII punctuation; these are the ones that format inline text.
_MARKDOWN = re.compile(r"([\\`*_~\[\]<>|#])")
# `@name` mentions (and @channel/@all/@here) need a name character right after the `@`.
_MENTION = re.compile(r"@(?=[\w.-])")
_WORD_JOINER = "\u2060"


def md(text: str) -> str:
    """`text` as literal Markdown: no formatting, no mentions."""
    return _MENTION.sub("@" + _WORD_JOINER, _MARKDOWN.sub(r"\\\1", text))


@dataclass(frozen=True)
class Post:
    """One post: the Markdown message and its attachment."""

    message: str
    attachment: dict[str, Any] = field(default_factory=dict)

    def props(self) -> dict[str, Any]:
        return {"attachments": [self.attachment]}

    def rest_body(self, channel_id: str) -> dict[str, Any]:
        """`POST /api/v4/posts`."""
        return {"channel_id": channel_id, "message": self.message, "props": self.props()}

    def webhook_body(self, recipient: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """An incoming webhook's JSON: a recipient overrides the webhook's channel."""
        body: dict[str, Any] = {"text": self.message, "attachments": [self.attachment]}
        if recipient:
            # A webhook posts in its own team: `#team/channel` names the channel only.
            body["channel"] = recipient if recipient.startswith("@") else recipient.split("/")[-1]
        if options.get("username"):
            body["username"] = options["username"]
        if options.get("iconUrl"):
            body["icon_url"] = options["iconUrl"]
        return body


def render(message: Message, override: base.Title | None = None) -> Post:
    """The default post; a template's title and text replace the headline and summary."""
    attachment: dict[str, Any] = {
        "fallback": clip(_title_and_summary(message, override)[0], TITLE_CHARS),
        "color": message.colour,
        "fields": _fields(message),
    }
    if _layout.web_link(message.link, LINK_CHARS):
        attachment["title"] = message.ref
        attachment["title_link"] = message.link
    if text := "\n".join(_details(message)):
        attachment["text"] = text
    attachment["footer"] = message.footer()
    return Post(message=_headline(message, override), attachment=attachment)


def thread_reply(message: Message, override: base.Title | None = None) -> str:
    """The outcome replied under the start post: headline, the first failing pod, the link."""
    lines = [_headline(message, override)]
    if message.pods:
        lines.append(_bullet(message.pods[0].line()))
        if message.failing_containers > 1:
            lines.append(f"…and {message.failing_containers - 1} more failing container(s)")
    if message.link:
        lines.append(md(clip(message.link, LINK_CHARS)))
    return clip("\n".join(lines), MESSAGE_LIMIT)


def _title_and_summary(message: Message, override: base.Title | None) -> tuple[str, str]:
    title, summary = base.headline(message, override)
    return clip(title, TITLE_CHARS), clip(summary, SUMMARY_CHARS)


def _headline(message: Message, override: base.Title | None) -> str:
    title, summary = _title_and_summary(message, override)
    return f"**{md(title)}**" + (f"\n{md(summary)}" if summary else "")


def _fields(message: Message) -> list[dict[str, Any]]:
    return [
        {"short": name in _SHORT_FACTS, "title": name, "value": md(clip(value, VALUE_CHARS))}
        for name, value in message.facts()
    ]


def _details(message: Message) -> list[str]:
    lines: list[str] = []
    for (heading, items, omitted), most in zip(
        message.lists(), (MAX_OBJECTS, MAX_PODS, MAX_WARNINGS), strict=True
    ):
        if items:
            lines.append(f"**{heading}**")
            lines += _layout.listed(items, most, _bullet, "…and {} more", omitted)
    if message.link and not _layout.web_link(message.link, LINK_CHARS):
        lines.append(f"**Link** {md(clip(message.link, LINK_CHARS))}")
    return lines


def _bullet(item: str) -> str:
    return md("• " + clip(item, LINE_CHARS))
