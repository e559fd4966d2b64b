"""Opsgenie Alert API v2: a failed run opens an alert for its DeployJob, the job's next
successful run closes it.

One alert per DeployJob, not per run: its `alias` is the job's key
(`deploybell:<cluster>:<namespace>:<job>`; colons, which Kubernetes names cannot hold, rather
than slashes, which a path takes badly), the same for every run and every operator process, so
a later failure while the alert is still open is deduplicated into it by Opsgenie (its count
grows) and a success closes it by alias (`POST /v2/alerts/{alias}/close?identifierType=alias`)
without deploybell keeping an alert id. A start or a canceled run is not a problem worth paging
for, but tells whoever handles an open alert that someone is working on the job: each adds a
note to the job's alert. Opsgenie processes requests asynchronously: a close or a note for an
alias with no open alert is accepted (202) and then dropped by Opsgenie, so a success after a
success costs one request and shows nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _answers, _http, _layout, base

DEFAULT_API_URL = "https://api.opsgenie.com"
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
# Opsgenie's documented field limits.
MESSAGE_CHARS = 130
ALIAS_CHARS = 512
DESCRIPTION_CHARS = 15000
NOTE_CHARS = 25000
SOURCE_CHARS = 100
USER_CHARS = 100
ENTITY_CHARS = 512
TAG_CHARS = 50
MAX_TAGS = 20
DETAILS_CHARS = 8000  # the `details` map, keys and values together
MAX_ITEMS = 10
LINE_CHARS = 300
# Opsgenie's 429 names no Retry-After, only the window it counts in; wait that long, else this.
RATE_LIMIT_DELAY = 60.0
PERIOD_HEADER = "X-RateLimit-Period-In-Sec"

RULES = ProviderRules(
    type="opsgenie",
    title="Opsgenie",
    doc="A failed run opens an alert for its DeployJob (alias per job); the job's next "
    "successful run closes it; starts and cancels add a note to it.",
    recipients=Recipients(required=False, doc="the API integration's key picks the team"),
    options=(
        Field("priority", "string", "The alert's priority.", default="P3", enum=PRIORITIES),
        Field(
            "team",
            "string",
            "A team to add as responder (by name); default: the integration's team.",
            min_length=1,
            max_length=100,
        ),
    ),
    secret_keys=(
        SecretKey("apiKey", "The API key of an Opsgenie *API* integration (sent as GenieKey)."),
        SecretKey(
            "apiUrl",
            "Another API base URL: `https://api.eu.opsgenie.com` for EU accounts.",
            sensitive=False,
        ),
    ),
    secret_needs=(frozenset({"apiKey"}),),
    edits_in_place=True,  # one alert per job, closed in place: never an alert per event
    setup="Add an *API* integration to the Opsgenie team (Teams → Integrations → Add "
    "integration → API) with *Create and Update Access* and put its API key in `apiKey`; EU "
    "accounts also set `apiUrl` to `https://api.eu.opsgenie.com`.",
)


@dataclass(frozen=True)
class Call:
    """One Alert API request: its path (with the query) and JSON body."""

    path: str
    body: dict[str, Any]
    what: str


def calls(message: Message, override: base.Title | None, options: Mapping[str, Any]) -> list[Call]:
    """The request one message makes: create (failure), close (success) or a note."""
    key = alias(message)
    by_alias = f"/v2/alerts/{quote(key, safe=':')}"
    if message.event == "failure":
        return [Call("/v2/alerts", create(message, override, options), f"create alert {key}")]
    action = "close" if message.event == "success" else "notes"
    body = {"user": "deploybell", "source": _source(message), "note": note(message, override)}
    what = f"close alert {key}" if action == "close" else f"note on alert {key}"
    return [Call(f"{by_alias}/{action}?identifierType=alias", body, what)]


def alias(message: Message) -> str:
    """The job's key; a longer one than Opsgenie takes keeps its start and a hash of the whole."""
    key = f"deploybell:{message.cluster or 'cluster'}:{message.namespace}:{message.job}"
    if message.test:  # `deploybell notify-test` must never close a DeployJob's real alert
        key += ":notify-test"
    if len(key) <= ALIAS_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{key[: ALIAS_CHARS - 17]}#{digest}"


def create(
    message: Message, override: base.Title | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """`POST /v2/alerts`: the alert a failed run opens."""
    title, _ = base.headline(message, override)
    body: dict[str, Any] = {
        "message": clip(title, MESSAGE_CHARS),
        "alias": alias(message),
        "description": description(message, override),
        "tags": tags(message),
        "details": details(message),
        "entity": clip(message.ref, ENTITY_CHARS),
        "source": _source(message),
        "priority": str(options.get("priority") or "P3"),
        "user": "deploybell",
    }
    if team := options.get("team"):
        body["responders"] = [{"type": "team", "name": str(team)}]
    return body


def description(message: Message, override: base.Title | None) -> str:
    """The title again (the message may be cut), the summary, facts and lists, bounded."""
    title, text = base.headline(message, override)
    lines = [title, text, ""]
    lines += [f"{name}: {value}" for name, value in message.facts()]
    for name, items, omitted in message.lists():
        if items:
            lines += ["", f"{name}:"]
            lines += _layout.listed(
                items, MAX_ITEMS, lambda i: "- " + clip(i, LINE_CHARS), omitted=omitted
            )
    if link := _layout.web_link(message.link):
        lines += ["", link]
    lines += ["", message.footer()]
    return clip("\n".join(lines), DESCRIPTION_CHARS)


def note(message: Message, override: base.Title | None) -> str:
    """A note: what happened to the job, in one or two lines."""
    title, text = base.headline(message, override)
    return clip(f"{title}\n{text}" if text else title, NOTE_CHARS)


def tags(message: Message) -> list[str]:
    values = ["deploybell", message.namespace, message.job, message.environment, message.cluster]
    return [clip(v, TAG_CHARS) for v in dict.fromkeys(v for v in values if v)][:MAX_TAGS]


def details(message: Message) -> dict[str, str]:
    """The facts as custom properties, within Opsgenie's size for the whole map."""
    out: dict[str, str] = {}
    used = 0
    for name, value in [*message.facts(), ("Reason", message.reason)]:
        value = clip(value, 500)
        if used + len(name) + len(value) > DETAILS_CHARS:
            break
        out[name] = value
        used += len(name) + len(value)
    return out


def _source(message: Message) -> str:
    return clip(f"deploybell/{message.cluster}" if message.cluster else "deploybell", SOURCE_CHARS)


class OpsgenieProvider(_http.HttpProvider):
    """Sends Alert API requests through the shared HTTP session."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        out.headers["Authorization"] = f"GenieKey {out.word('apiKey')}"
        root = str(out.url("apiUrl", DEFAULT_API_URL)).rstrip("/")
        done = []
        for call in calls(out.message, out.override, out.options):
            reply = await out.request("POST", URL(root + call.path, encoded=True), json=call.body)
            out.check(reply, context=call.what, default_delay=_rate_limit_delay(reply))
            done.append(call.what)
        return base.Sent(detail="accepted: " + ", ".join(done))


def _rate_limit_delay(reply: _answers.Reply) -> float | None:
    if reply.status != 429:
        return None
    period = _answers.seconds(reply.headers, PERIOD_HEADER)
    return period if period is not None else RATE_LIMIT_DELAY


def _render(preview: base.Preview) -> list[dict[str, Any]]:
    found = calls(preview.message, preview.override, preview.options)
    return [{"path": c.path, "body": c.body} for c in found]


def _preview(preview: base.Preview) -> list[str]:
    out = ["Authorization: GenieKey <the Secret's apiKey>"]
    for call in calls(preview.message, preview.override, preview.options):
        out += ["", f"POST {call.path} ({call.what})", _http.indented(call.body)]
    return out


PROVIDER = base.ProviderType(OpsgenieProvider, _render, _preview)
