"""apprise: the catch-all for the long tail (ntfy, Matrix, Rocket.Chat, Pushover, …) through the
`apprise` library. The Secret's `urls` holds one apprise URL per line; those URLs carry tokens,
so none is ever shown: errors name a URL by its line and its service (`line 2 (ntfy)`).

apprise sends with its own HTTP client (requests) in its own thread pool (`async_notify`), so the
event loop never waits on it; loading its plugins on first use (seconds of CPU) runs in a thread
too. It reads no configuration file or plugin directory here: no `AppriseConfig` is used, no
`plugin_paths` are given, its persistent store is memory-only, attachments are refused
(`ContentLocation.INACCESSIBLE`), redirects are not followed (as for every provider) and its
`apprise` logger does not propagate to the operator's logs (results carry what it said).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _layout, base

if TYPE_CHECKING:
    from apprise import Apprise, AppriseResult, NotifyResult

TIMEOUT_SECONDS = 30.0
MAX_URLS = 20
TITLE_CHARS = 250
BODY_CHARS = 4000
LINE_CHARS = 300
MAX_ITEMS = 5
NOTIFY_TYPES = {"start": "info", "success": "success", "failure": "failure", "cancel": "warning"}
# apprise's plugins log `error=<HTTP status>` when a server refused a message.
_HTTP_STATUS = re.compile(r"error[= ](\d{3})\b")
_TEMPORARY_STATUSES = frozenset({408, 425, 429})
_ANY_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://\S+")
_URL_PARTS = re.compile(r"[/:@?&=#,+]")

RULES = ProviderRules(
    type="apprise",
    title="apprise",
    doc="The title and a plain-text body to every apprise URL in the Secret (ntfy, Matrix, "
    "Rocket.Chat, Pushover, and about a hundred more).",
    recipients=Recipients(required=False, doc="the Secret's `urls` are the destinations"),
    secret_keys=(
        SecretKey(
            "urls",
            "One apprise URL per line (`ntfy://…`, `matrixs://…`, …); `#` starts a comment line.",
        ),
    ),
    secret_needs=(frozenset({"urls"}),),
    setup="Put one apprise URL per line in the Secret's `urls` (see apprise's list of services, "
    "e.g. `ntfy://ntfy.example/deploys`); the operator's own retries apply, apprise retries none.",
)


class AppriseProvider:
    """Sends through apprise; its outcome per URL becomes delivered, retryable or permanent."""

    rules: ClassVar[ProviderRules] = RULES

    def __init__(self) -> None:
        # What apprise logs is in its results (masked before use); never in the operator's log.
        logging.getLogger("apprise").propagate = False

    async def send(
        self, message: Message, destination: base.Destination, override: base.Title | None = None
    ) -> base.Sent:
        urls = parse_urls(destination.secret.get("urls", ""))
        secrets = secret_parts(destination.secret.values())
        try:
            notifier = await asyncio.to_thread(_notifier, urls)
            body = notification(message, override)
            result = await notifier.async_notify(**body, timeout=TIMEOUT_SECONDS)
        except base.DeliveryError as e:
            raise base.masked(e, secrets, hide) from None
        except Exception as e:  # apprise is a library of plugins: none may crash a delivery
            text = hide(f"apprise: {type(e).__name__}: {e}", secrets)
            raise base.TemporaryDeliveryError(text) from None
        try:
            return outcome(result, secrets)
        finally:
            result.close()

    async def close(self) -> None:
        return None


def parse_urls(raw: str) -> list[str]:
    """The URLs of the Secret's `urls`: one per line; blank and `#` lines skipped."""
    urls = [line.strip() for line in raw.splitlines()]
    urls = [u for u in urls if u and not u.startswith("#")]
    if not urls:
        raise base.PermanentDeliveryError("apprise: Secret key 'urls' holds no URL")
    if len(urls) > MAX_URLS:
        raise base.PermanentDeliveryError(f"apprise: Secret key 'urls' holds over {MAX_URLS} URLs")
    return urls


def _notifier(urls: list[str]) -> Apprise:
    """An Apprise object for `urls`, reading nothing from disk (see the module's docstring)."""
    from apprise import Apprise, AppriseAsset, ContentLocation

    asset = AppriseAsset(
        storage_mode="memory",
        http_redirects=False,
        service_timeout=TIMEOUT_SECONDS,
        allow_templates=False,
    )
    notifier = Apprise(asset=asset, location=ContentLocation.INACCESSIBLE)
    for number, url in enumerate(urls, start=1):
        if not notifier.add(url):
            raise base.PermanentDeliveryError(
                f"apprise: line {number} of Secret key 'urls' is not an apprise URL it can use"
            )
    return notifier


def notification(message: Message, override: base.Title | None = None) -> dict[str, Any]:
    """The arguments of `Apprise.notify`: a title and a plain-text body (pure)."""
    title, summary = base.headline(message, override)
    lines = [clip(summary, BODY_CHARS // 2)] if summary else []
    lines += [f"{name}: {clip(value, LINE_CHARS)}" for name, value in message.facts()]
    for heading, items, omitted in message.lists()[1:]:  # the failing pods and warnings
        if items:
            lines.append(f"{heading}:")
            lines += _layout.listed(
                items, MAX_ITEMS, lambda item: f"- {clip(item, LINE_CHARS)}", omitted=omitted
            )
    if message.link:
        lines.append(clip(message.link, LINE_CHARS))
    return {
        "title": clip(title, TITLE_CHARS),
        "body": clip("\n".join(lines), BODY_CHARS),
        "notify_type": NOTIFY_TYPES.get(message.event, "info"),
        "body_format": "text",
    }


def outcome(result: AppriseResult, secrets: list[str]) -> base.Sent:
    """SUCCESS → Sent; a failed URL → permanent when every failure is a refusal a human must fix
    (an HTTP 4xx other than 408/425/429), else retryable (timeouts, 5xx, 429, no connection)."""
    services = list(result)
    names = ", ".join(f"line {n} ({s.name})" for n, s in enumerate(services, 1))
    if result.status.name == "SUCCESS":
        return base.Sent(detail=f"apprise: delivered to {len(services)} URL(s): {names}")
    failed = [(n, s) for n, s in enumerate(services, 1) if s.status.name != "SUCCESS"]
    if not failed:
        raise base.TemporaryDeliveryError(
            f"apprise: {result.status.name.lower()}: nothing was sent"
        )
    reasons = [f"line {n} ({s.name}): {_said(s)}" for n, s in failed]
    text = hide(
        f"apprise: {len(failed)} of {len(services)} URL(s) failed: {'; '.join(reasons)}", secrets
    )
    if all(_refused(service) for _, service in failed):
        raise base.PermanentDeliveryError(text)
    raise base.TemporaryDeliveryError(text)


def _said(service: NotifyResult) -> str:
    if service.status.name == "TIMEOUT":
        return "no answer in time"
    logged = [entry.message for entry in service.logs() if entry.level in ("WARNING", "ERROR")]
    return clip(logged[-1], 200) if logged else "failed"


def _refused(service: NotifyResult) -> bool:
    if service.status.name == "TIMEOUT":
        return False
    codes = [int(c) for e in service.logs() for c in _HTTP_STATUS.findall(e.message)]
    return bool(codes) and all(400 <= c < 500 and c not in _TEMPORARY_STATUSES for c in codes)


def secret_parts(values: Iterable[str]) -> list[str]:
    """What to mask: each Secret value, each line, and every part of each URL (user, password,
    host, path segments and query values carry the tokens)."""
    out: list[str] = []
    for value in values:
        out.append(value)
        for line in value.splitlines():
            _, _, rest = line.strip().rpartition("://")  # the scheme names the service only
            out.append(line.strip())
            out += [p for p in _URL_PARTS.split(rest) if len(p) >= 4 and not p.isdigit()]
    return out


def hide(text: str, secrets: list[str]) -> str:
    """`text` with every secret part and every URL of any scheme masked."""
    return _ANY_URL.sub(lambda m: f"{m.group(1)}://***", base.mask(text, secrets))


def _render(preview: base.Preview) -> dict[str, Any]:
    return notification(preview.message, preview.override)


def _preview(preview: base.Preview) -> list[str]:
    body = _render(preview)
    return [
        f"to every URL of the Secret's `urls` (notify type {body['notify_type']}, plain text):",
        f"title: {body['title']}",
        body["body"],
    ]


PROVIDER = base.ProviderType(AppriseProvider, _render, _preview)
