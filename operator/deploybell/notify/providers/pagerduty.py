"""PagerDuty Events API v2: a change event for every event a Notification is told about, and with
`alertOnFailure` an alert that a failed run triggers and the next successful run resolves.

The start gets a change event too: PagerDuty shows change events on the service's timeline and
beside incidents, and the moment a rollout *began* is what explains an incident raised while it is
still running. An alert's dedup key is `<namespace>/<job>`, so repeated failures of one job stay
one alert, and every success of that job sends `resolve` for it (PagerDuty ignores a resolve of an
alert that is not open). The alert is sent before the change event: a retry after a half-done
send then repeats the alert call, which the dedup key makes harmless.
"""

from __future__ import annotations

from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.providers import _http, base
from deploybell.notify.providers._pagerduty_events import requests

DEFAULT_API_URL = "https://events.pagerduty.com"
SEVERITIES = ("critical", "error", "warning", "info")
# PagerDuty's 429 names no wait; retry after this long (its guidance: back off and retry).
RATE_LIMIT_DELAY = 30.0

RULES = ProviderRules(
    type="pagerduty",
    title="PagerDuty",
    doc="A change event per message (Events API v2); optionally a failed run triggers an alert "
    "that the job's next successful run resolves.",
    recipients=Recipients(required=False, doc="the Secret's `routingKey` names the service"),
    options=(
        Field(
            "alertOnFailure",
            "boolean",
            "A failed run also triggers an alert (dedup key `<namespace>/<job>`); the job's next "
            "successful run resolves it.",
            default=False,
        ),
        Field(
            "severity",
            "string",
            "The alert's severity.",
            default="error",
            enum=SEVERITIES,
        ),
    ),
    secret_keys=(
        SecretKey("routingKey", "The integration key of an Events API v2 integration."),
        SecretKey("apiUrl", "Another Events API base URL (EU accounts, proxies).", sensitive=False),
    ),
    secret_needs=(frozenset({"routingKey"}),),
    setup="Add an *Events API v2* integration to the PagerDuty service and put its integration "
    "key in `routingKey`.",
)


class PagerdutyProvider(_http.HttpProvider):
    """Posts events through the shared HTTP session."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        key = out.word("routingKey")
        root = out.url("apiUrl", DEFAULT_API_URL)
        refs: dict[str, str] = {}
        done = []
        for request in requests(out.message, out.override, out.options, key):
            url = URL(str(root).rstrip("/") + request.path, encoded=True)
            reply = await out.request("POST", url, json=request.body)
            delay = RATE_LIMIT_DELAY if reply.status == 429 else None
            out.check(reply, context=request.what, default_delay=delay)
            answer = reply.json()
            if request.alert and isinstance(answer, dict) and answer.get("dedup_key"):
                refs["dedup_key"] = str(answer["dedup_key"])
            done.append(request.what)
        return base.Sent(refs=refs, detail="accepted: " + ", ".join(done))


def _render(preview: base.Preview) -> list[dict[str, Any]]:
    calls = requests(preview.message, preview.override, preview.options, "<routingKey>")
    return [{"path": call.path, "body": call.body} for call in calls]


def _preview(preview: base.Preview) -> list[str]:
    out = []
    for call in requests(preview.message, preview.override, preview.options, "<routingKey>"):
        out += [f"POST {call.path} ({call.what})", _http.indented(call.body)]
    return out


PROVIDER = base.ProviderType(PagerdutyProvider, _render, _preview)
