"""What the renderers share (pure): the one link check, bounded lists, and fitting a body into a
destination's size limit by showing less of the run until it fits."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

L = TypeVar("L")
T = TypeVar("T")

MAX_LINK_CHARS = 2048


def web_link(link: str, limit: int = MAX_LINK_CHARS) -> str:
    """`link` when it can be a button or an anchor: an http(s) URL within `limit` characters,
    with no white space or control character (a vendor refuses the whole message for a link it
    cannot parse, and a `javascript:` link must never be clickable); else ""."""
    ok = link.startswith(("https://", "http://")) and len(link) <= limit
    return link if ok and link.isprintable() and " " not in link else ""


def listed(
    items: Sequence[str],
    most: int,
    show: Callable[[str], str],
    more: str = "… and {} more",
    omitted: int = 0,
) -> list[str]:
    """The first `most` items as `show` writes them, then a line saying how many are not:
    those cut here and the `omitted` the message never held (every type says the full count)."""
    out = [show(item) for item in items[:most]]
    left = max(len(items) - most, 0) + omitted
    if left:
        out.append(more.format(left))
    return out


@dataclass(frozen=True)
class Level:
    """How much one rich message shows: items per list and the longest summary and values."""

    items: int
    summary_chars: int
    value_chars: int


# From the most to the least, for cards of tens of kilobytes (Teams, Google Chat).
CARD_LEVELS = (
    Level(10, 2000, 1000),
    Level(5, 2000, 500),
    Level(3, 1000, 300),
    Level(1, 500, 200),
    Level(0, 300, 120),
)


def fit(levels: Iterable[L], build: Callable[[L], T], fits: Callable[[T], bool]) -> T:
    """The body built at the first level that fits, trying from the most shown to the least;
    the last level's when none does (it keeps every value short enough to fit)."""
    body: T | None = None
    for level in levels:
        body = build(level)
        if fits(body):
            return body
    if body is None:
        raise ValueError("fit() needs at least one level")
    return body


def json_size(body: Any) -> int:
    """A JSON body's size in bytes as the providers send it (aiohttp's JSON: ASCII-escaped)."""
    return len(json.dumps(body).encode("utf-8"))
