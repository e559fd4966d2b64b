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

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _answers, _forge, _http, _layout, _records, base

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
# Grouped: the schema anchors a pattern as ^…$, which an ungrouped | would split.
_PROJECT = r"([0-9]+|[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+)"

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
    setup="A project access token (or a group or personal one) with the **`api`** scope and at "
    "least the **Developer** role in the project (creating deployments and commit statuses; a "
    "protected environment also needs deploy access to it). Self-managed GitLab: the Secret's "
    "`apiUrl`.",
)


class GitlabProvider(_forge.ForgeProvider):
    """Creates the run's deployment at start and updates its status at the outcome."""

    rules = RULES
    option = "project"
    home = "gitlab.com"
    default_api = DEFAULT_API_URL
    path_pattern = _PROJECT
    path_words = "a GitLab project path (group/name)"
    self_hosted = "the URL of {host} (self-managed GitLab)"
    reset_header = "RateLimit-Reset"  # beside Retry-After on a 429
    status_name = "name"
    can = "see"

    def headers(self, token: str) -> dict[str, str]:
        return {"PRIVATE-TOKEN": token}

    def api_root(self, url: URL) -> URL:
        return url.with_path("/api/v4") if url.path in ("", "/") else url

    def url(self, repo: _forge.Repository, *segments: str) -> URL:
        """`…/projects/<id or URL-encoded path>/<segments>` (the path's slashes as %2F)."""
        path = "/".join(quote(s, safe="") for s in ("projects", repo.path, *segments))
        return URL(f"{str(repo.root).rstrip('/')}/{path}", encoded=True)

    def whoami(self, root: URL) -> URL:
        return URL(f"{str(root).rstrip('/')}/user", encoded=True)

    def already(self, reply: _answers.Reply, state: str) -> bool:
        """GitLab refuses to set a commit status to the state it is in ("Cannot transition
        status via :run from :running"): for a retried request that landed before, that is
        success."""
        said = _answers.vendor_message(reply.json())
        return (
            reply.status == 400 and "Cannot transition status" in said and f"from :{state}" in said
        )

    def commit_status_body(self, draft: base.Draft) -> dict[str, Any]:
        return commit_status(draft)

    async def record(
        self, out: _http.Outgoing, repo: _forge.Repository, sha: str
    ) -> tuple[str, str]:
        wanted = DEPLOYMENT_STATES[out.message.event]
        previous = str(out.previous.get("deployment") or "")
        deployment = previous if previous.isdigit() else await self._find(out, repo, sha)
        if out.message.event == "start" or not deployment:
            deployment = deployment or await self._create(out, repo, sha, wanted)
        else:
            deployment = await self._update(out, repo, sha, deployment, wanted)
        return deployment, f"deployment {deployment} of {repo.path}: {wanted}"

    async def _find(self, out: _http.Outgoing, repo: _forge.Repository, sha: str) -> str:
        """This run's running deployment, made before a crash lost its id ("" when none)."""
        message = out.message
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
        reply = await out.request("GET", self.url(repo, "deployments").with_query(query))
        self.answer(out, reply, f"the deployments of {repo.path}")
        for deployment in reply.json() if isinstance(reply.json(), list) else ():
            created = _gitlab_time(str(deployment.get("created_at", "")))
            if deployment.get("sha") == sha and created is not None and created >= started:
                return str(deployment.get("id", ""))
        return ""

    async def _create(
        self, out: _http.Outgoing, repo: _forge.Repository, sha: str, status: str
    ) -> str:
        ref = str(out.options.get("ref") or "")
        body = deployment_body(out.message, ref or sha, status)
        reply = await out.request("POST", self.url(repo, "deployments"), json=body)
        self.answer(out, reply, f"{repo.path} at {sha[:12]}")
        created = reply.json()
        if not isinstance(created, dict) or "id" not in created:
            raise base.PermanentDeliveryError(
                f"gitlab: no deployment id in GitLab's answer for {sha}"
            )
        return str(created["id"])

    async def _update(
        self, out: _http.Outgoing, repo: _forge.Repository, sha: str, deployment: str, status: str
    ) -> str:
        url = self.url(repo, "deployments", deployment)
        reply = await out.request("PUT", url, json={"status": status})
        if reply.status == 404:  # the deployment made at start is gone: record on a new one
            return await self._create(out, repo, sha, status)
        if reply.status == 400:  # e.g. already in that status (a retry after a lost answer)
            current = await out.request("GET", url)
            body = current.json()
            if current.ok and isinstance(body, dict) and body.get("status") == status:
                return deployment
        self.answer(out, reply, f"deployment {deployment} of {repo.path}")
        return deployment


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


def commit_status(draft: base.Draft) -> dict[str, Any]:
    """`POST /projects/:id/statuses/:sha`, one name per DeployJob."""
    message, override, options = draft.message, draft.override, draft.options
    body: dict[str, Any] = {
        "state": DEPLOYMENT_STATES[message.event],
        "name": f"deploybell/{message.namespace}/{message.job}"[:255],
        "description": _records.status_text(message, override, MAX_DESCRIPTION),
    }
    if target := _layout.web_link(message.link, MAX_TARGET_URL):
        body["target_url"] = target
    if ref := str(options.get("ref") or ""):
        body["ref"] = ref
    return body


def _render(preview: base.Preview) -> dict[str, Any]:
    message, options = preview.message, preview.options
    status = DEPLOYMENT_STATES[message.event]
    out: dict[str, Any] = {}
    if message.event == "start":
        ref = str(options.get("ref") or message.commit)
        out["deployment"] = deployment_body(message, ref, status)
    else:
        out["update"] = {"status": status}
    if options.get("commitStatus", False):
        out["commitStatus"] = commit_status(preview)
    return out


def _preview(preview: base.Preview) -> list[str]:
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


PROVIDER = base.ProviderType(GitlabProvider, _render, _preview)
