"""Rocket.Chat: the REST API with a bot user's personal access token (`X-Auth-Token` and
`X-User-Id`), or an incoming webhook. Through the REST API the start message
(`chat.postMessage`) is edited in place with the outcome (`chat.update`) and the outcome is
replied in its thread (`chat.sendMessage` with `tmid`); a webhook posts each event anew.

Limits: a message holds at most `Message_MaxAllowedSize` characters (5000 by default, counted in
UTF-16 units as the server's JavaScript counts them). The API rate limiter answers 429 with
`X-RateLimit-Reset` (epoch milliseconds) and says in its error how many seconds to wait.
"""

from __future__ import annotations

import re
import time
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.providers import _answers, _chat_text, _http, base

MESSAGE_LIMIT = 5000
_NAME = r"[A-Za-z0-9._-]{1,64}"
_WAIT = re.compile(r"wait ([0-9]{1,6}) seconds")

RULES = ProviderRules(
    type="rocketchat",
    title="Rocket.Chat",
    doc="A Markdown message; with a bot user (REST API) the start message is edited in place "
    "with the outcome, which is also replied in its thread.",
    recipients=Recipients(
        syntax="'#channel' or '@user'",
        pattern=rf"#{_NAME}|@{_NAME}",
        required=False,
        required_with=frozenset({"token", "userId", "url"}),
        valid=("#deploys", "#ops.alerts", "@alice"),
        invalid=("deploys", "#", "@", "#two words", "#a/b"),
        doc="a channel or private group by name, or `@user` for a direct message (the REST API "
        "needs one recipient at least); with an incoming webhook an optional override of its "
        "channel",
    ),
    options=(
        Field(
            "threads",
            "boolean",
            "REST API: edit a run's start message in place with the outcome and reply in its "
            "thread. Defaults to true.",
            default=True,
        ),
        Field(
            "alias",
            "string",
            "The name shown as the sender (the bot needs the `message-impersonate` permission).",
            min_length=1,
            max_length=64,
        ),
    ),
    secret_keys=(
        SecretKey("webhookUrl", "An incoming-webhook URL (`https://chat.example/hooks/…`)."),
        SecretKey("token", "The bot user's personal access token (`X-Auth-Token`)."),
        SecretKey("userId", "The bot user's id (`X-User-Id`).", sensitive=False),
        SecretKey("url", "The server's base URL for the REST API.", sensitive=False),
    ),
    secret_needs=(frozenset({"webhookUrl"}), frozenset({"token", "userId", "url"})),
    edits_in_place=True,
    threads=True,
    setup="Either an incoming webhook (Administration → Workspace → Integrations → New → "
    "Incoming), or a bot user (Administration → Users, role `bot`) with a personal access token "
    "(its profile → Personal Access Tokens; keys `token` and `userId`) and the server URL "
    "(`url`): the bot must be a member of each private group it posts to.",
)


def units(text: str) -> int:
    """A text's length as Rocket.Chat counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def render_text(draft: base.Draft) -> str:
    """The start (or outcome) message's Markdown, within the server's default limit."""
    return _chat_text.fitted(
        draft.message,
        draft.override,
        _chat_text.markdown,
        lambda text: units(text) <= MESSAGE_LIMIT,
    )


def reply_text(draft: base.Draft) -> str:
    return _chat_text.markdown(_chat_text.reply_lines(draft.message, draft.override))


class RocketchatProvider(_http.HttpProvider):
    """Posts through the shared HTTP session: REST API or an incoming webhook."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        secret = out.destination.secret
        if all(secret.get(k, "").strip() for k in ("token", "userId", "url")):
            return await _RestCall(out).send()
        body = _webhook_body(out)
        reply = await out.request("POST", out.url("webhookUrl"), json=body)
        sent = _check(out, reply, out.recipient or "the webhook's channel")
        return base.Sent(detail=f"webhook: {sent.detail}")


class _RestCall:
    """One message through the REST API: post, or update the start message and reply."""

    def __init__(self, out: _http.Outgoing):
        out.headers["X-Auth-Token"] = out.word("token")
        out.headers["X-User-Id"] = out.word("userId")
        self.out = out
        self.base = out.url("url")

    async def send(self) -> base.Sent:
        out = self.out
        room, start = str(out.previous.get("room", "")), str(out.previous.get("message", ""))
        threads = bool(out.options.get("threads", True))
        if out.message.event != "start" and threads and room and start:
            if await self._update(room, start):
                answer = await self._call(
                    "chat.sendMessage",
                    {"message": {"rid": room, "msg": reply_text(out), "tmid": start}},
                    f"the thread of message {start}",
                )
                refs = {"room": room, "message": start, "reply": _id(answer)}
                return base.Sent(refs=refs, detail=f"updated {start} and replied in its thread")
        elif not out.recipient:
            raise base.PermanentDeliveryError(
                "rocketchat: the REST API (Secret keys token, userId and url) needs a recipient"
            )
        body: dict[str, Any] = {"channel": out.recipient, "text": render_text(out)}
        if out.options.get("alias"):
            body["alias"] = out.options["alias"]
        answer = await self._call("chat.postMessage", body, out.recipient)
        message = answer.get("message") if isinstance(answer, dict) else None
        rid = message.get("rid") if isinstance(message, dict) else None
        refs = {"room": str(rid or room), "message": _id(answer)}
        return base.Sent(refs=refs, detail=f"posted {refs['message']}")

    async def _update(self, room: str, message_id: str) -> bool:
        """Edit the start message; False when it cannot be (gone, editing off or blocked)."""
        body = {"roomId": room, "msgId": message_id, "text": render_text(self.out)}
        reply = await self._request("chat.update", body)
        if reply.status == 400:
            return False
        _check(self.out, reply, f"message {message_id}")
        return True

    async def _call(self, method: str, body: dict[str, Any], context: str) -> Any:
        reply = await self._request(method, body)
        _check(self.out, reply, context)
        return reply.json()

    async def _request(self, method: str, body: dict[str, Any]) -> _answers.Reply:
        url = URL(str(self.base).rstrip("/") + "/api/v1/" + method, encoded=True)
        return await self.out.request("POST", url, json=body)


def _id(answer: Any) -> str:
    message = answer.get("message") if isinstance(answer, dict) else None
    found = message.get("_id") if isinstance(message, dict) else None
    if not isinstance(found, str):
        raise base.PermanentDeliveryError("rocketchat: the answer has no message _id")
    return found


def _webhook_body(draft: base.Draft) -> dict[str, Any]:
    body: dict[str, Any] = {"text": render_text(draft)}
    if draft.recipient:
        body["channel"] = draft.recipient
    if draft.options.get("alias"):
        body["alias"] = draft.options["alias"]
    return body


def _check(out: _http.Outgoing, reply: _answers.Reply, context: str) -> base.Sent:
    """The shared classification; a 429 waits as long as the rate limiter said."""
    return out.check(reply, context=context, default_delay=rate_limit_wait(reply))


def rate_limit_wait(reply: _answers.Reply, now: float | None = None) -> float | None:
    """Seconds to wait from a 429: `X-RateLimit-Reset` (epoch milliseconds), else the
    "You must wait N seconds" of its error."""
    if reply.status != 429:
        return None
    reset = (_answers.header(reply.headers, "X-RateLimit-Reset") or "").strip()
    if reset.isdigit():
        return max(0.0, int(reset) / 1000 - (time.time() if now is None else now))
    found = _WAIT.search(_answers.vendor_message(reply.json()) or reply.body)
    return float(found.group(1)) if found else None


def _render(preview: base.Preview) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": preview.recipient or "#channel",
        "text": render_text(preview),
    }
    if preview.options.get("alias"):
        body["alias"] = preview.options["alias"]
    return body


def _preview(preview: base.Preview) -> list[str]:
    out = [
        f"to {preview.recipient or '(the webhook channel)'}: POST /api/v1/chat.postMessage",
        _http.indented(_render(preview)),
        "an incoming webhook gets the same `text` (and `channel`, `alias`)",
    ]
    return out + preview.update_and_reply(
        "message",
        "(chat.update) and this reply is sent in its thread (chat.sendMessage with tmid):",
        reply_text(preview),
    )


PROVIDER = base.ProviderType(RocketchatProvider, _render, _preview)
