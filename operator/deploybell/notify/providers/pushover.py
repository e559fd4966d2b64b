"""Pushover: a push notification per recipient (a user or group key, optionally one of its
devices) through the Message API (`POST /1/messages.json`), with the run's title, its
summary and facts as the message, the link as the supplementary URL and the run's time as the
message's time. Failures go at a higher priority (by default high: past quiet hours).

The API answers `status: 1` and a `request` id; an emergency-priority message also gets a
`receipt`. A refused message is a 4xx with `status: 0` and an `errors` list (permanent); 429
means the application's monthly quota is spent, until the epoch second in
`X-Limit-App-Reset` (when that is past the outbox's give-up time, the message fails at once
with the API's words); 5xx is retried."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _answers, _http, _layout, _records, base

DEFAULT_API_URL = "https://api.pushover.net"
# The Message API's documented limits (characters).
MAX_MESSAGE = 1024
MAX_TITLE = 250
MAX_URL = 512
MAX_URL_TITLE = 100
# An emergency message repeats until acknowledged: every 60 s for at most an hour.
EMERGENCY = 2
EMERGENCY_RETRY = 60
EMERGENCY_EXPIRE = 3600
_KEY = r"[A-Za-z0-9]{30}"
_DEVICE = r"[A-Za-z0-9_-]{1,25}"


def _priority(name: str, doc: str, default: int) -> Field:
    return Field(name, "integer", doc, default=default, minimum=-2, maximum=2)


RULES = ProviderRules(
    type="pushover",
    title="Pushover",
    doc="A push notification to each user or group (or one of its devices), failures at a "
    "higher priority.",
    recipients=Recipients(
        syntax="a user or group key (30 letters and digits), optionally ':device'",
        pattern=f"{_KEY}(:{_DEVICE})?",
        valid=("uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "gznej3rKEVAvPUxu9vvNnqpmZpokzF:phone"),
        invalid=("alice@example.com", "uQiRzpo4DXgh", "uQiRzpo4DXghDmr9QzzfQu27cmVRsG:my phone"),
        doc="the user or group key from the Pushover dashboard; `:device` sends to that "
        "device only",
    ),
    options=(
        _priority(
            "priority",
            "The priority of every message but failures: -2 (no alert) to 1 (high, past "
            "quiet hours); 2 (emergency) repeats until acknowledged.",
            0,
        ),
        _priority(
            "failurePriority", "The priority of failure messages (-2 to 2); default 1 (high).", 1
        ),
    ),
    secret_keys=(
        SecretKey("token", "The application's API token."),
        SecretKey("apiUrl", "The API's base URL, for a proxy.", sensitive=False),
    ),
    secret_needs=(frozenset({"token"}),),
    setup="Create an application (*Your Applications → Create an Application/API Token*) and "
    "copy its API token into the Secret's `token`; recipients are user or group keys from "
    "the dashboard.",
)


class PushoverProvider(_http.HttpProvider):
    """POSTs one message per recipient to the Message API."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        token = out.word("token")
        url = out.url("apiUrl", DEFAULT_API_URL).joinpath("1", "messages.json")
        body = {"token": token, **_render(out)}
        reply = await out.request("POST", url, json=body)
        reset = _answers.reset_delay(reply.headers, "X-Limit-App-Reset", datetime.now(UTC))
        out.check(reply, context=_who(out.recipient), default_delay=reset)
        return sent(reply)


def sent(reply: _answers.Reply) -> base.Sent:
    said = reply.json()
    if not isinstance(said, dict) or said.get("status") != 1:
        raise base.PermanentDeliveryError(
            f"pushover: HTTP {reply.status} without status 1: {_answers.excerpt(reply.body)}"
        )
    refs = {k: str(said[k]) for k in ("request", "receipt") if said.get(k)}
    left = _answers.header(reply.headers, "X-Limit-App-Remaining")
    quota = f", {left} messages left this month" if left else ""
    return base.Sent(refs=refs, detail=f"request {refs.get('request', '?')}{quota}")


def _who(recipient: str) -> str:
    user, _, device = recipient.partition(":")
    return f"user {user[:4]}…" + (f" device {device}" if device else "")


# the message (pure)


def payload(
    message: Message, recipient: str, override: base.Title | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """The Message API's fields but the token, each within its documented limit."""
    title, summary = base.headline(message, override)
    user, _, device = recipient.partition(":")
    key = "failurePriority" if message.event == "failure" else "priority"
    priority = int(options.get(key, 1 if key == "failurePriority" else 0))
    body: dict[str, Any] = {
        "user": user,
        "title": clip(title, MAX_TITLE),
        "message": text(message, summary),
        "priority": priority,
    }
    if device:
        body["device"] = device
    if link := _layout.web_link(message.link, MAX_URL):
        body["url"] = link
        body["url_title"] = clip(f"{message.ref} run {message.run}", MAX_URL_TITLE)
    if when := _records.parse_time(message.finished_at or message.started_at):
        body["timestamp"] = int(when.timestamp())
    if priority == EMERGENCY:
        body.update(retry=EMERGENCY_RETRY, expire=EMERGENCY_EXPIRE)
    return body


def text(message: Message, summary: str) -> str:
    """The summary, the facts, then the lists, cut to 1024 characters (never empty: the API
    refuses an empty message)."""
    lines = [summary] if summary else []
    lines += [f"{name}: {value}" for name, value in message.facts()]
    for heading, items, omitted in message.lists():
        if items:
            shown = _layout.listed(items, 3, lambda i: f"• {clip(i, 200)}", omitted=omitted)
            lines += [f"{heading}:", *shown]
    if message.link and not _layout.web_link(message.link, MAX_URL):
        lines.append(f"Link: {message.link}")
    return clip("\n".join(lines) or message.title(), MAX_MESSAGE)


def _render(draft: base.Draft) -> dict[str, Any]:
    return payload(draft.message, draft.recipient, draft.override, draft.options)


def _preview(preview: base.Preview) -> list[str]:
    return [
        f"POST {URL(DEFAULT_API_URL).joinpath('1', 'messages.json')} (with the Secret's token)",
        _http.indented(_render(preview)),
    ]


PROVIDER = base.ProviderType(PushoverProvider, _render, _preview)
