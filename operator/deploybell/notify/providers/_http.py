"""The HTTP plumbing every HTTP provider shares: one lazily created aiohttp session per provider
instance, and the one `send` of every HTTP type, which hands each message to the type's own
`deliver` as an `Outgoing` (its Secret read and masked, its requests classified by `_answers`)."""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from deploybell.api.provider import ProviderRules
from deploybell.notify.model import Message
from deploybell.notify.providers import _answers, base

TIMEOUT_SECONDS = 30.0
USER_AGENT = "deploybell"
# Enough of a body for the ids a vendor answers with, or to say what went wrong; a peer may
# answer with megabytes.
_BODY_BYTES = 256 * 1024
_WORD = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: it goes into a header


def secrets_of(secret: Mapping[str, str], *more: str) -> list[str]:
    """The values to mask: each Secret value as given and stripped (`echo` adds a newline)."""
    values = [*secret.values(), *more]
    return [*values, *(v.strip() for v in values)]


def http_url(raw: str, where: str) -> URL:
    """An absolute http(s) URL, or a permanent error naming `where` (never showing the value)."""
    try:
        url = URL(raw.strip())
    except (TypeError, ValueError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise base.PermanentDeliveryError(f"{where} must be an absolute http:// or https:// URL")
    return url


class HttpSession:
    """One aiohttp session per provider instance, created on first use (inside the loop)."""

    def __init__(self, kind: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.kind = kind
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def client(self) -> aiohttp.ClientSession:
        """The shared aiohttp session (vendor SDKs such as slack_sdk take it too)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def request(
        self,
        method: str,
        url: URL,
        secrets: Iterable[str],
        *,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        json: Any = None,
    ) -> _answers.Reply:
        """One request; network failures become masked delivery errors."""
        try:
            # Redirects are not followed: they would carry the credentials and the signed body to
            # a host nobody configured, and turn the POST into a GET on 301/302.
            async with self.client().request(
                method,
                url,
                data=data,
                json=json,
                headers=dict(headers or {}),
                allow_redirects=False,
            ) as response:
                raw = await response.content.read(_BODY_BYTES)
                return _answers.Reply(
                    response.status,
                    response.reason or "",
                    dict(response.headers),
                    _decode(raw, response.charset),
                )
        except aiohttp.ClientConnectorCertificateError as e:
            raise self._error(
                base.PermanentDeliveryError, "TLS certificate rejected", e, secrets
            ) from e
        except aiohttp.InvalidURL as e:
            raise base.PermanentDeliveryError(f"{self.kind}: the URL is not valid") from e
        except TimeoutError as e:
            raise base.TemporaryDeliveryError(
                f"{self.kind}: no answer within {self.timeout:.0f}s"
            ) from e
        except aiohttp.ClientError as e:
            raise self._error(base.TemporaryDeliveryError, "request failed", e, secrets) from e

    def _error(
        self,
        kind: type[base.DeliveryError],
        what: str,
        error: Exception,
        secrets: Iterable[str],
    ) -> base.DeliveryError:
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return kind(base.mask(f"{self.kind}: {what} ({detail})", secrets))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpProvider(abc.ABC):
    """The sender of an HTTP type: one session per instance, and the one `send` of every HTTP
    type, which hands each message as an `Outgoing` to the type's own `deliver`."""

    rules: ClassVar[ProviderRules]

    def __init__(self) -> None:
        self._http = HttpSession(self.rules.type)

    async def send(
        self, message: Message, destination: base.Destination, override: base.Title | None = None
    ) -> base.Sent:
        return await self.deliver(Outgoing(self._http, message, destination, override))

    @abc.abstractmethod
    async def deliver(self, out: Outgoing) -> base.Sent:
        """The type's own request(s) for one message."""

    async def close(self) -> None:
        await self._http.close()


class Outgoing:
    """One message on its way to one destination: what it reads from the Secret is masked in
    every error, `headers` (the credentials) go with each of its requests."""

    def __init__(
        self,
        http: HttpSession,
        message: Message,
        destination: base.Destination,
        override: base.Title | None,
    ) -> None:
        self.http = http
        self.kind = http.kind
        self.message = message
        self.destination = destination
        self.override = override
        self.secrets = secrets_of(destination.secret)
        self.headers: dict[str, str] = {}

    @property
    def recipient(self) -> str:
        return self.destination.recipient

    @property
    def options(self) -> Mapping[str, Any]:
        return self.destination.options

    @property
    def previous(self) -> Mapping[str, Any]:
        """The refs of the run's start message to this recipient (from the ledger)."""
        return self.destination.previous

    def url(self, key: str, default: str = "") -> URL:
        """The Secret's `key` (else `default`) as an absolute http(s) URL; the Secret's is
        masked from now on, as written and as parsed."""
        raw = self.destination.secret.get(key, "")
        url = http_url(raw or default, f"{self.kind}: Secret key '{key}'")
        if raw:
            self.hide(str(url))
        return url

    def word(self, key: str, required: bool = True) -> str:
        """The Secret's `key` as a header carries it: one word of printable ASCII ("" for an
        optional key the Secret does not have)."""
        value = self.destination.secret.get(key, "").strip()
        where = f"{self.kind}: Secret key '{key}'"
        if not value and required:
            raise base.PermanentDeliveryError(f"{where} is required")
        if value and not _WORD.fullmatch(value):
            raise base.PermanentDeliveryError(f"{where} must be one word")
        return value

    def hide(self, *values: str) -> None:
        """Mask these values too (credentials taken out of a URL)."""
        self.secrets += secrets_of({}, *values)

    async def request(
        self,
        method: str,
        url: URL,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _answers.Reply:
        """One request with this message's headers (and `headers`), its answer unclassified."""
        sent_headers = {**self.headers, **(headers or {})}
        return await self.http.request(
            method, url, self.secrets, headers=sent_headers, data=data, json=json
        )

    def check(self, reply: _answers.Reply, context: str = "", **how: Any) -> base.Sent:
        """The answer classified (`_answers.outcome`, `how` its other keywords): Sent, or the
        delivery error it means, masked."""
        return _answers.outcome(reply, self.kind, self.secrets, context=context, **how)


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")


def indented(value: Any) -> str:
    """A request body as `deploybell render` shows it."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def preview_time(message: Message) -> datetime:
    """The run's own time, so a preview is the same every time."""
    stamp = message.finished_at or message.started_at
    if not stamp:
        return datetime(2026, 1, 1, tzinfo=UTC)
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
