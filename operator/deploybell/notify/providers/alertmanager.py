"""Prometheus Alertmanager (API v2): a failed run fires an alert for its DeployJob, the job's next
successful run resolves it.

`POST /api/v2/alerts` with one alert. Alertmanager identifies an alert by its labels, so they
name the job and nothing that changes from run to run: `alertname="DeployJobFailed"`,
`namespace`, `deployjob`, the `environment` and `cluster` when set, `severity` and the
Notification's own `labels`. A failure fires it from the failure's time with an explicit `endsAt`
`firingHours` after it is sent (an alert without one would resolve itself after Alertmanager's
`resolve_timeout`, five minutes by default: deploybell, unlike Prometheus, does not re-send a
firing alert); a success sends the same labels with `startsAt` = `endsAt` = the success's time,
which resolves it. Those times come from the run, so a retry or a restarted operator sends the
same alert. Starts and canceled runs send nothing (a cancel leaves a failing job's alert firing).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from yarl import URL

from deploybell.api.errors import SpecError, shown
from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _http, _layout, _records, base

ALERTNAME = "DeployJobFailed"
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
OURS = frozenset(
    {"alertname", "namespace", "deployjob", "environment", "cluster", "severity", "deploybell_test"}
)
ANNOTATION_CHARS = 4000  # a notification template shows annotations whole: keep them readable
MAX_ITEMS = 10
LINE_CHARS = 300


def _check_labels(value: Mapping[str, str], path: str) -> dict[str, str]:
    for name in value:
        if not LABEL_NAME.fullmatch(name) or name.startswith("__"):
            raise SpecError(path, f"must be a Prometheus label name, got {shown(name)}")
        if name in OURS:
            raise SpecError(f"{path}.{name}", "is set by deploybell and cannot be configured")
    return dict(value)


RULES = ProviderRules(
    type="alertmanager",
    title="Prometheus Alertmanager",
    doc="A failed run fires an alert `DeployJobFailed` for its DeployJob (API v2); the job's "
    "next successful run resolves it. Starts and cancels send nothing.",
    recipients=Recipients(required=False, doc="Alertmanager's routes pick the receivers"),
    options=(
        Field(
            "severity",
            "string",
            "The `severity` label.",
            default="critical",
            min_length=1,
            max_length=63,
        ),
        Field(
            "labels",
            "map",
            "More labels for routing (not `alertname`, `namespace`, `deployjob`, "
            "`environment`, `cluster` or `severity`). Changing them, or `severity`, while an "
            "alert fires leaves it firing until `firingHours` pass.",
            max_entries=20,
            check=_check_labels,
        ),
        Field(
            "firingHours",
            "integer",
            "How long a failure's alert fires when no success resolves it.",
            default=168,
            minimum=1,
            maximum=8760,
        ),
    ),
    secret_keys=(
        SecretKey("url", "Alertmanager's base URL (e.g. `http://alertmanager.monitoring:9093`)."),
        SecretKey("username", "Basic auth user (Alertmanager's web config).", sensitive=False),
        SecretKey("password", "Basic auth password."),
        SecretKey("bearerToken", "A bearer token (for a proxy in front of Alertmanager)."),
    ),
    secret_needs=(frozenset({"url"}),),
    edits_in_place=True,  # one alert per job, resolved in place
    setup="Point `url` at Alertmanager (no Secret credentials unless its web config asks for "
    'basic auth, or a proxy for a bearer token); route `alertname="DeployJobFailed"` to the '
    "receivers that should hear of failed deploys.",
)


def alert(
    message: Message,
    override: base.Title | None,
    options: Mapping[str, Any],
    now: datetime | None = None,
) -> Any:
    """The body of `POST /api/v2/alerts` (a list of one alert); None for starts and cancels.
    A failure fires until `firingHours` after it was sent (`now`; the run's time in previews),
    a message delivered late included."""
    if message.event not in ("failure", "success"):
        return None
    when = _when(message)
    if message.event == "failure":
        hours = int(options.get("firingHours") or 168)
        starts, ends = when, max(when, now or when) + timedelta(hours=hours)
    else:
        starts = ends = when
    title, text = base.headline(message, override)
    body: dict[str, Any] = {
        "labels": labels(message, options),
        "annotations": {
            "summary": clip(title, ANNOTATION_CHARS),
            "description": description(message, text),
            "run": str(message.run),
        },
        "startsAt": _stamp(starts),
        "endsAt": _stamp(ends),
    }
    if link := _layout.web_link(message.link):
        body["generatorURL"] = link
    return [body]


def labels(message: Message, options: Mapping[str, Any]) -> dict[str, str]:
    """The alert's identity: the job, never the run."""
    out = {
        "alertname": ALERTNAME,
        "namespace": message.namespace,
        "deployjob": message.job,
        "severity": str(options.get("severity") or "critical"),
    }
    if message.environment:
        out["environment"] = message.environment
    if message.cluster:
        out["cluster"] = message.cluster
    if message.test:  # `deploybell notify-test` must never resolve a DeployJob's real alert
        out["deploybell_test"] = "true"
    return {**dict(options.get("labels") or {}), **out}


def description(message: Message, text: str) -> str:
    lines = [text, ""] + [f"{name}: {value}" for name, value in message.facts()]
    for name, items, omitted in message.lists():
        if items:
            lines += ["", f"{name}:"]
            lines += _layout.listed(
                items, MAX_ITEMS, lambda i: "- " + clip(i, LINE_CHARS), omitted=omitted
            )
    return clip("\n".join(lines), ANNOTATION_CHARS)


def _when(message: Message) -> datetime:
    """The event's time from the run (the same for every retry); now if the run has none."""
    found = _records.parse_time(message.finished_at) or _records.parse_time(message.started_at)
    return found or datetime.now(UTC).replace(microsecond=0)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class AlertmanagerProvider(_http.HttpProvider):
    """Posts alerts through the shared HTTP session."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        now = datetime.now(UTC).replace(microsecond=0)
        body = alert(out.message, out.override, out.options, now)
        if body is None:
            return base.Sent(detail=f"nothing to send for a {out.message.event} (no alert)")
        root = str(out.url("url")).rstrip("/")
        if token := out.word("bearerToken", required=False):
            out.headers["Authorization"] = f"Bearer {token}"
        elif password := out.destination.secret.get("password", ""):
            user = out.destination.secret.get("username", "").strip()
            out.headers["Authorization"] = _basic(user, password.strip())
        action = "fire" if out.message.event == "failure" else "resolve"
        reply = await out.request("POST", URL(root + "/api/v2/alerts", encoded=True), json=body)
        out.check(reply, context=f"{action} alert {ALERTNAME}")
        return base.Sent(detail=f"{action}: HTTP {reply.status}")


def _basic(user: str, password: str) -> str:
    pair = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _render(preview: base.Preview) -> Any:
    return alert(preview.message, preview.override, preview.options)


def _preview(preview: base.Preview) -> list[str]:
    body = _render(preview)
    if body is None:
        return [f"nothing is sent for a {preview.message.event}: it fires and resolves no alert"]
    return ["POST <the Secret's url>/api/v2/alerts", "", _http.indented(body)]


PROVIDER = base.ProviderType(AlertmanagerProvider, _render, _preview)
