"""A run as a Markdown report (pure): the body of a pull-request comment (GitHub, GitLab) and
the summary of a GitHub check run. Values are escaped so they can neither format the text nor
mention anyone (`md`); the report shrinks by levels until it fits the vendor's limit.

A comment carries a hidden marker naming its run, so that a comment posted just before a crash
(its id not yet in the ledger) is found again among the pull request's comments, not posted
twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _layout, _records, base
from deploybell.notify.providers._mattermost_posts import md

LEVELS = (
    _layout.Level(20, 4000, 1000),
    _layout.Level(10, 2000, 500),
    _layout.Level(3, 1000, 300),
    _layout.Level(0, 300, 120),
)


def marker(message: Message) -> str:
    """`<!-- deploybell run team-a/web#3 1f2e… -->`: invisible in the rendered comment, the
    same for every attempt and every process (a digest of the run's identity)."""
    identity = json.dumps(_records.identity(message), sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:20]
    return f"<!-- deploybell run {message.ref}#{message.run} {digest} -->"


def report(
    message: Message,
    override: base.Title | None,
    fits: Callable[[str], bool],
    head: str = "",
) -> str:
    """The Markdown report at the first level that `fits`, `head` (a marker) first."""
    return _layout.fit(LEVELS, lambda level: _build(message, override, level, head), fits)


def _build(message: Message, override: base.Title | None, level: _layout.Level, head: str) -> str:
    title, summary = base.headline(message, override)
    lines = [head] if head else []
    lines += [f"### {md(clip(title, 500))}", ""]
    if summary:
        lines += [md(clip(summary, level.summary_chars)), ""]
    lines += ["| | |", "|---|---|"]
    for label, value in message.facts():
        shown = md(clip(value, level.value_chars)).replace("\n", "<br>")
        lines.append(f"| {label} | {shown} |")
    for listing in message.lists():
        if (listing.lines or listing.omitted) and level.items:
            lines += ["", f"**{listing.heading}**", ""]
            lines += _layout.listed(
                listing.lines,
                level.items,
                lambda i: f"- {md(clip(i, 500))}",
                "- … and {} more",
                listing.omitted,
            )
    if link := _layout.web_link(message.link):
        lines += ["", f"[Details]({link})"]
    lines += ["", f"<sub>{md(message.footer())}</sub>"]
    return "\n".join(lines)
