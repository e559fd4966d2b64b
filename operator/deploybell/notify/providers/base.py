"""What every provider is: one small Protocol, its errors, and what it returns."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from deploybell.api.notification import NotificationSpec
from deploybell.api.provider import ProviderRules
from deploybell.notify.model import Message


class DeliveryError(Exception):
    """A send that did not work; the message must already be masked (no secrets)."""

    permanent: bool = False

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class TemporaryDeliveryError(DeliveryError):
    """Try again later (network errors, 5xx, 429 with its Retry-After, SMTP 4xx)."""


class PermanentDeliveryError(DeliveryError):
    """A human must change something (401/403/404, invalid_auth, channel_not_found, SMTP 5xx)."""

    permanent = True


@dataclass(frozen=True)
class SmtpDefaults:
    """The operator-wide SMTP setting used by e-mail Notifications (Secret keys override it)."""

    host: str = "localhost"
    port: int = 25
    sender: str = "deploybell@localhost"
    tls: str = "none"  # starttls | tls | none
    username: str = ""
    password: str = ""
    timeout: float = 30.0


@dataclass(frozen=True)
class Destination:
    """Where one message goes: the Notification's settings for one recipient."""

    type: str
    recipient: str  # "#deploys", "@alice", "irc.example:6697#ops", "a@b.c", "" for webhooks
    options: Mapping[str, Any]  # the Notification's per-type block (e.g. spec.slack)
    secret: Mapping[str, str]  # decoded Secret data; never logged, never put in errors
    smtp: SmtpDefaults = field(default_factory=SmtpDefaults)
    previous: Mapping[str, Any] = field(default_factory=dict)
    """Provider references of the start message of the same run and recipient (e.g. Slack ts)."""


@dataclass(frozen=True)
class Title:
    """Rendered title/text overrides from the Notification's template, when it has one."""

    title: str | None = None
    text: str | None = None


def headline(message: Message, override: Title | None) -> tuple[str, str]:
    """The title and summary to show. One rule for every provider: a template field that
    rendered empty counts as unset, like one that failed, and the default is shown."""
    title = override.title if override is not None and override.title else message.title()
    summary = override.text if override is not None and override.text else message.summary()
    return title, summary


@dataclass(frozen=True)
class Sent:
    """A delivered message: provider references kept in the ledger (e.g. channel and ts)."""

    refs: Mapping[str, str] = field(default_factory=dict)
    detail: str = ""  # the provider's answer, for `notify-test` ("ok", "250 queued as …")


class Provider(Protocol):
    """Sends one message to one destination. Implementations are stateless or pool connections."""

    async def send(
        self, message: Message, destination: Destination, override: Title | None = None
    ) -> Sent: ...

    async def close(self) -> None: ...


class Sender(Provider, Protocol):
    """A provider class as the registry keeps it: it declares the type it sends."""

    rules: ClassVar[ProviderRules]


class Draft(Protocol):
    """What a renderer reads: one recipient's message and the Notification's options. A
    `Preview` is one, and so is the message a sender is delivering: what is sent is what
    `deploybell render` and the contract test show."""

    @property
    def message(self) -> Message: ...

    @property
    def override(self) -> Title | None: ...

    @property
    def recipient(self) -> str: ...

    @property
    def options(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Preview:
    """What `deploybell render` asks a provider to show: one recipient's message, no network."""

    notification: NotificationSpec
    recipient: str
    message: Message
    override: Title | None
    sender: str = "deploybell@localhost"  # the e-mail From

    @property
    def options(self) -> Mapping[str, Any]:
        return self.notification.options

    def update_and_reply(self, start: str, how: str, reply: str) -> list[str]:
        """The note of a type that, with a bot token and `threads`, updates the run's `start`
        (message, post) in place with an outcome (`how`) and replies `reply` in its thread."""
        if self.message.event == "start" or not self.options.get("threads", True):
            return []
        return [
            "",
            f"with a bot token, after this run's start {start}: that {start} is updated in place",
            how,
            reply,
        ]


@dataclass(frozen=True)
class ProviderType:
    """One registered provider type: its sender (which declares the type's rules) and its
    renderer."""

    sender: type[Sender]
    """Makes a new sender; the operator keeps one per type (it may pool connections)."""
    render: Callable[[Preview], Any]
    """The request body a recipient gets (pure): what the contract test checks against the
    vendor's limits."""
    preview: Callable[[Preview], list[str]]
    """`deploybell render`'s lines for one recipient (pure)."""
    preview_once: bool = False
    """The body is the same for every recipient: preview it once, for all of them."""

    @property
    def rules(self) -> ProviderRules:
        return self.sender.rules

    @property
    def type(self) -> str:
        return self.rules.type

    @property
    def setup(self) -> str:
        return self.rules.setup


def masked(
    error: DeliveryError,
    secrets: Iterable[str],
    hide: Callable[[str, list[str]], str] | None = None,
) -> DeliveryError:
    """The same error (kind and retry delay) with every secret value masked in its message
    (by `mask`, or the provider's own `hide`): what a provider raises for an error from below
    that may quote a credential."""
    values = list(secrets)
    text = hide(error.message, values) if hide else mask(error.message, values)
    return type(error)(text, error.retry_after)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value (and URL credentials/paths that carry tokens) with ***."""
    out = text
    for value in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        out = out.replace(value, "***")
    # URLs may carry tokens in the path (Slack webhooks) or userinfo: keep scheme and host only.
    return _URL.sub(_mask_url, out)


_URL = re.compile(r"(https?://)(?:[^@/\s]*@)?([^/\s:@'\"]+(?::\d+)?)(/[^\s'\"]*)?")


def _mask_url(m: re.Match[str]) -> str:
    hidden = m.group(0) != f"{m.group(1)}{m.group(2)}"
    return f"{m.group(1)}{m.group(2)}/***" if hidden else m.group(0)
