"""Telegram: the Bot API's `sendMessage` to each chat (HTML parse mode, every value escaped); the
outcome edits the start message in place (`editMessageText`), its id kept in the ledger.

The token travels in the URL path (`/bot<token>/<method>`), so every error is masked.
"""

from __future__ import annotations

import re
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _http
from deploybell.notify.providers._telegram_html import render
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    Preview,
    ProviderType,
    Sent,
    Title,
)

DEFAULT_API_URL = "https://api.telegram.org"
_TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
# editMessageText answers: the message is already the outcome (a retry after a lost answer)...
_UNCHANGED = "message is not modified"
# ...or it cannot be edited any more: send the outcome as a new message.
_NOT_EDITABLE = ("message to edit not found", "message can't be edited", "message_id_invalid")

RULES = ProviderRules(
    type="telegram",
    title="Telegram",
    doc="An HTML message from a bot to each chat; the outcome edits the start message in place.",
    recipients=Recipients(
        syntax="a chat id like '-1001234567890' or '42', or '@channelname'",
        pattern=r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}",
        valid=("-1001234567890", "42", "@deploys_channel"),
        invalid=("#deploys", "@abc", "12a", "@1channel", "- 42"),
        doc="a chat id (groups and channels are negative) or a public channel's @username; the "
        "bot must be a member (an administrator of channels)",
    ),
    options=(
        Field(
            "silent",
            "boolean",
            "Send without a notification sound (`disable_notification`).",
            default=False,
        ),
    ),
    secret_keys=(
        SecretKey("token", "The bot token from @BotFather (`123456:ABC-DEF…`)."),
        SecretKey("apiUrl", "Another Bot API server (a local one).", sensitive=False),
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
)


class TelegramProvider(_http.HttpProvider):
    """Sends through the shared HTTP session; the token is masked in every error."""

    kind = "telegram"

    async def send(
        self, message: Message, destination: Destination, override: Title | None = None
    ) -> Sent:
        secret = destination.secret
        token = secret.get("token", "").strip()
        if not _TOKEN.fullmatch(token):
            raise PermanentDeliveryError(
                "telegram: Secret key 'token' must be a bot token like 123456:ABC-DEF…"
            )
        base = _http.http_url(secret.get("apiUrl", "") or DEFAULT_API_URL, "telegram: apiUrl")
        bot = _Bot(self._http, base, token, _http.secrets_of(secret))
        text = render(message, override)
        silent = bool(destination.options.get("silent", False))
        chat, message_id = destination.previous.get("chat"), destination.previous.get("message")
        if message.event != "start" and chat and message_id:
            edited = await bot.edit(str(chat), str(message_id), text)
            if edited is not None:
                return Sent(refs={"chat": str(chat), "message": str(message_id)}, detail=edited)
        result = await bot.call("sendMessage", _body(destination.recipient, text, silent))
        refs = {"chat": str(result["chat"]["id"]), "message": str(result["message_id"])}
        return Sent(refs=refs, detail=f"sent message {refs['message']} to chat {refs['chat']}")


class _Bot:
    """Bot API calls for one token."""

    def __init__(self, http: _http.HttpSession, base: URL, token: str, secrets: list[str]):
        self.http, self.base, self.token, self.secrets = http, base, token, secrets

    async def edit(self, chat: str, message_id: str, text: str) -> str | None:
        """The edit's detail, or None when the start message cannot be edited."""
        body = {**_body(chat, text), "message_id": int(message_id)}
        body.pop("disable_notification", None)
        reply = await self._request("editMessageText", body)
        said = str((reply.json() or {}).get("description", "")).lower()
        if reply.status == 400 and _UNCHANGED in said:
            return f"message {message_id} already shows the outcome"
        if reply.status == 400 and any(reason in said for reason in _NOT_EDITABLE):
            return None
        self._check(reply, "editMessageText", chat)
        return f"edited message {message_id} in chat {chat}"

    async def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await self._request(method, body)
        self._check(reply, method, str(body.get("chat_id", "")))
        answer = reply.json()
        result = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(result, dict) or not isinstance(result.get("chat"), dict):
            raise PermanentDeliveryError(f"telegram: {method}: the answer has no message")
        return result

    async def _request(self, method: str, body: dict[str, Any]) -> _http.Reply:
        url = URL(f"{str(self.base).rstrip('/')}/bot{self.token}/{method}", encoded=True)
        return await self.http.post(url, self.secrets, json=body)

    def _check(self, reply: _http.Reply, method: str, chat: str) -> None:
        _http.outcome(
            reply,
            "telegram",
            self.secrets,
            context=f"{method} to chat {chat}",
            explain=_explain(reply),
        )


def _body(chat: str, text: str, silent: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "chat_id": int(chat) if chat.lstrip("-").isdigit() else chat,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }
    if silent:
        body["disable_notification"] = True
    return body


def _explain(reply: _http.Reply) -> str:
    """Telegram's `description`, and where a group went when it became a supergroup."""
    answer = reply.json()
    if not isinstance(answer, dict):
        return ""
    said = _http.vendor_message(answer)
    parameters = answer.get("parameters")
    moved = parameters.get("migrate_to_chat_id") if isinstance(parameters, dict) else None
    if isinstance(moved, int):
        said += f" (the chat is now {moved}: use that id as the recipient)"
    return said


def _render(preview: Preview) -> dict[str, Any]:
    silent = bool(preview.options.get("silent", False))
    return _body(preview.recipient or "0", render(preview.message, preview.override), silent)


def _preview(preview: Preview) -> list[str]:
    out = [
        f"to {preview.recipient}: POST /bot<token>/sendMessage",
        _http.indented(_render(preview)),
    ]
    if preview.message.event != "start":
        out.append(
            "after this run's start message: that message is edited to this text instead "
            "(editMessageText with its message_id)"
        )
    return out


PROVIDER = ProviderType(
    rules=RULES,
    sender=TelegramProvider,
    render=_render,
    preview=_preview,
    preview_once=False,
    setup="Create a bot with @BotFather and add it to each group (or as an administrator to "
    "each channel) it posts to; a group's chat id is shown by the Bot API's `getUpdates`.",
)
