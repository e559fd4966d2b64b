"""IRC SASL PLAIN against a real network with services (InspIRCd + Atheme), and its refusals."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers._irc_sasl import SaslPlain
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.irc import IrcProvider
from tests.support.peers.inspircd import InspircdServer
from tests.support.peers.irc import IrcListener, NgircdServer

PASSWORD = "c0rrect:horse!battery"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def destination(recipient: str, secret: dict[str, str], **options: Any) -> Destination:
    return Destination(type="irc", recipient=recipient, options=options, secret=secret)


@pytest.fixture(scope="module")
def network() -> Iterator[InspircdServer]:
    with InspircdServer() as server:
        yield server


@pytest.fixture(scope="module")
def account(network: InspircdServer) -> str:
    name = unique("bot")
    network.register(name, PASSWORD)
    return name


@pytest.fixture
async def provider() -> AsyncIterator[IrcProvider]:
    irc = IrcProvider()
    yield irc
    await irc.close()


def logged_in_as(listener: IrcListener, nick: str) -> str | None:
    """WHOIS `nick`; the account name of its 330 reply, None when it is not logged in."""
    listener.send_raw(f"WHOIS {nick}")
    end = listener.wait_until(
        lambda: next((r for r in listener.raw if f" 318 {listener.nick} {nick} " in r), None)
    )
    lines = listener.raw[: listener.raw.index(end)]
    found = [r.split()[4] for r in lines if f" 330 {listener.nick} {nick} " in r]
    return found[-1] if found else None


async def test_sasl_plain_logs_in_before_registering(
    network: InspircdServer, account: str, provider: IrcProvider
) -> None:
    channel = unique("#sasl-")
    with IrcListener(network.host, network.port, [channel], nick=unique("ear")) as listener:
        sent = await provider.send(
            sample("success"),
            destination(network.recipient(channel), {"saslPassword": PASSWORD}, nick=account),
        )
        heard = await listener.wait_for_async(lambda h: h.target == channel)
        assert heard.nick == account
        assert sent.refs["nick"] == account
        assert logged_in_as(listener, account) == account


async def test_a_wrong_sasl_password_is_permanent_and_masked(
    network: InspircdServer, account: str, provider: IrcProvider
) -> None:
    with pytest.raises(PermanentDeliveryError, match="refused SASL PLAIN") as refused:
        await provider.send(
            sample("success"),
            destination(network.recipient("#x"), {"saslPassword": "not-the-one"}, nick=account),
        )
    assert "saslPassword" in str(refused.value)
    assert "not-the-one" not in str(refused.value)
    assert provider.connections == []


async def test_a_server_without_sasl_is_temporary_and_says_why(provider: IrcProvider) -> None:
    """ngircd offers no SASL: nothing is sent unauthenticated, and the error says so."""
    with (
        NgircdServer() as server,
        pytest.raises(TemporaryDeliveryError, match="offers no SASL PLAIN"),
    ):
        await provider.send(
            sample("success"),
            destination(server.recipient("#x"), {"saslPassword": PASSWORD}, nick="bellbot"),
        )
    assert provider.connections == []


class Recorder:
    """Stands in for the connection: what SaslPlain sends, as raw lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def send_items(self, *items: str) -> None:
        self.lines.append(" ".join(items))

    def cap(self, *items: str) -> None:
        self.lines.append(" ".join(("CAP", *items)))


@pytest.mark.parametrize("length", [10, 297, 298, 600])
def test_credentials_go_in_400_byte_lines_with_a_closing_plus(length: int) -> None:
    """RFC 4616 `\\0account\\0password`, base64, cut at 400; a full last line is followed by +."""
    from irc.client import Event

    connection = Recorder()
    sasl = SaslPlain(connection, "bot", "p" * length, "irc.test:6667")
    sasl.feed(Event("authenticate", "", "+", []))
    chunks = [line.removeprefix("AUTHENTICATE ") for line in connection.lines]
    payload = base64.b64encode(b"\0bot\0" + b"p" * length).decode()
    assert all(len(c) <= 400 for c in chunks)
    assert "".join(c for c in chunks if c != "+") == payload
    assert (chunks[-1] == "+") == (len(payload) % 400 == 0)
