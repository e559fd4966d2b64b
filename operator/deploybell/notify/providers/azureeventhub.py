"""Azure Event Hubs: each message as the CloudEvent the `webhook` type sends, one event per
message through the Event Hubs REST API (`POST https://NAMESPACE.servicebus.windows.net/HUB/
messages`), authorized by a Shared Access Signature made from the Secret's connection string.

The SAS is the documented HMAC-SHA256 (standard library): the URL-encoded resource URI and the
expiry, signed with the policy's key, valid for an hour. Event Hubs has no deduplication of
events sent over REST; consumers drop repeats by the CloudEvent `id` (the idempotency key).
With `partitionKey` a run's events share the DeployJob as partition key (`BrokerProperties`),
so they land in one partition, in order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _bus, _http, base

MAX_EVENT = 1024 * 1024  # Event Hubs Standard and above: an event is at most 1 MB
CONTENT_TYPE = "application/atom+xml;type=entry;charset=utf-8"  # what the REST API documents
API_VERSION = "2014-01"
TOKEN_SECONDS = 3600
_HUB = r"[A-Za-z0-9][A-Za-z0-9._-]{0,255}"

RULES = ProviderRules(
    type="azureeventhub",
    title="Azure Event Hubs",
    doc="A CloudEvents 1.0 JSON event per message, sent to an event hub.",
    recipients=Recipients(
        required=False, doc="the event hub is the connection string's `EntityPath` or `eventHub`"
    ),
    options=(
        Field(
            "eventHub",
            "string",
            "The event hub, when the connection string (a namespace's policy) names none.",
            min_length=1,
            max_length=256,
            pattern=_HUB,
            expected="letters, digits, '.', '_' and '-', starting with a letter or digit",
        ),
        Field(
            "partitionKey",
            "boolean",
            "Send with the DeployJob (`namespace/job`) as partition key, so a run's events "
            "land in one partition, in order.",
            default=False,
        ),
    ),
    secret_keys=(
        SecretKey(
            "connectionString",
            "`Endpoint=sb://NAMESPACE.servicebus.windows.net/;SharedAccessKeyName=NAME;"
            "SharedAccessKey=KEY;EntityPath=HUB` (a policy with the Send claim).",
        ),
        SecretKey("apiUrl", "Another endpoint for the namespace (a private one).", sensitive=False),
    ),
    secret_needs=(frozenset({"connectionString"}),),
    setup="A shared access policy on the event hub with only the **Send** claim; its "
    "connection string (with `EntityPath`) goes in the Secret.",
)


class AzureeventhubProvider(_http.HttpProvider):
    """One REST send per message, with a SAS made for it."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        fields = connection(out.destination.secret.get("connectionString", ""))
        out.hide(fields["SharedAccessKey"])
        hub = event_hub(fields, out.options)
        base_url = out.url("apiUrl", f"https://{URL(fields['Endpoint']).host}")
        resource = base_url.with_path(f"/{hub}", encoded=False)
        url = resource.with_path(f"/{hub}/messages", encoded=False).with_query(
            timeout="60", **{"api-version": API_VERSION}
        )
        token = sas(
            str(resource),
            fields["SharedAccessKeyName"],
            fields["SharedAccessKey"],
            int(time.time()) + TOKEN_SECONDS,
        )
        out.hide(token)
        headers = {"Authorization": token, "Content-Type": CONTENT_TYPE}
        headers.update(broker_properties(out.message, out.options))
        body = _bus.fitted(out.message, out.override, datetime.now(UTC), MAX_EVENT)
        out.check(await out.request("POST", url, data=body, headers=headers), context=f"hub {hub}")
        return base.Sent(detail=f"sent to event hub {hub}")


def connection(raw: str) -> dict[str, str]:
    """The connection string's fields; a permanent error naming what it lacks (never a value)."""
    fields: dict[str, str] = {}
    for part in raw.strip().split(";"):
        name, equals, value = part.partition("=")
        if equals:
            fields[name.strip()] = value.strip()
    missing = [
        k for k in ("Endpoint", "SharedAccessKeyName", "SharedAccessKey") if not fields.get(k)
    ]
    if missing:
        raise base.PermanentDeliveryError(
            "azureeventhub: Secret key 'connectionString' lacks " + ", ".join(missing)
        )
    if not URL(fields["Endpoint"]).host:
        raise base.PermanentDeliveryError(
            "azureeventhub: the connection string's Endpoint must be sb://NAMESPACE.servicebus"
            ".windows.net/"
        )
    return fields


def event_hub(fields: Mapping[str, str], options: Mapping[str, Any]) -> str:
    hub = fields.get("EntityPath") or str(options.get("eventHub") or "")
    if not hub:
        raise base.PermanentDeliveryError(
            "azureeventhub: name the event hub: EntityPath in the connection string or "
            "`azureeventhub.eventHub`"
        )
    return hub


def sas(resource: str, key_name: str, key: str, expiry: int) -> str:
    """A Shared Access Signature for `resource` until `expiry` (epoch seconds)."""
    encoded = quote_plus(resource)
    digest = hmac.new(key.encode(), f"{encoded}\n{expiry}".encode(), hashlib.sha256).digest()
    signature = quote(base64.b64encode(digest).decode(), safe="")
    return f"SharedAccessSignature sr={encoded}&sig={signature}&se={expiry}&skn={key_name}"


def broker_properties(message: Message, options: Mapping[str, Any]) -> dict[str, str]:
    if not options.get("partitionKey"):
        return {}
    return {"BrokerProperties": json.dumps({"PartitionKey": f"{message.namespace}/{message.job}"})}


# the request body (pure)


def _render(draft: base.Draft) -> dict[str, Any]:
    """The event as sent (its JSON, compact) with the headers that go with it."""
    body = _bus.fitted(draft.message, draft.override, _http.preview_time(draft.message), MAX_EVENT)
    return {"headers": broker_properties(draft.message, draft.options), "body": body.decode()}


def _preview(preview: base.Preview) -> list[str]:
    rendered = _render(preview)
    return [
        "POST https://<namespace>/<event hub>/messages?timeout=60&api-version=2014-01",
        "Authorization: SharedAccessSignature sr=…&sig=…&se=…&skn=… (from the connection string)",
        f"Content-Type: {CONTENT_TYPE}",
        *(f"{k}: {v}" for k, v in rendered["headers"].items()),
        "",
        _http.indented(json.loads(rendered["body"])),
    ]


PROVIDER = base.ProviderType(AzureeventhubProvider, _render, _preview)
