"""HipChat (cloud, Server or Data Center) through the v2 REST API with a bearer token."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

from yarl import URL

from deploybell.notify.model import Message
from deploybell.notify.providers import _http
from deploybell.notify.providers.base import Destination, PermanentDeliveryError, Sent, Title
from deploybell.notify.render import hipchat as render

DEFAULT_URL = "https://api.hipchat.com"
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: it goes into a header
_USER_ID = re.compile(r"[0-9]+")


class HipchatProvider:
    """`#room` → a room notification (HTML, coloured); `@user` → a private message (text)."""

    def __init__(self) -> None:
        self._http = _http.HttpSession("hipchat")

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
        notify = destination.options.get("notify", False)
        if not isinstance(notify, bool):
            raise PermanentDeliveryError("hipchat: option 'hipchat.notify' must be true or false")

        kind, target = _target(destination.recipient)
        if kind == "room":
            path = f"/v2/room/{quote(target, safe='')}/notification"
            body = render.room_notification(message, override, notify=notify)
        else:
            path = f"/v2/user/{quote(target, safe='')}/message"
            body = render.private_message(message, override, notify=notify)
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

    async def close(self) -> None:
        await self._http.close()


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
