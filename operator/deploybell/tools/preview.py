"""`deploybell render`: what each provider would send for a sample run, built by the providers'
own pure renderers and printed as text, without any network."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from deploybell.api.notification import NotificationSpec
from deploybell.notify.dispatch import template_override
from deploybell.notify.model import Message
from deploybell.notify.providers.base import DeliveryError, Destination, Title
from deploybell.notify.providers.irc import irc_settings
from deploybell.notify.providers.webhook import request_headers
from deploybell.notify.render import email, hipchat, irc, slack, webhook

RULE = "=" * 78


def preview(name: str, spec: NotificationSpec, message: Message, sender: str) -> str:
    """The whole preview of one Notification: a header, then one section per recipient."""
    title, problem = template_override(spec, message)
    out = [RULE, f"Notification {name} ({spec.type}), event {message.event}"]
    if problem:
        out.append(
            f"warning: template not used, the default message would be sent instead: {problem}"
        )
    # Slack's body is the same for every recipient: shown once.
    recipients = [", ".join(spec.recipients)] if spec.type == "slack" else spec.recipients
    for recipient in recipients or ("",):
        try:
            section = _SECTIONS[spec.type](spec, recipient, message, title, sender)
        except (ValueError, DeliveryError) as e:  # what the provider would refuse to send
            section = [f"to {recipient or '(webhook)'}: not sendable: {e}"]
        out += [RULE, *section]
    return "\n".join(out) + "\n"


def _slack(
    spec: NotificationSpec, recipient: str, message: Message, title: Title | None, _: str
) -> list[str]:
    payload = slack.render(message, title).as_payload()
    out = [
        f"to {recipient}: chat.postMessage (an incoming webhook gets the same body)",
        _json(payload),
    ]
    if message.event != "start" and spec.options.get("threads", True):
        out += [
            "",
            "with a bot token, after this run's start message: that message is updated in place",
            "with the body above (chat.update), and this reply is posted in its thread:",
            slack.thread_reply(message, title),
        ]
    return out


def _hipchat(
    spec: NotificationSpec, recipient: str, message: Message, title: Title | None, _: str
) -> list[str]:
    notify = bool(spec.options.get("notify", False))
    if recipient.startswith("#"):
        body = hipchat.room_notification(message, title, notify=notify)
        return [f"to {recipient}: a room notification (POST /v2/room/…/notification)", _json(body)]
    body = hipchat.private_message(message, title, notify=notify)
    return [f"to {recipient}: a private message (POST /v2/user/…/message)", _json(body)]


def _irc(
    spec: NotificationSpec, recipient: str, message: Message, title: Title | None, _: str
) -> list[str]:
    settings = irc_settings(recipient, spec.options, {})
    target = settings.target
    lines = irc.lines(
        message, title, command=settings.command, target=target.channel, nick=settings.nick
    )
    tls = "with TLS " if target.tls else ""
    join = f", JOIN {target.channel}" if settings.join else ""
    return [
        f"to {recipient}: connect to {target.host}:{target.port} {tls}as {settings.nick}{join}, "
        f"then {len(lines)} line(s):",
        "(control characters shown as \\xNN: \\x03 starts a colour, \\x0f resets it)",
        *(f"{settings.command} {target.channel} :{_visible(line)}" for line in lines),
    ]


def _email(
    spec: NotificationSpec, recipient: str, message: Message, title: Title | None, sender: str
) -> list[str]:
    mail = email.render_email(
        message,
        sender=sender,
        recipient=recipient,
        date=_when(message),
        subject_prefix=str(spec.options.get("subjectPrefix", email.SUBJECT_PREFIX)),
        override=title,
    )
    out = [
        f"to {recipient}: one multipart/alternative mail",
        *(f"{k}: {v}" for k, v in mail.items()),
    ]
    for part in mail.iter_parts():
        out += ["", f"--- {part.get_content_type()} ---", str(part.get_content()).rstrip("\n")]
    return out


def _webhook(
    spec: NotificationSpec, recipient: str, message: Message, title: Title | None, _: str
) -> list[str]:
    destination = Destination(type="webhook", recipient="", options=spec.options, secret={})
    headers = request_headers(destination)
    event = webhook.event(message, title, now=_when(message))
    return [
        "POST <the Secret's url> (the body is sent compact; indented here)",
        *(f"{k}: {v}" for k, v in headers.items()),
        "(and Authorization from the Secret's `authorization`, "
        f"{webhook.SIGNATURE_HEADER} when it has `hmacKey`)",
        "",
        _json(event),
    ]


_Section = Callable[[NotificationSpec, str, Message, Title | None, str], list[str]]
_SECTIONS: Mapping[str, _Section] = {
    "slack": _slack,
    "hipchat": _hipchat,
    "irc": _irc,
    "email": _email,
    "webhook": _webhook,
}


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _when(message: Message) -> datetime:
    """The run's own time, so a preview is the same every time."""
    stamp = message.finished_at or message.started_at
    if not stamp:
        return datetime(2026, 1, 1, tzinfo=UTC)
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _visible(text: str) -> str:
    return "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)
