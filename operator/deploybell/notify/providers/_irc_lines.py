"""IRC's pure side: the one line per message and the splitter (connection settings: providers/irc).

IRC has no escaping: a CR or LF in a value ends the line and starts a new command, and the bytes
below 0x20 are mIRC formatting codes. So every value that comes from a manifest, a template or
the cluster goes through `clean()`; the only control codes in a rendered line are the colour
around the event symbol that `render()` adds itself.
"""

from __future__ import annotations

import re
import unicodedata

from deploybell.notify.model import Message, PodDiagnosis, WarningEvent
from deploybell.notify.providers.base import Title

MAX_LINE_BYTES = 512  # RFC 1459/2812: a whole line, CR LF included
# What the server puts in front of our line when it relays it, `:nick!user@host `, minus the
# nick: `!`, `~` + a user name of up to 20 bytes, `@`, a host of up to 63 bytes (one DNS label's
# worth; cloaks and IPv6 addresses fit), the space, and some slack for servers that differ.
PREFIX_ALLOWANCE = 100
DETAIL_CHARS = 160  # a pod's message or a Warning's text: the gist, not a stack trace
SEPARATOR = " | "

# mIRC colour numbers for the event symbol: green, red, grey, blue.
_COLOURS = {"success": "03", "failure": "04", "cancel": "14", "start": "12"}
_COLOUR, _RESET = "\x03", "\x0f"
_SPACES = re.compile(r"[\t\n\r\v\f\u2028\u2029\x85]+")
# Bidirectional overrides reorder what a reader sees; no IRC client needs them from a manifest.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean(value: str) -> str:
    """The value with line breaks made spaces and every other control character removed."""
    spaced = _SPACES.sub(" ", value)
    # Cc: C0/C1 controls and mIRC formatting; Cs: lone surrogates, which cannot even be encoded.
    return "".join(
        c for c in spaced if unicodedata.category(c) not in ("Cc", "Cs") and c not in _BIDI
    ).strip()


def render(message: Message, override: Title | None = None) -> str:
    """The one line: title, summary, link, then the first failing pod and the first warning."""
    title = clean(override.title) if override and override.title is not None else ""
    title = title or _coloured(clean(message.title()), message)
    text = override.text if override and override.text is not None else message.summary()
    summary = clean(text)
    parts = [
        f"{title}: {summary}" if summary else title,
        clean(message.link),
        _pod(message.pods, message.pods_omitted),
        _warning(message.warnings),
    ]
    return SEPARATOR.join(part for part in parts if part)


def _coloured(title: str, message: Message) -> str:
    """Colour the event symbol (and only it: the reset follows at once)."""
    code = _COLOURS.get(message.event)
    start = "[test] " if message.test else ""
    if code is None or not title.startswith(start + message.symbol):
        return title
    rest = title[len(start) + len(message.symbol) :]
    return f"{start}{_COLOUR}{code}{message.symbol}{_RESET}{rest}"


def _pod(pods: tuple[PodDiagnosis, ...], omitted: int) -> str:
    """`pod web-7d9f8/app: CrashLoopBackOff, exit 1, 5 restarts (back-off 40s …) +1 more`."""
    if not pods:
        return ""
    pod = pods[0]
    facts = [clean(pod.reason)]
    if pod.exit_code is not None:
        facts.append(f"exit {pod.exit_code}")
    if pod.restart_count:
        facts.append(f"{pod.restart_count} restarts")
    line = f"pod {clean(pod.pod)}/{clean(pod.container)}: {', '.join(f for f in facts if f)}"
    if clean(pod.message):
        line += f" ({_clip(clean(pod.message), DETAIL_CHARS)})"
    more = len(pods) - 1 + omitted
    return line + (f" +{more} more" if more else "")


def _warning(warnings: tuple[WarningEvent, ...]) -> str:
    """`Warning BackOff on Pod web-7d9f8 (7x): Back-off restarting failed container app`."""
    if not warnings:
        return ""
    event = warnings[0]
    times = f" ({event.count}x)" if event.count > 1 else ""
    text = _clip(clean(event.message), DETAIL_CHARS)
    return f"Warning {clean(event.reason)} on {clean(event.object)}{times}: {text}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def line_budget(command: str, target: str, nick: str) -> int:
    """How many bytes of text fit in `COMMAND target :text` once the server adds its prefix."""
    overhead = len(f":{nick}{' ' * PREFIX_ALLOWANCE}{command} {target} :\r\n".encode())
    return MAX_LINE_BYTES - overhead


def split(text: str, budget: int) -> list[str]:
    """Cut text into pieces of at most `budget` UTF-8 bytes, never inside a character.

    A cut prefers the last ` | ` between parts (when that keeps at least half the budget), then
    the last space; the separator or space it falls on is dropped. Empty pieces are left out.
    """
    if budget < 4:
        raise ValueError(f"a line budget of {budget} bytes cannot hold one character")
    pieces: list[str] = []
    rest = text.strip(" ")
    while len(rest.encode()) > budget:
        data = rest.encode()
        # Back off from the byte limit to the start of a character (continuation bytes: 10xxxxxx).
        cut = budget
        while data[cut] & 0xC0 == 0x80:
            cut -= 1
        fits = len(data[:cut].decode())
        # A separator or space right at the limit counts: the cut drops it.
        part = rest.rfind(SEPARATOR, 0, fits + len(SEPARATOR) - 1)
        space = rest.rfind(" ", 0, fits + 1)
        if part > fits // 2:
            end, skip = part, len(SEPARATOR)
        elif space > 0:
            end, skip = space, 1
        else:
            end, skip = fits, 0
        pieces.append(rest[:end].rstrip(" "))
        rest = rest[end + skip :].lstrip(" ")
    pieces.append(rest)
    return [piece for piece in pieces if piece]


def lines(
    message: Message, override: Title | None, *, command: str, target: str, nick: str
) -> list[str]:
    """The rendered message as the texts of the protocol lines that carry it."""
    return split(render(message, override), line_budget(command, target, nick))
