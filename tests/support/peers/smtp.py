"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives; importable without
pytest so the end-to-end tests and the demo can reuse it.

    peer = SmtpPeer(starttls=True, auth=("bell", "s3cret"))
    peer.start()            # peer.host, peer.port, peer.ca_file (the self-signed cert)
    ...
    mail = peer.wait_for(lambda m: "ops@example.com" in m.rcpt_tos)
    peer.stop()
"""

from __future__ import annotations

import asyncio
import datetime
import email.policy
import ipaddress
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    """One message the server accepted: the envelope as the client sent it and the parsed mail."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    tls: bool  # the session was encrypted (STARTTLS or implicit TLS)
    login: str | None  # the AUTH user name, None when the client did not authenticate


class SmtpPeer:
    """aiosmtpd in its own thread; optional STARTTLS or implicit TLS, AUTH, and scripted failures.

    `starttls`: offer STARTTLS and refuse mail before it; `implicit_tls`: SMTPS (TLS from the first
    byte); both use a self-signed certificate for 127.0.0.1/localhost written to `ca_file`.
    `auth`: (username, password) required for MAIL (LOGIN/PLAIN; only over TLS when TLS is on).
    """

    def __init__(
        self,
        *,
        starttls: bool = False,
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
    ) -> None:
        if starttls and implicit_tls:
            raise ValueError("starttls and implicit_tls are exclusive")
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.auth = auth
        self.host = HOST
        self.port = 0
        self.ca_file: str | None = None
        self.received: list[ReceivedMail] = []
        self.replies: list[str] = []  # every RCPT/DATA reply the server gave, failures included
        self._rcpt_failures: deque[str] = deque()
        self._data_failures: deque[str] = deque()
        self._changed = threading.Condition()
        self._controller: Controller | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # lifecycle

    def start(self) -> SmtpPeer:
        tls_context = self._tls_context() if self.starttls or self.implicit_tls else None
        kwargs: dict[str, Any] = {}
        if self.starttls:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if self.auth is not None:
            # aiosmtpd only counts STARTTLS sessions as encrypted (SMTPS is, from the first byte)
            # and its auth_required would refuse AUTH on SMTPS, so MAIL enforces it (handle_MAIL).
            kwargs.update(authenticator=self._authenticate, auth_require_tls=self.starttls)
        self._controller = _FreePortController(
            _Handler(self),
            hostname=self.host,
            port=self.port,  # 0 at first; a restart listens on the same port again
            ssl_context=tls_context if self.implicit_tls else None,
            ready_timeout=30.0,
            **kwargs,
        )
        self._controller.start()
        self.port = self._controller.port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SmtpPeer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # knobs

    def fail_next_rcpt(self, count: int = 1, reply: str = "550 5.1.1 no such user") -> None:
        """Answer the next `count` RCPT commands with `reply` instead of accepting them."""
        with self._changed:
            self._rcpt_failures.extend([reply] * count)

    def fail_next_data(self, count: int = 1, reply: str = "451 4.3.0 try again later") -> None:
        """Answer the next `count` DATA commands with `reply` instead of accepting the mail."""
        with self._changed:
            self._data_failures.extend([reply] * count)

    # reading what arrived

    def wait_for(
        self,
        predicate: Callable[[ReceivedMail], bool] = lambda _: True,
        timeout: float = 30.0,
    ) -> ReceivedMail:
        """The first received mail matching `predicate`; AssertionError showing all seen if none."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for mail in self.received:
                    if predicate(mail):
                        return mail
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m.mail_from, m.rcpt_tos, m.message["Subject"]) for m in self.received]
                    raise AssertionError(
                        f"no matching mail within {timeout:.0f}s; received: {seen!r}; "
                        f"replies: {self.replies!r}"
                    )
                self._changed.wait(left)

    async def wait_for_async(
        self,
        predicate: Callable[[ReceivedMail], bool] = lambda _: True,
        within: float = 30.0,
    ) -> ReceivedMail:
        """`wait_for` without blocking the caller's event loop."""
        return await asyncio.to_thread(self.wait_for, predicate, within)

    # server side (runs in the controller's thread)

    def _authenticate(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword) or self.auth is None:
            return AuthResult(success=False, handled=False)
        user, password = self.auth
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def _next_failure(self, queue: deque[str]) -> str | None:
        with self._changed:
            return queue.popleft() if queue else None

    def _note_reply(self, reply: str) -> str:
        with self._changed:
            self.replies.append(reply)
            self._changed.notify_all()
        return reply

    def _record(self, server: SMTPServer, session: Session, envelope: Envelope) -> None:
        raw = envelope.original_content or envelope.content or b""
        raw = raw if isinstance(raw, bytes) else raw.encode()
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        auth_data = session.auth_data
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=parsed,
            raw=raw,
            tls=server.transport.get_extra_info("ssl_object") is not None,
            login=auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None,
        )
        with self._changed:
            self.received.append(mail)
            self._changed.notify_all()

    def _tls_context(self) -> ssl.SSLContext:
        self._tmp = tempfile.TemporaryDirectory(prefix="smtp-peer-")
        cert, key = _self_signed_certificate()
        cert_path = Path(self._tmp.name, "cert.pem")
        key_path = Path(self._tmp.name, "key.pem")
        cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        key_path.chmod(0o600)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.ca_file = str(cert_path)
        return context


class _Handler:
    """aiosmtpd handler hooks: scripted RCPT/DATA failures, then record the mail."""

    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_MAIL(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.peer.auth is not None and not session.authenticated:
            return self.peer._note_reply("530 5.7.0 Authentication required")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        failure = self.peer._next_failure(self.peer._rcpt_failures)
        if failure is not None:
            return self.peer._note_reply(failure)
        envelope.rcpt_tos.append(address)
        return self.peer._note_reply("250 OK")

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        failure = self.peer._next_failure(self.peer._data_failures)
        if failure is not None:
            return self.peer._note_reply(failure)
        self.peer._record(server, session, envelope)
        return self.peer._note_reply(f"250 2.0.0 Ok: queued as {len(self.peer.received)}")


class _FreePortController(Controller):  # type: ignore[misc]
    """Listens on port 0 and learns the port the kernel picked (no probe-then-bind race)."""

    def _trigger_server(self) -> None:
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def _self_signed_certificate() -> tuple[bytes, bytes]:
    """A PEM certificate and key for 127.0.0.1 and localhost, its own CA (a client's caFile)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deploybell test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
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
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
