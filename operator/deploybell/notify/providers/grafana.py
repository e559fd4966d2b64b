"""Grafana: each run becomes one region annotation (HTTP API `/api/annotations`), from its start
to its end: created at start (a point at the start time), then patched at the outcome with its
end time, the outcome's text and the outcome tag. Tags: `deploybell`, `<namespace>/<job>`, the
environment (`spec.source.environment`, else the namespace) and the outcome (succeeded, failed,
canceled).

The annotation id is kept in the ledger (the start entry's refs). An annotation made just before
a crash is found again by its tags and start time, so a run never gets two. Organization-wide by
default; `grafana.dashboardUID` (and `panelId`) pins it to one dashboard (panel).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _http, _layout, _records, base

# Grafana stores a tag's key and value in 100-character columns; the text has no documented
# limit, so it is kept to what reads well in a tooltip.
MAX_TAG = 100
MAX_TEXT = 4000
MAX_LINE = 300
MAX_ITEMS = 5

RULES = ProviderRules(
    type="grafana",
    title="Grafana",
    doc="A region annotation per run, from its start to its end, tagged with the job, "
    "environment and outcome; the outcome updates the annotation made at start.",
    recipients=Recipients(
        required=False, doc="the annotation is organization-wide or on one dashboard"
    ),
    options=(
        Field(
            "dashboardUID",
            "string",
            "Put the annotation on this dashboard only (default: organization-wide, shown by "
            "every dashboard that queries annotations by tag).",
            min_length=1,
            max_length=40,
            pattern=r"[A-Za-z0-9_-]+",
            expected="a dashboard UID",
        ),
        Field(
            "panelId",
            "integer",
            "With `dashboardUID`: only on this panel.",
            minimum=1,
            maximum=2**31 - 1,
        ),
    ),
    secret_keys=(
        SecretKey("token", "A service account token (Bearer) with the annotation permissions."),
        SecretKey("url", "The Grafana URL, e.g. `https://grafana.example.com`.", sensitive=False),
    ),
    secret_needs=(frozenset({"token", "url"}),),
    edits_in_place=True,
    setup="A service account token (Administration → Service accounts). Least privilege: a "
    "custom role with `annotations:read`, `annotations:create` and `annotations:write` on "
    "organization annotations (scope `annotations:type:organization`) or, with `dashboardUID`, "
    "on that dashboard (`dashboards:uid:<uid>`); without custom roles, the Editor role has them.",
)


class GrafanaProvider(_http.HttpProvider):
    """Creates the run's annotation at start and patches it at the outcome."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        out.headers["Authorization"] = f"Bearer {out.word('token')}"
        api = out.url("url").joinpath("api", "annotations")
        if out.message.test:  # `deploybell notify-test`: the token may read annotations
            query = {"tags": "deploybell", "type": "annotation", "limit": "1"}
            out.check(await out.request("GET", api.with_query(query)), "the annotations")
            return base.Sent(detail="the token can read annotations; a test adds none")
        body = annotation(out.message, out.override, out.options, datetime.now(UTC))
        previous = str(out.previous.get("annotation") or "")
        found = previous if previous.isdigit() else await _find(out, api, body)
        if found and out.message.event != "start":
            reply = await out.request("PATCH", api / found, json=patch(body))
            if reply.status != 404:  # 404: deleted since; a new one records the run
                out.check(reply, f"annotation {found}")
                return base.Sent(refs={"annotation": found}, detail=f"annotation {found} updated")
        elif found:
            return base.Sent(refs={"annotation": found}, detail=f"annotation {found} exists")
        reply = await out.request("POST", api, json=body)
        out.check(reply, "a new annotation")
        created = reply.json()
        if not isinstance(created, dict) or "id" not in created:
            raise base.PermanentDeliveryError("grafana: no annotation id in Grafana's answer")
        return base.Sent(
            refs={"annotation": str(created["id"])}, detail=f"annotation {created['id']} added"
        )


async def _find(out: _http.Outgoing, api: URL, body: Mapping[str, Any]) -> str:
    """The run's annotation by its first two tags, its start time and its `Run:` line (two runs
    of a job may start within the same second), "" when there is none."""
    start = str(body["time"])
    query = [
        ("from", start),
        ("to", start),
        ("type", "annotation"),
        ("limit", "100"),
        *(("tags", tag) for tag in body["tags"][:2]),
    ]
    reply = await out.request("GET", api.with_query(query))
    out.check(reply, "the annotations")
    run = run_line(out.message)
    for item in reply.json() if isinstance(reply.json(), list) else ():
        if (
            isinstance(item, dict)
            and item.get("time") == body["time"]
            and set(body["tags"][:2]) <= set(item.get("tags") or ())
            and run in str(item.get("text") or "").splitlines()
        ):
            return str(item.get("id", ""))
    return ""


# the annotation (pure)


def annotation(
    message: Message, override: base.Title | None, options: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """`POST /api/annotations`: from the run's start to its end (the start alone at start)."""
    start = _records.epoch_ms(message.started_at, now)
    end = start if message.event == "start" else _records.epoch_ms(message.finished_at, now)
    body: dict[str, Any] = {
        "time": start,
        "timeEnd": max(end, start),
        "tags": tags(message),
        "text": text(message, override),
    }
    if uid := options.get("dashboardUID"):
        body["dashboardUID"] = uid
        if panel := options.get("panelId"):
            body["panelId"] = panel
    return body


def patch(body: Mapping[str, Any]) -> dict[str, Any]:
    """`PATCH /api/annotations/:id`: the end, the text and the tags."""
    return {k: body[k] for k in ("time", "timeEnd", "text", "tags")}


def tags(message: Message) -> list[str]:
    """`deploybell`, `<namespace>/<job>`, the environment, the outcome; each within Grafana's
    limit and without a `:` (Grafana would split it into a key and a value)."""
    out = ["deploybell", message.ref]
    if message.environment:
        out.append(message.environment)
    if message.event in _records.OUTCOME_WORDS:
        out.append(_records.OUTCOME_WORDS[message.event])
    cut = [clip(tag.replace(":", "_").strip(), MAX_TAG) for tag in out]
    return list(dict.fromkeys(t for t in cut if t))


def text(message: Message, override: base.Title | None = None) -> str:
    """The title, the summary, the facts, the failing pods and warnings, the link: lines."""
    title, summary = base.headline(message, override)
    lines = [clip(title, MAX_LINE), clip(summary, 3 * MAX_LINE)]
    lines += [
        clip(f"{label}: {value}".replace("\n", ", "), MAX_LINE) for label, value in message.facts()
    ]
    pods = [p.line() for p in message.pods]
    lines += _layout.listed(
        pods, MAX_ITEMS, lambda line: clip(line, MAX_LINE), omitted=message.pods_omitted
    )
    lines += [clip(w.line(), MAX_LINE) for w in message.warnings[:MAX_ITEMS]]
    if link := _layout.web_link(message.link, MAX_LINE):
        lines.append(link)
    return clip("\n".join(line for line in lines if line), MAX_TEXT)


def run_line(message: Message) -> str:
    """The text's `Run: 3` line (a fact, so a template does not change it)."""
    return next(f"{label}: {value}" for label, value in message.facts() if label == "Run")


def _render(preview: base.Preview) -> dict[str, Any]:
    when = _http.preview_time(preview.message)
    body = annotation(preview.message, preview.override, preview.options, when)
    return body if preview.message.event == "start" else patch(body)


def _preview(preview: base.Preview) -> list[str]:
    if preview.message.event == "start":
        what = "POST /api/annotations"
    else:
        what = (
            "PATCH /api/annotations/:id (the annotation made at start, its id kept in the "
            "ledger; without one, a new annotation with this body)"
        )
    return [what, _http.indented(_render(preview))]


PROVIDER = base.ProviderType(GrafanaProvider, _render, _preview)
