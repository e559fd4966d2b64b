"""One IRC connection for the IRC provider: connect, register (nick fallbacks, PASS, SASL PLAIN,
NickServ), JOIN, paced sends confirmed by PING/PONG, QUIT. The provider (irc.py) pools these by
server and nick; this module knows nothing of messages or ledgers.

Nick length: RFC 1459 servers (ngircd's default configuration among them) allow 9 characters, and
say so only after the welcome, in ISUPPORT `NICKLEN`. A nick they refuse as erroneous (432) is cut
to 9 and tried again; a nick in use (433) gets a suffix, cut to fit; the NICKLEN a server announced
is kept by the provider, so its next connection starts with a nick that fits.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from irc.client import Event, NickMask
from irc.client_aio import AioConnection, AioReactor, IrcProtocol
from irc.connection import AioFactory

from deploybell.notify.providers import _irc_sasl
from deploybell.notify.providers.base import (
    DeliveryError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)

if TYPE_CHECKING:
    from deploybell.notify.providers.irc import IrcSettings

MAX_NICK_ATTEMPTS = 9
# RFC 1459/2812: nicks of up to 9 characters are valid everywhere.
MIN_NICKLEN = 9
USERNAME = "deploybell"
_NICK_TAKEN = frozenset({"nicknameinuse", "nickcollision", "unavailresource"})
# Join refusals; True: a human must change something (invite, ban, key), False: try again.
_JOIN_REFUSALS = {
    "inviteonlychan": True,
    "bannedfromchan": True,
    "badchannelkey": True,
    "badchanmask": True,
    "nochanmodes": True,  # 477, also "you need a registered nick" on many networks
    "nosuchchannel": True,
    "channelisfull": False,
    "toomanychannels": False,
}
_SEND_REFUSALS = frozenset({"cannotsendtochan", "nosuchchannel", "nosuchnick"})
_WATCHED = frozenset(
    {"welcome", "passwdmismatch", "yourebannedcreep", "erroneusnickname", "error", "disconnect"}
    | {"featurelist"}
    | {"join", "pong", "privnotice", "loggedin"}
    | _NICK_TAKEN
    | _JOIN_REFUSALS.keys()
    | _SEND_REFUSALS
    | _irc_sasl.EVENTS
)
_pings = itertools.count(1)


class _Protocol(IrcProtocol):  # type: ignore[misc]
    """The library's protocol, plus a future that tells when the socket is really gone."""

    def __init__(self, connection: Any, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(connection, loop)
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.lost.done():
            self.lost.set_result(None)


class _Connection(AioConnection):  # type: ignore[misc]
    protocol_class = _Protocol


class _Reactor(AioReactor):  # type: ignore[misc]
    connection_class = _Connection


class Session:
    """One registered connection; the provider serialises its use with a lock per key."""

    def __init__(
        self,
        settings: IrcSettings,
        loop: asyncio.AbstractEventLoop,
        connect_timeout: float,
        reply_timeout: float,
        nicklen: int | None = None,
    ) -> None:
        self.settings = settings
        self.nicklen = nicklen
        """The server's NICKLEN: known from an earlier connection, or read from its ISUPPORT."""
        self.loop = loop
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self.reactor = _Reactor(loop=loop, on_connect=self._on_connect)
        self.connection = self.reactor.server()
        self.where = f"{settings.target.host}:{settings.target.port}"
        self.sasl = (
            _irc_sasl.SaslPlain(self.connection, settings.nick, settings.sasl_password, self.where)
            if settings.sasl_password
            else None
        )
        # Every event the session acts on is queued from the moment the socket opens, so a
        # reply can never slip past between sending a command and waiting for its answer.
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.reactor.add_global_handler("all_events", self._on_event, -10)
        self.channels: set[str] = set()
        self.registered = False
        self.bucket = _TokenBucket(settings.lines_per_second)
        self._idle: asyncio.TimerHandle | None = None

    @property
    def alive(self) -> bool:
        return self.registered and bool(self.connection.is_connected())

    @property
    def nickname(self) -> str:
        return str(self.connection.get_nickname())

    def _on_connect(self, *_: Any) -> None:
        """Before NICK/USER: CAP LS makes the server wait for CAP END to finish registering."""
        if self.sasl is not None:
            self.sasl.start()

    def _on_event(self, _connection: Any, event: Event) -> None:
        if event.type == "disconnect":
            self.registered = False
            self.channels.clear()
        elif event.type in ("part", "kick"):
            who = event.arguments[0] if event.type == "kick" else NickMask(event.source).nick
            if who == self.nickname:
                self.channels.discard(str(event.target).lower())
        elif event.type == "featurelist":
            self.nicklen = _nicklen(event.arguments) or self.nicklen
        if event.type in _WATCHED:
            self.events.put_nowait(event)

    async def open(self) -> None:
        """Connect, register (handling nick collisions) and identify to NickServ."""
        s, target = self.settings, self.settings.target
        factory = AioFactory(ssl=_tls_context(s)) if target.tls else AioFactory()
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self.connection.connect(
                    target.host,
                    target.port,
                    fit_nick(s.nick, self.nicklen),
                    # A trailing parameter: the library sends `PASS :secret`, spaces and all.
                    password=f":{s.password}" if s.password else None,
                    username=USERNAME,
                    ircname="deploybell notifications",
                    connect_factory=factory,
                )
                await self._register()
                if s.identify:
                    await self._identify()
        except TimeoutError:
            raise TemporaryDeliveryError(
                f"irc: {self.where}: no welcome from the server within {self.connect_timeout:g}s"
            ) from None
        except ssl.SSLCertVerificationError as e:
            raise PermanentDeliveryError(
                f"irc: the TLS certificate of {self.where} is not trusted ({e.verify_message}); "
                "set caFile to the CA that signed it"
            ) from None
        except OSError as e:
            raise TemporaryDeliveryError(f"irc: cannot connect to {self.where}: {e}") from None

    async def _register(self) -> None:
        """Wait for the welcome, trying shorter or suffixed nicks while the server refuses ours."""
        nick, attempt = self.settings.nick, 0
        tried = fit_nick(nick, self.nicklen)
        while True:
            event = await self._next()
            reason = " ".join(str(a) for a in event.arguments[1:])
            if event.type == "welcome":
                if self.sasl is not None and not self.sasl.done:
                    raise self.sasl.unavailable("it registered us without CAP negotiation")
                self.registered = True
                return
            if self.sasl is not None and event.type in _irc_sasl.EVENTS:
                self.sasl.feed(event)
                continue
            if event.type in _NICK_TAKEN:
                attempt += 1
                if attempt > MAX_NICK_ATTEMPTS:
                    raise TemporaryDeliveryError(
                        f"irc: {self.where}: the nick {nick!r} and its "
                        f"{MAX_NICK_ATTEMPTS} variants are all in use"
                    )
            elif event.type == "erroneusnickname":
                if len(tried) <= MIN_NICKLEN:
                    # Short enough for any server: its characters are what the server refuses.
                    raise PermanentDeliveryError(
                        f"irc: {self.where} refused option 'irc.nick' {tried!r}: {reason}"
                    )
                self.nicklen = MIN_NICKLEN  # too long, most likely: cut to what all accept
            elif event.type in ("passwdmismatch", "yourebannedcreep", "error"):
                raise _refusal(event, self.where, reason)
            else:
                continue
            tried = variant(nick, attempt, self.nicklen)
            self.connection.nick(tried)

    async def _identify(self) -> None:
        """IDENTIFY to NickServ; wait briefly for its answer (a +r channel needs it)."""
        s = self.settings
        self.connection.privmsg("NickServ", f"IDENTIFY {s.nick} {s.identify}")
        try:
            async with asyncio.timeout(5):
                while not _from_nickserv(await self._next()):
                    pass
        except TimeoutError:
            return  # no NickServ answered: carry on, the channel will say if it minds

    async def join(self, channel: str) -> None:
        """JOIN unless already in; wait for the server's JOIN echo."""
        if channel.lower() in self.channels:
            return
        self._drain()
        self.connection.join(channel)
        parted = False
        async with asyncio.timeout(self.reply_timeout):
            while True:
                event = await self._next()
                mine = event.type == "join" and NickMask(event.source).nick == self.nickname
                if mine and str(event.target).lower() == channel.lower():
                    self.channels.add(channel.lower())
                    return
                if event.type not in _JOIN_REFUSALS or not _about(event, channel):
                    continue
                if event.type == "toomanychannels" and self.channels and not parted:
                    # Channels of earlier messages are kept joined; make room and try again.
                    for other in sorted(self.channels):
                        self.connection.part(other)
                    self.channels.clear()
                    self.connection.join(channel)
                    parted = True
                    continue
                kind = (
                    PermanentDeliveryError if _JOIN_REFUSALS[event.type] else TemporaryDeliveryError
                )
                raise kind(
                    f"irc: {self.where} refused to let us join {channel}: {event.arguments[-1]}"
                )

    async def deliver(self, texts: list[str], rate: float, channel: str, command: str) -> None:
        """Send the lines to `channel` within the flood limit, then PING and wait for the PONG.

        The PONG proves the server has read every line; refusals (404 and the like) come
        before it. The channel and command are the destination's: a shared connection serves
        every channel and Notification that use the same server and nick.
        """
        send = self.connection.notice if command == "NOTICE" else self.connection.privmsg
        self.bucket.rate = rate
        self._drain()
        for done, text in enumerate(texts):
            await self.bucket.take()
            if not self.connection.is_connected():
                raise TemporaryDeliveryError(
                    f"irc: {self.where} closed the connection after {done} of {len(texts)} lines"
                )
            send(channel, text)
        token = f"deploybell-{next(_pings)}"
        self.connection.ping(token)
        async with asyncio.timeout(self.reply_timeout):
            while True:
                event = await self._next()
                if event.type == "pong" and event.arguments[-1:] == [token]:
                    return
                if event.type in _SEND_REFUSALS and _about(event, channel):
                    raise PermanentDeliveryError(
                        f"irc: {self.where} refused the message to {channel}: {event.arguments[-1]}"
                    )

    async def _next(self) -> Event:
        """The next watched event; a dropped connection ends the wait as a temporary error."""
        event = await self.events.get()
        if event.type == "disconnect":
            raise TemporaryDeliveryError(f"irc: {self.where} closed the connection")
        return event

    def _drain(self) -> None:
        while not self.events.empty():
            event = self.events.get_nowait()
            if event.type == "disconnect":
                self.events.put_nowait(event)
                return

    def stop_idle_timer(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def start_idle_timer(self, seconds: float, expire: Callable[[], None]) -> None:
        self.stop_idle_timer()
        self._idle = self.loop.call_later(seconds, expire)

    async def quit(self, reason: str) -> None:
        """QUIT and wait (briefly) until the socket is closed."""
        self.stop_idle_timer()
        self.registered = False
        protocol = getattr(self.connection, "protocol", None)
        if self.connection.is_connected():
            self.connection.disconnect(reason)
        if isinstance(protocol, _Protocol):
            try:
                async with asyncio.timeout(5):
                    await asyncio.shield(protocol.lost)
            except TimeoutError:
                self.connection.transport.abort()
        self.reactor.remove_global_handler("all_events", self._on_event)


class _TokenBucket:
    """Flood control: at most `rate` lines a second, one line of burst."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = 1.0
        self._stamp = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(1.0, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self._tokens) / self.rate)


def fit_nick(nick: str, nicklen: int | None) -> str:
    """The nick cut to the server's NICKLEN (unknown: as it is)."""
    return nick if nicklen is None else nick[:nicklen]


def variant(nick: str, attempt: int, nicklen: int | None) -> str:
    """Attempt 0 is the nick itself, then `deploybell_`, `deploybell_2`, …, each cut to fit."""
    if attempt == 0:
        return fit_nick(nick, nicklen)
    suffix = "_" if attempt == 1 else f"_{attempt}"
    room = len(nick) if nicklen is None else nicklen - len(suffix)
    return nick[: max(1, room)] + suffix


def _nicklen(arguments: list[str]) -> int | None:
    """NICKLEN from one ISUPPORT (005) line's tokens, when it has a usable one."""
    for token in arguments:
        name, _, value = str(token).partition("=")
        if name.upper() == "NICKLEN" and value.isascii() and value.isdigit():
            return max(1, int(value))
    return None


def _from_nickserv(event: Event) -> bool:
    """NickServ's answer to IDENTIFY, a 900 (logged in), or the server saying there is none."""
    if event.type == "privnotice":
        return bool(str(NickMask(event.source).nick).lower() == "nickserv")
    if event.type == "nosuchnick":
        return _about(event, "NickServ")
    return bool(event.type == "loggedin")


def _about(event: Event, channel: str) -> bool:
    return bool(event.arguments) and str(event.arguments[0]).lower() == channel.lower()


def _refusal(event: Event, where: str, reason: str) -> DeliveryError:
    """Why the server would not register us: a wrong password or a ban is for a human."""
    text = str(event.target) if event.type == "error" else reason
    if event.type in ("passwdmismatch", "yourebannedcreep") or "password" in text.lower():
        return PermanentDeliveryError(
            f"irc: {where} refused the connection (check Secret key 'password'): {text}"
        )
    return TemporaryDeliveryError(f"irc: {where} closed the connection: {text}")


def _tls_context(settings: IrcSettings) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as e:
        raise PermanentDeliveryError(f"irc: cannot load caFile {settings.ca_file!r}: {e}") from None
