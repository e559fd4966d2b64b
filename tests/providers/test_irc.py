"""IrcProvider against a real ngircd on 127.0.0.1, checked by an independent `irc` listener.

ngircd runs with its stock configuration: nicks of at most 9 characters (RFC 1459).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import Message, sample
from deploybell.notify.providers._irc_lines import MAX_LINE_BYTES, lines, render
from deploybell.notify.providers._irc_session import variant
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.irc import IrcProvider
from tests.support.peers.irc import HOST, Heard, IrcListener, NgircdServer, free_port


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def destination(
    recipient: str, secret: Mapping[str, str] | None = None, **options: Any
) -> Destination:
    return Destination(type="irc", recipient=recipient, options=options, secret=secret or {})


def expected_lines(message: Message, nick: str, channel: str, command: str = "NOTICE") -> list[str]:
    return lines(message, None, command=command, target=channel, nick=nick)


def from_bot(nick: str, channel: str) -> Any:
    return lambda h: h.nick == nick and h.target == channel


async def heard_from(listener: IrcListener, nick: str, channel: str, count: int) -> list[Heard]:
    """Wait until `count` lines from `nick` reached `channel`; all of them, in order."""

    def enough() -> list[Heard] | None:
        got = [h for h in listener.messages() if h.nick == nick and h.target == channel]
        return got if len(got) >= count else None

    return await listener.wait_until_async(enough)


@pytest.fixture(scope="module")
def ircd() -> Iterator[NgircdServer]:
    server = NgircdServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def channel() -> str:
    return unique("#t-")


@pytest.fixture
def nick() -> str:
    """A nick of this test's own (7 characters: a suffix still fits in 9), never shared."""
    return unique("b")


@pytest.fixture
def listener(ircd: NgircdServer, channel: str) -> Iterator[IrcListener]:
    with IrcListener(ircd.host, ircd.port, [channel], nick=unique("ear")) as ear:
        yield ear


@pytest.fixture
async def provider() -> AsyncIterator[IrcProvider]:
    irc = IrcProvider()
    yield irc
    await irc.close()


# delivery


async def test_notice_arrives_in_the_channel(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    message = sample("success")
    sent = await provider.send(message, destination(ircd.recipient(channel), nick=nick))

    heard = await listener.wait_for_async(from_bot(nick, channel))
    assert heard.command == "NOTICE"
    assert heard.text == render(message)
    assert heard.text.startswith("\x0303✔\x0f team-a/web succeeded on prod-eu (run 3)")
    assert sent.detail == f"sent 1 line to {channel} on {HOST}"
    assert sent.refs == {"server": f"{HOST}:{ircd.port}", "channel": channel, "nick": nick}


async def test_failure_diagnosis_arrives(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    message = sample("failure")
    sent = await provider.send(
        message, destination(ircd.recipient(channel), nick=nick, linesPerSecond=10)
    )

    want = expected_lines(message, nick, channel)
    assert [h.text for h in await heard_from(listener, nick, channel, len(want))] == want
    said = " ".join(want)
    assert "pod web-7d9f8-x2kqp/app: CrashLoopBackOff, exit 1, 5 restarts" in said
    assert "Warning BackOff on Pod web-7d9f8-x2kqp (7x)" in said
    assert sent.detail.startswith(f"sent {len(want)} line")


async def test_privmsg_when_notice_is_false(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    await provider.send(
        sample("start"), destination(ircd.recipient(channel), nick=nick, notice=False)
    )
    heard = await listener.wait_for_async(from_bot(nick, channel))
    assert heard.command == "PRIVMSG"
    assert f" PRIVMSG {channel} :" in heard.raw


async def test_two_sends_reuse_one_connection(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    where = destination(ircd.recipient(channel), nick=nick)
    await provider.send(sample("start"), where)
    await provider.send(sample("success"), where)

    await heard_from(listener, nick, channel, 2)
    joins = [s for s in listener.seen if s.command == "JOIN" and s.nick == nick]
    assert len(joins) == 1, listener.seen
    assert not listener.saw("QUIT", nick)
    assert provider.connections == [(HOST, ircd.port, nick)]


async def test_one_connection_serves_each_destination_channel(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    other = unique("#other")
    listener.join(other)
    await provider.send(sample("start"), destination(ircd.recipient(channel), nick=nick))
    await provider.send(sample("success"), destination(ircd.recipient(other), nick=nick))

    [first] = await heard_from(listener, nick, channel, 1)
    [second] = await heard_from(listener, nick, other, 1)
    assert "started" in first.text
    assert "succeeded" in second.text
    assert provider.connections == [(HOST, ircd.port, nick)]


async def test_long_message_is_split_under_the_line_limit(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    words = " ".join(f"wörd{i}-日本-👩‍💻" for i in range(150))
    message = dataclasses.replace(sample("failure"), message=words)
    want = expected_lines(message, nick, channel)
    assert len(want) >= 4

    await provider.send(message, destination(ircd.recipient(channel), nick=nick, linesPerSecond=20))

    got = await heard_from(listener, nick, channel, len(want))
    assert [h.text for h in got] == want
    for heard in got:
        # What the listener got on the wire, server prefix included, CR LF added back.
        assert len(heard.raw.encode()) + 2 <= MAX_LINE_BYTES, heard.raw
    assert words in " ".join(h.text for h in got).replace(" | ", " ")


async def test_flood_control_spaces_the_lines(provider: IrcProvider, nick: str) -> None:
    channel = unique("#flood-")
    # Without the server's own throttling, only the provider's pacing can make this take time.
    with NgircdServer(penalties=False) as server:
        where = destination(server.recipient(channel), nick=nick, linesPerSecond=4)
        await provider.send(sample("start"), where)  # connect and join first: time only lines
        message = dataclasses.replace(sample("failure"), message="x " * 700)
        count = len(expected_lines(message, nick, channel))
        assert count >= 4

        started = time.monotonic()
        await provider.send(message, where)
        elapsed = time.monotonic() - started

    # The first line may go at once (a token saved since the start message), then 4 a second.
    assert elapsed >= (count - 1) / 4 - 0.05, (count, elapsed)


# injection safety


async def test_values_cannot_inject_irc_commands(
    ircd: NgircdServer, provider: IrcProvider, channel: str, nick: str
) -> None:
    other = unique("#other-")
    with IrcListener(ircd.host, ircd.port, [channel, other], nick=unique("ear")) as listener:
        message = dataclasses.replace(
            sample("failure"),
            reason="Boom\r\nQUIT :x",
            message=f"oops\nPRIVMSG {other} :pwned\rJOIN #evil\x00",
        )
        where = destination(ircd.recipient(channel), nick=nick)
        await provider.send(message, where)
        await provider.send(sample("cancel"), where)  # IRC keeps order: this comes last

        texts = [h.text for h in await heard_from(listener, nick, channel, 2)]
        assert "Boom QUIT :x" in texts[0]
        assert f"oops PRIVMSG {other} :pwned JOIN #evil" in texts[0]
        assert "was canceled" in texts[-1]
        assert not [h for h in listener.messages() if h.target == other]
        assert not listener.saw("QUIT", nick)
        assert not listener.saw("JOIN", nick, "#evil")
        assert nick in listener.names(channel)
        assert provider.connections == [(HOST, ircd.port, nick)]


# nicks, passwords, NickServ, TLS


async def test_nick_collision_gets_a_suffix(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    with IrcListener(ircd.host, ircd.port, nick=nick):  # someone already holds our nick
        sent = await provider.send(
            sample("success"), destination(ircd.recipient(channel), nick=nick)
        )
        heard = await listener.wait_for_async(lambda h: h.target == channel)
    assert heard.nick == f"{nick}_"
    assert sent.refs["nick"] == f"{nick}_"


async def test_default_nick_fits_a_stock_server(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str
) -> None:
    """`deploybell` has 10 characters: refused (432), cut to 9, and the send goes through."""
    sent = await provider.send(sample("success"), destination(ircd.recipient(channel)))
    heard = await listener.wait_for_async(lambda h: h.target == channel)
    assert heard.nick == "deploybel"
    assert sent.refs["nick"] == "deploybel"
    assert provider.connections == [(HOST, ircd.port, "deploybel")]


async def test_cut_nick_in_use_gets_a_suffix_that_still_fits(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str
) -> None:
    """The nick is too long (432), its cut is in use (433), so is the first suffix: `_2` fits."""
    with (
        IrcListener(ircd.host, ircd.port, nick="deploybel"),
        IrcListener(ircd.host, ircd.port, nick="deploybe_"),
    ):
        sent = await provider.send(sample("success"), destination(ircd.recipient(channel)))
        heard = await listener.wait_for_async(lambda h: h.target == channel)
    assert heard.nick == "deployb_2"
    assert sent.refs["nick"] == "deployb_2"


async def test_nick_at_the_limit_in_use_is_cut_for_its_suffix(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str
) -> None:
    """A 9-character nick in use: `nick_` has 10 and is refused (432), so the nick is cut."""
    nick = unique("ops")  # 9 characters
    with IrcListener(ircd.host, ircd.port, nick=nick):
        sent = await provider.send(
            sample("success"), destination(ircd.recipient(channel), nick=nick)
        )
        heard = await listener.wait_for_async(lambda h: h.target == channel)
    assert heard.nick == f"{nick[:8]}_"
    assert sent.refs["nick"] == f"{nick[:8]}_"


async def test_a_servers_nicklen_is_remembered_for_its_next_connection(
    provider: IrcProvider,
) -> None:
    """A server that allows 12 says so in ISUPPORT; the first connection learns it after the
    welcome (its nick was cut to 9 on the 432), the next one starts with 12 characters.
    """
    channel = unique("#len-")
    nick = "deploybell-prod"
    with (
        NgircdServer(max_nick_length=12) as server,
        IrcListener(server.host, server.port, [channel]) as listener,
    ):
        where = destination(server.recipient(channel), nick=nick)
        first = await provider.send(sample("start"), where)
        await provider.close()
        await listener.wait_until_async(lambda: listener.saw("QUIT", "deploybel"))
        second = await provider.send(sample("success"), where)
        heard = await heard_from(listener, "deploybell-p", channel, 1)
    assert first.refs["nick"] == "deploybel"
    assert second.refs["nick"] == "deploybell-p"
    assert "succeeded" in heard[0].text


async def test_server_password_and_default_nick(provider: IrcProvider) -> None:
    channel = unique("#locked-")
    with (
        NgircdServer(password="open sesame") as server,
        IrcListener(server.host, server.port, [channel], password="open sesame") as listener,
    ):
        await provider.send(
            sample("success"), destination(server.recipient(channel), {"password": "open sesame"})
        )
        heard = await listener.wait_for_async(lambda h: h.target == channel)
        assert heard.nick == "deploybel"  # the default nick, cut to the stock limit of 9

        with pytest.raises(PermanentDeliveryError, match="password") as refused:
            await provider.send(
                sample("success"),
                destination(server.recipient(channel), {"password": "wrong guess"}),
            )
        assert "wrong guess" not in str(refused.value)
        with pytest.raises(PermanentDeliveryError, match="password"):
            await provider.send(sample("success"), destination(server.recipient(channel)))


async def test_identifies_to_nickserv(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    services = IrcListener(ircd.host, ircd.port, nick="NickServ", answer="You are now identified.")
    with services:
        await provider.send(
            sample("success"),
            destination(ircd.recipient(channel), {"nickservPassword": "hunter2"}, nick=nick),
        )
        identify = await services.wait_for_async(lambda h: h.target == "NickServ")
        await listener.wait_for_async(from_bot(nick, channel))
    assert identify.nick == nick
    assert identify.command == "PRIVMSG"
    assert identify.text == f"IDENTIFY {nick} hunter2"


async def test_tls_with_the_servers_ca(provider: IrcProvider, nick: str) -> None:
    channel = unique("#tls-")
    with (
        NgircdServer(tls=True) as server,
        IrcListener(server.host, server.port, [channel]) as listener,
    ):
        await provider.send(
            sample("success"),
            destination(
                server.recipient(channel, tls=True), nick=nick, tls=True, caFile=server.ca_file
            ),
        )
        heard = await listener.wait_for_async(from_bot(nick, channel))
        assert "succeeded" in heard.text

        with pytest.raises(PermanentDeliveryError, match="not trusted"):
            await provider.send(
                sample("success"),
                destination(server.recipient(channel, tls=True), nick=unique("b"), tls=True),
            )


# channels that refuse


async def test_without_join_a_closed_channel_refuses_then_an_open_one_accepts(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    listener.send_raw(f"MODE {channel} +n")  # no messages from outside the channel
    await listener.wait_until_async(lambda: any(f"MODE {channel} +n" in r for r in listener.raw))
    # PRIVMSG: servers answer a NOTICE with nothing, not even an error (RFC 2812 3.3.2).
    where = destination(ircd.recipient(channel), nick=nick, join=False, notice=False)
    with pytest.raises(PermanentDeliveryError, match=f"refused the message to {channel}"):
        await provider.send(sample("success"), where)

    listener.send_raw(f"MODE {channel} -n")
    await listener.wait_until_async(lambda: any(f"MODE {channel} -n" in r for r in listener.raw))
    await provider.send(sample("success"), where)
    heard = await listener.wait_for_async(from_bot(nick, channel))
    assert "succeeded" in heard.text
    assert not listener.saw("JOIN", nick)


async def test_invite_only_channel_is_permanent(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    listener.send_raw(f"MODE {channel} +i")
    await listener.wait_until_async(lambda: any(f"MODE {channel} +i" in r for r in listener.raw))
    with pytest.raises(PermanentDeliveryError, match=f"join {channel}"):
        await provider.send(sample("success"), destination(ircd.recipient(channel), nick=nick))


# connections that fail


async def test_connection_refused_is_temporary(provider: IrcProvider) -> None:
    port = free_port()
    with pytest.raises(TemporaryDeliveryError, match=f"cannot connect to {HOST}:{port}"):
        await provider.send(sample("success"), destination(f"{HOST}:{port}#deploys"))


async def test_a_silent_server_times_out(provider: IrcProvider) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, never answer
        writer.close()

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    provider.connect_timeout = 1.0
    try:
        with pytest.raises(TemporaryDeliveryError, match="no welcome"):
            await provider.send(sample("success"), destination(f"{HOST}:{port}#deploys"))
    finally:
        server.close()
        await server.wait_closed()


async def test_a_server_that_stops_answering_after_the_welcome(provider: IrcProvider) -> None:
    async def wedged(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"USER ")
        writer.write(b":wedged.test 001 deploybell :Welcome\r\n")  # then silence: no JOIN echo
        await reader.read()
        writer.close()

    server = await asyncio.start_server(wedged, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    provider.reply_timeout = 1.0
    try:
        with pytest.raises(TemporaryDeliveryError, match="no answer from"):
            await provider.send(sample("success"), destination(f"{HOST}:{port}#deploys"))
        assert provider.connections == []
    finally:
        server.close()
        await server.wait_closed()


async def test_server_stopped_midway_then_back(provider: IrcProvider, nick: str) -> None:
    channel = unique("#restart-")
    server = NgircdServer().start()
    try:
        where = destination(server.recipient(channel), nick=nick)
        with IrcListener(server.host, server.port, [channel]) as listener:
            await provider.send(sample("start"), where)
            await listener.wait_for_async(from_bot(nick, channel))
            server.stop()

        with pytest.raises(TemporaryDeliveryError):
            await provider.send(sample("success"), where)
        assert provider.connections == []

        server.start()
        with IrcListener(server.host, server.port, [channel]) as listener:
            await provider.send(sample("success"), where)
            heard = await listener.wait_for_async(from_bot(nick, channel))
            assert "succeeded" in heard.text
    finally:
        server.cleanup()


async def test_connection_dropped_during_a_send_is_temporary(
    provider: IrcProvider, nick: str
) -> None:
    channel = unique("#drop-")
    server = NgircdServer().start()
    try:
        message = dataclasses.replace(sample("failure"), message="y " * 1500)
        where = destination(server.recipient(channel), nick=nick, linesPerSecond=2)
        with IrcListener(server.host, server.port, [channel]) as listener:
            sending = asyncio.create_task(provider.send(message, where))
            await listener.wait_for_async(from_bot(nick, channel))
            server.stop()
        with pytest.raises(TemporaryDeliveryError, match="closed the connection"):
            await asyncio.wait_for(sending, 30)
    finally:
        server.cleanup()


# pool lifecycle


async def test_idle_connection_is_closed(
    ircd: NgircdServer, listener: IrcListener, provider: IrcProvider, channel: str, nick: str
) -> None:
    provider.idle_timeout = 0.5
    await provider.send(sample("success"), destination(ircd.recipient(channel), nick=nick))
    quit_ = await listener.wait_until_async(
        lambda: next((s for s in listener.seen if s.command == "QUIT" and s.nick == nick), None)
    )
    assert "idle" in quit_.arguments[0]
    assert provider.connections == []


async def test_close_quits(
    ircd: NgircdServer, listener: IrcListener, channel: str, nick: str
) -> None:
    provider = IrcProvider()
    await provider.send(sample("success"), destination(ircd.recipient(channel), nick=nick))
    await provider.close()
    await listener.wait_until_async(lambda: listener.saw("QUIT", nick))
    assert provider.connections == []


# validation and masking


@pytest.mark.parametrize(
    ("recipient", "options", "named"),
    [
        ("irc.invalid#ops", {"nick": "two words"}, "irc.nick"),
        ("irc.invalid#ops", {"nick": 7}, "irc.nick"),
        ("irc.invalid#ops", {"notice": "yes"}, "irc.notice"),
        ("irc.invalid#ops", {"join": 1}, "irc.join"),
        ("irc.invalid#ops", {"tls": "true"}, "irc.tls"),
        ("irc.invalid#ops", {"linesPerSecond": 0}, "irc.linesPerSecond"),
        ("irc.invalid#ops", {"linesPerSecond": True}, "irc.linesPerSecond"),
        ("irc.invalid", {}, "recipient"),
        ("irc.invalid:99999#ops", {}, "recipient"),
    ],
)
async def test_bad_options_are_permanent_and_named(
    provider: IrcProvider, recipient: str, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(PermanentDeliveryError, match=named):
        await provider.send(sample("success"), destination(recipient, **options))


async def test_secrets_never_appear_in_errors(provider: IrcProvider) -> None:
    secret = {"password": "pa55-w0rd-value"}
    with pytest.raises(PermanentDeliveryError) as bad_nick:
        await provider.send(
            sample("success"), destination("irc.invalid#ops", secret, nick="x pa55-w0rd-value")
        )
    assert "pa55-w0rd-value" not in str(bad_nick.value)
    assert "***" in str(bad_nick.value)

    with pytest.raises(PermanentDeliveryError, match="'password' contains control characters"):
        await provider.send(
            sample("success"), destination("irc.invalid#ops", {"password": "a\r\nQUIT"})
        )


@pytest.mark.parametrize(
    ("nick", "attempt", "nicklen", "expected"),
    [
        ("deploybell", 0, None, "deploybell"),
        ("deploybell", 0, 9, "deploybel"),
        ("deploybell", 1, None, "deploybell_"),
        ("deploybell", 1, 9, "deploybe_"),
        ("deploybell", 2, 9, "deployb_2"),
        ("deploybell", 9, 30, "deploybell_9"),
        ("ab", 3, 9, "ab_3"),
        ("abcdefghi", 2, 2, "a_2"),  # never cut to nothing
    ],
)
def test_nick_variants_fit_the_limit(
    nick: str, attempt: int, nicklen: int | None, expected: str
) -> None:
    assert variant(nick, attempt, nicklen) == expected
