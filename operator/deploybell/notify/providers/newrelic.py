"""New Relic change tracking: each finished run becomes a deployment marker on the entities the
Notification names (NerdGraph mutation `changeTrackingCreateDeployment`): the version, commit,
user, a description with the outcome, a deep link and the deployment type; the run's identity as
`groupId`, so the markers of one run (one per entity) are linked. The start sends nothing: the
marker is a point in time, set at the outcome.

NerdGraph answers 200 with an `errors` list when it refuses a mutation; each string it stores
is an NRDB attribute of at most 4096 characters. A marker has no idempotency key: a retry after
an answer lost on the way back may set a second marker for the run (same groupId).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _answers, _http, _layout, _records, base

ENDPOINTS = {"US": "https://api.newrelic.com/graphql", "EU": "https://api.eu.newrelic.com/graphql"}
MAX_ATTRIBUTE = 4096  # NRDB keeps string attributes up to 4096 characters
# An older timestamp is left out (New Relic then uses the time it receives the marker).
MAX_AGE = timedelta(hours=23)
DEPLOYMENT_TYPES = ("BASIC", "BLUE_GREEN", "CANARY", "OTHER", "ROLLING", "SHADOW")
MUTATION = (
    "mutation Deploy($deployment: ChangeTrackingDeploymentInput!) { "
    "changeTrackingCreateDeployment(deployment: $deployment) { deploymentId entityGuid } }"
)
_GUID = r"[A-Za-z0-9+/=_-]{8,255}"

RULES = ProviderRules(
    type="newrelic",
    title="New Relic",
    doc="A change-tracking deployment marker on each named entity at each finished run "
    "(NerdGraph); nothing is sent at start.",
    recipients=Recipients(
        syntax="an entity GUID",
        doc="the GUID of each New Relic entity (an APM service, say) that gets the marker",
        pattern=_GUID,
        valid=("MXxBUE18QVBQTElDQVRJT058MTIzNDU2Nzg",),
        invalid=("not a guid!", "short"),
    ),
    options=(
        Field(
            "deploymentType",
            "string",
            "The marker's deployment type.",
            default="ROLLING",
            enum=DEPLOYMENT_TYPES,
        ),
        Field(
            "user",
            "string",
            "Who deployed, as New Relic shows it.",
            default="deploybell",
            min_length=1,
            max_length=255,
        ),
    ),
    secret_keys=(
        SecretKey("apiKey", "A User key (`NRAK-…`), sent as the `API-Key` header."),
        SecretKey("region", "`US` (default) or `EU`: the account's data center.", sensitive=False),
        SecretKey(
            "apiUrl", "Another NerdGraph URL (a proxy); overrides `region`.", sensitive=False
        ),
    ),
    secret_needs=(frozenset({"apiKey"}),),
    edits_in_place=True,  # one marker per run and entity, made at the outcome
    setup="A **User key** (API keys → Create a key → User) of a user who may see the entities; "
    "any user type may create deployment markers. EU accounts: the Secret's `region: EU`. Find "
    "an entity's GUID in its summary page's metadata or with NerdGraph's `entitySearch`.",
)


class NewrelicProvider(_http.HttpProvider):
    """Sets the deployment marker of a finished run on one entity."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        message = out.message
        if message.event == "start" and not message.test:
            return base.Sent(detail="nothing to send at start (the marker is set at the outcome)")
        out.headers.update({"API-Key": out.word("apiKey"), "Content-Type": "application/json"})
        url = out.url("apiUrl", endpoint(out.destination.secret))
        if message.test:  # `deploybell notify-test`: who the key belongs to, no marker
            body = {"query": "{ actor { user { email } } }"}
            _graphql(out, await out.request("POST", url, json=body), "the API key")
            return base.Sent(detail="the API key is valid; a test sets no marker")
        body = request_body(message, out.recipient, out.options, datetime.now(UTC))
        data = _graphql(out, await out.request("POST", url, json=body), f"entity {out.recipient}")
        created = data.get("changeTrackingCreateDeployment") if isinstance(data, dict) else None
        marker = str(created.get("deploymentId", "")) if isinstance(created, dict) else ""
        return base.Sent(refs={"deployment": marker}, detail=f"deployment marker {marker}")


def endpoint(secret: Mapping[str, str]) -> str:
    region = secret.get("region", "").strip().upper() or "US"
    if region not in ENDPOINTS:
        raise base.PermanentDeliveryError("newrelic: Secret key 'region' must be US or EU")
    return ENDPOINTS[region]


def _graphql(out: _http.Outgoing, reply: _answers.Reply, context: str) -> Any:
    """The answer's `data`; its `errors` (with a 200) become a permanent error, or a temporary
    one when New Relic says it timed out or failed inside."""
    out.check(reply, context)
    answer = reply.json()
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if errors:
        said = "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
        text = base.mask(f"newrelic: NerdGraph refused it for {context}: {said}", out.secrets)
        classes = {
            str((e.get("extensions") or {}).get("errorClass", ""))
            for e in errors
            if isinstance(e, dict)
        }
        if classes & {"TIMEOUT", "SERVER_ERROR", "INTERNAL_SERVER_ERROR"}:
            raise base.TemporaryDeliveryError(text)
        raise base.PermanentDeliveryError(text)
    return answer.get("data") if isinstance(answer, dict) else None


# the request (pure)


def group_id(message: Message) -> str:
    run = json.dumps(_records.identity(message), sort_keys=True)
    return "deploybell-" + hashlib.sha256(run.encode()).hexdigest()[:32]


def version(message: Message) -> str:
    """The commit when the DeployJob names one, else the first image's tag, else the run."""
    if message.commit:
        return message.commit
    tag = message.images[0].rsplit(":", 1)[-1] if message.images else ""
    if tag and "/" not in tag:
        return clip(tag, MAX_ATTRIBUTE)
    return f"run {message.run}"


def deployment(
    message: Message, entity: str, options: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The `ChangeTrackingDeploymentInput` of one entity's marker."""
    fields: dict[str, Any] = {
        "entityGuid": entity,
        "version": version(message),
        "user": clip(str(options.get("user") or "deploybell"), MAX_ATTRIBUTE),
        "description": _records.status_text(message, None, MAX_ATTRIBUTE),
        "deploymentType": str(options.get("deploymentType") or "ROLLING"),
        "groupId": group_id(message),
    }
    if message.commit:
        fields["commit"] = message.commit
    if link := _layout.web_link(message.link, MAX_ATTRIBUTE):
        fields["deepLink"] = link
    if change := _layout.web_link(message.change_url, MAX_ATTRIBUTE):
        fields["changelog"] = change
    finished = _records.parse_time(message.finished_at)
    if finished is not None and now - finished <= MAX_AGE:
        fields["timestamp"] = int(finished.timestamp() * 1000)
    return fields


def request_body(
    message: Message, entity: str, options: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "query": MUTATION,
        "variables": {"deployment": deployment(message, entity, options, now)},
    }


def _render(preview: base.Preview) -> Any:
    if preview.message.event == "start":
        return None
    now = _http.preview_time(preview.message)
    return request_body(preview.message, preview.recipient, preview.options, now)


def _preview(preview: base.Preview) -> list[str]:
    if preview.message.event == "start":
        return ["nothing is sent at start: the deployment marker is set at the outcome"]
    return ["POST /graphql (NerdGraph)", _http.indented(_render(preview))]


PROVIDER = base.ProviderType(NewrelicProvider, _render, _preview)
