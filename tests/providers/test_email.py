"""EmailProvider against a real aiosmtpd server on 127.0.0.1 (STARTTLS, SMTPS, AUTH, failures)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from collections.abc import Iterator, Mapping
from email.message import EmailMessage

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    SmtpDefaults,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.email import EmailProvider
from tests.support.peers.smtp import SmtpPeer

USER, PASSWORD = "bell", "correct-horse-battery"
RECIPIENT = "ops@example.com"


@pytest.fixture
def plain() -> Iterator[SmtpPeer]:
    with SmtpPeer() as peer:
        yield peer


@pytest.fixture
def starttls() -> Iterator[SmtpPeer]:
    with SmtpPeer(starttls=True, auth=(USER, PASSWORD)) as peer:
        yield peer


@pytest.fixture
def smtps() -> Iterator[SmtpPeer]:
    with SmtpPeer(implicit_tls=True, auth=(USER, PASSWORD)) as peer:
        yield peer


@pytest.fixture
def provider() -> EmailProvider:
    return EmailProvider()


def defaults_for(peer: SmtpPeer, **changes: object) -> SmtpDefaults:
    base = SmtpDefaults(
        host=peer.host, port=peer.port, sender="Deploybell <bell@example.com>", timeout=10.0
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def destination(
    smtp: SmtpDefaults,
    secret: Mapping[str, str] | None = None,
    options: Mapping[str, object] | None = None,
    recipient: str = RECIPIENT,
) -> Destination:
    return Destination(
        type="email",
        recipient=recipient,
        options=options or {},
        secret=secret or {},
        smtp=smtp,
    )


def body(mail: EmailMessage, subtype: str) -> str:
    part = mail.get_body((subtype,))
    assert isinstance(part, EmailMessage), f"no text/{subtype} part in {mail}"
    return str(part.get_content())


async def test_plain_delivery_with_operator_defaults_only(
    plain: SmtpPeer, provider: EmailProvider
) -> None:
    sent = await provider.send(sample("failure"), destination(defaults_for(plain)))

    got = plain.wait_for()
    assert sent.detail.startswith("250 2.0.0 Ok: queued as")
    assert got.mail_from == "bell@example.com"
    assert got.rcpt_tos == (RECIPIENT,)
    assert (got.tls, got.login) == (False, None)
    mail = got.message
    assert mail["Subject"] == "[deploybell] ✖ team-a/web failed on prod-eu (run 3)"
    assert mail["From"] == "Deploybell <bell@example.com>"
    assert mail["To"] == RECIPIENT
    assert mail["Date"]
    assert mail["Message-ID"] == sent.refs["messageId"]
    assert mail["X-Deploybell-Event"] == "failure"
    assert mail["X-Deploybell-Job"] == "team-a/web"
    assert "exit code 1, 5 restarts" in body(mail, "plain")
    assert "BackOff (7 times)" in body(mail, "plain")
    assert "background:#e01e5a" in body(mail, "html")
    assert ">CrashLoopBackOff</td>" in body(mail, "html")


async def test_subject_prefix_option(plain: SmtpPeer, provider: EmailProvider) -> None:
    options = {"subjectPrefix": "[prod]"}
    await provider.send(sample("success"), destination(defaults_for(plain), options=options))
    assert plain.wait_for().message["Subject"].startswith("[prod] ✔ team-a/web succeeded")


async def test_starttls_and_auth_from_the_secret(
    starttls: SmtpPeer, provider: EmailProvider
) -> None:
    # The operator default points nowhere useful; the Secret says where and as whom.
    smtp = SmtpDefaults(
        host="smtp.invalid", port=2, sender="nobody@invalid.example", tls="starttls"
    )
    secret = {
        "host": starttls.host,
        "port": str(starttls.port),
        "username": USER,
        "password": PASSWORD,
        "from": "Team A <team-a@example.com>",
        "caFile": str(starttls.ca_file),
    }
    await provider.send(sample("success"), destination(smtp, secret))

    got = starttls.wait_for()
    assert (got.tls, got.login) == (True, USER)
    assert got.mail_from == "team-a@example.com"
    assert got.message["From"] == "Team A <team-a@example.com>"
    assert got.message["Message-ID"].endswith("@example.com>")


async def test_starttls_and_auth_from_operator_defaults_with_ca_option(
    starttls: SmtpPeer, provider: EmailProvider
) -> None:
    smtp = defaults_for(starttls, tls="starttls", username=USER, password=PASSWORD)
    await provider.send(
        sample("start"), destination(smtp, options={"caFile": str(starttls.ca_file)})
    )
    got = starttls.wait_for()
    assert (got.tls, got.login) == (True, USER)


async def test_implicit_tls(smtps: SmtpPeer, provider: EmailProvider) -> None:
    smtp = defaults_for(smtps, tls="tls", username=USER, password=PASSWORD)
    secret = {"caFile": str(smtps.ca_file)}
    await provider.send(sample("cancel"), destination(smtp, secret))
    got = smtps.wait_for()
    assert (got.tls, got.login) == (True, USER)
    assert got.message["X-Deploybell-Event"] == "cancel"


async def test_untrusted_certificate_is_permanent(
    starttls: SmtpPeer, provider: EmailProvider
) -> None:
    smtp = defaults_for(starttls, tls="starttls", username=USER, password=PASSWORD)
    with pytest.raises(PermanentDeliveryError, match=r"not trusted.*set caFile"):
        await provider.send(sample("start"), destination(smtp))
    assert starttls.received == []


async def test_starttls_required_but_not_offered_is_permanent(
    plain: SmtpPeer, provider: EmailProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match="STARTTLS extension not supported"):
        await provider.send(sample("start"), destination(defaults_for(plain, tls="starttls")))
    assert plain.received == []


async def test_4xx_is_temporary_then_the_retry_is_delivered(
    plain: SmtpPeer, provider: EmailProvider
) -> None:
    plain.fail_next_data(1, "451 4.3.0 try again later")
    dest = destination(defaults_for(plain))

    with pytest.raises(
        TemporaryDeliveryError, match=re.escape("answered 451 4.3.0 try again later")
    ):
        await provider.send(sample("failure"), dest)
    assert plain.received == []
    sent = await provider.send(sample("failure"), dest)

    assert plain.wait_for().message["Message-ID"] == sent.refs["messageId"]
    assert len(plain.received) == 1
    assert plain.replies == ["250 OK", "451 4.3.0 try again later", "250 OK", sent.detail]


async def test_4xx_on_rcpt_is_temporary(plain: SmtpPeer, provider: EmailProvider) -> None:
    plain.fail_next_rcpt(1, "450 4.2.1 mailbox busy")
    with pytest.raises(TemporaryDeliveryError, match=f"refused recipient {RECIPIENT}: 450"):
        await provider.send(sample("start"), destination(defaults_for(plain)))


async def test_5xx_is_permanent(plain: SmtpPeer, provider: EmailProvider) -> None:
    plain.fail_next_rcpt(1, "550 5.1.1 no such user")
    with pytest.raises(PermanentDeliveryError, match=f"refused recipient {RECIPIENT}: 550"):
        await provider.send(sample("start"), destination(defaults_for(plain)))
    assert plain.received == []


async def test_5xx_on_data_is_permanent(plain: SmtpPeer, provider: EmailProvider) -> None:
    plain.fail_next_data(1, "554 5.7.1 rejected as spam")
    with pytest.raises(
        PermanentDeliveryError, match=re.escape("answered 554 5.7.1 rejected as spam")
    ):
        await provider.send(sample("start"), destination(defaults_for(plain)))


@pytest.mark.parametrize("where", ["secret", "defaults"])
async def test_wrong_password_is_permanent_and_masked(
    starttls: SmtpPeer, provider: EmailProvider, where: str
) -> None:
    wrong = "Tr0ub4dor&3-wrong"
    if where == "secret":
        smtp = defaults_for(starttls, tls="starttls")
        secret = {"username": USER, "password": wrong, "caFile": str(starttls.ca_file)}
    else:
        smtp = defaults_for(starttls, tls="starttls", username=USER, password=wrong)
        secret = {"caFile": str(starttls.ca_file)}

    with pytest.raises(PermanentDeliveryError) as raised:
        await provider.send(sample("start"), destination(smtp, secret))

    error = raised.value
    assert "535" in error.message
    assert wrong not in error.message
    assert wrong not in str(error)
    assert wrong not in repr(error)
    assert error.__cause__ is None
    assert starttls.received == []


async def test_auth_required_but_no_username_is_permanent(
    starttls: SmtpPeer, provider: EmailProvider
) -> None:
    smtp = defaults_for(starttls, tls="starttls")
    with pytest.raises(
        PermanentDeliveryError, match=re.escape("530 5.7.0 Authentication required")
    ):
        await provider.send(sample("start"), destination(smtp, {"caFile": str(starttls.ca_file)}))


@pytest.mark.parametrize("where", ["secret", "defaults"])
async def test_secrets_in_server_replies_are_masked(
    plain: SmtpPeer, provider: EmailProvider, where: str
) -> None:
    password = "s3cret-echoed-back"
    plain.fail_next_data(1, f"554 5.7.1 bad credentials {password}")
    if where == "secret":
        dest = destination(defaults_for(plain), {"password": password})
    else:  # a password without a username is never sent, but must still never be shown
        dest = destination(defaults_for(plain, password=password))
    with pytest.raises(PermanentDeliveryError) as raised:
        await provider.send(sample("start"), dest)
    assert password not in str(raised.value)
    assert "bad credentials ***" in raised.value.message


async def test_connection_refused_is_temporary(provider: EmailProvider) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = SmtpDefaults(host="127.0.0.1", port=port, sender="bell@example.com", timeout=5.0)
    with pytest.raises(TemporaryDeliveryError, match=f"cannot deliver through 127.0.0.1:{port}"):
        await provider.send(sample("start"), destination(smtp))


async def test_silent_server_times_out_as_temporary(provider: EmailProvider) -> None:
    async def never_greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # hold the connection open without a 220 greeting
        writer.close()

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        smtp = SmtpDefaults(host="127.0.0.1", port=port, sender="bell@example.com", timeout=0.5)
        with pytest.raises(TemporaryDeliveryError, match=r"(?i)timed out"):
            await provider.send(sample("start"), destination(smtp))
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("smtp_changes", "secret", "match"),
    [
        ({}, {"port": "smtp"}, "Secret key 'port' must be a port number"),
        ({}, {"port": "70000"}, "Secret key 'port' must be a port number"),
        ({}, {"host": "a b"}, "Secret key 'host' must be a host name"),
        ({"tls": "ssl"}, {}, "tls mode must be one of starttls, tls, none"),
        ({}, {"from": "bell@example.com, evil@x.example"}, r"the sender \(from\) must be"),
        ({"tls": "starttls"}, {"caFile": "/nonexistent/ca.pem"}, "cannot load caFile"),
    ],
)
async def test_bad_settings_are_permanent_and_name_the_key(
    plain: SmtpPeer,
    provider: EmailProvider,
    smtp_changes: dict[str, object],
    secret: dict[str, str],
    match: str,
) -> None:
    with pytest.raises(PermanentDeliveryError, match=match):
        await provider.send(
            sample("start"), destination(defaults_for(plain, **smtp_changes), secret)
        )
    assert plain.received == []


async def test_bad_recipient_is_permanent(plain: SmtpPeer, provider: EmailProvider) -> None:
    with pytest.raises(PermanentDeliveryError, match="email recipient must be an address"):
        await provider.send(
            sample("start"),
            destination(defaults_for(plain), recipient=f"{RECIPIENT}\r\nBcc: evil@x.example"),
        )
    assert plain.received == []


async def test_header_injection_adds_no_header_and_no_recipient(
    plain: SmtpPeer, provider: EmailProvider
) -> None:
    evil = "web\r\nBcc: evil@x.example\r\nX-Injected: yes"
    message: Message = dataclasses.replace(sample("failure"), job=evil, message=evil)

    await provider.send(message, destination(defaults_for(plain)))

    got = plain.wait_for()
    assert got.rcpt_tos == (RECIPIENT,)
    assert "Bcc" not in got.message
    assert "X-Injected" not in got.message
    head = got.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in head
    assert b"\nX-Injected:" not in head
    assert got.message["X-Deploybell-Job"] == "team-a/web Bcc: evil@x.example X-Injected: yes"
    assert "evil@x.example" not in got.message["To"]


async def test_one_provider_sends_concurrently(plain: SmtpPeer, provider: EmailProvider) -> None:
    recipients = [f"dev{i}@example.com" for i in range(5)]
    await asyncio.gather(
        *(
            provider.send(sample("success"), destination(defaults_for(plain), recipient=r))
            for r in recipients
        )
    )
    assert sorted(m.rcpt_tos[0] for m in plain.received) == recipients
    assert len({m.message["Message-ID"] for m in plain.received}) == 5


async def test_close_is_harmless(plain: SmtpPeer, provider: EmailProvider) -> None:
    await provider.close()
    await provider.send(sample("start"), destination(defaults_for(plain)))
    await provider.close()
    assert len(plain.received) == 1
