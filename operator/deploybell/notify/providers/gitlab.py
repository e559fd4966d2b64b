"""GitLab: each run becomes a deployment of its commit to its environment (Deployments API):
created `running` at start, then updated to `success`, `failed` or `canceled`; with
`gitlab.commitStatus` also an external commit status `deploybell/<namespace>/<job>` (`running`,
then the outcome), shown with the commit's pipelines.

The project is `gitlab.project` (an id or `group/name`) or the path of the DeployJob's
`spec.source.repository`, sent URL-encoded; the commit is `spec.source.revision`, the ref
`gitlab.ref` (a branch or tag; default the commit itself) and the environment
`spec.source.environment` (the namespace by default). The deployment id is kept in the ledger
(the start entry's refs). GitLab deployments carry no data of ours, so a deployment made just
before a crash is found again as the `running` deployment of the same commit and environment
created after the run started (GitLab's clock and the operator's are assumed to agree).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _http, _records
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    Preview,
    ProviderType,
    Sent,
    Title,
)

DEFAULT_API_URL = "https://gitlab.com/api/v4"
DEPLOYMENT_STATES = {
    "start": "running",
    "success": "success",
    "failure": "failed",
    "cancel": "canceled",
}
# GitLab keeps a status's description and target URL in 255-character columns.
MAX_DESCRIPTION = 255
MAX_TARGET_URL = 255
_PROJECT = r"[0-9]+|[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+"
_TOKEN = re.compile(r"[\x21-\x7e]+")

RULES = ProviderRules(
    type="gitlab",
    title="GitLab",
    doc="A deployment of the run's commit to its environment, running until the outcome updates "
    "it (and optionally an external commit status).",
    recipients=Recipients(
        required=False,
        doc="the project comes from the DeployJob's `spec.source` or `gitlab.project`",
    ),
    options=(
        Field(
            "project",
            "string",
            "The project: its numeric id or its path `group/name`; default: the path of the "
            "DeployJob's `spec.source.repository`.",
            max_length=255,
            pattern=_PROJECT,
            expected="a project id or a path group/name",
        ),
        Field(
            "ref",
            "string",
            "The branch or tag the deployment is of; default: the commit itself.",
            min_length=1,
            max_length=255,
            pattern=r"[^\s~^:?*\[\\]+",
            expected="a branch or tag name",
        ),
        Field(
            "commitStatus",
            "boolean",
            "Also set an external commit status `deploybell/<namespace>/<job>` on the commit: "
            "running, then success, failed or canceled.",
            default=False,
        ),
    ),
    secret_keys=(
        SecretKey("token", "A project, group or personal access token with the `api` scope."),
        SecretKey(
            "apiUrl",
            "Self-managed GitLab: the instance URL (`https://gitlab.example.com`) or its API root "
            "(`…/api/v4`).",
            sensitive=False,
        ),
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
)


class GitlabProvider(_http.HttpProvider):
    """Creates the run's deployment at start and updates its status at the outcome."""

    kind = "gitlab"

    async def send(
        self, message: Message, destination: Destination, override: Title | None = None
    ) -> Sent:
        if message.test:
            return await self._check(destination)
        sha = _records.commit(message, "gitlab")  # first: without spec.source, say that
        api = _Api.of(destination, message)
        wanted = DEPLOYMENT_STATES[message.event]
        previous = str(destination.previous.get("deployment") or "")
        deployment = previous if previous.isdigit() else await self._find(api, message, sha)
        if message.event == "start" or not deployment:
            deployment = deployment or await self._create(api, message, sha, wanted)
        else:
            deployment = await self._update(api, message, sha, deployment, wanted)
        detail = f"deployment {deployment} of {api.project}: {wanted}"
        if destination.options.get("commitStatus", False):
            body = commit_status_body(message, override, destination.options)
            reply = await self._http.post(
                api.url("statuses", sha), api.secrets, headers=api.headers, json=body
            )
            if not _already(reply, body["state"]):
                _answer(reply, api, f"commit {sha[:12]} of {api.project}")
            detail += f"; commit status {body['name']}: {body['state']}"
        return Sent(refs={"deployment": deployment, "project": api.project}, detail=detail)

    async def _check(self, destination: Destination) -> Sent:
        """`deploybell notify-test`: the token (and the `gitlab.project` it can see); a test
        records no deployment."""
        api = _Api.of(destination, None)
        where = api.url() if api.project else URL(f"{api.root}/user", encoded=True)
        reply = await self._http.request("GET", where, api.secrets, headers=api.headers)
        _answer(reply, api, api.project or "the token")
        if api.project:
            return Sent(detail=f"the token can see {api.project}; a test records nothing")
        return Sent(
            detail="the token is valid; a test records nothing (with gitlab.project it also "
            "checks that project)"
        )

    async def _find(self, api: _Api, message: Message, sha: str) -> str:
        """This run's running deployment, made before a crash lost its id ("" when none)."""
        started = _records.parse_time(message.started_at)
        if started is None:
            return ""
        query = {
            "environment": message.environment,
            "status": "running",
            "order_by": "id",
            "sort": "desc",
            "per_page": "20",
        }
        reply = await self._http.request(
            "GET", api.url("deployments").with_query(query), api.secrets, headers=api.headers
        )
        _answer(reply, api, f"the deployments of {api.project}")
        for deployment in reply.json() if isinstance(reply.json(), list) else ():
            created = _gitlab_time(str(deployment.get("created_at", "")))
            if deployment.get("sha") == sha and created is not None and created >= started:
                return str(deployment.get("id", ""))
        return ""

    async def _create(self, api: _Api, message: Message, sha: str, status: str) -> str:
        body = deployment_body(message, api.ref or sha, status)
        reply = await self._http.post(
            api.url("deployments"), api.secrets, headers=api.headers, json=body
        )
        _answer(reply, api, f"{api.project} at {sha[:12]}")
        created = reply.json()
        if not isinstance(created, dict) or "id" not in created:
            raise PermanentDeliveryError(f"gitlab: no deployment id in GitLab's answer for {sha}")
        return str(created["id"])

    async def _update(
        self, api: _Api, message: Message, sha: str, deployment: str, status: str
    ) -> str:
        reply = await self._http.request(
            "PUT",
            api.url("deployments", deployment),
            api.secrets,
            headers=api.headers,
            json={"status": status},
        )
        if reply.status == 404:  # the deployment made at start is gone: record on a new one
            return await self._create(api, message, sha, status)
        if reply.status == 400:  # e.g. already in that status (a retry after a lost answer)
            current = await self._http.request(
                "GET", api.url("deployments", deployment), api.secrets, headers=api.headers
            )
            body = current.json()
            if current.ok and isinstance(body, dict) and body.get("status") == status:
                return deployment
        _answer(reply, api, f"deployment {deployment} of {api.project}")
        return deployment


class _Api:
    """The project's API root, the request headers and the values to mask."""

    def __init__(self, root: str, project: str, token: str, ref: str, secrets: list[str]) -> None:
        self.root = root
        self.project = project
        self.ref = ref
        self.headers = {"PRIVATE-TOKEN": token}
        self.secrets = secrets

    @classmethod
    def of(cls, destination: Destination, message: Message | None) -> _Api:
        """The API for `message`'s project (None: only the option's, "" without one)."""
        secret = destination.secret
        token = secret.get("token", "").strip()
        if not _TOKEN.fullmatch(token):
            raise PermanentDeliveryError("gitlab: Secret key 'token' must be one word")
        api_url = secret.get("apiUrl", "").strip()
        root = _http.http_url(api_url or DEFAULT_API_URL, "gitlab: Secret key 'apiUrl'")
        if root.path in ("", "/"):
            root = root.with_path("/api/v4")
        option = str(destination.options.get("project") or "")
        ref = str(destination.options.get("ref") or "")
        if message is None:
            return cls(str(root).rstrip("/"), option, token, ref, _http.secrets_of(secret))
        host, project = _records.repository(message, "gitlab", "project", option)
        if not re.fullmatch(_PROJECT, project):
            raise PermanentDeliveryError(
                f"gitlab: spec.source.repository of {message.ref} names no GitLab project "
                f"path (group/name), got {project!r}"
            )
        if host and not api_url and host not in ("gitlab.com", "www.gitlab.com"):
            raise PermanentDeliveryError(
                f"gitlab: the repository is on {host}, not gitlab.com: set the Secret's apiUrl "
                f"to the URL of {host} (self-managed GitLab)"
            )
        return cls(str(root).rstrip("/"), project, token, ref, _http.secrets_of(secret))

    def url(self, *segments: str) -> URL:
        """`…/projects/<id or URL-encoded path>/<segments>` (the path's slashes as %2F)."""
        path = "/".join(quote(s, safe="") for s in ("projects", self.project, *segments))
        return URL(f"{self.root}/{path}", encoded=True)


def _answer(reply: _http.Reply, api: _Api, context: str) -> Sent:
    """GitLab's 429 names `Retry-After` and `RateLimit-Reset` (epoch seconds)."""
    reset = _http.reset_delay(reply.headers, "RateLimit-Reset", datetime.now(UTC))
    return _http.outcome(reply, "gitlab", api.secrets, context=context, default_delay=reset)


def _already(reply: _http.Reply, state: str) -> bool:
    """GitLab refuses to set a commit status to the state it is in ("Cannot transition status
    via :run from :running"): for a retried request that landed before, that is success."""
    said = _http.vendor_message(reply.json())
    return reply.status == 400 and "Cannot transition status" in said and f"from :{state}" in said


def _gitlab_time(stamp: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# request bodies (pure)


def deployment_body(message: Message, ref: str, status: str) -> dict[str, Any]:
    """`POST /projects/:id/deployments`."""
    return {
        "environment": message.environment,
        "sha": message.commit,
        "ref": ref,
        "tag": False,
        "status": status,
    }


def commit_status_body(
    message: Message, override: Title | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """`POST /projects/:id/statuses/:sha`, one name per DeployJob."""
    body: dict[str, Any] = {
        "state": DEPLOYMENT_STATES[message.event],
        "name": f"deploybell/{message.namespace}/{message.job}"[:255],
        "description": _records.status_text(message, override, MAX_DESCRIPTION),
    }
    if target := _records.web_link(message.link, MAX_TARGET_URL):
        body["target_url"] = target
    if ref := str(options.get("ref") or ""):
        body["ref"] = ref
    return body


def _render(preview: Preview) -> dict[str, Any]:
    message, options = preview.message, preview.options
    status = DEPLOYMENT_STATES[message.event]
    out: dict[str, Any] = {}
    if message.event == "start":
        ref = str(options.get("ref") or message.commit)
        out["deployment"] = deployment_body(message, ref, status)
    else:
        out["update"] = {"status": status}
    if options.get("commitStatus", False):
        out["commitStatus"] = commit_status_body(message, preview.override, options)
    return out


def _preview(preview: Preview) -> list[str]:
    bodies = _render(preview)
    if "deployment" in bodies:
        lines = ["POST /projects/:id/deployments", _http.indented(bodies["deployment"])]
    else:
        lines = [
            "PUT /projects/:id/deployments/:deployment_id (the deployment made at start, its id "
            "kept in the ledger; without one, a deployment is created in this status)",
            _http.indented(bodies["update"]),
        ]
    if "commitStatus" in bodies:
        lines += ["POST /projects/:id/statuses/:sha", _http.indented(bodies["commitStatus"])]
    return lines


PROVIDER = ProviderType(
    rules=RULES,
    sender=GitlabProvider,
    render=_render,
    preview=_preview,
    setup="A project access token (or a group or personal one) with the **`api`** scope and at "
    "least the **Developer** role in the project (creating deployments and commit statuses; a "
    "protected environment also needs deploy access to it). Self-managed GitLab: the Secret's "
    "`apiUrl`.",
)
