"""E-mail rendering: one multipart/alternative mail (text + inline-styled HTML) per recipient.

Every value that reaches a header goes through `header_text` (no CR/LF or control characters, so
a job name or message can never add a header), addresses are checked against the same syntax the
Notification spec accepts, and every value in the HTML is escaped.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlsplit

from deploybell.api.errors import shown
from deploybell.notify.model import Message
from deploybell.notify.providers import _layout
from deploybell.notify.providers.base import Title, headline

SUBJECT_PREFIX = "[deploybell]"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A plain dot-atom address; display names ("Ops <ops@example.com>") are not recipients.
ADDRESS = re.compile(rf"{_ATEXT}+(\.{_ATEXT}+)*@{_LABEL}(\.{_LABEL})*")
MAX_HEADER_TEXT = 300  # characters of one header value; longer titles are cut with "…"
# One mailbox: `Name <addr>` or a bare address; a list ("a, b") or trailing text is not a sender.
_SENDER = re.compile(r'(?P<name>[^<>,;"]*|"[^"<>]*")\s*<(?P<addr>[^<>\s]+)>|(?P<plain>[^<>\s,;]+)')


class AddressError(ValueError):
    """An address that cannot be used; the message names the setting it came from."""


def render_email(
    message: Message,
    *,
    sender: str,
    recipient: str,
    date: datetime,
    subject_prefix: str = SUBJECT_PREFIX,
    override: Title | None = None,
) -> EmailMessage:
    """The complete mail for one recipient; `sender` may carry a display name."""
    from_address = parse_sender(sender)
    to_address = check_recipient(recipient)
    mail = EmailMessage()
    mail["Subject"] = subject(message, subject_prefix, override)
    mail["From"] = from_address
    mail["To"] = Address(addr_spec=to_address)
    mail["Date"] = format_datetime(date)
    mail["Message-ID"] = message_id(message, to_address, from_address.domain)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    mail["X-Deploybell-Event"] = header_text(message.event)
    mail["X-Deploybell-Job"] = header_text(message.ref)
    mail.set_content(text_body(message, override))
    mail.add_alternative(html_body(message, override), subtype="html")
    return mail


# headers


def header_text(value: str, limit: int = MAX_HEADER_TEXT) -> str:
    """One safe header line: line breaks and control characters become spaces, runs collapse."""
    cleaned = "".join(" " if _is_control(c) else c for c in value)
    line = " ".join(cleaned.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def subject(message: Message, prefix: str = SUBJECT_PREFIX, override: Title | None = None) -> str:
    """`[deploybell] ✔ team-a/web succeeded (run 3)`; a template's title replaces the default."""
    return header_text(f"{header_text(prefix)} {header_text(headline(message, override)[0])}")


def address_problem(recipient: str) -> str | None:
    """Why `recipient` is not a plain address like `ops@example.com` (None when it is)."""
    local, _, domain = recipient.rpartition("@")
    if not ADDRESS.fullmatch(recipient) or len(local) > 64 or len(recipient) > 254:
        wanted = "an email recipient must be an address like 'ops@example.com'"
        return f"{wanted}, got {shown(recipient)}"
    if len(domain) > 253:
        return f"the domain of an email recipient must be at most 253 characters, got {len(domain)}"
    return None


def parse_sender(value: str) -> Address:
    """`bell@example.com` or `Deploybell <bell@example.com>`, checked like a recipient."""
    match = _SENDER.fullmatch(header_text(value))
    addr = (match.group("addr") or match.group("plain")) if match else ""
    if match is None or address_problem(addr) is not None:
        raise AddressError(
            "the sender (from) must be like 'bell@example.com' or "
            f"'Deploybell <bell@example.com>', got {value!r}"
        )
    name = (match.group("name") or "").strip().strip('"').strip()
    username, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=username, domain=domain)


def check_recipient(value: str) -> str:
    """A plain address (`ops@example.com`), exactly as the Notification spec allows."""
    problem = address_problem(value)
    if problem is not None:
        raise AddressError(problem)
    return value


def message_id(message: Message, recipient: str, domain: str) -> str:
    """Stable across retries (derived from the idempotency key), so receivers can de-duplicate."""
    parts = (
        message.cluster,
        message.namespace,
        message.job,
        str(message.run),
        message.event,
        message.idempotency_key,
        recipient,
    )
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]
    return f"<deploybell.{digest}@{domain}>"


# text


def text_body(message: Message, override: Title | None = None) -> str:
    """The plain-text part: title, summary, facts, objects, diagnosis, link."""
    lines = [_body_text(_title(message, override)), "", _body_text(_summary(message, override))]
    lines += ["", *(f"{label + ':':<16}{value}" for label, value in _facts(message))]
    if message.objects:
        lines += ["", "Objects:", *(f"  {line}" for line in _object_lines(message))]
    if message.pods:
        lines += ["", "Failing pods:", *(f"  {line}" for line in _pod_lines(message))]
    if message.warnings:
        lines += ["", "Recent Warning events:", *(f"  {line}" for line in _warning_lines(message))]
    if message.link:
        lines += ["", f"Details: {_body_text(message.link)}"]
    lines += ["", "-- ", _footer(message)]
    return "\n".join(lines) + "\n"


def _facts(message: Message) -> list[tuple[str, str]]:
    facts = [
        *message.facts(),
        ("Reason", message.reason),
        ("Started", message.started_at),
        ("Finished", message.finished_at),
    ]
    return [(label, _body_text(value.replace("\n", ", "))) for label, value in facts if value]


def _object_lines(message: Message) -> list[str]:
    return [_body_text(o.line()) for o in message.objects]


def _pod_lines(message: Message) -> list[str]:
    lines = [_body_text(pod.line()) for pod in message.pods]
    return _layout.listed(lines, len(lines), str, omitted=message.pods_omitted)


def _warning_lines(message: Message) -> list[str]:
    return [_body_text(w.line()) for w in message.warnings]


def _footer(message: Message) -> str:
    what = "a test message from `deploybell notify-test`" if message.test else "deploybell"
    return f"Sent by {what} for {_body_text(message.ref)}, run {message.run}."


# html

_FONT = "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif"
_MUTED = "#616061"
_CELL = "padding:3px 12px 3px 0;vertical-align:top;text-align:left"


def html_body(message: Message, override: Title | None = None) -> str:
    """The HTML part: one table, a status colour bar on the left, every value escaped."""
    sections = [
        f'<h2 style="margin:0 0 8px;font-size:18px">{_h(_title(message, override))}</h2>',
        f'<p style="margin:0 0 12px;white-space:pre-wrap">{_h(_summary(message, override))}</p>',
        _facts_table(_facts(message)),
        _section("Objects", ["Object", "Status", "Message"], _object_rows(message)),
        _section(
            "Failing pods",
            ["Pod", "Container", "Reason", "Exit code", "Restarts", "Message"],
            _pod_rows(message),
        ),
        _section(
            "Recent Warning events",
            ["Object", "Reason", "Count", "Message"],
            _warning_rows(message),
        ),
        _link(message.link),
        f'<p style="margin:16px 0 0;color:{_MUTED};font-size:12px">{_h(_footer(message))}</p>',
    ]
    body = "\n".join(s for s in sections if s)
    return (
        "<!DOCTYPE html>\n"
        f'<html><body style="margin:0;padding:16px;background:#f4f4f4;{_FONT};color:#1d1c1d">'
        '<table role="presentation" cellpadding="0" cellspacing="0" '
        'style="max-width:720px;width:100%;background:#ffffff;border-collapse:collapse">'
        f'<tr><td style="width:6px;background:{_h(message.colour)}"></td>'
        f'<td style="padding:16px;font-size:14px">\n{body}\n</td></tr>'
        "</table></body></html>\n"
    )


def _h(value: str) -> str:
    return html.escape(_body_text(value), quote=True)


def _facts_table(facts: Iterable[tuple[str, str]]) -> str:
    label_style = f"{_CELL};color:{_MUTED};font-weight:normal"
    rows = "".join(
        f'<tr><th style="{label_style}">{_h(label)}</th>'
        f'<td style="{_CELL};white-space:pre-wrap">{_h(value)}</td></tr>'
        for label, value in facts
    )
    return f'<table style="border-collapse:collapse">{rows}</table>' if rows else ""


def _section(heading: str, columns: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    head = "".join(f'<th style="{_CELL};color:{_MUTED}">{_h(c)}</th>' for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f'<td style="{_CELL};white-space:pre-wrap">{_h(c)}</td>' for c in row)
        + "</tr>"
        for row in rows
    )
    return (
        f'<h3 style="margin:16px 0 6px;font-size:15px">{_h(heading)}</h3>'
        f'<table style="border-collapse:collapse;font-size:13px"><tr>{head}</tr>{body}</table>'
    )


def _object_rows(message: Message) -> list[list[str]]:
    return [[f"{o.kind} {o.namespace}/{o.name}", o.status, o.message] for o in message.objects]


def _pod_rows(message: Message) -> list[list[str]]:
    more = [[f"… and {message.pods_omitted} more", "", "", "", "", ""]]
    return [
        [
            p.pod,
            p.container,
            p.reason,
            "" if p.exit_code is None else str(p.exit_code),
            str(p.restart_count),
            p.message,
        ]
        for p in message.pods
    ] + (more if message.pods_omitted else [])


def _warning_rows(message: Message) -> list[list[str]]:
    return [[w.object, w.reason, str(w.count), w.message] for w in message.warnings]


def _link(link: str) -> str:
    """A link only for http(s) URLs: a `javascript:` link in a manifest stays plain text."""
    if not link:
        return ""
    safe = urlsplit(link).scheme.lower() in {"http", "https"}
    if safe and not any(_is_control(c) or c.isspace() for c in link):
        anchor = f'<a href="{_h(link)}" style="color:#1264a3">{_h(link)}</a>'
        return f'<p style="margin:16px 0 0">Details: {anchor}</p>'
    return f'<p style="margin:16px 0 0">Details: {_h(link)}</p>'


# shared


def _title(message: Message, override: Title | None) -> str:
    return headline(message, override)[0]


def _summary(message: Message, override: Title | None) -> str:
    return headline(message, override)[1]


def _body_text(value: str) -> str:
    """Body text keeps line breaks and tabs; other control characters are dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in value if c in "\n\t" or not _is_control(c))


def _is_control(char: str) -> bool:
    # Cc: C0/C1 controls incl. CR/LF; Zl/Zp: U+2028/U+2029, which some readers treat as breaks.
    return unicodedata.category(char) in {"Cc", "Zl", "Zp"}
