"""A local Google Chat: a space's incoming webhook, on 127.0.0.1. Point a Secret's `webhookUrl`
at `peer.url` (it carries `key` and `token` like the real one).

What it enforces and answers, as Chat's webhook endpoint does (limits from Google's docs):
- `POST /v1/spaces/{space}/messages?key=…&token=…`; a wrong `key` → 400 `INVALID_ARGUMENT`
  ("API key not valid"), a wrong `token` → 401 `UNAUTHENTICATED`, an unknown space → 404
  `NOT_FOUND`, all in Google's error shape `{"error": {"code", "message", "status"}}`;
- the body is JSON (`Content-Type: application/json`); unknown message fields, an empty message,
  `text` over 4,096 characters, a message over 32,000 bytes, a thread key over 4,000 characters
  or an unknown `messageReplyOption` → 400 `INVALID_ARGUMENT`. A card must have sections of
  widgets, each widget exactly one known kind; widgets past the 100th of a card are dropped
  (documented: ignored), and `problems()` reports them;
- threads: with `messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD` (or `…_OR_FAIL`) and
  `thread.threadKey`, the message joins the thread this webhook keyed so, or starts it; without
  the option, every message starts a new thread and the key is ignored;
- a sent message is answered 200 with the Message resource (`name`
  `spaces/…/messages/…`, `thread.name`, `space`, `sender`, `createTime`, …);
- rate limits: 429 `RESOURCE_EXHAUSTED`, with the Google error model's `RetryInfo` detail
  (`retryDelay`, e.g. "7s") saying when to retry.
"""

from __future__ import annotations

import html
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpPeer, json_answer, json_or_none
from tests.support.peers.contract import PeerContract, texts

SPACE = "AAAAdeploys"
KEY = "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"
TOKEN = "qNcn3MKXDS0vFd3h1vM7Ac-Kw8cCcnn2x1Lf0LV8lLI"
MAX_TEXT = 4096
MAX_MESSAGE_BYTES = 32_000
MAX_WIDGETS = 100
MAX_THREAD_KEY = 4000
REPLY_OPTIONS = frozenset(
    {
        "MESSAGE_REPLY_OPTION_UNSPECIFIED",
        "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD",
        "REPLY_MESSAGE_OR_FAIL",
    }
)
MESSAGE_FIELDS = frozenset(
    {"text", "cardsV2", "thread", "accessoryWidgets", "privateMessageViewer", "fallbackText"}
)
WIDGETS = frozenset(
    {
        "textParagraph",
        "image",
        "decoratedText",
        "buttonList",
        "textInput",
        "selectionInput",
        "dateTimePicker",
        "divider",
        "grid",
        "columns",
        "chipList",
    }
)
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND"}


@dataclass(frozen=True)
class ChatRequest:
    """One webhook request as received."""

    query: dict[str, str]
    content_type: str
    json: Any
    status: int
    answer: Any


class GooglechatPeer(HttpPeer[ChatRequest]):
    """One space with its webhook; keeps its messages and threads."""

    def __init__(
        self,
        space: str = SPACE,
        key: str = KEY,
        token: str = TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.space = space
        self.key = key
        self.token = token
        self._messages: list[dict[str, Any]] = []
        self._threads: dict[str, str] = {}  # thread key → thread name
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/spaces/{self.space}/messages?key={self.key}&token={self.token}"

    def messages(self) -> list[dict[str, Any]]:
        """The space's messages, oldest first."""
        with self._changed:
            return [dict(m) for m in self._messages]

    def thread(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.messages() if m["thread"]["name"] == name]

    def rate_limit(self, seconds: int) -> None:
        error = {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"}
            ],
        }
        self.respond_next(1, 429, body=json.dumps({"error": error}))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_post("/v1/spaces/{space}/messages", self._create)
        return app

    async def _create(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json_or_none(raw)
        status, answer = self._answer(request, raw, body)
        self._record(
            ChatRequest(
                query=dict(request.query),
                content_type=request.headers.get("Content-Type", ""),
                json=body,
                status=status,
                answer=answer,
            )
        )
        return json_answer(status, answer)

    def _answer(self, request: web.Request, raw: bytes, body: Any) -> tuple[int, Any]:
        scripted = self._scripted()
        if scripted is not None:
            return scripted.status, scripted.body or "{}"
        if request.query.get("key") != self.key:
            return _error(400, "API key not valid. Please pass a valid API key.")
        if request.query.get("token") != self.token:
            return _error(401, "Request had invalid authentication credentials.")
        if request.match_info["space"] != self.space:
            return _error(404, "Requested entity was not found.")
        if request.content_type != "application/json" or not isinstance(body, dict):
            return _error(400, "Invalid JSON payload received.")
        option = request.query.get("messageReplyOption", "MESSAGE_REPLY_OPTION_UNSPECIFIED")
        found = request_problems(body, option, len(raw))
        if found:
            return _error(400, found[0])
        return 200, self._post(body, option)

    def _post(self, body: dict[str, Any], option: str) -> dict[str, Any]:
        with self._changed:
            number = next(self._ids)
            key = (body.get("thread") or {}).get("threadKey")
            name = f"spaces/{self.space}/threads/t{number:06d}"
            if key and option != "MESSAGE_REPLY_OPTION_UNSPECIFIED":
                name = self._threads.setdefault(key, name)
            message = {
                "name": f"spaces/{self.space}/messages/m{number:06d}.m{number:06d}",
                "sender": {
                    "name": "users/114022495153014004089",
                    "displayName": "deploys",
                    "type": "BOT",
                },
                "createTime": datetime.now(UTC).isoformat(),
                "text": body.get("text", ""),
                "cardsV2": [_shown_card(c) for c in body.get("cardsV2") or []],
                "thread": {"name": name, **({"threadKey": key} if key else {})},
                "space": {"name": f"spaces/{self.space}", "type": "ROOM", "spaceType": "SPACE"},
                "argumentText": body.get("text", ""),
            }
            self._messages.append(message)
            return message


def _error(code: int, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"error": {"code": code, "message": message, "status": _STATUS[code]}}


def _shown_card(item: dict[str, Any]) -> dict[str, Any]:
    """The card as Chat shows it: widgets past the 100th dropped."""
    card = json.loads(json.dumps(item.get("card") or {}))
    left = MAX_WIDGETS
    for section in card.get("sections") or []:
        widgets = section.get("widgets") or []
        section["widgets"] = widgets[: max(left, 0)]
        left -= len(widgets)
    return {**item, "card": card}


def request_problems(body: dict[str, Any], option: str, size: int) -> list[str]:
    """Why Chat refuses this request (its first problem is the error message)."""
    out = [f'Invalid JSON payload received. Unknown name "{k}": Cannot find field.'
           for k in body if k not in MESSAGE_FIELDS]  # fmt: skip
    if option not in REPLY_OPTIONS:
        out.append(f"Invalid value at 'message_reply_option' ({option})")
    if size > MAX_MESSAGE_BYTES:
        out.append(
            f"Message of {size} bytes exceeds the maximum size of {MAX_MESSAGE_BYTES} bytes."
        )
    return out + message_problems(body)


def message_problems(body: Any) -> list[str]:
    """What Chat refuses in a message body, size of the whole request aside."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    out = []
    text = body.get("text")
    cards = body.get("cardsV2")
    if not text and not cards:
        out.append("Message cannot be empty. Discarding empty message.")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        out.append(f"text must be at most {MAX_TEXT} characters")
    key = (body.get("thread") or {}).get("threadKey")
    if key is not None and (not isinstance(key, str) or len(key) > MAX_THREAD_KEY):
        out.append(f"thread.threadKey must be at most {MAX_THREAD_KEY} characters")
    if cards is not None:
        if not isinstance(cards, list):
            return [*out, "cardsV2 must be a list"]
        if len(cards) > 1 and not all(isinstance(c, dict) and c.get("cardId") for c in cards):
            out.append("cardId is required when a message has several cards")
        for i, item in enumerate(cards):
            out += [f"cardsV2[{i}]: {p}" for p in card_problems((item or {}).get("card"))]
    return out


def card_problems(card: Any) -> list[str]:
    if not isinstance(card, dict):
        return ["card is missing"]
    sections = card.get("sections")
    if not isinstance(sections, list) or not sections:
        return ["a card needs at least one section"]
    out = []
    count = 0
    for i, section in enumerate(sections):
        widgets = (section or {}).get("widgets") if isinstance(section, dict) else None
        if not isinstance(widgets, list) or not widgets:
            out.append(f"sections[{i}] has no widgets")
            continue
        count += len(widgets)
        for widget in widgets:
            kinds = list(widget) if isinstance(widget, dict) else []
            if len(kinds) != 1 or kinds[0] not in WIDGETS:
                out.append(f"sections[{i}]: a widget must be exactly one known kind, got {kinds}")
    if count > MAX_WIDGETS:
        out.append(f"{count} widgets: past {MAX_WIDGETS} they are not shown")
    header = card.get("header")
    if header is not None and not isinstance((header or {}).get("title"), str):
        out.append("header.title is required")
    return out


class GooglechatContract(PeerContract[GooglechatPeer]):
    """The provider contract (tests/support/peers/contract.py) against a GooglechatPeer."""

    def __init__(self) -> None:
        super().__init__(GooglechatPeer())

    def secret(self) -> dict[str, str]:
        return {"webhookUrl": self.peer.url}

    def visible(self) -> list[str]:
        return [html.unescape(texts([m["text"], m["cardsV2"]])) for m in self.peer.messages()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        size = len(json.dumps(rendered).encode("utf-8"))
        too_big = (
            [f"{size} bytes (at most {MAX_MESSAGE_BYTES})"] if size > MAX_MESSAGE_BYTES else []
        )
        return too_big + message_problems(rendered)
