"""A local Telegram Bot API: `sendMessage` and `editMessageText` at `/bot<token>/<method>`.

What it enforces, as the Bot API documents it:
- the token is part of the path; a wrong one answers 401 `Unauthorized` (a malformed one 404);
- `chat_id` must be a chat the bot is in (an id, or a channel's `@username`), else 400 `chat not
  found`; a chat the bot was removed from answers 403;
- `parse_mode: HTML` accepts only Telegram's tags (b, strong, i, em, u, ins, s, strike, del,
  span class="tg-spoiler", tg-spoiler, a href, tg-emoji, code, pre, blockquote), properly nested,
  and only the entities &lt; &gt; &amp; &quot; and numeric ones, else 400 `can't parse entities`;
- the text after entity parsing is 1-4096 characters (UTF-16 code units), else 400;
- editing a message that does not exist answers 400 `message to edit not found`, and the same
  text again 400 `message is not modified`;
- rate limits: 429 with `{"ok": false, "error_code": 429, "description": "Too Many Requests:
  retry after N", "parameters": {"retry_after": N}}`.
Answers are `{"ok": true, "result": <Message>}` with the chat and a `message_id` per chat.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpPeer

TOKEN = "123456789:AAH-deploybell_test_token_0123456789"
TEXT_LIMIT = 4096
GROUP = -1001234567890
USER = 42
CHANNEL = "@deploybell_ops"
CHANNEL_ID = -1009876543210
_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
}
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


@dataclass(frozen=True)
class TelegramRequest:
    method: str
    json: Any
    status: int


@dataclass
class TelegramMessage:
    chat_id: int
    message_id: int
    html: str
    text: str  # as a reader sees it
    date: int
    edits: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        chat = {"id": self.chat_id, "type": "private" if self.chat_id > 0 else "supergroup"}
        out: dict[str, Any] = {
            "message_id": self.message_id,
            "chat": chat,
            "date": self.date,
            "text": self.text,
        }
        if self.edits:
            out["edit_date"] = int(time.time())
        return out


class _Entities(HTMLParser):
    """Telegram's HTML parse mode: the visible text, or why it cannot be parsed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.text: list[str] = []
        self.open: list[str] = []
        self.problem = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            self.problem = self.problem or f'unsupported start tag "{tag}"'
        if tag == "a" and not dict(attrs).get("href"):
            self.problem = self.problem or "a link needs href"
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problem = self.problem or f'unmatched end tag "{tag}"'
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if any(c in data for c in "<>&"):
            self.problem = self.problem or "unescaped <, > or &"
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in _ENTITIES:
            self.problem = self.problem or f'unsupported entity "&{name};"'
        self.text.append(_ENTITIES.get(name, ""))

    def handle_charref(self, name: str) -> None:
        number = int(name[1:], 16) if name[:1] in "xX" else int(name)
        self.text.append(chr(number))


def parse_html(html: str) -> tuple[str, str]:
    """(visible text, problem) of an HTML-mode text."""
    parser = _Entities()
    parser.feed(html)
    parser.close()
    if parser.open and not parser.problem:
        parser.problem = f'tag "{parser.open[-1]}" is not closed'
    return "".join(parser.text), parser.problem


def text_problems(body: Any) -> list[str]:
    """The Bot API's checks of a sendMessage/editMessageText body, as a pure function."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    html = body.get("text")
    if not isinstance(html, str):
        return ["text is missing"]
    if body.get("parse_mode") != "HTML":
        return [f"parse_mode is {body.get('parse_mode')!r}, expected HTML"]
    text, problem = parse_html(html)
    if problem:
        return [f"Bad Request: can't parse entities: {problem}"]
    size = len(text.encode("utf-16-le")) // 2
    if not text.strip():
        return ["Bad Request: message text is empty"]
    if size > TEXT_LIMIT:
        return [f"Bad Request: message is too long ({size} > {TEXT_LIMIT})"]
    return []


class TelegramPeer(HttpPeer[TelegramRequest]):
    """A bot in a supergroup, a private chat with user 42 and the channel @deploybell_ops."""

    rate_limits = True
    limits_size = True

    def __init__(self, token: str = TOKEN, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.token = token
        self.chats = {GROUP, USER, CHANNEL_ID}
        self.usernames = {CHANNEL: CHANNEL_ID}
        self.messages: dict[tuple[int, int], TelegramMessage] = {}
        self._ids = {chat: itertools.count(1) for chat in self.chats}
        self._lock = threading.Lock()

    # ---- the provider contract

    def secret(self) -> dict[str, str]:
        return {"token": self.token, "apiUrl": self.base_url}

    def recipients(self) -> tuple[str, ...]:
        return (str(GROUP),)

    def options(self) -> dict[str, Any]:
        return {}

    def visible(self) -> list[str]:
        with self._lock:
            shown = sorted(self.messages.values(), key=lambda m: (m.date, m.message_id))
        return [m.text for m in shown]

    def problems(self, rendered: Any) -> list[str]:
        return text_problems(rendered)

    def rate_limit_next(self, seconds: int) -> None:
        body = {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {seconds}",
            "parameters": {"retry_after": seconds},
        }
        self.respond_next(
            1, 429, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )

    def delete(self, chat: int, message_id: int) -> None:
        with self._lock:
            del self.messages[(chat, message_id)]

    # ---- the Bot API

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{bot}/{method}", self._api)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            body = json.loads(await request.text())
        except ValueError:
            body = None
        scripted = self._scripted()
        if scripted is not None:
            self._record(TelegramRequest(method, body, scripted.status))
            return scripted.text_response()
        status, answer = self._answer(request.match_info["bot"], method, body)
        self._record(TelegramRequest(method, body, status))
        if status != 200:
            answer = {"ok": False, "error_code": status, "description": answer}
            return web.json_response(answer, status=status)
        return web.json_response({"ok": True, "result": answer})

    def _answer(self, bot: str, method: str, body: Any) -> tuple[int, Any]:
        if not bot.startswith("bot") or ":" not in bot:
            return 404, "Not Found"
        if bot != f"bot{self.token}":
            return 401, "Unauthorized"
        if method not in ("sendMessage", "editMessageText"):
            return 404, "Not Found: method not found"
        if not isinstance(body, dict):
            return 400, "Bad Request: message text is empty"
        chat = self._chat(body.get("chat_id"))
        if chat is None:
            return 400, "Bad Request: chat not found"
        problems = text_problems(body)
        if problems:
            return 400, problems[0]
        text, _ = parse_html(body["text"])
        if method == "sendMessage":
            return 200, self._send(chat, body["text"], text).as_json()
        return self._edit(chat, body.get("message_id"), body["text"], text)

    def _chat(self, chat_id: Any) -> int | None:
        if isinstance(chat_id, str):
            chat_id = self.usernames.get(chat_id, chat_id)
            if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
                chat_id = int(chat_id)
        return chat_id if isinstance(chat_id, int) and chat_id in self.chats else None

    def _send(self, chat: int, html: str, text: str) -> TelegramMessage:
        with self._lock:
            message = TelegramMessage(chat, next(self._ids[chat]), html, text, int(time.time()))
            self.messages[(chat, message.message_id)] = message
        return message

    def _edit(self, chat: int, message_id: Any, html: str, text: str) -> tuple[int, Any]:
        with self._lock:
            message = self.messages.get((chat, message_id)) if isinstance(message_id, int) else None
            if message is None:
                return 400, "Bad Request: message to edit not found"
            if message.html == html:
                return 400, (
                    "Bad Request: message is not modified: specified new message content "
                    "and reply markup are exactly the same as a current content and "
                    "reply markup of the message"
                )
            message.edits.append(message.html)
            message.html, message.text = html, text
            return 200, message.as_json()
