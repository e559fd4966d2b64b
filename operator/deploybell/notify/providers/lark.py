"""Lark (Feishu) through a group's custom bot: an interactive card (header in the outcome's
colour, the summary, facts, lists, a link button) POSTed to the bot's webhook, on either host
(Lark and Feishu serve the same `/open-apis/bot/v2/hook/<token>` path). With the bot's
signature check on, the body carries `timestamp` and `sign` as the vendor documents.

The bot answers HTTP 200 whatever happened; its JSON `code` says (0 is success). The frequency
limit (5 a second, 100 a minute per bot) is answered with code 11232, or 9499 "too many
request" by older versions; the open platform's gateway answers 429 with
`x-ogw-ratelimit-reset`. Those are retried; other codes name the problem and are permanent.
The sender keeps to the limit itself: one message at a time per bot, a burst spaced to 5 a
second, and past 100 a minute the wait is handed to the outbox as a retry."""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _answers, _http, _layout, base

# The documented limit of a request body, measured as sent (ASCII-escaped JSON), with room.
MAX_BODY_BYTES = 20 * 1024
BUDGET_BYTES = 18 * 1024
MAX_TITLE = 200
LIMITED_CODES = frozenset({11232, 99991400})  # frequency limited (the bot; the gateway)
TOO_MANY = 9499  # older versions: "too many request" (also "Bad Request" for a bad body)
FREQUENCY_WINDOW_SECONDS = 60.0  # without a reset header, the per-minute window
# The bot's documented frequency limit as (messages, seconds) windows, kept by the sender; a
# little margin, since the bot counts arrivals and the sender counts answers.
WINDOWS = ((5, 1.05), (100, 60.5))
MAX_PACING_SECONDS = 2.0  # a longer wait is handed to the outbox as a retry instead
_HOOK_PATH = re.compile(r"/open-apis/bot/v2/hook/([A-Za-z0-9-]+)/?")
TEMPLATES = {"start": "blue", "success": "green", "failure": "red", "cancel": "grey"}

RULES = ProviderRules(
    type="lark",
    title="Lark / Feishu",
    doc="An interactive card coloured by event, posted by a group's custom bot (Lark or "
    "Feishu), signed when the bot checks signatures.",
    recipients=Recipients(required=False, doc="the custom bot's webhook picks the group"),
    secret_keys=(
        SecretKey(
            "webhookUrl",
            "The custom bot's webhook URL (`https://open.larksuite.com/open-apis/bot/v2/hook/"
            "<token>` or `https://open.feishu.cn/…`).",
        ),
        SecretKey("signingSecret", "The bot's signature secret, when *Set signature* is on."),
    ),
    secret_needs=(frozenset({"webhookUrl"}),),
    setup="In the group, *Settings → Bots → Add Bot → Custom Bot*, copy its webhook URL into "
    "the Secret's `webhookUrl`. Under *Security settings*, prefer *Set signature* and copy its "
    "secret into `signingSecret`; with *Custom keywords*, use a word every title has (e.g. "
    "the namespace).",
)


@dataclass
class Pace:
    """One bot's recent sends (when each answer came), so that bursts keep to its limit."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    done: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=max(n for n, _ in WINDOWS))
    )

    async def turn(self) -> None:
        """Wait for the bot's next free slot, or a retryable error when it is far off."""
        delay = wait_for(list(self.done), time.monotonic())
        if delay > MAX_PACING_SECONDS:
            raise base.TemporaryDeliveryError(
                f"lark: the bot's limit of {WINDOWS[-1][0]} messages a minute is reached",
                retry_after=delay,
            )
        if delay > 0:
            await asyncio.sleep(delay)


def wait_for(done: Sequence[float], now: float) -> float:
    """Seconds until one more send keeps every window of `WINDOWS` (0 when it does now);
    `done` are the times of the latest sends, oldest first."""
    ends = [done[-n] + span for n, span in WINDOWS if len(done) >= n]
    return max([0.0, *(end - now for end in ends)])


class LarkProvider(_http.HttpProvider):
    """POSTs the card to the bot's webhook, signed when the Secret has `signingSecret`; one
    message at a time per bot, within its frequency limit."""

    rules = RULES

    def __init__(self) -> None:
        super().__init__()
        self._paces: dict[str, Pace] = {}

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        url = out.url("webhookUrl")
        found = _HOOK_PATH.fullmatch(url.path)
        if found is None:
            raise base.PermanentDeliveryError(
                "lark: Secret key 'webhookUrl' must be a custom bot URL ending in "
                "/open-apis/bot/v2/hook/<token>"
            )
        out.hide(found.group(1))
        body = _render(out)
        pace = self._paces.setdefault(found.group(1), Pace())
        async with pace.lock:
            await pace.turn()
            if secret := out.destination.secret.get("signingSecret", "").strip():
                body = {**signed(secret, int(time.time())), **body}
            try:
                reply = await out.request("POST", url, json=body)
            finally:
                pace.done.append(time.monotonic())
        reset = _answers.seconds(reply.headers, "x-ogw-ratelimit-reset")
        out.check(reply, default_delay=reset)
        return answer(reply, out.secrets)


def signed(secret: str, timestamp: int) -> dict[str, str]:
    """`timestamp` and `sign`: base64 of HMAC-SHA256 keyed by "timestamp\\nsecret" over an
    empty message (the vendor's scheme: the key, not the message, carries both)."""
    key = f"{timestamp}\n{secret}".encode()
    digest = hmac.new(key, b"", hashlib.sha256).digest()
    return {"timestamp": str(timestamp), "sign": base64.b64encode(digest).decode()}


def answer(reply: _answers.Reply, secrets: Sequence[str]) -> base.Sent:
    """The bot's JSON `code` classified: 0 sent, the frequency limits retried, else permanent.
    Newer answers say `code`/`msg`, older ones `StatusCode`/`StatusMessage`."""
    said = reply.json()
    if not isinstance(said, dict):
        return base.Sent(detail=f"HTTP {reply.status}")
    code = said.get("code", said.get("StatusCode", 0))
    text = str(said.get("msg", said.get("StatusMessage", "")))
    if code == 0:
        return base.Sent(detail="sent")
    error = base.mask(f"lark: code {code}: {_answers.excerpt(text)}", secrets)
    limited = code in LIMITED_CODES or (code == TOO_MANY and "too many" in text.lower())
    if limited:
        raise base.TemporaryDeliveryError(error, retry_after=FREQUENCY_WINDOW_SECONDS)
    raise base.PermanentDeliveryError(error)


# the card (pure)


def payload(message: Message, override: base.Title | None = None) -> dict[str, Any]:
    """`msg_type: interactive` with one card, within the 20 KB a request may hold."""
    return _layout.fit(
        _layout.CARD_LEVELS,
        lambda level: {"msg_type": "interactive", "card": card(message, override, level)},
        lambda body: _layout.json_size(body) <= BUDGET_BYTES,
    )


def card(message: Message, override: base.Title | None, level: _layout.Level) -> dict[str, Any]:
    """Plain-text elements only: nothing in a value is read as Markdown or an @mention."""
    title, summary = base.headline(message, override)
    elements: list[dict[str, Any]] = []
    if summary:
        elements.append(_div(clip(summary, level.summary_chars)))
    fields = [
        {"is_short": len(value) <= 40, "text": _plain(f"{name}\n{clip(value, level.value_chars)}")}
        for name, value in message.facts()
    ]
    elements.append({"tag": "div", "fields": fields})
    for heading, lines, omitted in message.lists():
        elements += _section(heading, lines, level, omitted)
    link = _layout.web_link(message.link)
    if link:
        button = {"tag": "button", "text": _plain("Open"), "type": "primary", "url": link}
        elements.append({"tag": "action", "actions": [button]})
    elif message.link:
        elements.append(_div(f"Link: {clip(message.link, level.value_chars)}"))
    elements.append({"tag": "note", "elements": [_plain(message.footer())]})
    header = {"title": _plain(clip(title, MAX_TITLE)), "template": TEMPLATES[message.event]}
    return {"config": {"wide_screen_mode": True}, "header": header, "elements": elements}


def _section(
    heading: str, lines: Sequence[str], level: _layout.Level, omitted: int = 0
) -> list[dict[str, Any]]:
    if not lines:
        return []
    shown = _layout.listed(
        lines, level.items, lambda line: f"• {clip(line, level.value_chars)}", omitted=omitted
    )
    return [{"tag": "hr"}, _div("\n".join([heading, *shown]))]


def _div(text: str) -> dict[str, Any]:
    return {"tag": "div", "text": _plain(text)}


def _plain(text: str) -> dict[str, str]:
    return {"tag": "plain_text", "content": text}


def _render(draft: base.Draft) -> dict[str, Any]:
    return payload(draft.message, draft.override)


def _preview(preview: base.Preview) -> list[str]:
    return [
        "POST <the Secret's webhookUrl>",
        "(with the Secret's signingSecret, the body also has timestamp and sign)",
        _http.indented(_render(preview)),
    ]


PROVIDER = base.ProviderType(LarkProvider, _render, _preview)
