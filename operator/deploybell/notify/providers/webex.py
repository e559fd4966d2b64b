"""Webex: the Messages API with a bot's access token. A Markdown message to each room (by id) or
person (by e-mail, a 1:1 space); the outcome edits the start message in place
(`PUT /v1/messages/{id}`) and is replied in its thread (`parentId`).

Limits: `markdown` holds at most 7439 bytes; a 429 says in `Retry-After` how long to wait.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.providers import _answers, _chat_text, _http, base

DEFAULT_API_URL = "https://webexapis.com"
MARKDOWN_BYTES = 7439
# An edit that cannot be made: the message is gone (404), or no longer editable (400, e.g. the
# start message of a run in a room the bot has since left and rejoined).
_EDIT_IMPOSSIBLE = frozenset({400, 404})

RULES = ProviderRules(
    type="webex",
    title="Webex",
    doc="A Markdown message from a bot; the start message is edited in place with the outcome, "
    "which is also replied in its thread.",
    recipients=Recipients(
        syntax="a room id (`Y2lzY29zcGFyazovL…`) or a person's e-mail address",
        pattern=r"[A-Za-z0-9_=+/-]{20,200}|[^@\s]{1,64}@[^@\s]{1,255}",
        valid=("Y2lzY29zcGFyazovL3VzL1JPT00vYmJjZWIxYWQ", "ops@example.com"),
        invalid=("#deploys", "short", "two words@example.com", "a@b@c"),
        doc="a space by its room id (the bot must be a member) or a person by e-mail (a 1:1 "
        "space with the bot)",
    ),
    options=(
        Field(
            "threads",
            "boolean",
            "Edit a run's start message in place with the outcome and reply in its thread. "
            "Defaults to true.",
            default=True,
        ),
    ),
    secret_keys=(
        SecretKey("token", "The bot's access token (Bearer)."),
        SecretKey("apiUrl", "Another Messages API base URL.", sensitive=False),
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
    threads=True,
    setup="Create a bot (developer portal → My Webex Apps → Create a Bot) and put its access "
    "token in `token`; add the bot to each space it posts to. A room id is shown by "
    "`GET /v1/rooms` with the bot's token.",
)


def render_markdown(draft: base.Draft) -> str:
    return _chat_text.fitted(
        draft.message,
        draft.override,
        _chat_text.markdown,
        lambda text: _chat_text.utf8(text) <= MARKDOWN_BYTES,
    )


def reply_markdown(draft: base.Draft) -> str:
    return _chat_text.markdown(_chat_text.reply_lines(draft.message, draft.override))


def _target(recipient: str) -> dict[str, str]:
    return {"toPersonEmail": recipient} if "@" in recipient else {"roomId": recipient}


class WebexProvider(_http.HttpProvider):
    """Posts through the shared HTTP session; the token is masked in every error."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        out.headers["Authorization"] = f"Bearer {out.word('token')}"
        api = _Api(out, out.url("apiUrl", DEFAULT_API_URL))
        room, start = str(out.previous.get("room", "")), str(out.previous.get("message", ""))
        threads = bool(out.options.get("threads", True))
        outcome = out.message.event != "start" and threads and room and start
        if outcome and await api.edit(start, room, render_markdown(out)):
            reply = await api.create({"roomId": room, "parentId": start}, reply_markdown(out))
            refs = {"room": room, "message": start, "reply": reply["id"]}
            return base.Sent(refs=refs, detail=f"edited {start} and replied in its thread")
        created = await api.create(_target(out.recipient), render_markdown(out))
        refs = {"room": str(created.get("roomId", "")), "message": created["id"]}
        return base.Sent(refs=refs, detail=f"created message {created['id']}")


class _Api:
    def __init__(self, out: _http.Outgoing, root: URL):
        self.out, self.root = out, root

    async def create(self, target: dict[str, str], markdown: str) -> dict[str, Any]:
        reply = await self._request("POST", "v1/messages", {**target, "markdown": markdown})
        self.out.check(reply, context=", ".join(f"{k} {v}" for k, v in target.items()))
        answer = reply.json()
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
            raise base.PermanentDeliveryError("webex: the answer has no message id")
        return answer

    async def edit(self, message_id: str, room: str, markdown: str) -> bool:
        """Edit the start message; False when it cannot be edited any more."""
        body = {"roomId": room, "markdown": markdown}
        reply = await self._request("PUT", f"v1/messages/{quote(message_id, safe='')}", body)
        if reply.status in _EDIT_IMPOSSIBLE:
            return False
        self.out.check(reply, context=f"message {message_id}")
        return True

    async def _request(self, method: str, path: str, body: dict[str, Any]) -> _answers.Reply:
        url = URL(f"{str(self.root).rstrip('/')}/{path}", encoded=True)
        return await self.out.request(method, url, json=body)


def _render(preview: base.Preview) -> dict[str, Any]:
    return {**_target(preview.recipient or "<room id>"), "markdown": render_markdown(preview)}


def _preview(preview: base.Preview) -> list[str]:
    out = [f"to {preview.recipient}: POST /v1/messages", _http.indented(_render(preview))]
    return out + preview.update_and_reply(
        "message",
        "(PUT /v1/messages/<id>) and this reply is posted in its thread (parentId):",
        reply_markdown(preview),
    )


PROVIDER = base.ProviderType(WebexProvider, _render, _preview)
