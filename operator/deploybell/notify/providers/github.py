"""GitHub: each run becomes a deployment of its commit to its environment (REST Deployments
API), whose status follows the run — `in_progress` at start, then `success`, `failure` or
`inactive` (canceled) — and, with `github.commitStatus`, a commit status
`deploybell/<namespace>/<job>` (`pending`, then `success`, `failure` or `error`).

The repository is `github.repository` or the path of the DeployJob's `spec.source.repository`;
the commit is `spec.source.revision` and the environment `spec.source.environment` (the namespace
by default). A DeployJob without them cannot be recorded: a permanent error names the field.
The deployment id is kept in the ledger (the start entry's refs); the run's identity is also in
the deployment's `payload`, so a deployment created just before a crash is found, not repeated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _answers, _forge, _http, _layout, _records, base

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
# GitHub refuses a status description over 140 characters.
MAX_DESCRIPTION = 140
DEPLOYMENT_STATES = {
    "start": "in_progress",
    "success": "success",
    "failure": "failure",
    "cancel": "inactive",
}
COMMIT_STATES = {"start": "pending", "success": "success", "failure": "failure", "cancel": "error"}
_NAME = r"[A-Za-z0-9_.-]+"

RULES = ProviderRules(
    type="github",
    title="GitHub",
    doc="A deployment of the run's commit to its environment, its status following the run "
    "(and optionally a commit status); the outcome updates the deployment made at start.",
    recipients=Recipients(
        required=False,
        doc="the repository comes from the DeployJob's `spec.source` or `github.repository`",
    ),
    options=(
        Field(
            "repository",
            "string",
            "The repository as `owner/name`; default: the path of the DeployJob's "
            "`spec.source.repository`.",
            max_length=200,
            pattern=f"{_NAME}/{_NAME}",
            expected="owner/name",
        ),
        Field(
            "commitStatus",
            "boolean",
            "Also set a commit status `deploybell/<namespace>/<job>` on the commit: pending, then "
            "success, failure or error (canceled).",
            default=False,
        ),
        Field(
            "environmentUrl",
            "string",
            "The URL of the deployed environment, linked from the deployment.",
            max_length=2048,
            pattern=r"https?://\S+",
            expected="an http(s) URL",
        ),
    ),
    secret_keys=(
        SecretKey(
            "token", "A fine-grained token (or GitHub App token) that may write deployments."
        ),
        SecretKey("apiUrl", "GitHub Enterprise Server: `https://HOST/api/v3`.", sensitive=False),
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
    setup="A fine-grained personal access token (or a GitHub App) for the repository with the "
    "repository permissions **Deployments: read and write** and, for `commitStatus`, **Commit "
    "statuses: read and write** (Metadata: read is implied). A classic token needs "
    "`repo_deployment` (and `repo:status`). GitHub Enterprise Server: the Secret's `apiUrl`.",
)


class GithubProvider(_forge.ForgeProvider):
    """Creates the run's deployment at start and adds a status to it at every event."""

    rules = RULES
    option = "repository"
    home = "github.com"
    default_api = DEFAULT_API_URL
    path_pattern = f"{_NAME}/{_NAME}"
    path_words = "a repository as owner/name"
    self_hosted = "the API of {host} (GitHub Enterprise Server serves it under /api/v3)"
    reset_header = "x-ratelimit-reset"
    status_name = "context"

    def headers(self, token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "Accept": ACCEPT,
            "X-GitHub-Api-Version": API_VERSION,
        }

    def url(self, repo: _forge.Repository, *segments: str) -> URL:
        owner, name = repo.path.split("/")
        return repo.root.joinpath("repos", owner, name, *segments)

    def whoami(self, root: URL) -> URL:
        return root.joinpath("rate_limit")

    def limited(self, reply: _answers.Reply) -> bool:
        """A 403 or 429 with `retry-after`, or with no requests left (`x-ratelimit-remaining:
        0`), is a rate limit that ends at `x-ratelimit-reset`."""
        return reply.status in (403, 429) and (
            _answers.header(reply.headers, "retry-after") is not None
            or _answers.header(reply.headers, "x-ratelimit-remaining") == "0"
        )

    async def record(
        self, out: _http.Outgoing, repo: _forge.Repository, sha: str
    ) -> tuple[str, str]:
        message = out.message
        deployment = str(out.previous.get("deployment") or "")
        if message.event == "start" or not deployment.isdigit():
            deployment = await self._find_or_create(out, repo, sha)
        status = status_body(message, out.override, out.options)
        reply = await out.request(
            "POST", self.url(repo, "deployments", deployment, "statuses"), json=status
        )
        if reply.status == 404 and message.event != "start":
            # The deployment made at start is gone (deleted): record the run on a new one.
            deployment = await self._find_or_create(out, repo, sha, look=False)
            reply = await out.request(
                "POST", self.url(repo, "deployments", deployment, "statuses"), json=status
            )
        self.answer(out, reply, f"deployment {deployment} of {repo.path}")
        return deployment, f"deployment {deployment} of {repo.path}: {status['state']}"

    async def _find_or_create(
        self, out: _http.Outgoing, repo: _forge.Repository, sha: str, look: bool = True
    ) -> str:
        """The id of this run's deployment: found by its payload, else created."""
        message = out.message
        if look:
            query = {"sha": sha, "environment": message.environment, "per_page": "100"}
            reply = await out.request("GET", self.url(repo, "deployments").with_query(query))
            self.answer(out, reply, f"the deployments of {repo.path}")
            found = _same_run(reply.json(), _records.identity(message))
            if found:
                return found
        body = deployment_body(message)
        reply = await out.request("POST", self.url(repo, "deployments"), json=body)
        self.answer(out, reply, f"{repo.path} at {sha[:12]}")
        created = reply.json()
        if reply.status != 201 or not isinstance(created, dict) or "id" not in created:
            # 202 is GitHub's answer when it merged the default branch instead (auto_merge).
            raise base.PermanentDeliveryError(
                f"github: no deployment created for {repo.path}: HTTP {reply.status}"
            )
        return str(created["id"])

    def commit_status_body(self, draft: base.Draft) -> dict[str, Any]:
        return commit_status(draft)


def _same_run(listed: Any, wanted: Mapping[str, Any]) -> str:
    """The id of the listed deployment whose payload names this run, "" when none does."""
    for deployment in listed if isinstance(listed, list) else ():
        payload = deployment.get("payload") if isinstance(deployment, dict) else None
        if isinstance(payload, dict) and payload.get("deploybell") == dict(wanted):
            return str(deployment.get("id", ""))
    return ""


# request bodies (pure)


def deployment_body(message: Message) -> dict[str, Any]:
    """`POST /repos/{owner}/{repo}/deployments`: the commit, to the run's environment, with no
    merge and no required checks (the commit is deployed as it is)."""
    return {
        "ref": message.commit,
        "environment": message.environment,
        "auto_merge": False,
        "required_contexts": [],
        "description": clip(f"deploybell: {message.ref} run {message.run}", MAX_DESCRIPTION),
        "payload": {"deploybell": _records.identity(message)},
        "transient_environment": False,
    }


def status_body(
    message: Message, override: base.Title | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """`POST …/deployments/{id}/statuses`: the run's state, its one line and its links."""
    body: dict[str, Any] = {
        "state": DEPLOYMENT_STATES[message.event],
        "description": _records.status_text(message, override, MAX_DESCRIPTION),
        "environment": message.environment,
    }
    if log_url := _layout.web_link(message.link):
        body["log_url"] = log_url
    if environment_url := str(options.get("environmentUrl") or ""):
        body["environment_url"] = environment_url
    return body


def commit_status(draft: base.Draft) -> dict[str, Any]:
    """`POST /repos/{owner}/{repo}/statuses/{sha}`, one context per DeployJob."""
    message, override = draft.message, draft.override
    body: dict[str, Any] = {
        "state": COMMIT_STATES[message.event],
        "description": _records.status_text(message, override, MAX_DESCRIPTION),
        "context": f"deploybell/{message.namespace}/{message.job}",
    }
    if target := _layout.web_link(message.link):
        body["target_url"] = target
    return body


def _render(preview: base.Preview) -> dict[str, Any]:
    """The bodies of one event's requests, by request."""
    message, override, options = preview.message, preview.override, preview.options
    out: dict[str, Any] = {}
    if message.event == "start":
        out["deployment"] = deployment_body(message)
    out["status"] = status_body(message, override, options)
    if options.get("commitStatus", False):
        out["commitStatus"] = commit_status(preview)
    return out


def _preview(preview: base.Preview) -> list[str]:
    bodies = _render(preview)
    lines = []
    if "deployment" in bodies:
        lines += ["POST /repos/{owner}/{repo}/deployments", _http.indented(bodies["deployment"])]
    else:
        lines.append(
            "to the deployment made at start (its id is kept in the ledger; without one, a "
            "deployment is created first, as at start)"
        )
    lines += [
        "POST /repos/{owner}/{repo}/deployments/{id}/statuses",
        _http.indented(bodies["status"]),
    ]
    if "commitStatus" in bodies:
        lines += [
            "POST /repos/{owner}/{repo}/statuses/{sha}",
            _http.indented(bodies["commitStatus"]),
        ]
    return lines


PROVIDER = base.ProviderType(GithubProvider, _render, _preview)
