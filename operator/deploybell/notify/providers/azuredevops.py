"""Azure DevOps (Services and Server): each run adds a Git status to its commit (`POST
{organization}/{project}/_apis/git/repositories/{repository}/commits/{commit}/statuses`) under
the context `deploybell/<namespace>` (genre) `<job>` (name): `pending` at start, then
`succeeded`, `failed` or `error` (canceled). Azure DevOps shows the latest status of each
context, so the start's turns into the outcome, also when a restarted operator sends it.

The repository is `azuredevops.repository` (`organization/project/repository`; on Azure DevOps
Server `collection/project/repository`) or comes from the DeployJob's `spec.source.repository`
(`https://dev.azure.com/org/project/_git/repo`, `https://org.visualstudio.com/project/_git/repo`,
`https://server/tfs/collection/project/_git/repo`). A personal access token goes with basic
auth. Azure DevOps answers a request it cannot sign in with 203 and a sign-in page: that is an
authentication error here, not a success.
"""

from __future__ import annotations

import base64
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import clip
from deploybell.notify.providers import _answers, _commitstatus, _forge, _http, _layout, base

DEFAULT_API_URL = "https://dev.azure.com"
# The newest version every supported release takes: Azure DevOps Services (7.1 today) still
# serves 6.0, and Azure DevOps Server 2020 and 2022 refuse versions newer than their own.
API_VERSION = "6.0"
STATES = {"start": "pending", "success": "succeeded", "failure": "failed", "cancel": "error"}
# Azure DevOps documents no limit; the pull request and commit pages show one line.
MAX_DESCRIPTION = 255
MAX_TARGET_URL = 2048
_PART = r"[^/]+"

RULES = ProviderRules(
    type="azuredevops",
    title="Azure DevOps",
    doc="A Git status of the run's commit, one context per DeployJob: pending at start, then "
    "the outcome.",
    recipients=Recipients(
        required=False,
        doc="the repository comes from the DeployJob's `spec.source` or `azuredevops.repository`",
    ),
    options=(
        Field(
            "repository",
            "string",
            "The repository as `organization/project/repository` (Azure DevOps Server: "
            "`collection/project/repository`); default: from the DeployJob's "
            "`spec.source.repository`.",
            max_length=400,
            pattern=f"{_PART}/{_PART}/{_PART}",
            expected="organization/project/repository",
        ),
    ),
    secret_keys=(
        SecretKey("token", "A personal access token with the **Code (status)** scope."),
        SecretKey(
            "apiUrl",
            "Azure DevOps Server: the server's URL (`https://server/tfs`); default "
            "https://dev.azure.com.",
            sensitive=False,
        ),
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
    setup="A personal access token (User settings > Personal access tokens) of a user who may "
    "contribute to the repository, scope **Code: Status** (`vso.code_status`), for the "
    "organization. Azure DevOps Server (2020 or later): the Secret's `apiUrl`.",
)


class AzureDevopsProvider(_commitstatus.CommitStatusForge):
    """Adds the run's Git status at every event."""

    rules = RULES
    option = "repository"
    home = "dev.azure.com"
    default_api = DEFAULT_API_URL
    path_pattern = f"{_PART}/{_PART}/{_PART}"
    path_words = "a repository as organization/project/repository"
    self_hosted = "the URL of {host} (Azure DevOps Server, e.g. https://{host}/tfs)"
    reset_header = "X-RateLimit-Reset"
    status_name = "context"
    can = "read"

    def credentials(self, out: _http.Outgoing) -> dict[str, str]:
        # A PAT is the password of basic auth; the user name is not read.
        encoded = base64.b64encode(f":{out.word('token')}".encode()).decode()
        out.hide(encoded)
        return {"Authorization": f"Basic {encoded}", "Accept": "application/json"}

    def headers(self, token: str) -> dict[str, str]:
        return {}

    def _home(self, host: str) -> bool:
        return host in ("dev.azure.com", "ssh.dev.azure.com") or host.endswith(".visualstudio.com")

    def repository_path(self, host: str, path: str) -> str:
        return azure_path(host, path)

    def url(self, repo: _forge.Repository, *segments: str) -> URL:
        collection, project, name = repo.path.split("/")
        api = ("_apis", "git", "repositories", name, *segments)
        query = {"api-version": API_VERSION}
        return repo.root.joinpath(collection, project, *api).with_query(query)

    def status_url(self, repo: _forge.Repository, sha: str) -> URL:
        return self.url(repo, "commits", sha, "statuses")

    def whoami(self, root: URL) -> URL:
        raise base.PermanentDeliveryError(
            "azuredevops: a test needs azuredevops.repository: a personal access token belongs "
            "to one organization, named there"
        )

    def answer(self, out: _http.Outgoing, reply: _answers.Reply, context: str) -> base.Sent:
        if reply.status == 203 or (reply.ok and "json" not in _content_type(reply)):
            raise base.PermanentDeliveryError(
                f"azuredevops: HTTP {reply.status} for {context}: Azure DevOps answered with its "
                "sign-in page: the personal access token was not accepted"
            )
        return super().answer(out, reply, context)

    def name_of(self, body: dict[str, Any]) -> str:
        context = body["context"]
        return f"{context['genre']}/{context['name']}"

    def commit_status_body(self, draft: base.Draft) -> dict[str, Any]:
        return commit_status(draft)


def _content_type(reply: _answers.Reply) -> str:
    return (_answers.header(reply.headers, "Content-Type") or "").lower()


def azure_path(host: str, path: str) -> str:
    """`organization/project/repository` from a clone URL's path: `org/project/_git/repo`
    (dev.azure.com), `project/_git/repo` (org.visualstudio.com), `…/collection/project/_git/
    repo` (Server), `v3/org/project/repo` (SSH)."""
    parts = path.split("/")
    if "_git" in parts:
        at = parts.index("_git")
        name = "/".join(parts[at + 1 : at + 2])
        owner = parts[max(0, at - 2) : at]
        if len(owner) == 1 and host.endswith(".visualstudio.com"):
            owner = [host.split(".")[0], *owner]
        return "/".join([*owner, name])
    return "/".join(parts[1:] if parts[0] == "v3" else parts)


def commit_status(draft: base.Draft) -> dict[str, Any]:
    """`POST …/commits/{commitId}/statuses`, one context per DeployJob (pure)."""
    message = draft.message
    body: dict[str, Any] = {
        "state": STATES[message.event],
        "description": _commitstatus.description(draft, MAX_DESCRIPTION),
        "context": {
            "genre": clip(f"deploybell/{message.namespace}", 255),
            "name": clip(message.job, 255),
        },
    }
    if target := _layout.web_link(message.link, MAX_TARGET_URL):
        body["targetUrl"] = target
    return body


def _render(preview: base.Preview) -> dict[str, Any]:
    return commit_status(preview)


def _preview(preview: base.Preview) -> list[str]:
    return [
        "POST {organization}/{project}/_apis/git/repositories/{repository}/commits/{commit}"
        f"/statuses?api-version={API_VERSION}",
        _http.indented(_render(preview)),
    ]


PROVIDER = base.ProviderType(AzureDevopsProvider, _render, _preview)
