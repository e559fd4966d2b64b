"""Slack message bodies: Block Kit blocks, a coloured attachment and a thread reply (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from deploybell.notify.model import Message, WarningEvent
from deploybell.notify.providers import _layout
from deploybell.notify.providers.base import Title, headline

# Slack's own limits (https://docs.slack.dev/reference/block-kit/blocks/section-block).
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
FALLBACK_LIMIT = 3000
MAX_PODS = 10
MAX_WARNINGS = 5
MAX_LINK = 3000

_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def escape(text: str) -> str:
    """Escape `&`, `<`, `>` as Slack requires, so `<!channel>` or `<@U1>` in a value never pings."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(escaped: str, limit: int) -> str:
    """Cut already-escaped text to Slack's limit without leaving half an `&amp;`."""
    if len(escaped) <= limit:
        return escaped
    return _PARTIAL_ENTITY.sub("", escaped[: limit - 1]) + "…"


@dataclass(frozen=True)
class SlackMessage:
    """One Slack message body: `text` is the notification fallback, blocks carry the content."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)

    def as_payload(self) -> dict[str, Any]:
        """The JSON body for `chat.postMessage`/`chat.update`/an incoming webhook."""
        return {"text": self.text, "blocks": self.blocks, "attachments": self.attachments}


def render(message: Message, override: Title | None = None) -> SlackMessage:
    """The default Slack message; a template's title/text replace the headline and summary."""
    title, text = headline(message, override)
    top = _section(f"*{escape(title)}*" + (f"\n{escape(text)}" if text else ""))
    details = [
        block
        for block in (
            _facts(message),
            _objects(message),
            _pods(message),
            _warnings(message.warnings),
            _link(message.link),
            _context(message),
        )
        if block is not None
    ]
    attachment: dict[str, Any] = {
        "color": message.colour,
        "fallback": _clip(escape(title), FALLBACK_LIMIT),
        "blocks": details,
    }
    return SlackMessage(
        text=_clip(escape(title), FALLBACK_LIMIT), blocks=[top], attachments=[attachment]
    )


def thread_reply(message: Message, override: Title | None = None) -> str:
    """The outcome posted under the start message: title, summary and the first failing pod."""
    title, text = headline(message, override)
    lines = [f"*{escape(title)}*"]
    if text:
        lines.append(escape(text))
    if message.pods:
        lines.append(_bullet(message.pods[0].line()))
        if message.failing_containers > 1:
            lines.append(f"…and {message.failing_containers - 1} more failing container(s)")
    if message.link:
        lines.append(escape(message.link))
    return _clip("\n".join(lines), SECTION_LIMIT)


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(mrkdwn, SECTION_LIMIT)}}


def _facts(message: Message) -> dict[str, Any]:
    facts = message.facts()
    fields = [
        {"type": "mrkdwn", "text": _clip(f"*{name}*\n{escape(value)}", FIELD_LIMIT)}
        for name, value in facts[:10]  # Slack allows at most 10 fields
    ]
    return {"type": "section", "fields": fields}


def _objects(message: Message) -> dict[str, Any] | None:
    if not message.objects:
        return None
    lines = ["*Objects*", *(_bullet(obj.line()) for obj in message.objects)]
    return _section("\n".join(lines))


def _bullet(line: str) -> str:
    return escape(f"• {line}")


def _pods(message: Message) -> dict[str, Any] | None:
    if not message.pods:
        return None
    lines = [pod.line() for pod in message.pods]
    shown = _layout.listed(lines, MAX_PODS, _bullet, "…and {} more", message.pods_omitted)
    return _section("\n".join(["*Failing pods*", *shown]))


def _warnings(warnings: tuple[WarningEvent, ...]) -> dict[str, Any] | None:
    if not warnings:
        return None
    lines = ["*Recent warnings*", *(_bullet(w.line()) for w in warnings[:MAX_WARNINGS])]
    return _section("\n".join(lines))


def _link(link: str) -> dict[str, Any] | None:
    if not link:
        return None
    if not _layout.web_link(link, MAX_LINK):
        # Slack rejects a button whose url is not an http(s) URL; show it as text instead.
        return _section(f"*Link*\n{escape(link)}")
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Open"},
        "url": link,
        "action_id": "deploybell-open",
    }
    return {"type": "actions", "elements": [button]}


def _context(message: Message) -> dict[str, Any]:
    text = escape(message.footer())
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
