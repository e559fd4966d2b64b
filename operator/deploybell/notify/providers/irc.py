"""IRC through jaraco `irc`'s asyncio client: one pooled connection per server and nick.

Options (spec.irc): `nick` (default deploybell), `notice` (default true; else PRIVMSG), `join`
(default true), `tls`, `linesPerSecond` (default 1), `caFile` (or Secret key `caFile`). Optional
Secret keys: `password` (server PASS), `saslPassword` (IRCv3 SASL PLAIN as the account named like
`irc.nick`, before registering), `nickservPassword` (IDENTIFY to NickServ after the welcome).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import base
from deploybell.notify.providers._irc_lines import lines
from deploybell.notify.providers._irc_session import Session

DEFAULT_NICK = "deploybell"
DEFAULT_PORT = 6667
TLS_PORT = 6697
MAX_CHANNEL_LENGTH = 50
_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")
# RFC 2812 nick characters; servers cap the length (see _irc_session: NICKLEN and fallbacks).
_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,63}")


def _recipient_problem(recipient: str) -> str | None:
    try:
        parse_recipient(recipient)
    except ValueError as e:
        return str(e)
    return None


RULES = ProviderRules(
    type="irc",
    title="IRC",
    doc="NOTICEs (or PRIVMSGs) in a channel, over one pooled connection per server and nick.",
    recipients=Recipients(
        syntax="'host[:port]#channel' (e.g. 'irc.libera.chat:6697#ops')",
        pattern=r"[A-Za-z0-9.-]+(:[0-9]+)?#[^\s,]+",
        check=_recipient_problem,
        valid=("irc.libera.chat#ops", "irc.example.org:6697#deploys", "localhost:6667##ops"),
        invalid=("#ops", "irc.example.org", "irc.example.org:99999#ops", "irc.example.org#a b"),
        doc="a channel on a server; TLS on port 6697 or with `irc.tls: true`",
    ),
    options=(
        Field(
            "nick",
            "string",
            f"Nickname to connect as (default {DEFAULT_NICK}; shortened to the server's NICKLEN).",
            min_length=1,
            max_length=64,
            pattern=r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*",
            expected="an IRC nick (a letter or one of []\\`_^{|} first, then also digits and -)",
        ),
        Field(
            "notice",
            "boolean",
            "Send messages as NOTICE rather than PRIVMSG. Defaults to true.",
            default=True,
        ),
        Field(
            "join",
            "boolean",
            "Join the channel before sending; turn off for channels that accept messages from "
            "outside. Defaults to true.",
            default=True,
        ),
        Field("tls", "boolean", "Connect with TLS (default: only on port 6697)."),
        Field(
            "linesPerSecond",
            "number",
            "At most this many lines per second to the server (flood control). Defaults to 1.",
            minimum=0,
            exclusive_minimum=True,
            maximum=100,
        ),
        Field(
            "caFile",
            "string",
            "Path of a CA bundle inside the operator's pod (mounted there by its admin) trusted "
            "for the server's TLS certificate; default: the system's trust store.",
            min_length=1,
            max_length=4096,
        ),
    ),
    secret_keys=(
        SecretKey("password", "The server password (PASS)."),
        SecretKey(
            "saslPassword",
            "Logs in with IRCv3 SASL PLAIN before registering; the account is irc.nick.",
        ),
        SecretKey("nickservPassword", "Sent to NickServ as IDENTIFY after connecting."),
    ),
    setup="No Secret needed for public channels. Control characters are stripped, so manifest "
    "values cannot inject IRC commands. The nick is cut to the server's `NICKLEN` (servers with "
    "RFC 1459's limit of 9 refuse `deploybell`, so it becomes `deploybel`) and given a suffix "
    "(`_`, `_2`, …) while it is in use. `saslPassword` logs in with IRCv3 SASL PLAIN before "
    "registering (the account is `irc.nick`; a server that offers no SASL is a retried error, a "
    "refused password a permanent one); `nickservPassword` is sent to NickServ as `IDENTIFY` "
    "after the welcome. `caFile` may also come from the Secret.",
)


class IrcProvider:
    """Sends each message as one or more NOTICE/PRIVMSG lines over a pooled connection."""

    rules: ClassVar[ProviderRules] = RULES

    idle_timeout: float = 60.0
    """Seconds a connection stays open after its last message."""
    connect_timeout: float = 20.0
    """Seconds to connect, register (RPL_WELCOME) and identify."""
    reply_timeout: float = 20.0
    """Seconds to wait for the JOIN echo and for the PONG that confirms the lines arrived."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[Any, ...], Session] = {}
        self._locks: dict[tuple[Any, ...], asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._quitting: set[asyncio.Task[None]] = set()
        # The NICKLEN each server announced: a new connection starts with a nick that fits.
        self._nicklens: dict[tuple[str, int], int] = {}

    @property
    def connections(self) -> list[tuple[str, int, str]]:
        """The open connections as (host, port, nick in use): for `notify-test` and tests."""
        return [
            (s.settings.target.host, s.settings.target.port, s.nickname)
            for s in self._sessions.values()
            if s.alive
        ]

    async def send(
        self, message: Message, destination: base.Destination, override: base.Title | None = None
    ) -> base.Sent:
        try:
            return await self._send(message, destination, override)
        except base.DeliveryError as e:
            raise base.masked(e, destination.secret.values()) from None

    async def close(self) -> None:
        """QUIT every pooled connection."""
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.quit("deploybell: closing") for s in sessions), *self._quitting)

    async def _send(
        self, message: Message, destination: base.Destination, override: base.Title | None
    ) -> base.Sent:
        try:
            settings = irc_settings(destination.recipient, destination.options, destination.secret)
        except ValueError as e:
            raise base.PermanentDeliveryError(f"irc: {e}") from None
        self._forget_other_loops()
        lock = self._locks.setdefault(settings.key, asyncio.Lock())
        async with lock:
            session = await self._session(settings)
            session.stop_idle_timer()
            channel = settings.target.channel
            try:
                if settings.join:
                    await session.join(channel)
                texts = lines(
                    message,
                    override,
                    command=settings.command,
                    target=channel,
                    nick=session.nickname,
                )
                await session.deliver(texts, settings.lines_per_second, channel, settings.command)
            except TimeoutError:
                # Silence on an open socket: the link is wedged or half-open; start afresh.
                self._sessions.pop(settings.key, None)
                await session.quit("deploybell: no answer")
                raise base.TemporaryDeliveryError(
                    f"irc: no answer from {session.where} within {self.reply_timeout:g}s"
                ) from None
            finally:
                self._remember_nicklen(session)
                if session.alive:
                    session.start_idle_timer(self.idle_timeout, lambda: self._expire(session))
        where = f"{channel} on {settings.target.host}"
        return base.Sent(
            refs={"server": session.where, "channel": channel, "nick": session.nickname},
            detail=f"sent {len(texts)} line{'s' if len(texts) != 1 else ''} to {where}",
        )

    async def _session(self, settings: IrcSettings) -> Session:
        session = self._sessions.get(settings.key)
        if session is not None and session.alive:
            return session
        if session is not None:
            await session.quit("deploybell: reconnecting")
        server = (settings.target.host.lower(), settings.target.port)
        session = Session(
            settings,
            asyncio.get_running_loop(),
            self.connect_timeout,
            self.reply_timeout,
            nicklen=self._nicklens.get(server),
        )
        try:
            await session.open()
        except BaseException:
            self._remember_nicklen(session)
            await session.quit("deploybell: giving up")
            raise
        self._sessions[settings.key] = session
        return session

    def _remember_nicklen(self, session: Session) -> None:
        if session.nicklen is not None:
            target = session.settings.target
            self._nicklens[(target.host.lower(), target.port)] = session.nicklen

    def _expire(self, session: Session) -> None:
        key = session.settings.key
        if self._sessions.get(key) is session and not self._locks[key].locked():
            del self._sessions[key]
            task = session.loop.create_task(session.quit("deploybell: idle"))
            self._quitting.add(task)
            task.add_done_callback(self._quitting.discard)

    def _forget_other_loops(self) -> None:
        """Connections and locks belong to one event loop; a new loop starts a new pool."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            for session in self._sessions.values():
                session.stop_idle_timer()
            self._sessions, self._locks, self._loop = {}, {}, loop
            self._quitting = set()


def _lines(preview: base.Preview) -> tuple[IrcSettings, list[str]]:
    settings = irc_settings(preview.recipient, preview.options, {})
    texts = lines(
        preview.message,
        preview.override,
        command=settings.command,
        target=settings.target.channel,
        nick=settings.nick,
    )
    return settings, texts


def _preview(preview: base.Preview) -> list[str]:
    settings, texts = _lines(preview)
    target = settings.target
    tls = "with TLS " if target.tls else ""
    join = f", JOIN {target.channel}" if settings.join else ""
    return [
        f"to {preview.recipient}: connect to {target.host}:{target.port} {tls}as {settings.nick}"
        f"{join}, then {len(texts)} line(s):",
        "(control characters shown as \\xNN: \\x03 starts a colour, \\x0f resets it)",
        *(f"{settings.command} {target.channel} :{_visible(line)}" for line in texts),
    ]


def _visible(text: str) -> str:
    return "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)


def _render(preview: base.Preview) -> list[str]:
    return _lines(preview)[1]


PROVIDER = base.ProviderType(IrcProvider, _render, _preview)


@dataclass(frozen=True)
class IrcTarget:
    """Where an IRC recipient points: server, port, channel and whether to use TLS."""

    host: str
    port: int
    channel: str
    tls: bool


def parse_recipient(recipient: str, tls: bool | None = None) -> IrcTarget:
    """Parse `host[:port]#channel`.

    TLS when `tls` is true or, when it is not given, when the port is 6697; with `tls` true and no
    port the port is 6697, otherwise 6667. Raises ValueError saying what is wrong.
    """
    where, hash_, name = recipient.partition("#")
    channel = hash_ + name
    if not hash_ or not name:
        raise ValueError(f"an irc recipient must be 'host[:port]#channel', got {recipient!r}")
    if len(channel) > MAX_CHANNEL_LENGTH or any(
        c in " ,\x07" or unicodedata.category(c) == "Cc" for c in channel
    ):
        raise ValueError(
            f"an irc channel must be at most {MAX_CHANNEL_LENGTH} characters without spaces, "
            f"commas or control characters, got {channel!r}"
        )
    host, port = _host_port(where, recipient)
    secure = tls if tls is not None else port == TLS_PORT
    if port is None:
        port = TLS_PORT if secure else DEFAULT_PORT
    return IrcTarget(host=host.strip("[]"), port=port, channel=channel, tls=secure)


def _host_port(where: str, recipient: str) -> tuple[str, int | None]:
    host, colon, port_text = where.rpartition(":") if not where.endswith("]") else ("", "", "")
    if not colon:
        host = where
    if not _HOST.fullmatch(host):
        raise ValueError(f"an irc recipient needs a host name before the '#', got {recipient!r}")
    if not colon:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"an irc port must be a number from 1 to 65535, got {port_text!r}")
    return host, int(port_text)


@dataclass(frozen=True)
class IrcSettings:
    """One destination's recipient, options and credentials, validated."""

    target: IrcTarget
    nick: str
    command: str  # NOTICE | PRIVMSG
    join: bool
    lines_per_second: float
    password: str  # server PASS
    identify: str  # sent to NickServ
    sasl_password: str  # SASL PLAIN, account = nick
    ca_file: str | None

    @property
    def key(self) -> tuple[str, int, bool, str, str | None, str]:
        """What one pooled connection serves; credentials only as a digest, never shown."""
        secrets = f"{self.password}\0{self.identify}\0{self.sasl_password}"
        digest = hashlib.sha256(secrets.encode()).hexdigest()[:16]
        t = self.target
        return (t.host.lower(), t.port, t.tls, self.nick, self.ca_file, digest)


def irc_settings(
    recipient: str, options: Mapping[str, Any], secret: Mapping[str, str]
) -> IrcSettings:
    """Validate the recipient, spec.irc and the Secret; ValueError names the bad key."""
    tls = _option(options, "tls", bool, None)
    try:
        target = parse_recipient(recipient, tls)
    except ValueError as e:
        raise ValueError(f"recipient: {e}") from None
    nick = _option(options, "nick", str, DEFAULT_NICK)
    if not _NICK.fullmatch(nick):
        raise ValueError(f"option 'irc.nick' is not a valid IRC nick: {nick!r}")
    rate = _option(options, "linesPerSecond", (int, float), 1)
    if isinstance(rate, bool) or not 0 < rate <= 100:
        raise ValueError(
            f"option 'irc.linesPerSecond' must be a number above 0 and at most 100, got {rate!r}"
        )
    for name in ("password", "nickservPassword", "saslPassword"):
        if any(unicodedata.category(c) == "Cc" for c in secret.get(name, "")):
            raise ValueError(f"Secret key {name!r} contains control characters")
    return IrcSettings(
        target=target,
        nick=nick,
        command="NOTICE" if _option(options, "notice", bool, True) else "PRIVMSG",
        join=_option(options, "join", bool, True),
        lines_per_second=float(rate),
        password=secret.get("password", ""),
        identify=secret.get("nickservPassword", ""),
        sasl_password=secret.get("saslPassword", ""),
        ca_file=secret.get("caFile") or _option(options, "caFile", str, "") or None,
    )


def _option(options: Mapping[str, Any], name: str, kind: Any, default: Any) -> Any:
    value = options.get(name)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ValueError(f"option 'irc.{name}' has the wrong type: {value!r}")
    return value
