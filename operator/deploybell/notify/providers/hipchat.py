"""HipChat (cloud, Server or Data Center) through the v2 REST API with a bearer token:
`#room` → a coloured HTML room notification, `@user` → a plain-text private message."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sized
from html import escape
from typing import Any
from urllib.parse import quote

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _http
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    Preview,
    ProviderType,
    Sent,
    Title,
    headline,
)

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
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: it goes into a header
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
)


class HipchatProvider(_http.HttpProvider):
    kind = "hipchat"

    async def send(
        self, message: Message, destination: Destination, override: Title | None = None
    ) -> Sent:
        secret = destination.secret
        token = secret.get("token", "").strip()
        if not token:
            raise PermanentDeliveryError("hipchat: Secret key 'token' is required")
        if not _TOKEN.fullmatch(token):
            raise PermanentDeliveryError("hipchat: Secret key 'token' must be one word")
        base = _http.http_url(secret.get("url", "") or DEFAULT_URL, "hipchat: Secret key 'url'")
        notify = bool(destination.options.get("notify", False))
        kind, target = _target(destination.recipient)
        body = body_for(kind, message, override, notify)
        path = f"/v2/{kind}/{quote(target, safe='')}/" + (
            "notification" if kind == "room" else "message"
        )
        # `str(base)` is already encoded; the quoted segment must not be encoded twice.
        url = URL(str(base).rstrip("/") + path, encoded=True)
        secrets = _http.secrets_of(secret, str(url))
        headers = {"Authorization": f"Bearer {token}"}
        reply = await self._http.post(url, secrets, headers=headers, json=body)
        sent = _http.outcome(
            reply,
            "hipchat",
            secrets,
            context=f"{kind} {target!r}",
            explain=_error_message(reply.body),
            default_delay=_rate_limit_reset(reply),
        )
        return Sent(refs={kind: target}, detail=sent.detail)


def _target(recipient: str) -> tuple[str, str]:
    """("room", name or id) or ("user", id, e-mail or @mention name as the API wants it)."""
    name = recipient[1:].strip()
    if recipient.startswith("#") and name:
        return "room", name
    if recipient.startswith("@") and name:
        # The API takes a numeric id, an e-mail address, or a mention name *with* its "@".
        return "user", name if "@" in name or _USER_ID.fullmatch(name) else f"@{name}"
    raise PermanentDeliveryError("hipchat: a recipient must be '#room' or '@user'")


def _error_message(body: str) -> str:
    """HipChat's `{"error": {"message": …}}`, or "" to fall back to a body excerpt."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    said = error.get("message") if isinstance(error, dict) else None
    return _http.excerpt(said) if isinstance(said, str) else ""


def _rate_limit_reset(reply: _http.Reply) -> float | None:
    """HipChat's 429 carries `X-Ratelimit-Reset` (epoch seconds) when it has no Retry-After."""
    if reply.status != 429:
        return None
    raw = _http.header(reply.headers, "X-Ratelimit-Reset") or ""
    if not raw.isdigit():
        return None
    return max(0.0, int(raw) - time.time())


# bodies (pure)


def colour(message: Message) -> str:
    return COLOURS.get(message.event, "gray")


def body_for(
    kind: str, message: Message, override: Title | None = None, notify: bool = False
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
        pods = [_h(_cut(p.line(MAX_VALUE_CHARS), 3 * MAX_VALUE_CHARS)) for p in message.pods]
        parts.append("<br><b>Failing pods</b>" + _list_html(pods[:items] + _more(pods, items)))
    if message.warnings:
        warnings = [
            _h(_cut(w.line(MAX_VALUE_CHARS), 3 * MAX_VALUE_CHARS)) for w in message.warnings
        ]
        parts.append(
            "<b>Warning events</b>" + _list_html(warnings[:items] + _more(warnings, items))
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
        pods = [_cut(p.line(MAX_VALUE_CHARS), 3 * MAX_VALUE_CHARS) for p in message.pods]
        lines += ["Failing pods:", *(f"- {pod}" for pod in pods[:items] + _more(pods, items))]
    if message.warnings:
        warnings = [_cut(w.line(MAX_VALUE_CHARS), 3 * MAX_VALUE_CHARS) for w in message.warnings]
        lines += ["Warning events:", *(f"- {w}" for w in warnings[:items] + _more(warnings, items))]
    return "\n".join(lines)


def _title_and_summary(message: Message, override: Title | None) -> tuple[str, str]:
    title, summary = headline(message, override)
    return _cut(title), _cut(summary, MAX_SUMMARY_CHARS)


def _more(shown_from: Sized, items: int) -> list[str]:
    hidden = len(shown_from) - items
    return [f"… {hidden} more"] if hidden > 0 else []


def _list_html(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _linkable(link: str) -> bool:
    # Only web links become anchors: a `javascript:` href must never be clickable.
    return link.startswith(("https://", "http://")) and len(link) <= MAX_LINK_CHARS


def _h(value: str) -> str:
    return escape(value, quote=True)


def _cut(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    return clip(value, limit)


def _render(preview: Preview) -> dict[str, Any]:
    kind = "room" if preview.recipient.startswith("#") else "user"
    notify = bool(preview.options.get("notify", False))
    return body_for(kind, preview.message, preview.override, notify)


def _preview(preview: Preview) -> list[str]:
    if preview.recipient.startswith("#"):
        what = "a room notification (POST /v2/room/…/notification)"
    else:
        what = "a private message (POST /v2/user/…/message)"
    return [f"to {preview.recipient}: {what}", _http.indented(_render(preview))]


PROVIDER = ProviderType(
    rules=RULES,
    sender=HipchatProvider,
    render=_render,
    preview=_preview,
    setup="A token with the *Send Notification* (rooms) and *Send Message* (users) scopes.",
)
