"""Telegram message text in the Bot API's HTML parse mode (pure).

Only Telegram's own tags are used (`b`, `i`, `a href`), every value is escaped (`&lt;`, `&gt;`,
`&amp;`, `&quot;`), and the text a reader sees — after entity parsing, counted in UTF-16 code units
as the Bot API counts — stays within 4096 characters: values are cut and, when the message is
still too long, its last lines give way to a `…` marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _layout, base

TEXT_LIMIT = 4096
TITLE_CHARS = 256
SUMMARY_CHARS = 1500
VALUE_CHARS = 300
LINK_CHARS = 2000
MAX_PODS = 10
MAX_WARNINGS = 5
MAX_OBJECTS = 20
MARKER = "…"


@dataclass(frozen=True)
class Span:
    """A run of visible text, bold, italic or a link."""

    text: str
    style: str = ""  # "" | "b" | "i" | "a"
    href: str = ""

    def html(self, text: str | None = None) -> str:
        shown = escape(self.text if text is None else text, quote=False)
        if self.style == "a":
            return f'<a href="{escape(self.href, quote=True)}">{shown}</a>'
        return f"<{self.style}>{shown}</{self.style}>" if self.style else shown


Line = tuple[Span, ...]


def units(text: str) -> int:
    """The length as the Bot API counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def render(message: Message, override: base.Title | None = None) -> str:
    """The HTML text of the message, within Telegram's limit."""
    return fit(lines(message, override))


def lines(message: Message, override: base.Title | None = None) -> list[Line]:
    title, summary = base.headline(message, override)
    out: list[Line] = [(Span(clip(title, TITLE_CHARS), "b"),)]
    if summary:
        out.append((Span(clip(summary, SUMMARY_CHARS)),))
    out += [
        (Span(f"{name}: ", "b"), Span(clip(value, VALUE_CHARS))) for name, value in message.facts()
    ]
    for (heading, items, omitted), most in zip(
        message.lists(), (MAX_OBJECTS, MAX_PODS, MAX_WARNINGS), strict=True
    ):
        if items:
            out.append((Span(heading, "b"),))
            shown = _layout.listed(
                items, most, lambda i: "• " + clip(i, VALUE_CHARS), "…and {} more", omitted
            )
            out += [(Span(line),) for line in shown]
    if _layout.web_link(message.link, LINK_CHARS):
        out.append((Span(f"Open {message.ref}", "a", message.link),))
    elif message.link:
        out.append((Span("Link: ", "b"), Span(clip(message.link, VALUE_CHARS))))
    out.append((Span(message.footer(times=False), "i"),))  # the chat shows the message's time
    return out


def fit(content: list[Line], limit: int = TEXT_LIMIT) -> str:
    """The lines as HTML; when their visible text is over `limit`, cut with a marker."""
    html: list[str] = []
    used = 0
    for number, line in enumerate(content):
        newline = 1 if number else 0
        size = newline + sum(units(span.text) for span in line)
        # Keep room for a line break and the marker, unless this is the last line.
        reserve = 0 if number == len(content) - 1 else 1 + units(MARKER)
        if used + size + reserve <= limit:
            html.append("".join(span.html() for span in line))
            used += size
            continue
        html.append(_cut(line, limit - used - newline - units(MARKER)) + escape(MARKER))
        break
    return "\n".join(html)


def _cut(line: Line, room: int) -> str:
    """The line's spans until `room` units are used, the last one cut."""
    out = []
    for span in line:
        if room <= 0:
            break
        text = span.text
        while units(text) > room:
            text = text[: max(len(text) - (units(text) - room), 0)]
        if text:
            out.append(span.html(text))
        room -= units(text)
    return "".join(out)
