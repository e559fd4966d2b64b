"""A real IRC server (ngircd) on 127.0.0.1 and an independent listener built on the `irc` library;
importable without pytest so the end-to-end tests and the demo can reuse them.

    server = NgircdServer(password="s3cret", tls=True).start()  # .host .port .tls_port .ca_file
    listener = IrcListener(server.host, server.port, ["#deploys"], password="s3cret").start()
    ...
    heard = listener.wait_for(lambda h: h.target == "#deploys" and "web" in h.text)
    listener.stop()
    server.stop()
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import irc.client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from jaraco.stream import buffer

from tests.support.programs import require

HOST = "127.0.0.1"
NGIRCD = "ngircd"  # found by tests/support/programs.py (PATH, then sbin)
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


class NgircdServer:
    """ngircd in the foreground with its own config in a temporary directory.

    `password`: the server password every client must send (PASS). `tls`: also listen with TLS on
    `tls_port`, with a self-signed certificate for 127.0.0.1/localhost written to `ca_file`.
    `penalties=False`: no server-side flood throttling, so a client's own pacing shows as it is.
    `max_nick_length`: ngircd's MaxNickLength; by default its stock limit (RFC 1459's 9), as a
    server installed from the package has it.
    The ports stay the same across `stop()`/`start()`, so a restart looks like the same server.
    """

    def __init__(
        self,
        *,
        password: str | None = None,
        tls: bool = False,
        penalties: bool = True,
        max_nick_length: int | None = None,
    ) -> None:
        self.host = HOST
        self.password = password
        self.tls = tls
        self.penalties = penalties
        self.max_nick_length = max_nick_length
        self.program = require(NGIRCD, "ngircd")  # before anything is made: a clear error
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.name = "irc.deploybell.test"
        self._dir = Path(tempfile.mkdtemp(prefix="ngircd-peer-"))
        # ngircd started by root drops to `nobody`: it must still reach its files and PID file.
        self._dir.chmod(0o777)
        self.ca_file = str(self._dir / "cert.pem")
        self.log_path = self._dir / "ngircd.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def recipient(self, channel: str, *, tls: bool = False) -> str:
        """`127.0.0.1:<port>#channel`, the form a Notification's recipient takes."""
        return f"{self.host}:{self.tls_port if tls else self.port}{channel}"

    def start(self, timeout: float = 30.0) -> NgircdServer:
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [self.program, "--nodaemon", "--config", str(self._dir / "ngircd.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not _accepts(self.port):
            if self._proc.poll() is not None:
                raise RuntimeError(f"ngircd exited with {self._proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ngircd did not listen on {self.port} within {timeout}s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Terminate ngircd (it closes every client connection); the config stays for a restart."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> NgircdServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.cleanup()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _write_config(self) -> None:
        motd = self._dir / "ngircd.motd"
        motd.write_text("deploybell test server\n")
        password = f"\tPassword = {self.password}\n" if self.password else ""
        nicklen = f"\tMaxNickLength = {self.max_nick_length}\n" if self.max_nick_length else ""
        ssl = ""
        if self.tls:
            cert, key = _self_signed_certificate()
            Path(self.ca_file).write_bytes(cert)
            (self._dir / "key.pem").write_bytes(key)
            ssl = (
                "[SSL]\n"
                f"\tCertFile = {self.ca_file}\n"
                f"\tKeyFile = {self._dir / 'key.pem'}\n"
                f"\tPorts = {self.tls_port}\n"
            )
        for path in self._dir.iterdir():
            path.chmod(0o644)
        (self._dir / "ngircd.conf").write_text(
            "[Global]\n"
            f"\tName = {self.name}\n"
            "\tInfo = deploybell test server\n"
            "\tAdminInfo1 = deploybell tests\n"
            "\tAdminInfo2 = 127.0.0.1\n"
            "\tAdminEMail = tests@deploybell.invalid\n"
            f"\tListen = {self.host}\n"
            f"\tPorts = {self.port}\n"
            f"\tMotdFile = {motd}\n"
            f"\tPidFile = {self._dir / 'ngircd.pid'}\n"
            f"{password}"
            "[Limits]\n"
            "\tMaxConnectionsIP = 0\n"
            "\tMaxJoins = 0\n"
            f"{nicklen}"
            f"\tMaxPenaltyTime = {-1 if self.penalties else 0}\n"
            "\tPingTimeout = 120\n"
            "\tPongTimeout = 20\n"
            "[Options]\n"
            "\tPAM = no\n"
            "\tDNS = no\n"
            "\tIdent = no\n"
            f"{ssl}"
        )


@dataclass(frozen=True)
class Heard:
    """One NOTICE or PRIVMSG the listener received (in a channel or sent to it directly)."""

    command: str  # NOTICE | PRIVMSG
    nick: str  # the sender
    target: str  # a channel, or the listener's nick
    text: str
    raw: str  # the whole protocol line as it arrived, without CR LF


@dataclass(frozen=True)
class Seen:
    """A membership change the listener saw (JOIN, PART, QUIT, KICK, NICK), WELCOME or ERROR."""

    command: str
    nick: str
    target: str
    arguments: tuple[str, ...]


class IrcListener:
    """An IRC client in a thread (`irc.client.Reactor`) that joins channels and records traffic.

    `answer`: when set, every private PRIVMSG is answered with this NOTICE (e.g. as NickServ).
    """

    def __init__(
        self,
        host: str,
        port: int,
        channels: Iterable[str] = (),
        *,
        nick: str = "listener",
        password: str | None = None,
        answer: str | None = None,
    ) -> None:
        self.host, self.port, self.nick = host, port, nick
        self.channels = list(channels)
        self.password = password
        self.answer = answer
        self.heard: list[Heard] = []
        self.seen: list[Seen] = []
        self.raw: list[str] = []
        self._names: dict[str, set[str]] = {}
        self._names_done: set[str] = set()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._reactor = irc.client.Reactor()
        self._connection = self._reactor.server()
        self._connection.buffer_class = buffer.LenientDecodingLineBuffer
        self._thread: threading.Thread | None = None
        for kind in ("all_raw_messages", "pubnotice", "privnotice", "pubmsg", "privmsg"):
            self._reactor.add_global_handler(kind, self._on_message)
        for kind in ("welcome", "error", "join", "part", "quit", "kick", "nick", "namreply"):
            self._reactor.add_global_handler(kind, self._on_membership)
        self._reactor.add_global_handler("endofnames", self._on_membership)

    def start(self, timeout: float = 30.0) -> IrcListener:
        # `PASS :secret`: a trailing parameter, so a password may contain spaces.
        password = f":{self.password}" if self.password else None
        self._connection.connect(self.host, self.port, self.nick, password=password)
        self._thread = threading.Thread(target=self._run, name=f"irc-{self.nick}", daemon=True)
        self._thread.start()
        registered = self.wait_until(
            lambda: next((s for s in self.seen if s.command in ("WELCOME", "ERROR")), None),
            timeout,
        )
        if registered.command == "ERROR":
            self.stop()
            raise RuntimeError(f"{self.nick}: the server refused us: {registered.target}")
        for channel in self.channels:
            self.join(channel, timeout)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        with self._reactor.mutex:
            if self._connection.is_connected():
                self._connection.disconnect("listener done")

    def __enter__(self) -> IrcListener:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # acting

    def join(self, channel: str, timeout: float = 30.0) -> None:
        self.send_raw(f"JOIN {channel}")
        self.wait_until(lambda: self._saw("JOIN", self.nick, channel), timeout)

    def send_raw(self, line: str) -> None:
        """One raw command (e.g. `MODE #chan -n`), sent from the caller's thread."""
        with self._reactor.mutex:
            self._connection.send_raw(line)

    def names(self, channel: str, timeout: float = 30.0) -> set[str]:
        """The nicks in a channel right now (NAMES), without the @/+ prefixes."""
        key = channel.lower()
        with self._changed:
            self._names[key] = set()
            self._names_done.discard(key)
        self.send_raw(f"NAMES {channel}")
        self.wait_until(lambda: key in self._names_done, timeout)
        with self._changed:
            return set(self._names[key])

    # reading what arrived

    def messages(self) -> list[Heard]:
        with self._changed:
            return list(self.heard)

    def wait_for(
        self, predicate: Callable[[Heard], bool] = lambda _: True, timeout: float = 30.0
    ) -> Heard:
        """The first heard message matching `predicate`; AssertionError listing all if none."""
        return self.wait_until(lambda: next((h for h in self.heard if predicate(h)), None), timeout)

    async def wait_for_async(
        self, predicate: Callable[[Heard], bool] = lambda _: True, within: float = 30.0
    ) -> Heard:
        """`wait_for` without blocking the caller's event loop (the provider runs on it)."""
        return await asyncio.to_thread(self.wait_for, predicate, within)

    def wait_until(self, condition: Callable[[], T | None], timeout: float = 30.0) -> T:
        """The first truthy value of `condition` (checked whenever traffic arrives)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = condition()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.nick}: condition not met within {timeout:.0f}s; heard: "
                        f"{self.heard!r}; seen: {self.seen!r}; last lines: {self.raw[-20:]!r}"
                    )
                self._changed.wait(min(left, 0.5))

    async def wait_until_async(self, condition: Callable[[], T | None], within: float = 30.0) -> T:
        return await asyncio.to_thread(self.wait_until, condition, within)

    def saw(self, command: str, nick: str, target: str = "") -> bool:
        with self._changed:
            return self._saw(command, nick, target)

    def _saw(self, command: str, nick: str, target: str) -> bool:
        return any(
            s.command == command
            and s.nick.lower() == nick.lower()
            and (not target or s.target.lower() == target.lower())
            for s in self.seen
        )

    # the client thread

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._reactor.process_once(0.1)

    def _on_message(self, connection: Any, event: Any) -> None:
        with self._changed:
            if event.type == "all_raw_messages":
                self.raw.append(event.arguments[0])
            else:
                command = "NOTICE" if event.type.endswith("notice") else "PRIVMSG"
                nick = irc.client.NickMask(event.source).nick
                text = event.arguments[0] if event.arguments else ""
                self.heard.append(Heard(command, nick, event.target, text, self.raw[-1]))
                if event.type == "privmsg" and self.answer:
                    connection.notice(nick, self.answer)
            self._changed.notify_all()

    def _on_membership(self, connection: Any, event: Any) -> None:
        with self._changed:
            if event.type == "namreply":
                channel, names = event.arguments[1], event.arguments[2].split()
                known = self._names.setdefault(channel.lower(), set())
                known.update(name.lstrip("~&@%+") for name in names)
            elif event.type == "endofnames":
                self._names_done.add(str(event.arguments[0]).lower())
            else:
                nick = irc.client.NickMask(event.source).nick if event.source else ""
                target = event.target or ""
                arguments = tuple(str(a) for a in event.arguments)
                self.seen.append(Seen(event.type.upper(), nick, target, arguments))
            self._changed.notify_all()


def _self_signed_certificate() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deploybell test ircd")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
