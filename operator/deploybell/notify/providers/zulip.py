"""Zulip: the REST API with a bot's e-mail and API key (HTTP basic). A Markdown message to a
channel's topic (`type=stream`) or a direct message; the outcome edits the start message in place
(`PATCH /api/v1/messages/{id}`) and is replied in the same topic, the conversation's thread.

Limits: `content` holds at most 10000 characters and a topic 60 (the server cuts longer ones;
deploybell stays within them). A 429 (`RATE_LIMIT_HIT`) says how long to wait in `Retry-After`
and in the JSON body's `retry-after`.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import clip
from deploybell.notify.providers import _answers, _chat_text, _http, base

CONTENT_LIMIT = 10000
TOPIC_LIMIT = 60
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}

RULES = ProviderRules(
    type="zulip",
    title="Zulip",
    doc="A Markdown message in a channel's topic (the job's, by default) or a direct message; "
    "the start message is edited in place with the outcome, which is also replied in the topic.",
    recipients=Recipients(
        syntax="'#channel' or '@user@example.com'",
        pattern=r"#[^\x00-\x1f\x7f]{1,60}|@[^@\s]{1,64}@[^@\s]{1,255}",
        valid=("#deploys", "#platform ops", "@alice@example.com"),
        invalid=("deploys", "#", "@alice", "#" + "x" * 61),
        doc="a channel (stream) by name, its messages in the topic `zulip.topic` (by default "
        "the job, `namespace/name`), or a user by e-mail for a direct message",
    ),
    options=(
        Field(
            "topic",
            "string",
            "The topic of channel messages; by default the job's `namespace/name`, so each job's "
            "runs read as one conversation.",
            min_length=1,
            max_length=TOPIC_LIMIT,
        ),
        Field(
            "threads",
            "boolean",
            "Edit a run's start message in place with the outcome and reply in the topic. "
            "Defaults to true.",
            default=True,
        ),
    ),
    secret_keys=(
        SecretKey("email", "The bot's e-mail address (its API user).", sensitive=False),
        SecretKey("apiKey", "The bot's API key."),
        SecretKey("url", "The organization's URL (`https://chat.example.com`).", sensitive=False),
    ),
    secret_needs=(frozenset({"email", "apiKey", "url"}),),
    edits_in_place=True,
    threads=True,
    setup="Create a *Generic bot* (Personal settings → Bots → Add a new bot) and copy its e-mail "
    "and API key into `email` and `apiKey`, with the organization URL in `url`; subscribe the "
    "bot to private channels it posts to. An outcome past the organization's limit for edits "
    "(10 minutes by default; *Allow message editing*) is a new message in the topic.",
)


def render_content(draft: base.Draft) -> str:
    return _chat_text.fitted(
        draft.message, draft.override, _chat_text.markdown, lambda t: len(t) <= CONTENT_LIMIT
    )


def reply_content(draft: base.Draft) -> str:
    return _chat_text.markdown(_chat_text.reply_lines(draft.message, draft.override))


def message_fields(draft: base.Draft, content: str) -> dict[str, str]:
    """The form of `POST /api/v1/messages` for this recipient."""
    recipient = draft.recipient
    if recipient.startswith("@"):
        return {"type": "private", "to": json.dumps([recipient[1:]]), "content": content}
    topic = str(draft.options.get("topic") or draft.message.ref)
    return {
        "type": "stream",
        "to": recipient[1:],
        "topic": clip(topic, TOPIC_LIMIT),
        "content": content,
    }


class ZulipProvider(_http.HttpProvider):
    """Posts through the shared HTTP session; the API key is masked in every error."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        login = f"{out.word('email')}:{out.word('apiKey')}".encode()
        out.headers["Authorization"] = f"Basic {base64.b64encode(login).decode()}"
        out.hide(out.headers["Authorization"].split(" ", 1)[1])
        api = _Api(out, out.url("url"))
        start = str(out.previous.get("message", ""))
        threads = bool(out.options.get("threads", True))
        outcome = out.message.event != "start" and threads and start.isdigit()
        if outcome and await api.edit(start, render_content(out)):
            reply = await api.send(message_fields(out, reply_content(out)))
            refs = {"message": start, "reply": reply}
            return base.Sent(refs=refs, detail=f"edited {start} and replied in the topic")
        sent = await api.send(message_fields(out, render_content(out)))
        return base.Sent(refs={"message": sent}, detail=f"sent message {sent}")


class _Api:
    def __init__(self, out: _http.Outgoing, root: URL):
        self.out, self.root = out, root

    async def send(self, fields: dict[str, str]) -> str:
        reply = await self._request("POST", "messages", fields)
        _check(self.out, reply, self.out.recipient)
        answer = reply.json()
        found = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(found, int):
            raise base.PermanentDeliveryError("zulip: the answer has no message id")
        return str(found)

    async def edit(self, message_id: str, content: str) -> bool:
        """Edit the start message; False when the server refuses (gone, or past the
        organization's time limit for edits): the outcome is then sent as a new message."""
        reply = await self._request("PATCH", f"messages/{int(message_id)}", {"content": content})
        if reply.status == 400:
            return False
        _check(self.out, reply, f"message {message_id}")
        return True

    async def _request(self, method: str, path: str, fields: dict[str, str]) -> _answers.Reply:
        url = URL(f"{str(self.root).rstrip('/')}/api/v1/{path}", encoded=True)
        data = urlencode(fields).encode()
        return await self.out.request(method, url, data=data, headers=_FORM)


def _check(out: _http.Outgoing, reply: _answers.Reply, context: str) -> base.Sent:
    """The shared classification; Zulip's `retry-after` (hyphenated) body key as the delay."""
    return out.check(reply, context=context, default_delay=body_retry_after(reply))


def body_retry_after(reply: _answers.Reply) -> float | None:
    answer = reply.json()
    value = answer.get("retry-after") if isinstance(answer, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _render(preview: base.Preview) -> dict[str, str]:
    return message_fields(preview, render_content(preview))


def _preview(preview: base.Preview) -> list[str]:
    out = [
        f"to {preview.recipient}: POST /api/v1/messages (form fields)",
        _http.indented(_render(preview)),
    ]
    return out + preview.update_and_reply(
        "message",
        "(PATCH /api/v1/messages/<id>) and this reply is sent to the same topic:",
        reply_content(preview),
    )


PROVIDER = base.ProviderType(ZulipProvider, _render, _preview)
