"""Telegram: the Bot API's `sendMessage` to each chat (HTML parse mode, every value escaped); the
outcome edits the start message in place (`editMessageText`), its id kept in the ledger.

The token travels in the URL path (`/bot<token>/<method>`), so every error is masked.
"""

from __future__ import annotations

import re
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.providers import _answers, _http, base
from deploybell.notify.providers._telegram_html import render

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
    setup="Create a bot with @BotFather and add it to each group (or as an administrator to "
    "each channel) it posts to; a group's chat id is shown by the Bot API's `getUpdates`.",
)


class TelegramProvider(_http.HttpProvider):
    """Sends through the shared HTTP session; the token is masked in every error."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        token = out.destination.secret.get("token", "").strip()
        if not _TOKEN.fullmatch(token):
            raise base.PermanentDeliveryError(
                "telegram: Secret key 'token' must be a bot token like 123456:ABC-DEF…"
            )
        bot = _Bot(out, out.url("apiUrl", DEFAULT_API_URL), token)
        text = render(out.message, out.override)
        chat, message_id = out.previous.get("chat"), out.previous.get("message")
        if out.message.event != "start" and chat and message_id:
            edited = await bot.edit(str(chat), str(message_id), text)
            if edited is not None:
                return base.Sent(
                    refs={"chat": str(chat), "message": str(message_id)}, detail=edited
                )
        result = await bot.call("sendMessage", _render(out))
        refs = {"chat": str(result["chat"]["id"]), "message": str(result["message_id"])}
        return base.Sent(refs=refs, detail=f"sent message {refs['message']} to chat {refs['chat']}")


class _Bot:
    """Bot API calls for one token."""

    def __init__(self, out: _http.Outgoing, root: URL, token: str):
        self.out, self.root, self.token = out, root, token

    async def edit(self, chat: str, message_id: str, text: str) -> str | None:
        """The edit's detail, or None when the start message cannot be edited."""
        body = {**_body(chat, text), "message_id": int(message_id)}
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
            raise base.PermanentDeliveryError(f"telegram: {method}: the answer has no message")
        return result

    async def _request(self, method: str, body: dict[str, Any]) -> _answers.Reply:
        url = URL(f"{str(self.root).rstrip('/')}/bot{self.token}/{method}", encoded=True)
        return await self.out.request("POST", url, json=body)

    def _check(self, reply: _answers.Reply, method: str, chat: str) -> None:
        self.out.check(reply, context=f"{method} to chat {chat}", explain=_explain(reply))


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


def _explain(reply: _answers.Reply) -> str:
    """Telegram's `description`, and where a group went when it became a supergroup."""
    answer = reply.json()
    if not isinstance(answer, dict):
        return ""
    said = _answers.vendor_message(answer)
    parameters = answer.get("parameters")
    moved = parameters.get("migrate_to_chat_id") if isinstance(parameters, dict) else None
    if isinstance(moved, int):
        said += f" (the chat is now {moved}: use that id as the recipient)"
    return said


def _render(draft: base.Draft) -> dict[str, Any]:
    silent = bool(draft.options.get("silent", False))
    return _body(draft.recipient or "0", render(draft.message, draft.override), silent)


def _preview(preview: base.Preview) -> list[str]:
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


PROVIDER = base.ProviderType(TelegramProvider, _render, _preview)
