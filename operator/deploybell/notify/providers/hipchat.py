"""HipChat (cloud, Server or Data Center) through the v2 REST API with a bearer token:
`#room` → a coloured HTML room notification, `@user` → a plain-text private message."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _answers, _http, _layout, base

DEFAULT_URL = "https://api.hipchat.com"
# HipChat's own palette: yellow, green, red, purple, gray (and random).
COLOURS = {"start": "yellow", "success": "green", "failure": "red", "cancel": "gray"}
# HipChat rejects messages over 10,000 characters: values are cut, and pods and warnings are
# dropped from the end until the message fits (escaping can make HTML up to 6x longer).
MAX_MESSAGE_CHARS = 10_000
MAX_DIAGNOSIS_ITEMS = 5
MAX_VALUE_CHARS = 200
MAX_SUMMARY_CHARS = 1000
MAX_LINK_CHARS = 2000
_USER_ID = re.compile(r"[0-9]+")

RULES = ProviderRules(
    type="hipchat",
    title="HipChat",
    doc="A coloured room notification, or a private message to a user (v2 API).",
    recipients=Recipients(
        syntax="'#room' or '@user'",
        pattern=r"[#@]\S(.*\S)?",  # HipChat room names may contain spaces
        valid=("#Deploys", "#ops room", "@alice", "@alice@example.com", "@42"),
        invalid=("deploys", "#", "@ alice"),
        doc="a room by name or id, or a user by id, e-mail or @mention name",
    ),
    options=(
        Field(
            "notify",
            "boolean",
            "Make the room message trigger a HipChat notification (sound, badge).",
        ),
    ),
    secret_keys=(
        SecretKey("token", "An API token with the Send Notification and Send Message scopes."),
        SecretKey("url", "The server's base URL (Server / Data Center).", sensitive=False),
    ),
    secret_needs=(frozenset({"token"}),),
    setup="A token with the *Send Notification* (rooms) and *Send Message* (users) scopes.",
)


class HipchatProvider(_http.HttpProvider):
    """A room notification or a private message through the v2 API, with a bearer token."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        out.headers["Authorization"] = f"Bearer {out.word('token')}"
        root = out.url("url", DEFAULT_URL)
        kind, target = _target(out.recipient)
        path = f"/v2/{kind}/{quote(target, safe='')}/" + (
            "notification" if kind == "room" else "message"
        )
        # `str(root)` is already encoded; the quoted segment must not be encoded twice.
        url = URL(str(root).rstrip("/") + path, encoded=True)
        out.hide(str(url))
        reply = await out.request("POST", url, json=_render(out))
        sent = out.check(reply, context=f"{kind} {target!r}", default_delay=_reset(reply))
        return base.Sent(refs={kind: target}, detail=sent.detail)


def _target(recipient: str) -> tuple[str, str]:
    """("room", name or id) or ("user", id, e-mail or @mention name as the API wants it)."""
    name = recipient[1:].strip()
    if recipient.startswith("#") and name:
        return "room", name
    if recipient.startswith("@") and name:
        # The API takes a numeric id, an e-mail address, or a mention name *with* its "@".
        return "user", name if "@" in name or _USER_ID.fullmatch(name) else f"@{name}"
    raise base.PermanentDeliveryError("hipchat: a recipient must be '#room' or '@user'")


def _reset(reply: _answers.Reply) -> float | None:
    """HipChat's 429 carries `X-Ratelimit-Reset` (epoch seconds) when it has no Retry-After."""
    if reply.status != 429:
        return None
    return _answers.reset_delay(reply.headers, "X-Ratelimit-Reset", datetime.now(UTC))


# bodies (pure)


def colour(message: Message) -> str:
    return COLOURS.get(message.event, "gray")


def body_for(
    kind: str, message: Message, override: base.Title | None = None, notify: bool = False
) -> dict[str, Any]:
    """`POST /v2/room/{room}/notification` (HTML, coloured) or `/v2/user/{user}/message` (plain
    text reads best in a 1:1 chat)."""
    if kind == "room":
        return {
            "message": html(message, override),
            "color": colour(message),
            "message_format": "html",
            "notify": notify,
        }
    return {"message": text(message, override), "message_format": "text", "notify": notify}


def html(message: Message, override: base.Title | None = None) -> str:
    """Title in bold, the summary, a link, and on failure the failing pods and warnings."""
    return _layout.fit(_ITEMS, lambda items: _html(message, override, items), _fits)


def text(message: Message, override: base.Title | None = None) -> str:
    """The same content as lines of plain text."""
    return _layout.fit(_ITEMS, lambda items: _text(message, override, items), _fits)


# Pods and warnings shown, from the most to none.
_ITEMS = range(MAX_DIAGNOSIS_ITEMS, -1, -1)


def _fits(out: str) -> bool:
    return len(out) <= MAX_MESSAGE_CHARS


def _html(message: Message, override: base.Title | None, items: int) -> str:
    title, summary = _title_and_summary(message, override)
    parts = [f"<b>{_h(title)}</b>"]
    if summary:
        parts.append("<br>" + _h(summary).replace("\n", "<br>"))
    if _layout.web_link(message.link, MAX_LINK_CHARS):
        parts.append(f'<br><a href="{_h(message.link)}">{_h(message.ref)}</a>')
    if message.pods:
        pods = [_h(_cut(p.line(MAX_VALUE_CHARS), 3 * MAX_VALUE_CHARS)) for p in message.pods]
        parts.append(
            "<br><b>Failing pods</b>"
            + _list_html(_layout.listed(pods, items, str, "… {} more", message.pods_omitted))
        )
    if message.warnings:
        warnings = [
            _h(_cut(w.line(MAX_VALUE_CHARS), 3 * MAX_VALUE_CHARS)) for w in message.warnings
        ]
        parts.append(
            "<b>Warning events</b>" + _list_html(_layout.listed(warnings, items, str, "… {} more"))
        )
    return "".join(parts)


def _text(message: Message, override: base.Title | None, items: int) -> str:
    title, summary = _title_and_summary(message, override)
    lines = [title]
    if summary:
        lines.append(summary)
    if message.link and len(message.link) <= MAX_LINK_CHARS:
        lines.append(message.link)
    if message.pods:
        pods = [_cut(p.line(MAX_VALUE_CHARS), 3 * MAX_VALUE_CHARS) for p in message.pods]
        lines += [
            "Failing pods:",
            *(
                f"- {pod}"
                for pod in _layout.listed(pods, items, str, "… {} more", message.pods_omitted)
            ),
        ]
    if message.warnings:
        warnings = [_cut(w.line(MAX_VALUE_CHARS), 3 * MAX_VALUE_CHARS) for w in message.warnings]
        lines += [
            "Warning events:",
            *(f"- {w}" for w in _layout.listed(warnings, items, str, "… {} more")),
        ]
    return "\n".join(lines)


def _title_and_summary(message: Message, override: base.Title | None) -> tuple[str, str]:
    title, summary = base.headline(message, override)
    return _cut(title), _cut(summary, MAX_SUMMARY_CHARS)


def _list_html(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _h(value: str) -> str:
    return escape(value, quote=True)


def _cut(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    return clip(value, limit)


def _render(draft: base.Draft) -> dict[str, Any]:
    kind = "room" if draft.recipient.startswith("#") else "user"
    notify = bool(draft.options.get("notify", False))
    return body_for(kind, draft.message, draft.override, notify)


def _preview(preview: base.Preview) -> list[str]:
    if preview.recipient.startswith("#"):
        what = "a room notification (POST /v2/room/…/notification)"
    else:
        what = "a private message (POST /v2/user/…/message)"
    return [f"to {preview.recipient}: {what}", _http.indented(_render(preview))]


PROVIDER = base.ProviderType(HipchatProvider, _render, _preview)
