"""Gitea and Forgejo: each run sets the commit status `deploybell/<namespace>/<job>` of its
commit (`POST /repos/{owner}/{repo}/statuses/{sha}`): `pending` at start, then `success`,
`failure` or `error` (canceled). The forge shows the latest status of each context, so the
start's turns into the outcome.

The repository is `gitea.repository` or the path of the DeployJob's `spec.source.repository`;
the commit is `spec.source.revision`. The instance is the Secret's `apiUrl` (its URL or its API
root `…/api/v1`); without one, gitea.com. A restart changes nothing: the context is the
DeployJob's, and setting it again replaces what the forge shows for it.
"""

from __future__ import annotations

from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.providers import _answers, _commitstatus, _forge, _http, _layout, base

DEFAULT_API_URL = "https://gitea.com/api/v1"
STATES = {"start": "pending", "success": "success", "failure": "failure", "cancel": "error"}
# Gitea keeps descriptions as TEXT (it took 70,000 characters here); one line of the commit's
# status list shows about this much.
MAX_DESCRIPTION = 255
_NAME = r"[A-Za-z0-9_.-]+"
# What Gitea's 500s for a missing object say, and what is missing.
_MISSING = {"object does not exist": "commit", "issue does not exist": "pull request"}

RULES = ProviderRules(
    type="gitea",
    title="Gitea / Forgejo",
    doc="A commit status `deploybell/<namespace>/<job>` on the run's commit: pending at start, "
    "then the outcome.",
    recipients=Recipients(
        required=False,
        doc="the repository comes from the DeployJob's `spec.source` or `gitea.repository`",
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
    ),
    secret_keys=(
        SecretKey("token", "An access token with the `write:repository` scope."),
        SecretKey(
            "apiUrl",
            "The instance: its URL (`https://git.example.com`) or API root (`…/api/v1`); "
            "default https://gitea.com.",
            sensitive=False,
        ),
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
    setup="An access token (user settings > Applications) of a user with write access to the "
    "repository, scope **`write:repository`** (Gitea 1.19+ and Forgejo scope tokens; older "
    "tokens have every right). The Secret's `apiUrl` names the instance (Codeberg: "
    "`https://codeberg.org`).",
)


class GiteaProvider(_commitstatus.CommitStatusForge):
    """Sets the run's commit status at every event."""

    rules = RULES
    option = "repository"
    home = "gitea.com"
    default_api = DEFAULT_API_URL
    path_pattern = f"{_NAME}/{_NAME}"
    path_words = "a repository as owner/name"
    self_hosted = "the URL of {host} (its API is under /api/v1)"
    reset_header = "X-RateLimit-Reset"  # a rate-limiting proxy's, beside Retry-After
    status_name = "context"

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"token {token}"}

    def api_root(self, url: URL) -> URL:
        return url.with_path("/api/v1") if url.path in ("", "/") else url

    def url(self, repo: _forge.Repository, *segments: str) -> URL:
        owner, name = repo.path.split("/")
        return repo.root.joinpath("repos", owner, name, *segments)

    def status_url(self, repo: _forge.Repository, sha: str) -> URL:
        return self.url(repo, "statuses", sha)

    def whoami(self, root: URL) -> URL:
        return root.joinpath("user")

    def answer(self, out: _http.Outgoing, reply: _answers.Reply, context: str) -> base.Sent:
        """Gitea answers a commit (an issue or pull request) the repository does not have with
        a 500 ("GetCommit[…]: object does not exist", "issue does not exist [… index: N]"): no
        retry mends that."""
        said = _answers.vendor_message(reply.json())
        for words, missing in _MISSING.items():
            if reply.status == 500 and words in said:
                raise base.PermanentDeliveryError(
                    f"{self.rules.type}: HTTP 500 for {context}: the repository has no such "
                    f"{missing} ({said})"
                )
        return super().answer(out, reply, context)

    def commit_status_body(self, draft: base.Draft) -> dict[str, Any]:
        return commit_status(draft)


def commit_status(draft: base.Draft) -> dict[str, Any]:
    """`POST /repos/{owner}/{repo}/statuses/{sha}`, one context per DeployJob (pure)."""
    message = draft.message
    body: dict[str, Any] = {
        "state": STATES[message.event],
        "context": _commitstatus.status_name(message),
        "description": _commitstatus.description(draft, MAX_DESCRIPTION),
    }
    if target := _layout.web_link(message.link):
        body["target_url"] = target
    return body


def _render(preview: base.Preview) -> dict[str, Any]:
    return commit_status(preview)


def _preview(preview: base.Preview) -> list[str]:
    return ["POST /api/v1/repos/{owner}/{repo}/statuses/{sha}", _http.indented(_render(preview))]


PROVIDER = base.ProviderType(GiteaProvider, _render, _preview)
