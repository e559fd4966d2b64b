"""Discord through a channel webhook: one embed per message, coloured by the event. The start
message is posted with `?wait=true`, so Discord answers with its id; the outcome edits that
message in place (the id comes from the ledger, so this survives an operator restart) and is
posted anew when the message is gone. Recipients, optional, are threads of the webhook's channel."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from yarl import URL

from deploybell.api.errors import SpecError, shown
from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Listing, Message
from deploybell.notify.providers import _answers, _http, _layout, base

# Discord's documented limits (characters).
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_EMBED_TOTAL = 6000  # title, description, field names and values, footer, author together
MAX_USERNAME = 80
UNKNOWN_MESSAGE = 10008  # the JSON error code of a message that is gone
_SNOWFLAKE = r"[1-9][0-9]{16,19}"
_WEBHOOK_PATH = re.compile(r"/webhooks/([0-9]+)/([A-Za-z0-9_-]+)/?")
# Markdown that would change how a value reads; escaped with a backslash, which Discord allows
# before any punctuation.
_MARKDOWN = re.compile(r"([\\*_~`|\[\]<])")
_LINE_START = re.compile(r"^([#>-])", re.MULTILINE)
_URL = re.compile(r"https?://[^\s<>]+")


def _check_username(value: Any, path: str) -> Any:
    lowered = str(value).lower()
    for word in ("discord", "clyde"):
        if word in lowered:
            raise SpecError(
                path, f"must not contain {word!r} (Discord refuses it), got {shown(value)}"
            )
    return value


def _thread_id(recipient: str) -> str | None:
    return None if int(recipient) < 2**64 else "a Discord id is at most 2^64 - 1"


RULES = ProviderRules(
    type="discord",
    title="Discord",
    doc="An embed coloured by event, posted by a channel webhook; the start message is edited "
    "in place with the outcome.",
    recipients=Recipients(
        syntax="a thread id (17 to 20 digits)",
        pattern=_SNOWFLAKE,
        required=False,
        check=_thread_id,
        valid=("1234567890123456789", "98765432109876543"),
        invalid=("#general", "123", "thread-1", "12345678901234567890123"),
        doc="a thread (or forum post) of the webhook's channel, by the id *Copy Thread ID* "
        "shows in developer mode; without recipients, the channel itself",
    ),
    options=(
        Field(
            "username",
            "string",
            "Post under this name instead of the webhook's own (1 to 80 characters, not "
            "containing 'discord' or 'clyde').",
            min_length=1,
            max_length=MAX_USERNAME,
            check=_check_username,
        ),
    ),
    secret_keys=(
        SecretKey("webhookUrl", "The channel webhook's URL (`…/api/webhooks/<id>/<token>`)."),
    ),
    secret_needs=(frozenset({"webhookUrl"}),),
    edits_in_place=True,
    setup="In the channel's settings, *Integrations → Webhooks → New Webhook*, then *Copy Webhook "
    "URL* into the Secret's `webhookUrl`. For threads, enable developer mode and list thread ids "
    "as recipients.",
)


@dataclass(frozen=True)
class Webhook:
    """The webhook URL split into what the requests need."""

    url: URL  # without query
    token: str

    def execute(self, thread: str) -> URL:
        query = {"wait": "true", **({"thread_id": thread} if thread else {})}
        return self.url.with_query(query)

    def message(self, message_id: str, thread: str) -> URL:
        url = self.url / "messages" / message_id
        return url.with_query({"thread_id": thread}) if thread else url


def webhook(out: _http.Outgoing) -> Webhook:
    """The Secret's `webhookUrl`, checked: an http(s) URL ending in `/webhooks/<id>/<token>`."""
    url = out.url("webhookUrl")
    found = _WEBHOOK_PATH.search(url.path)
    if found is None or found.end() != len(url.path):
        raise base.PermanentDeliveryError(
            "discord: Secret key 'webhookUrl' must be a webhook URL ending in "
            "/webhooks/<id>/<token>"
        )
    hook = Webhook(url.with_query(None).with_fragment(None), found.group(2))
    out.hide(str(hook.url), hook.token)
    return hook


class DiscordProvider(_http.HttpProvider):
    """Posts with `?wait=true`; edits the start message with the outcome."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        hook = webhook(out)
        thread = out.recipient
        start_id = str(out.previous.get("messageId", ""))
        if out.message.event != "start" and start_id.isdigit():
            edited = await _edit(out, hook, start_id, thread)
            if edited is not None:
                return edited
        reply = await out.request("POST", hook.execute(thread), json=_render(out))
        _check(out, reply, thread)
        return _sent(reply, "posted")


async def _edit(
    out: _http.Outgoing, hook: Webhook, message_id: str, thread: str
) -> base.Sent | None:
    """Edit the start message; None when Discord says it is gone (post a new one)."""
    body = payload(out.message, out.override)  # an edit keeps the name it was posted under
    reply = await out.request("PATCH", hook.message(message_id, thread), json=body)
    said = reply.json()
    if reply.status == 404 and isinstance(said, dict) and said.get("code") == UNKNOWN_MESSAGE:
        return None
    _check(out, reply, thread)
    return _sent(reply, "edited")


def _check(out: _http.Outgoing, reply: _answers.Reply, thread: str) -> None:
    """Raise for anything but 2xx; Discord's `code` is named beside its message."""
    said = reply.json()
    code = said.get("code") if isinstance(said, dict) else None
    explain = ""
    if isinstance(code, int) and not isinstance(code, bool):
        explain = f"{_answers.vendor_message(said)} (code {code})"
    out.check(reply, context=f"thread {thread}" if thread else "", explain=explain)


def _sent(reply: _answers.Reply, verb: str) -> base.Sent:
    said = reply.json()
    if not isinstance(said, dict) or not str(said.get("id", "")).isdigit():
        # `?wait=true` always returns the message; without an id the next edit cannot happen.
        return base.Sent(detail=f"{verb}, HTTP {reply.status} without a message id")
    refs = {"messageId": str(said["id"]), "channelId": str(said.get("channel_id", ""))}
    return base.Sent(refs=refs, detail=f"{verb} message {refs['messageId']}")


# the message body (pure)


def escape(text: str) -> str:
    """Markdown, mentions and links in a value shown as written."""
    return _LINE_START.sub(r"\\\1", _MARKDOWN.sub(r"\\\1", text))


def colour(message: Message) -> int:
    return int(message.colour.lstrip("#"), 16)


# From the most to the least; the first whose embed fits Discord's 6000 characters is sent.
LEVELS = (
    _layout.Level(10, 1500, 200),
    _layout.Level(5, 1500, 200),
    _layout.Level(3, 1000, 150),
    _layout.Level(1, 600, 100),
    _layout.Level(0, 400, 80),
)


def payload(message: Message, override: base.Title | None = None) -> dict[str, Any]:
    """The execute/edit body: one embed within Discord's limits; mentions never ping."""
    embed_ = _layout.fit(
        LEVELS,
        lambda level: embed(message, override, level),
        lambda built: embed_size(built) <= MAX_EMBED_TOTAL,
    )
    return {"embeds": [embed_], "allowed_mentions": {"parse": []}}


def embed(message: Message, override: base.Title | None, level: _layout.Level) -> dict[str, Any]:
    """Title (linked), the summary and diagnosis as description, facts as fields."""
    title, summary = base.headline(message, override)
    out: dict[str, Any] = {"title": _cut(escape(title), MAX_TITLE), "color": colour(message)}
    if link := _layout.web_link(message.link):
        out["url"] = link
    lines = [_cut(escape(summary), level.summary_chars)] if summary else []
    for listing in message.lists()[1:]:  # the objects are a field
        lines += _section(listing, level)
    if message.link and not link:
        lines.append(f"Link: {_cut(escape(message.link), level.value_chars)}")
    if lines:
        out["description"] = _cut("\n".join(lines), MAX_DESCRIPTION)
    out["fields"] = _fields(message, level)[:MAX_FIELDS]
    out["footer"] = {"text": message.footer(times=False)}  # the embed shows its time
    if stamp := message.finished_at or message.started_at:
        out["timestamp"] = stamp
    return out


def embed_size(embed_: Mapping[str, Any]) -> int:
    """What Discord counts against the 6000 characters of a message's embeds."""
    fields = embed_.get("fields") or []
    return (
        len(embed_.get("title", ""))
        + len(embed_.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in fields)
        + len((embed_.get("footer") or {}).get("text", ""))
        + len((embed_.get("author") or {}).get("name", ""))
    )


def _fields(message: Message, level: _layout.Level) -> list[dict[str, Any]]:
    limit = level.value_chars
    out = [
        {
            "name": name,
            "value": _value(value, 2 * limit if name == "Images" else limit),
            "inline": "\n" not in value and len(value) <= 40,
        }
        for name, value in message.facts()
    ]
    if message.objects:
        lines = _listed([o.line() for o in message.objects], level)
        out.append({"name": "Objects", "value": _cut(lines, 3 * limit), "inline": False})
    return out


def _value(value: str, limit: int) -> str:
    """A field's value; a lone web link as written, since an escape inside it breaks the link
    (and Markdown does not apply inside a link)."""
    if _URL.fullmatch(value) and len(value) <= limit:
        return value
    # Discord refuses a blank field value.
    return _cut(escape(value), limit) if value.strip() else "—"


def _section(listing: Listing, level: _layout.Level) -> list[str]:
    if not listing.lines:
        return []
    return [f"**{listing.heading}**", _listed(listing.lines, level, listing.omitted)]


def _listed(lines: Sequence[str], level: _layout.Level, omitted: int = 0) -> str:
    """Bullets (escaped, each cut to 2x the value length), then how many are not shown."""
    limit = 2 * level.value_chars

    def bullet(line: str) -> str:
        return _cut(escape(f"• {line}"), limit)

    return "\n".join(_layout.listed(lines, level.items, bullet, omitted=omitted))


def _cut(text: str, limit: int) -> str:
    """Cut escaped text without leaving a lone escaping backslash at the end."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    trailing = len(cut) - len(cut.rstrip("\\"))
    return (cut[:-1] if trailing % 2 else cut) + "…"


def _preview(preview: base.Preview) -> list[str]:
    where = f"thread {preview.recipient}" if preview.recipient else "the webhook's channel"
    out = [
        f"to {where}: POST <the Secret's webhookUrl>?wait=true",
        _http.indented(_render(preview)),
    ]
    if preview.message.event != "start":
        out += [
            "",
            "after this run's start message, this body edits that message in place",
            "(PATCH …/messages/<its id>); when it is gone, it is posted anew.",
        ]
    return out


def _render(draft: base.Draft) -> dict[str, Any]:
    body = payload(draft.message, draft.override)
    if username := draft.options.get("username"):
        body["username"] = username
    return body


PROVIDER = base.ProviderType(DiscordProvider, _render, _preview)
