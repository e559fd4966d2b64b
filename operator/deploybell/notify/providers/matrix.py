"""Matrix: the Client-Server API with an access token. An `m.room.message` (a notice, plain
`body` and HTML `formatted_body`) to each room, by id or alias; the outcome replaces the start
message (an `m.replace` edit) and is replied in its thread (`m.thread`).

Every event is sent with `PUT /rooms/{roomId}/send/m.room.message/{txnId}`, the transaction id
derived from the message's idempotency key: a message sent again after a crash (before its
delivery was recorded) carries the same transaction id, and the homeserver answers with the
event it already made instead of making a second one.

Limits: an event is at most 65536 bytes as the server stores it; an edit carries its text twice
(the fallback and `m.new_content`), so `body` and `formatted_body` stay within 12000 bytes each.
A 429 (`M_LIMIT_EXCEEDED`) says how long to wait in `Retry-After` and `retry_after_ms`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _answers, _chat_text, _http, base

TEXT_BYTES = 12000
_SERVER = r"[A-Za-z0-9.-]{1,255}(:[0-9]{1,5})?"
# An edit or thread reply the homeserver refuses for its target (gone, or not ours): send anew.
_RELATION_REFUSED = frozenset({400, 403, 404})

RULES = ProviderRules(
    type="matrix",
    title="Matrix",
    doc="A notice (text and HTML) in each room; the outcome replaces the start message (an "
    "edit) and is replied in its thread. Idempotent: a re-send after a crash is dropped by the "
    "homeserver.",
    recipients=Recipients(
        syntax="a room id like '!abc123:example.org' or an alias like '#deploys:example.org'",
        pattern=rf"![A-Za-z0-9._=/+-]{{1,255}}(:{_SERVER})?|#[^:\s#]{{1,255}}:{_SERVER}",
        valid=("!AbCdEfGh123:example.org", "#deploys:example.org", "#ops:matrix.local:8448"),
        invalid=("deploys", "#deploys", "@alice:example.org", "!", "#two words:example.org"),
        doc="a room by id, or by an alias the homeserver resolves; the account must be joined",
    ),
    options=(
        Field(
            "threads",
            "boolean",
            "Replace a run's start message with the outcome (an edit) and reply in its thread. "
            "Defaults to true.",
            default=True,
        ),
        Field(
            "msgtype",
            "string",
            "`m.notice` (how bots speak: clients do not notify for it, other bots do not answer) "
            "or `m.text`.",
            default="m.notice",
            enum=("m.notice", "m.text"),
        ),
    ),
    secret_keys=(
        SecretKey("token", "The account's access token."),
        SecretKey(
            "url", "The homeserver's base URL (`https://matrix.example.org`).", sensitive=False
        ),
    ),
    secret_needs=(frozenset({"token", "url"}),),
    edits_in_place=True,
    threads=True,
    setup="Create an account for the bot on the homeserver, log it in once to get an access "
    "token (`POST /_matrix/client/v3/login`, or the client's *Help & About → Access token*), "
    "and join it to each room (invite it, then accept as the bot). No admin rights are needed.",
)


def content(message: Message, override: base.Title | None, msgtype: str) -> dict[str, Any]:
    """The event content: a plain `body` and its HTML, no mentions (`m.mentions` empty)."""
    shown = _chat_text.fitted_lines(message, override, _fits)
    return _content(shown, msgtype)


def reply_content(message: Message, override: base.Title | None, msgtype: str) -> dict[str, Any]:
    return _content(_chat_text.reply_lines(message, override), msgtype)


def _content(lines: Sequence[_chat_text.Line], msgtype: str) -> dict[str, Any]:
    return {
        "msgtype": msgtype,
        "body": _chat_text.plain(lines),
        "format": "org.matrix.custom.html",
        "formatted_body": _chat_text.html(lines),
        "m.mentions": {},
    }


def _fits(lines: Sequence[_chat_text.Line]) -> bool:
    """Both texts within TEXT_BYTES as the event's JSON carries them (escapes included)."""
    texts = (_chat_text.plain(lines), _chat_text.html(lines))
    return max(len(json.dumps(t, ensure_ascii=False).encode()) for t in texts) <= TEXT_BYTES


def edit(new: dict[str, Any], start: str) -> dict[str, Any]:
    """An `m.replace` of event `start` with `new` (and a `* …` fallback for old clients)."""
    return {
        "msgtype": new["msgtype"],
        "body": "* " + new["body"],
        "format": new["format"],
        "formatted_body": "* " + new["formatted_body"],
        "m.mentions": {},
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": start},
    }


def in_thread(reply: dict[str, Any], root: str) -> dict[str, Any]:
    return {
        **reply,
        "m.relates_to": {
            "rel_type": "m.thread",
            "event_id": root,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": root},
        },
    }


def transaction_id(message: Message, room: str, part: str) -> str:
    """The same for every send of this message to this room (a new one for a test message
    without an idempotency key)."""
    key = message.idempotency_key or uuid.uuid4().hex
    return "deploybell-" + hashlib.sha256(f"{key}\0{room}\0{part}".encode()).hexdigest()[:32]


class MatrixProvider(_http.HttpProvider):
    """Sends through the shared HTTP session; the token is masked in every error."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        out.headers["Authorization"] = f"Bearer {out.word('token')}"
        client = _Client(out, out.url("url"))
        msgtype = str(out.options.get("msgtype", "m.notice"))
        new = content(out.message, out.override, msgtype)
        room, start = str(out.previous.get("room", "")), str(out.previous.get("event", ""))
        threads = bool(out.options.get("threads", True))
        if out.message.event != "start" and threads and room and start:
            edited = await client.send(room, edit(new, start), "edit")
            if edited:
                reply = reply_content(out.message, out.override, msgtype)
                replied = await client.send(room, in_thread(reply, start), "reply")
                refs = {"room": room, "event": start, "reply": replied or ""}
                return base.Sent(refs=refs, detail=f"replaced {start} and replied in its thread")
        room = await client.room(out.recipient)
        event = await client.send(room, new, "message", relation=False)
        return base.Sent(refs={"room": room, "event": event}, detail=f"sent {event} to {room}")


class _Client:
    def __init__(self, out: _http.Outgoing, root: URL):
        self.out, self.root = out, root

    async def room(self, recipient: str) -> str:
        """The room id of a recipient: itself, or what its alias resolves to."""
        if recipient.startswith("!"):
            return recipient
        reply = await self._request("GET", f"directory/room/{quote(recipient, safe='')}")
        _check(self.out, reply, f"room alias {recipient}")
        answer = reply.json()
        found = answer.get("room_id") if isinstance(answer, dict) else None
        if not isinstance(found, str):
            raise base.PermanentDeliveryError(f"matrix: alias {recipient} resolved to no room")
        return found

    async def send(
        self, room: str, body: dict[str, Any], part: str, *, relation: bool = True
    ) -> str:
        """The event id; "" when a relation (edit, reply) is refused for its target."""
        txn = transaction_id(self.out.message, room, part)
        path = f"rooms/{quote(room, safe='')}/send/m.room.message/{txn}"
        reply = await self._request("PUT", path, body)
        if relation and reply.status in _RELATION_REFUSED:
            return ""
        _check(self.out, reply, f"room {room}")
        answer = reply.json()
        found = answer.get("event_id") if isinstance(answer, dict) else None
        if not isinstance(found, str):
            raise base.PermanentDeliveryError("matrix: the answer has no event_id")
        return found

    async def _request(self, method: str, path: str, body: Any = None) -> _answers.Reply:
        url = URL(f"{str(self.root).rstrip('/')}/_matrix/client/v3/{path}", encoded=True)
        return await self.out.request(method, url, json=body)


def _check(out: _http.Outgoing, reply: _answers.Reply, context: str) -> base.Sent:
    """The shared classification, with Matrix's `errcode` and `retry_after_ms`."""
    answer = reply.json()
    said = ""
    delay = None
    if isinstance(answer, dict):
        said = " ".join(str(answer.get(k, "")) for k in ("errcode", "error")).strip()
        wait = answer.get("retry_after_ms")
        if isinstance(wait, int) and not isinstance(wait, bool) and wait >= 0:
            delay = wait / 1000
    return out.check(reply, context=context, explain=said, default_delay=delay)


def _render(preview: base.Preview) -> dict[str, Any]:
    return content(preview.message, preview.override, str(preview.options.get("msgtype", "")))


def _preview(preview: base.Preview) -> list[str]:
    out = [
        f"to {preview.recipient}: PUT /_matrix/client/v3/rooms/<room id>/send/m.room.message/"
        "<txn id from the idempotency key>",
        _http.indented(_render(preview)),
    ]
    msgtype = str(preview.options.get("msgtype", "m.notice"))
    reply = reply_content(preview.message, preview.override, msgtype)
    return out + preview.update_and_reply(
        "event",
        "(an m.replace edit) and this reply is sent in its thread (m.thread):",
        reply["body"],
    )


PROVIDER = base.ProviderType(MatrixProvider, _render, _preview)
