"""HipChat bodies: an HTML room notification and a plain-text private message (pure)."""

from __future__ import annotations

from collections.abc import Callable, Sized
from html import escape
from typing import Any

from deploybell.notify.model import Message, PodDiagnosis, WarningEvent
from deploybell.notify.providers.base import Title

# HipChat's own palette: yellow, green, red, purple, gray (and random).
COLOURS = {"start": "yellow", "success": "green", "failure": "red", "cancel": "gray"}
# HipChat rejects messages over 10,000 characters: values are cut, and pods and warnings are
# dropped from the end until the message fits (escaping can make HTML up to 6x longer).
MAX_MESSAGE_CHARS = 10_000
MAX_DIAGNOSIS_ITEMS = 5
MAX_VALUE_CHARS = 200
MAX_SUMMARY_CHARS = 1000
MAX_LINK_CHARS = 2000


def colour(message: Message) -> str:
    return COLOURS.get(message.event, "gray")


def room_notification(
    message: Message, override: Title | None = None, notify: bool = False
) -> dict[str, Any]:
    """The JSON body of `POST /v2/room/{room}/notification`."""
    return {
        "message": html(message, override),
        "color": colour(message),
        "message_format": "html",
        "notify": notify,
    }


def private_message(
    message: Message, override: Title | None = None, notify: bool = False
) -> dict[str, Any]:
    """The JSON body of `POST /v2/user/{user}/message`: plain text reads best in a 1:1 chat."""
    return {"message": text(message, override), "message_format": "text", "notify": notify}


def html(message: Message, override: Title | None = None) -> str:
    """Title in bold, the summary, a link, and on failure the failing pods and warnings."""
    return _fitting(lambda items: _html(message, override, items))


def text(message: Message, override: Title | None = None) -> str:
    """The same content as lines of plain text."""
    return _fitting(lambda items: _text(message, override, items))


def _fitting(build: Callable[[int], str]) -> str:
    for items in range(MAX_DIAGNOSIS_ITEMS, 0, -1):
        out = build(items)
        if len(out) <= MAX_MESSAGE_CHARS:
            return out
    return build(0)


def _html(message: Message, override: Title | None, items: int) -> str:
    title, summary = _title_and_summary(message, override)
    parts = [f"<b>{_h(title)}</b>"]
    if summary:
        parts.append("<br>" + _h(summary).replace("\n", "<br>"))
    if _linkable(message.link):
        parts.append(f'<br><a href="{_h(message.link)}">{_h(message.ref)}</a>')
    if message.pods:
        pods = [_pod_html(pod) for pod in message.pods[:items]] + _more(message.pods, items)
        parts.append("<br><b>Failing pods</b>" + _list_html(pods))
    if message.warnings:
        warnings = [_h(_warning_line(w)) for w in message.warnings[:items]]
        parts.append(
            "<b>Warning events</b>" + _list_html(warnings + _more(message.warnings, items))
        )
    return "".join(parts)


def _text(message: Message, override: Title | None, items: int) -> str:
    title, summary = _title_and_summary(message, override)
    lines = [title]
    if summary:
        lines.append(summary)
    if message.link and len(message.link) <= MAX_LINK_CHARS:
        lines.append(message.link)
    if message.pods:
        pods = [_pod_line(pod) for pod in message.pods[:items]] + _more(message.pods, items)
        lines += ["Failing pods:", *(f"- {pod}" for pod in pods)]
    if message.warnings:
        warnings = [_warning_line(w) for w in message.warnings[:items]]
        lines += ["Warning events:", *(f"- {w}" for w in warnings + _more(message.warnings, items))]
    return "\n".join(lines)


def _title_and_summary(message: Message, override: Title | None) -> tuple[str, str]:
    title = override.title if override and override.title is not None else message.title()
    summary = override.text if override and override.text is not None else message.summary()
    return _cut(title), _cut(summary, MAX_SUMMARY_CHARS)


def _more(shown_from: Sized, items: int) -> list[str]:
    hidden = len(shown_from) - items
    return [f"… {hidden} more"] if hidden > 0 else []


def _list_html(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _pod_html(pod: PodDiagnosis) -> str:
    where = f"<code>{_h(_cut(pod.pod))}</code> container <code>{_h(_cut(pod.container))}</code>"
    return f"{where}: {_h(_pod_facts(pod))}"


def _pod_line(pod: PodDiagnosis) -> str:
    return f"{_cut(pod.pod)} container {_cut(pod.container)}: {_pod_facts(pod)}"


def _pod_facts(pod: PodDiagnosis) -> str:
    facts = [pod.reason or "not ready"]
    if pod.exit_code is not None:
        facts.append(f"exit code {pod.exit_code}")
    if pod.restart_count:
        facts.append(f"{pod.restart_count} restart{'s' if pod.restart_count != 1 else ''}")
    said = f" — {_cut(pod.message)}" if pod.message else ""
    return _cut(", ".join(facts)) + said


def _warning_line(warning: WarningEvent) -> str:
    times = f" ({warning.count} times)" if warning.count > 1 else ""
    return f"{_cut(warning.object)} {_cut(warning.reason)}{times}: {_cut(warning.message)}"


def _linkable(link: str) -> bool:
    # Only web links become anchors: a `javascript:` href must never be clickable.
    return link.startswith(("https://", "http://")) and len(link) <= MAX_LINK_CHARS


def _h(value: str) -> str:
    return escape(value, quote=True)


def _cut(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
