"""Datadog: each finished run becomes a deployment event of DORA Metrics
(`POST /api/v2/dora/deployment`): the service, the environment, start and end in nanoseconds,
the commit and repository (`spec.source`) and a version; tags say the job, run, cluster and
outcome. The start sends nothing: Datadog records deployments once they are finished.

A failed run is a change failure. Datadog's API marks one with a second call,
`PATCH /api/v2/dora/deployments/{id}` `{"change_failure": true}`, which needs an application key
(`dora_metrics_write`): with the Secret's `appKey` deploybell makes that call, and first asks
whether the event exists (`GET …/deployments/{id}`, `dora_metrics_read`) so that a retry does
not send it twice. Without an `appKey` the failure is recorded in the tag
`deploybell.outcome:failed` only. Each event carries an `id` derived from the run (cluster,
namespace, job, run and start time), the same for every attempt.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _answers, _http, _records, base

DEFAULT_SITE = "datadoghq.com"
MAX_TAG = 200  # Datadog cuts tags at 200 characters
_TAG_UNSAFE = re.compile(r"[^a-z0-9_:./-]")
_SITE = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")

RULES = ProviderRules(
    type="datadog",
    title="Datadog",
    doc="A DORA Metrics deployment event per finished run (a failed run marked as a change "
    "failure); nothing is sent at start.",
    recipients=Recipients(required=False, doc="the API key picks the organization"),
    options=(
        Field(
            "service",
            "string",
            "The service (as in the Software Catalog); default: the DeployJob's name.",
            min_length=1,
            max_length=100,
            pattern=r"[a-z][a-z0-9_./:-]*",
            expected="a lowercase service name starting with a letter",
        ),
        Field(
            "team",
            "string",
            "The team owning the service (default: Datadog takes it from the Software Catalog).",
            min_length=1,
            max_length=100,
        ),
    ),
    secret_keys=(
        SecretKey("apiKey", "An API key (sent as `DD-API-KEY`)."),
        SecretKey(
            "appKey",
            "An application key with `dora_metrics_read` and `dora_metrics_write`: failed runs "
            "are then marked as change failures.",
        ),
        SecretKey(
            "site",
            "The Datadog site, e.g. `datadoghq.eu`, `us5.datadoghq.com` (default "
            "`datadoghq.com`); the API is `https://api.<site>`.",
            sensitive=False,
        ),
        SecretKey("apiUrl", "Another API base URL (a proxy); overrides `site`.", sensitive=False),
    ),
    secret_needs=(frozenset({"apiKey"}),),
    edits_in_place=True,  # one event per run, made at the outcome: never a second one
    setup="An API key (Organization Settings → API Keys) is all the deployment events need. To "
    "mark failed runs as change failures add an application key scoped to `dora_metrics_read` "
    "and `dora_metrics_write` as `appKey`. The site (`datadoghq.eu`, `us5.datadoghq.com`, …) "
    "goes in `site`.",
)


class DatadogProvider(_http.HttpProvider):
    """Sends the deployment event of a finished run (and marks a failed one)."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        message = out.message
        if message.event == "start":
            return base.Sent(
                detail="nothing to send at start (Datadog records finished deployments)"
            )
        out.headers.update({"DD-API-KEY": out.word("apiKey"), "Accept": "application/json"})
        app_key = {"DD-APPLICATION-KEY": key} if (key := out.word("appKey", required=False)) else {}
        root = api_root(out.destination.secret)
        if message.test:  # `deploybell notify-test`: Datadog's key validation, no event
            reply = await out.request("GET", root.joinpath("api", "v1", "validate"))
            _check(out, reply, "the API key")
            return base.Sent(detail="the API key is valid; a test sends no deployment event")
        api = root.joinpath("api", "v2", "dora")
        event = deployment_event(message, out.options, datetime.now(UTC))
        key = str(event["data"]["attributes"]["id"])
        if not (app_key and await _exists(out, api / "deployments" / key, app_key)):
            reply = await out.request("POST", api / "deployment", json=event)
            _check(out, reply, f"the deployment event of {message.ref} run {message.run}")
        detail = f"deployment event {key}"
        if message.event == "failure" and app_key:
            reply = await out.request(
                "PATCH", api / "deployments" / key, json=change_failure(key), headers=app_key
            )
            _check(out, reply, f"deployment event {key}")
            detail += " marked as a change failure"
        elif message.event == "failure":
            detail += " (not marked as a change failure: the Secret has no appKey)"
        return base.Sent(refs={"deployment": key}, detail=detail)


async def _exists(out: _http.Outgoing, url: URL, app_key: dict[str, str]) -> bool:
    reply = await out.request("GET", url, headers=app_key)
    if reply.status == 404:
        return False
    _check(out, reply, f"deployment event {url.name}")
    return True


def api_root(secret: Mapping[str, str]) -> URL:
    """The Secret's `apiUrl`, else `https://api.<site>` for its Datadog `site`."""
    if api_url := secret.get("apiUrl", "").strip():
        return _http.http_url(api_url, "datadog: Secret key 'apiUrl'")
    site = secret.get("site", "").strip().lower().removeprefix("app.") or DEFAULT_SITE
    if not _SITE.fullmatch(site):
        raise base.PermanentDeliveryError(
            f"datadog: Secret key 'site' must be a Datadog site such as datadoghq.eu, "
            f"got {site[:60]!r}"
        )
    return URL(f"https://api.{site}")


def _check(out: _http.Outgoing, reply: _answers.Reply, context: str) -> base.Sent:
    """Datadog's 429 says when its window resets in `X-RateLimit-Reset` (seconds from now)."""
    return out.check(
        reply, context, default_delay=_answers.seconds(reply.headers, "X-RateLimit-Reset")
    )


# the event (pure)


def deployment_event(message: Message, options: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The body of `POST /api/v2/dora/deployment` (`now` for a run without times)."""
    finished = _records.parse_time(message.finished_at) or now
    started = _records.parse_time(message.started_at) or finished
    attributes: dict[str, Any] = {
        "id": event_id(message),
        "service": str(options.get("service") or message.job),
        "started_at": _nanoseconds(started),
        "finished_at": _nanoseconds(max(finished, started)),
    }
    if message.environment:
        attributes["env"] = message.environment
    if version := _version(message):
        attributes["version"] = version
    if message.commit and message.repository:
        attributes["git"] = {"commit_sha": message.commit, "repository_url": message.repository}
    if team := options.get("team"):
        attributes["team"] = team
    attributes["custom_tags"] = custom_tags(message)
    return {"data": {"attributes": attributes}}


def event_id(message: Message) -> str:
    """The same id for every attempt of one run: 16 to 128 of `[A-Za-z0-9_.:-]`."""
    run = "/".join(
        (message.cluster, message.namespace, message.job, str(message.run), message.started_at)
    )
    return "deploybell-" + hashlib.sha256(run.encode()).hexdigest()[:32]


def custom_tags(message: Message) -> list[str]:
    """`key:value` tags, normalised as Datadog stores them (lowercase, `_` for other characters,
    at most 200 characters)."""
    tags = {
        "deploybell.job": message.ref,
        "deploybell.run": str(message.run),
        "deploybell.outcome": _records.OUTCOME_WORDS.get(message.event, message.event),
        "deploybell.cluster": message.cluster,
        "deploybell.reason": message.reason,
    }
    return [
        _TAG_UNSAFE.sub("_", f"{key}:{value}".lower())[:MAX_TAG]
        for key, value in tags.items()
        if value
    ]


def change_failure(key: str) -> dict[str, Any]:
    """The body of `PATCH /api/v2/dora/deployments/{id}` marking a change failure."""
    return {
        "data": {
            "id": key,
            "type": "dora_deployment_patch_request",
            "attributes": {"change_failure": True},
        }
    }


def _version(message: Message) -> str:
    """The commit when the DeployJob names one, else the first image's tag or digest."""
    if message.commit:
        return message.commit
    image = message.images[0] if message.images else ""
    name, at, digest = image.partition("@")
    if at:
        return digest
    tag = name.rsplit(":", 1)[-1] if ":" in name.rsplit("/", 1)[-1] else ""
    return tag


def _nanoseconds(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


def _render(preview: base.Preview) -> Any:
    if preview.message.event == "start":
        return None
    return deployment_event(preview.message, preview.options, _http.preview_time(preview.message))


def _preview(preview: base.Preview) -> list[str]:
    if preview.message.event == "start":
        return ["nothing is sent at start: Datadog records a deployment once it has finished"]
    lines = ["POST /api/v2/dora/deployment", _http.indented(_render(preview))]
    if preview.message.event == "failure":
        lines += [
            "then, with the Secret's appKey: PATCH /api/v2/dora/deployments/{id}",
            _http.indented(change_failure("{id}")),
        ]
    return lines


PROVIDER = base.ProviderType(DatadogProvider, _render, _preview)
