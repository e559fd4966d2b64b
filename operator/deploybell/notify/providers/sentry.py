"""Sentry: each finished run becomes a deploy of a release to its environment
(`POST /api/0/organizations/{org}/releases/{version}/deploys/`), with the run's start and end
times and a name saying the job, run and outcome. The release (`versionPrefix` + the commit,
`spec.source.revision`) is created first when Sentry does not know it, with the commit as its
`ref`. The start sends nothing: a Sentry deploy is a point in time with no state to update.

Sentry deploys have no failure state. A failed or canceled run still put the release's pods in
the environment (errors they raised belong to that release there), so by default every outcome
is recorded, its name ending in `failed` or `canceled`; with `sentry.successOnly` only
successful runs are (nothing is sent for the others). A retry after a lost answer finds the
deploy by its name and environment among the release's deploys instead of making a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _answers, _http, _layout, _records, base

DEFAULT_API_URL = "https://sentry.io"
MAX_NAME = 64  # Sentry keeps a deploy's name in 64 characters
MAX_ENVIRONMENT = 64  # and an environment's name
MAX_VERSION = 200  # and a release's version
_SLUG = r"[a-z0-9][a-z0-9_-]*"

RULES = ProviderRules(
    type="sentry",
    title="Sentry",
    doc="A deploy of the commit's release to the run's environment at each finished run (the "
    "release is created if missing); nothing is sent at start.",
    recipients=Recipients(required=False, doc="the organization is `sentry.organization`"),
    options=(
        Field(
            "organization",
            "string",
            "The organization's slug (required).",
            min_length=1,
            max_length=50,
            pattern=_SLUG,
            expected="an organization slug",
        ),
        Field(
            "projects",
            "string",
            "The projects of the release, comma-separated slugs (required: Sentry creates a "
            "release for projects).",
            min_length=1,
            max_length=1000,
            pattern=f"{_SLUG}(,{_SLUG})*",
            expected="project slugs separated by commas",
        ),
        Field(
            "versionPrefix",
            "string",
            "Put before the commit SHA to make the release's version, e.g. `web@` (Sentry's "
            "`package@version` convention); default: the commit SHA alone.",
            max_length=100,
            pattern=r"[^\s/]+",
            expected="no white space and no '/'",
        ),
        Field(
            "successOnly",
            "boolean",
            "Record only successful runs as deploys (Sentry deploys have no failure state).",
            default=False,
        ),
    ),
    secret_keys=(
        SecretKey("token", "An auth token with the `project:releases` scope (sent as Bearer)."),
        SecretKey(
            "apiUrl",
            "Self-hosted Sentry or another region: its URL, e.g. `https://de.sentry.io` "
            "(default `https://sentry.io`).",
            sensitive=False,
        ),
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,  # one deploy per run, made at the outcome: never a second one
    setup="An organization auth token (Settings → Developer Settings → Organization Tokens) or "
    "an internal integration's token with the **`project:releases`** scope (Releases: Admin "
    "for an integration). The DeployJob needs `spec.source.revision`: the release's version is "
    "`versionPrefix` + that commit. Self-hosted or EU region: the Secret's `apiUrl`.",
)


class SentryProvider(_http.HttpProvider):
    """Records a finished run as a deploy of its release (made first when missing)."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        message = out.message
        if message.event == "start" and not message.test:
            return base.Sent(detail="nothing to send at start (Sentry records finished deploys)")
        out.headers["Authorization"] = f"Bearer {out.word('token')}"
        org = str(out.options.get("organization") or "")
        if not org:
            raise base.PermanentDeliveryError("sentry: the Notification needs sentry.organization")
        api = out.url("apiUrl", DEFAULT_API_URL).joinpath("api", "0", "organizations", org)
        if message.test:  # `deploybell notify-test`: the token may read the organization
            _check(out, await out.request("GET", api / ""), f"organization {org}")
            return base.Sent(
                detail=f"the token can read organization {org}; a test records nothing"
            )
        if message.event != "success" and out.options.get("successOnly", False):
            return base.Sent(detail=f"not recorded: the run {message.verb} (sentry.successOnly)")
        version = release_version(message, out.options)
        deploys = _release_url(api, version).joinpath("deploys", "")
        body = deploy_body(message, out.options, datetime.now(UTC))
        found = await _existing(out, deploys, body)
        if found:
            return _sent(found, version, "already recorded")
        reply = await out.request("POST", deploys, json=body)
        if reply.status == 404:  # the release is missing: make it, then the deploy
            await _create_release(out, api, message, version)
            reply = await out.request("POST", deploys, json=body)
        _check(out, reply, f"a deploy of release {version}")
        created = reply.json()
        deploy = str(created.get("id", "")) if isinstance(created, dict) else ""
        return _sent(deploy, version, f"deploy to {body['environment']}: {body['name']}")


def _sent(deploy: str, version: str, detail: str) -> base.Sent:
    return base.Sent(refs={"deploy": deploy, "release": version}, detail=f"sentry {detail}")


def _release_url(api: URL, version: str) -> URL:
    # The version goes into the path as one segment, encoded (it may hold '@' or '+').
    return URL(f"{str(api).rstrip('/')}/releases/{quote(version, safe='')}", encoded=True)


async def _existing(out: _http.Outgoing, deploys: URL, body: Mapping[str, Any]) -> str:
    """The id of this run's deploy when a lost answer hid it ("" when none, or no release)."""
    reply = await out.request("GET", deploys)
    if reply.status == 404:
        return ""
    _check(out, reply, "the release's deploys")
    for deploy in reply.json() if isinstance(reply.json(), list) else ():
        same = (deploy.get("name"), deploy.get("environment")) == (
            body["name"],
            body["environment"],
        )
        if isinstance(deploy, dict) and same:
            return str(deploy.get("id", ""))
    return ""


async def _create_release(out: _http.Outgoing, api: URL, message: Message, version: str) -> None:
    if not _projects(out.options):
        raise base.PermanentDeliveryError(
            f"sentry: release {version} does not exist and the Notification names no "
            "sentry.projects to create it for"
        )
    body = release_body(message, out.options, version)
    _check(out, await out.request("POST", api / "releases" / "", json=body), f"release {version}")


def _check(out: _http.Outgoing, reply: _answers.Reply, context: str) -> base.Sent:
    """Sentry's 429 says when its window ends in `X-Sentry-Rate-Limit-Reset` (epoch seconds)."""
    reset = _answers.reset_delay(reply.headers, "X-Sentry-Rate-Limit-Reset", datetime.now(UTC))
    detail = reply.json().get("detail") if isinstance(reply.json(), dict) else None
    explain = _answers.excerpt(detail) if isinstance(detail, str) else ""
    return out.check(reply, context, default_delay=reset, explain=explain)


# request bodies (pure)


def release_version(message: Message, options: Mapping[str, Any]) -> str:
    """`versionPrefix` + the commit: the release the run deployed."""
    sha = _records.commit(message, "sentry")
    return clip(f"{options.get('versionPrefix') or ''}{sha}", MAX_VERSION, "")


def environment(message: Message) -> str:
    """The run's environment as Sentry names one: no '/', at most 64 characters."""
    return clip((message.environment or message.namespace).replace("/", "-"), MAX_ENVIRONMENT, "")


def deploy_name(message: Message) -> str:
    """`team-a/web succeeded on prod-eu (run 3)`: the job cut to fit Sentry's 64 characters, so
    the outcome and run always show (the cluster only when it fits)."""
    tail = f" {message.verb} (run {message.run})"
    if message.cluster and len(message.cluster) <= 20:
        tail = f" {message.verb} on {message.cluster} (run {message.run})"
    return clip(message.ref, MAX_NAME - len(tail)) + tail


def deploy_body(message: Message, options: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The body of `POST …/releases/{version}/deploys/` (`now` for a run without times)."""
    finished = _records.parse_time(message.finished_at) or now
    started = _records.parse_time(message.started_at) or finished
    body: dict[str, Any] = {
        "environment": environment(message),
        "name": deploy_name(message),
        "dateStarted": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dateFinished": max(started, finished).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "projects": _projects(options),
    }
    if url := _layout.web_link(message.link):
        body["url"] = url
    return body


def release_body(message: Message, options: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The body of `POST …/releases/`: the version, its projects and the commit as its ref."""
    body: dict[str, Any] = {
        "version": version,
        "projects": _projects(options),
        "ref": message.commit,
    }
    if url := _layout.web_link(message.change_url):
        body["url"] = url
    return body


def _projects(options: Mapping[str, Any]) -> list[str]:
    return [p for p in str(options.get("projects") or "").split(",") if p]


def _render(preview: base.Preview) -> Any:
    message, options = preview.message, preview.options
    if message.event == "start" or (message.event != "success" and options.get("successOnly")):
        return None
    if not message.commit:  # sending says so: the release's version is the commit
        return None
    version = release_version(message, options)
    return {
        "deploy": deploy_body(message, options, _http.preview_time(message)),
        "release": release_body(message, options, version),
    }


def _preview(preview: base.Preview) -> list[str]:
    bodies = _render(preview)
    if bodies is None and preview.message.event != "start" and not preview.message.commit:
        return ["nothing can be sent: the release's version is spec.source.revision, unset here"]
    if bodies is None:
        return ["nothing is sent: Sentry records a deploy once the run has finished"]
    version = quote(bodies["release"]["version"], safe="")
    return [
        f"POST /api/0/organizations/{{org}}/releases/{version}/deploys/",
        _http.indented(bodies["deploy"]),
        "when Sentry does not know the release, first: POST /api/0/organizations/{org}/releases/",
        _http.indented(bodies["release"]),
    ]


PROVIDER = base.ProviderType(SentryProvider, _render, _preview)
