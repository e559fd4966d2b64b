"""E-mail rendering: subject, headers, text and HTML parts, escaping and header-injection safety."""

from __future__ import annotations

import dataclasses
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from deploybell.notify.model import Message, PodDiagnosis, WarningEvent, sample
from deploybell.notify.providers._email_mime import (
    AddressError,
    header_text,
    html_body,
    render_email,
    subject,
    text_body,
)
from deploybell.notify.providers.base import Title

WHEN = datetime(2026, 11, 27, 10, 1, 5, tzinfo=UTC)
INJECTION = "web\r\nBcc: evil@x.example\r\n\r\nspoofed body"


def render(message: Message, **kwargs: object) -> EmailMessage:
    options: dict[str, object] = {
        "sender": "Deploybell <bell@example.com>",
        "recipient": "ops@example.com",
        "date": WHEN,
    }
    options.update(kwargs)
    return render_email(message, **options)  # type: ignore[arg-type]


def reparsed(mail: EmailMessage) -> EmailMessage:
    """What a receiver sees: the mail serialized to bytes and parsed back."""
    parsed = BytesParser(policy=email.policy.default).parsebytes(mail.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(mail: EmailMessage) -> tuple[str, str]:
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("start", "[deploybell] ▶ team-a/web started on prod-eu (run 3)"),
        ("success", "[deploybell] ✔ team-a/web succeeded on prod-eu (run 3)"),
        ("failure", "[deploybell] ✖ team-a/web failed on prod-eu (run 3)"),
        ("cancel", "[deploybell] ■ team-a/web was canceled on prod-eu (run 3)"),
    ],
)
def test_subject_per_event(event: str, expected: str) -> None:
    assert reparsed(render(sample(event)))["Subject"] == expected


def test_subject_without_cluster_matches_the_issue_example() -> None:
    message = dataclasses.replace(sample("success"), cluster="")
    assert subject(message) == "[deploybell] ✔ team-a/web succeeded (run 3)"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("[prod]", "[prod] ✔ team-a/web succeeded (run 3)"),
        ("", "✔ team-a/web succeeded (run 3)"),
        ("[a]\r\nBcc: evil@x", "[a] Bcc: evil@x ✔ team-a/web succeeded (run 3)"),
    ],
)
def test_subject_prefix(prefix: str, expected: str) -> None:
    assert subject(dataclasses.replace(sample("success"), cluster=""), prefix) == expected


def test_test_messages_say_so_in_the_subject_and_footer() -> None:
    message = dataclasses.replace(sample("start"), test=True)
    mail = reparsed(render(message))
    assert mail["Subject"].startswith("[deploybell] [test] ▶ team-a/web started")
    assert "a test message from `deploybell notify-test`" in parts(mail)[0]


def test_headers() -> None:
    mail = reparsed(render(sample("failure")))
    assert mail["From"] == "Deploybell <bell@example.com>"
    assert mail["To"] == "ops@example.com"
    assert mail["Date"] == "Fri, 27 Nov 2026 10:01:05 +0000"
    assert mail["X-Deploybell-Event"] == "failure"
    assert mail["X-Deploybell-Job"] == "team-a/web"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"].startswith("<deploybell.")
    assert mail["Message-ID"].endswith("@example.com>")
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]


def test_message_id_is_stable_across_retries_and_distinct_per_event_and_recipient() -> None:
    first = render(sample("failure"))["Message-ID"]
    retry = render(sample("failure"), date=datetime(2026, 11, 27, 11, 0, tzinfo=UTC))["Message-ID"]
    other_event = render(sample("start"))["Message-ID"]
    other_recipient = render(sample("failure"), recipient="dev@example.com")["Message-ID"]
    other_job = render(dataclasses.replace(sample("failure"), job="api"))["Message-ID"]
    assert first == retry
    assert len({first, other_event, other_recipient, other_job}) == 4


def test_failure_text_has_the_diagnosis() -> None:
    text, _ = parts(reparsed(render(sample("failure"))))
    assert text.startswith(
        "✖ team-a/web failed on prod-eu (run 3)\n\nCrashLoopBackOff after 1m05s:"
    )
    assert "Images:         registry.example/web:1.4.3" in text
    assert "Deployment team-a/web: Failed" in text
    assert (
        "pod web-7d9f8-x2kqp container app: CrashLoopBackOff, exit code 1, 5 restarts"
        " — back-off 40s restarting failed container"
    ) in text
    assert "Pod web-7d9f8-x2kqp BackOff (7 times): Back-off restarting failed container app" in (
        text
    )
    assert "Details: https://dashboard.example/team-a/web" in text


def test_failure_html_has_the_colour_bar_and_the_diagnosis() -> None:
    _, html = parts(reparsed(render(sample("failure"))))
    assert 'style="width:6px;background:#e01e5a"' in html
    assert "<h3" in html
    assert "Failing pods</h3>" in html
    assert ">web-7d9f8-x2kqp</td>" in html
    assert ">CrashLoopBackOff</td>" in html
    assert "Recent Warning events</h3>" in html
    assert ">Back-off restarting failed container app</td>" in html
    assert '<a href="https://dashboard.example/team-a/web"' in html


def test_success_has_no_diagnosis_sections() -> None:
    text, html = parts(reparsed(render(sample("success"))))
    assert "Failing pods" not in text
    assert "Warning" not in text
    assert "Failing pods" not in html
    assert "background:#2eb67d" in html


def test_html_escapes_every_value() -> None:
    script = "<script>alert('x')</script>"
    message = dataclasses.replace(
        sample("failure"),
        message=script,
        pods=(PodDiagnosis("web-1", "app", "Error", script, 1, 0),),
        warnings=(WarningEvent('Pod "web-1"', "Failed", script),),
        link="javascript:alert(1)",
    )
    text, html = parts(reparsed(render(message)))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "Pod &quot;web-1&quot;" in html
    assert 'href="javascript' not in html
    assert "Details: javascript:alert(1)" in html
    assert script in text  # plain text needs no escaping


def test_template_overrides_replace_title_and_summary() -> None:
    override = Title(title="Deployed {web}", text="All good <b>really</b>")
    mail = reparsed(render(sample("success"), override=override))
    text, html = parts(mail)
    assert mail["Subject"] == "[deploybell] Deployed {web}"
    assert text.startswith("Deployed {web}\n\nAll good <b>really</b>\n")
    assert "All good &lt;b&gt;really&lt;/b&gt;" in html


def test_injection_in_job_and_message_adds_no_header() -> None:
    message = dataclasses.replace(
        sample("failure"), job=INJECTION, message=INJECTION, test=False, cluster=""
    )
    mail = render(message, override=Title(title=INJECTION))
    raw = mail.as_bytes()
    head = raw.split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in head
    assert b"\nspoofed" not in head
    parsed = reparsed(mail)
    assert "Bcc" not in parsed
    assert sorted(parsed.keys()) == sorted(
        [
            "Subject",
            "From",
            "To",
            "Date",
            "Message-ID",
            "Auto-Submitted",
            "X-Deploybell-Event",
            "X-Deploybell-Job",
            "MIME-Version",
            "Content-Type",
        ]
    )
    assert parsed["Subject"] == "[deploybell] web Bcc: evil@x.example spoofed body"
    assert parsed["X-Deploybell-Job"] == "team-a/web Bcc: evil@x.example spoofed body"


@pytest.mark.parametrize(
    "recipient",
    ["ops@example.com\r\nBcc: evil@x.example", "Ops <ops@example.com>", "a@b.c, d@e.f", "", "ops"],
)
def test_bad_recipients_are_refused(recipient: str) -> None:
    with pytest.raises(AddressError, match="email recipient must be an address"):
        render(sample("start"), recipient=recipient)


@pytest.mark.parametrize(
    "sender",
    [
        "bell@example.com\r\nBcc: evil@x.example",
        "bell@example.com, evil@x.example",
        "Bell <bell@example.com> <evil@x.example>",
        "not an address",
        "",
    ],
)
def test_bad_senders_are_refused(sender: str) -> None:
    with pytest.raises(AddressError, match=r"the sender \(from\) must be like"):
        render(sample("start"), sender=sender)


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("bell@example.com", "bell@example.com"),
        ("<bell@example.com>", "bell@example.com"),
        ('"Deploy, Bell" <bell@example.com>', '"Deploy, Bell" <bell@example.com>'),
        ("Déploybell <bell@example.com>", "Déploybell <bell@example.com>"),
    ],
)
def test_senders(sender: str, expected: str) -> None:
    assert reparsed(render(sample("start"), sender=sender))["From"] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("a\r\nb", "a b"),
        ("a\nBcc: x", "a Bcc: x"),
        ("tab\there", "tab here"),
        ("nul\x00esc\x1b[31m", "nul esc [31m"),
        ("line\u2028separator\x85next", "line separator next"),
        ("  spaced   out  ", "spaced out"),
        ("x" * 400, "x" * 299 + "…"),
    ],
)
def test_header_text(value: str, expected: str) -> None:
    assert header_text(value) == expected


def test_body_drops_control_characters_but_keeps_line_breaks() -> None:
    message = dataclasses.replace(sample("failure"), message="one\r\ntwo\x1b[0m\x00")
    assert "one\ntwo[0m" in text_body(message)
    assert "one\ntwo[0m" in html_body(message)
