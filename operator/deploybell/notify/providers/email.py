"""E-mail over SMTP (aiosmtplib): one multipart mail (text + HTML) per recipient, through the
operator's SMTP setting, which the Notification's Secret may override."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiosmtplib

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _http, base
from deploybell.notify.providers._email_mime import (
    SUBJECT_PREFIX,
    AddressError,
    address_problem,
    parse_sender,
    render_email,
)

TLS_MODES = ("starttls", "tls", "none")
_CA_FILE_DOC = (
    "Path of a CA bundle inside the operator's pod (mounted there by its admin) trusted for the "
    "server's certificate, for private CAs; default: the system's trust store."
)

RULES = ProviderRules(
    type="email",
    title="E-mail",
    doc="One multipart mail (text and HTML) per recipient, through the operator's SMTP setting.",
    recipients=Recipients(
        syntax="an address like 'ops@example.com'",
        pattern=r"[^@\s]+@[^@\s]+",
        check=address_problem,
        valid=("ops@example.com", "first.last+deploys@mail.example.org"),
        invalid=("ops", "Ops <ops@example.com>", "a@b@c"),
        doc="plain addresses",
    ),
    options=(
        Field(
            "subjectPrefix",
            "string",
            'Text put before every subject line, e.g. "[deploy]".',
            max_length=200,
        ),
        Field("caFile", "string", _CA_FILE_DOC, min_length=1, max_length=4096),
    ),
    secret_keys=(
        SecretKey("host", "The SMTP server, instead of the operator's.", sensitive=False),
        SecretKey("port", "Its port.", sensitive=False),
        SecretKey("username", "The login.", sensitive=False),
        SecretKey("password", "The password."),
        SecretKey("from", "The sender, e.g. `Deploys <bell@example.com>`.", sensitive=False),
        SecretKey("caFile", _CA_FILE_DOC, sensitive=False),
    ),
    setup="No Secret needed: the operator's SMTP setting (`DEPLOYBELL_SMTP_HOST`, `_PORT`, "
    "`_FROM`, `_TLS` = `starttls | tls | none`, `_USERNAME`, `_PASSWORD`) sends the mail; a "
    "Secret may name another server and login.",
)


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how one mail is sent, after the Secret's overrides."""

    host: str
    port: int
    sender: str
    tls: str  # starttls | tls | none
    username: str
    password: str
    timeout: float
    ca_file: str | None
    """A CA bundle trusted for the server's certificate (private CAs, tests); None: the system's."""

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def smtp_settings(destination: base.Destination) -> SmtpSettings:
    """Merge the operator defaults with the Secret; a bad value is permanent and names its key."""
    defaults, secret, options = destination.smtp, destination.secret, destination.options
    tls = defaults.tls
    if tls not in TLS_MODES:
        raise base.PermanentDeliveryError(
            f"email: the operator's SMTP tls mode must be one of {', '.join(TLS_MODES)}, "
            f"got {tls!r}"
        )
    host = secret.get("host") or defaults.host
    if not host or any(c.isspace() for c in host):
        raise base.PermanentDeliveryError(
            f"email: Secret key 'host' must be a host name, got {host!r}"
        )
    ca_file = secret.get("caFile") or options.get("caFile") or None
    if ca_file is not None and not isinstance(ca_file, str):
        raise base.PermanentDeliveryError("email: option 'caFile' must be a file path")
    return SmtpSettings(
        host=host,
        port=_port(secret.get("port"), defaults.port),
        sender=secret.get("from") or defaults.sender,
        tls=tls,
        username=secret.get("username") or defaults.username,
        password=secret.get("password") or defaults.password,
        timeout=defaults.timeout,
        ca_file=ca_file,
    )


def _port(raw: str | None, default: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        port = int(raw.strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise base.PermanentDeliveryError(
            f"email: Secret key 'port' must be a port number (1-65535), got {raw!r}"
        )
    return port


class EmailProvider:
    """Sends one mail per recipient; a fresh SMTP connection per send (mail is rare and bursty)."""

    rules: ClassVar[ProviderRules] = RULES

    async def send(
        self, message: Message, destination: base.Destination, override: base.Title | None = None
    ) -> base.Sent:
        hidden = [*destination.secret.values(), destination.smtp.password]
        try:
            sent = await self._send(message, destination, override)
        except base.DeliveryError as e:
            raise base.masked(e, hidden) from None
        return replace(sent, detail=base.mask(sent.detail, hidden))

    async def close(self) -> None:
        """Nothing pooled: each send opens and closes its own connection."""

    async def _send(
        self, message: Message, destination: base.Destination, override: base.Title | None
    ) -> base.Sent:
        smtp = smtp_settings(destination)
        prefix = str(destination.options.get("subjectPrefix", SUBJECT_PREFIX))
        try:
            envelope_from = parse_sender(smtp.sender).addr_spec
            mail = render_email(
                message,
                sender=smtp.sender,
                recipient=destination.recipient,
                date=datetime.now(UTC),
                subject_prefix=prefix,
                override=override,
            )
        except AddressError as e:
            raise base.PermanentDeliveryError(f"email: {e}") from None
        tls_context = _tls_context(smtp)
        try:
            _, reply = await aiosmtplib.send(
                mail,
                sender=envelope_from,
                recipients=[destination.recipient],
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username or None,
                password=smtp.password or None,
                timeout=smtp.timeout,
                use_tls=smtp.tls == "tls",
                start_tls=smtp.tls == "starttls",  # False, not None: "none" means no upgrade
                tls_context=tls_context,
            )
        except (aiosmtplib.SMTPException, OSError, ValueError) as e:
            raise _delivery_error(e, smtp, destination.recipient) from None
        # aiosmtplib raises unless DATA was answered 250, and returns the text after the code.
        return base.Sent(refs={"messageId": str(mail["Message-ID"])}, detail=f"250 {reply}")


def _tls_context(smtp: SmtpSettings) -> ssl.SSLContext | None:
    if smtp.tls == "none" or smtp.ca_file is None:
        return None  # aiosmtplib's default: the system trust store, hostname checked
    try:
        return ssl.create_default_context(cafile=smtp.ca_file)
    except (OSError, ssl.SSLError) as e:
        raise base.PermanentDeliveryError(
            f"email: cannot load caFile {smtp.ca_file!r}: {e}"
        ) from None


def _delivery_error(error: Exception, smtp: SmtpSettings, recipient: str) -> base.DeliveryError:
    """SMTP 5xx and configuration problems are permanent; 4xx and the network are temporary."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        refused = error.recipients[0]
        return _by_code(
            refused.code,
            f"email: {smtp.server} refused recipient {recipient}: {refused.code} {refused.message}",
        )
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return _by_code(
            error.code,
            f"email: {smtp.server} refused the login as {smtp.username!r}: "
            f"{error.code} {error.message}",
        )
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return _by_code(error.code, f"email: {smtp.server} answered {error.code} {error.message}")
    if _caused_by(error, ssl.SSLCertVerificationError):
        return base.PermanentDeliveryError(
            f"email: the TLS certificate of {smtp.server} is not trusted ({error}); "
            "set caFile to the CA that signed it"
        )
    if isinstance(error, aiosmtplib.SMTPNotSupported | ValueError):
        return base.PermanentDeliveryError(f"email: {smtp.server}: {error}")
    if isinstance(error, aiosmtplib.SMTPException) and "not supported" in str(error):
        # aiosmtplib's plain SMTPException for "STARTTLS/AUTH extension not supported": the
        # tls mode or the username does not match the server, a setting a human must fix.
        return base.PermanentDeliveryError(f"email: {smtp.server}: {error}")
    return base.TemporaryDeliveryError(f"email: cannot deliver through {smtp.server}: {error}")


def _by_code(code: int, text: str) -> base.DeliveryError:
    return (
        base.PermanentDeliveryError(text)
        if 500 <= code <= 599
        else base.TemporaryDeliveryError(text)
    )


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _render(preview: base.Preview) -> Any:
    return render_email(
        preview.message,
        sender=preview.sender,
        recipient=preview.recipient,
        date=_http.preview_time(preview.message),
        subject_prefix=str(preview.options.get("subjectPrefix", SUBJECT_PREFIX)),
        override=preview.override,
    )


def _preview(preview: base.Preview) -> list[str]:
    try:
        mail = _render(preview)
    except AddressError as e:
        raise base.PermanentDeliveryError(str(e)) from None
    out = [
        f"to {preview.recipient}: one multipart/alternative mail",
        *(f"{k}: {v}" for k, v in mail.items()),
    ]
    for part in mail.iter_parts():
        out += ["", f"--- {part.get_content_type()} ---", str(part.get_content()).rstrip("\n")]
    return out


PROVIDER = base.ProviderType(EmailProvider, _render, _preview)
