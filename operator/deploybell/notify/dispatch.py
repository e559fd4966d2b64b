"""Deliver one ledger entry: resolve its Notification and Secret, render, send, classify."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from deploybell import metrics
from deploybell.api.errors import SpecError
from deploybell.api.notification import NotificationSpec
from deploybell.notify import providers as registry
from deploybell.notify.model import Message
from deploybell.notify.providers.base import (
    DeliveryError,
    Destination,
    Provider,
    SmtpDefaults,
    Title,
    mask,
)
from deploybell.notify.template import TemplateError, compile_template, render

logger = logging.getLogger("deploybell.notify")


class NotificationSource(Protocol):
    """Where Notifications and their Secrets come from (the watch cache and the API)."""

    def spec(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...
    async def secret(self, namespace: str, name: str) -> Mapping[str, str] | None: ...


@dataclass(frozen=True)
class Attempt:
    """What one send did: `refs` when sent, else a masked `error`."""

    sent: bool
    refs: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    permanent: bool = False
    retry_after: float | None = None
    warning: str = ""  # e.g. a template that failed to render (the default message was sent)
    detail: str = ""


class Dispatcher:
    """Operator-wide: one provider instance per type, shared by every DeployJob."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        source: NotificationSource,
        smtp: SmtpDefaults | None = None,
        send_timeout: float = 60.0,
    ) -> None:
        self.providers = providers
        self.source = source
        self.smtp = smtp or SmtpDefaults()
        self.send_timeout = send_timeout

    def recipients(self, namespace: str, name: str) -> tuple[str, ...] | None:
        """The Notification's recipients, or None when it does not exist (yet) or is invalid."""
        spec = self.source.spec(namespace, name)
        if spec is None:
            return None
        try:
            return registry.parse(spec).recipients
        except SpecError:
            return None

    async def deliver(
        self,
        namespace: str,
        entry: Mapping[str, Any],
        message: Message,
        previous: Mapping[str, Any],
    ) -> Attempt:
        name = str(entry["notification"])
        spec = self.source.spec(namespace, name)
        if spec is None:
            return Attempt(False, error=f"Notification {name} not found in namespace {namespace}")
        try:
            notification = registry.parse(spec)
        except SpecError as e:
            return Attempt(False, error=f"Notification {name} is invalid: {e}")
        secret: Mapping[str, str] = {}
        if notification.secret_name:
            found = await self.source.secret(namespace, notification.secret_name)
            problem = registry.TYPES[notification.type].rules.secret_problem(
                notification.secret_name, list(found) if found is not None else None
            )
            if problem:
                return Attempt(False, error=f"Notification {name}: {problem}")
            secret = found or {}
        override, failed = template_override(notification, message)
        warning = f"template not used, default message sent instead: {failed}" if failed else ""
        destination = Destination(
            type=notification.type,
            recipient=str(entry.get("recipient", "")),
            options=notification.options,
            secret=secret,
            smtp=self.smtp,
            previous=previous,
        )
        attempt = await self.send(notification.type, message, destination, override)
        return Attempt(**{**attempt.__dict__, "warning": warning})

    async def send(
        self, type_: str, message: Message, destination: Destination, override: Title | None
    ) -> Attempt:
        provider = self.providers[type_]
        secrets = list(destination.secret.values())
        began = time.monotonic()
        try:
            sent = await asyncio.wait_for(
                provider.send(message, destination, override), self.send_timeout
            )
        except DeliveryError as e:
            result = "permanent_error" if e.permanent else "error"
            attempt = Attempt(
                False,
                error=mask(e.message, secrets),
                permanent=e.permanent,
                retry_after=e.retry_after,
            )
        except TimeoutError:
            result = "error"
            attempt = Attempt(False, error=f"{type_}: no answer within {self.send_timeout:.0f}s")
        except Exception as e:  # a provider bug must not lose the message: retry, and log it
            error = mask(f"{type_}: {type(e).__name__}: {e}", secrets)
            logger.warning("provider raised unexpectedly (masked, no traceback): %s", error)
            result = "error"
            attempt = Attempt(False, error=error)
        else:
            result = "sent"
            attempt = Attempt(True, refs=dict(sent.refs), detail=sent.detail)
        metrics.NOTIFICATIONS.labels(type_, message.event, result).inc()
        metrics.DELIVERY_SECONDS.labels(type_).observe(time.monotonic() - began)
        return attempt


def template_override(
    notification: NotificationSpec, message: Message
) -> tuple[Title | None, TemplateError | None]:
    """The template's title/text for this message; (None, the error) when it fails, so the
    default message is used instead; (None, None) without a template."""
    if not notification.template:
        return None, None
    try:
        fields = render(compile_template(notification.template), message.as_data())
    except TemplateError as e:
        return None, e
    return Title(fields.get("title"), fields.get("text")), None
