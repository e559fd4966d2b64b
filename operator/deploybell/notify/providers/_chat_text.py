"""One chat message as lines of styled spans (pure), written as Markdown (Rocket.Chat, Webex,
Zulip) or as HTML and plain text (Matrix), within a destination's size limit.

The content is the one every rich message shows (`Message.facts()`, `Message.lists()`, the link
and the footer); values are cut at the first `Level` whose text fits, and a text still too long
loses its last lines to a `…` line. Lines are dropped whole, never cut, so a cut never splits an
escape or a tag. Every value is escaped by the writer: it can format nothing and mention nobody.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape as html_escape

from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _layout, base

TITLE_CHARS = 256
LINK_CHARS = 2000
MARKER = "…"
LEVELS = (
    _layout.Level(20, 1500, 400),
    _layout.Level(10, 1000, 300),
    _layout.Level(5, 500, 200),
    _layout.Level(2, 300, 120),
    _layout.Level(0, 200, 80),
)
# An `@` followed by a name character is a mention (`@all`, `@here`, `@room`, `@alice`) in every
# one of these chats; a word joiner after it shows the same text and mentions nobody.
_MENTION = re.compile(r"@(?=[\w.-])")
_WORD_JOINER = "\u2060"
# Control characters show as nothing or as boxes, and JSON carries each as six bytes.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Span:
    """A run of text: plain, bold, italic, or a link to `href`."""

    text: str
    style: str = ""  # "" | "b" | "i" | "a"
    href: str = ""


Line = tuple[Span, ...]


def lines(message: Message, override: base.Title | None, level: _layout.Level) -> list[Line]:
    """The message at `level`: headline, summary, facts, lists, link, footer."""
    title, summary = base.headline(message, override)
    out: list[Line] = [(Span(_flat(title, TITLE_CHARS), "b"),)]
    if summary:
        out.append((Span(_flat(summary, level.summary_chars)),))
    for name, value in message.facts():
        out.append((Span(f"{name}:", "b"), Span(" " + _flat(value, level.value_chars))))
    for listing in message.lists():
        if listing.lines:
            out.append((Span(listing.heading, "b"),))
            shown = _layout.listed(
                listing.lines,
                level.items,
                lambda i: "• " + _flat(i, level.value_chars),
                omitted=listing.omitted,
            )
            out += [(Span(line),) for line in shown]
    if _layout.web_link(message.link, LINK_CHARS):
        out.append((Span(f"Open {message.ref}", "a", message.link),))
    elif message.link:
        out.append((Span("Link:", "b"), Span(" " + _flat(message.link, level.value_chars))))
    out.append((Span(message.footer(times=False), "i"),))  # the chat shows the message's time
    return out


def reply_lines(message: Message, override: base.Title | None) -> list[Line]:
    """The outcome as a short thread reply: headline, summary, the first failing pod, the link."""
    title, summary = base.headline(message, override)
    out: list[Line] = [(Span(_flat(title, TITLE_CHARS), "b"),)]
    if summary:
        out.append((Span(_flat(summary, 500)),))
    if message.pods:
        out.append((Span("• " + _flat(message.pods[0].line(), 300)),))
        if message.failing_containers > 1:
            more = message.failing_containers - 1
            out.append((Span(f"… and {more} more failing container(s)"),))
    if _layout.web_link(message.link, LINK_CHARS):
        out.append((Span(f"Open {message.ref}", "a", message.link),))
    return out


def _flat(text: str, limit: int) -> str:
    """One line of at most `limit` characters (multi-line values such as images are joined),
    without control characters."""
    joined = ", ".join(part for part in text.splitlines() if part.strip())
    return clip(_CONTROL.sub("", joined), limit)


Writer = Callable[[Sequence[Line]], str]


def fitted(
    message: Message,
    override: base.Title | None,
    write: Writer,
    fits: Callable[[str], bool],
) -> str:
    """The fullest text `write` makes that `fits`."""
    return write(fitted_lines(message, override, lambda content: fits(write(content))))


def fitted_lines(
    message: Message, override: base.Title | None, fits: Callable[[Sequence[Line]], bool]
) -> list[Line]:
    """The fullest lines that `fits`; past the last level, the last lines give way to `…`."""
    content = _layout.fit(LEVELS, lambda level: lines(message, override, level), fits)
    return content if fits(content) else cut(content, fits)


def cut(content: Sequence[Line], fits: Callable[[Sequence[Line]], bool]) -> list[Line]:
    """The first lines that fit with a `…` line after them (at least a short headline)."""
    kept = list(content)
    while len(kept) > 1:
        kept.pop()
        if fits([*kept, (Span(MARKER),)]):
            return [*kept, (Span(MARKER),)]
    return [(Span(clip(content[0][0].text, 60), "b"),), (Span(MARKER),)]


# ---- writers


_MARKDOWN = re.compile(r"([\\`*_~\[\]<>|#])")


def md(text: str) -> str:
    """`text` as literal Markdown: backslash-escaped punctuation, no mentions."""
    return _MENTION.sub("@" + _WORD_JOINER, _MARKDOWN.sub(r"\\\1", text))


def markdown(content: Sequence[Line]) -> str:
    """CommonMark-style text: `**bold**`, `_italic_`, `[text](url)`, a line per line."""
    return "\n".join("".join(_markdown_span(span) for span in line) for line in content)


def _markdown_span(span: Span) -> str:
    text = md(span.text)
    if span.style == "b":
        return f"**{text}**"
    if span.style == "i":
        return f"_{text}_"
    if span.style == "a":
        # Parentheses would end the link early; percent-encoded they mean the same URL.
        href = span.href.replace("(", "%28").replace(")", "%29")
        return f"[{text}]({href})"
    return text


def html(content: Sequence[Line]) -> str:
    """HTML with `<b>`, `<i>`, `<a href>` and `<br>`, every value escaped."""
    return "<br>".join("".join(_html_span(span) for span in line) for line in content)


def _html_span(span: Span) -> str:
    text = html_escape(span.text, quote=False)
    if span.style == "a":
        return f'<a href="{html_escape(span.href, quote=True)}">{text}</a>'
    return f"<{span.style}>{text}</{span.style}>" if span.style else text


def plain(content: Sequence[Line]) -> str:
    """The text alone (Matrix's `body`); a link is shown with its URL."""
    return "\n".join("".join(_plain_span(span) for span in line) for line in content)


def _plain_span(span: Span) -> str:
    return f"{span.text}: {span.href}" if span.style == "a" else span.text


def utf8(text: str) -> int:
    """A text's size as byte-counting vendors count it."""
    return len(text.encode("utf-8"))
