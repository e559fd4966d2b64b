"""`deploybell notify-test`: a labelled test message through an existing Notification, sent by the
operator's own Dispatcher and providers, so credentials and recipients are checked end to end."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from deploybell.api.constants import GROUP, VERSION
from deploybell.clients.kube import KubeClient
from deploybell.notify import providers
from deploybell.notify.dispatch import Dispatcher
from deploybell.notify.ledger import stamp
from deploybell.notify.model import SAMPLE_PHASES, Message
from deploybell.notify.providers.base import SmtpDefaults
from deploybell.tools.cluster import NotFound


class ClusterSource:
    """The Notification as read once, and its Secret read through the API when it is needed."""

    def __init__(self, kube: KubeClient, namespace: str, name: str, spec: Mapping[str, Any]):
        self._kube = kube
        self._key = (namespace, name)
        self._spec = spec

    def spec(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._spec if (namespace, name) == self._key else None

    async def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        body = await self._kube.get("v1", "Secret", namespace, name)
        if body is None:
            return None
        data = {
            key: base64.b64decode(value).decode(errors="replace")
            for key, value in (body.get("data") or {}).items()
        }
        return {**data, **(body.get("stringData") or {})}


@dataclass(frozen=True)
class Answer:
    """What the provider said for one recipient ("" for a webhook)."""

    recipient: str
    delivered: bool
    detail: str
    permanent: bool = False
    warning: str = ""


@dataclass(frozen=True)
class Report:
    """The outcome of one notify-test."""

    namespace: str
    name: str
    type: str
    answers: tuple[Answer, ...]

    @property
    def delivered(self) -> bool:
        return all(answer.delivered for answer in self.answers)

    def lines(self) -> list[str]:
        count = len(self.answers)
        out = [
            f"Notification {self.namespace}/{self.name} ({self.type}): "
            f"a test message to {count} recipient{'s' if count != 1 else ''}"
        ]
        width = max((len(a.recipient or "(webhook)") for a in self.answers), default=0)
        for answer in self.answers:
            who = (answer.recipient or "(webhook)").ljust(width)
            if answer.delivered:
                out.append(f"  {who}  delivered: {answer.detail or 'ok'}")
            else:
                kind = " (permanent)" if answer.permanent else ""
                out.append(f"  {who}  NOT delivered{kind}: {answer.detail}")
            if answer.warning:
                out.append(f"  {' ' * width}  warning: {answer.warning}")
        sent = sum(a.delivered for a in self.answers)
        out.append(f"{sent} of {count} delivered")
        return out


def labelled_message(namespace: str, name: str, event: str, cluster: str = "") -> Message:
    """A message every provider labels as a test ("[test]" in the title, a footer)."""
    now = stamp(datetime.now(UTC))
    return Message(
        job=name,
        namespace=namespace,
        run=0,
        event=event,
        phase=SAMPLE_PHASES[event],
        reason="NotifyTest",
        message=f"a test of Notification {namespace}/{name} by `deploybell notify-test`; "
        "nothing was deployed",
        started_at=now,
        finished_at="" if event == "start" else now,
        cluster=cluster,
        test=True,
        idempotency_key=f"notify-test/{uuid.uuid4().hex}",
    )


async def notify_test(
    kube: KubeClient,
    namespace: str,
    name: str,
    *,
    event: str = "success",
    smtp: SmtpDefaults | None = None,
    cluster: str = "",
    send_timeout: float = 60.0,
) -> Report:
    """Send the test message to every recipient; raises NotFound when there is no such object."""
    body = await kube.get(f"{GROUP}/{VERSION}", "Notification", namespace, name)
    if body is None:
        raise NotFound(f"Notification {name} not found in namespace {namespace}")
    raw = body.get("spec") or {}
    spec = providers.parse(raw)  # SpecError: the caller reports it
    source = ClusterSource(kube, namespace, name, raw)
    dispatcher = Dispatcher(providers.build(), source, smtp, send_timeout=send_timeout)
    message = labelled_message(namespace, name, event, cluster)
    answers = []
    try:
        for recipient in spec.recipients or ("",):
            entry = {"notification": name, "recipient": recipient}
            attempt = await dispatcher.deliver(namespace, entry, message, {})
            answers.append(
                Answer(
                    recipient,
                    attempt.sent,
                    attempt.detail if attempt.sent else attempt.error,
                    attempt.permanent,
                    attempt.warning,
                )
            )
    finally:
        for provider in dispatcher.providers.values():
            await provider.close()
    return Report(namespace, name, spec.type, tuple(answers))
