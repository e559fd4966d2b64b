"""Bitbucket Cloud: each run sets the build status of its commit (`POST /2.0/repositories/
{workspace}/{repo_slug}/commit/{commit}/statuses/build`) under one key per DeployJob:
`INPROGRESS` at start, then `SUCCESSFUL`, `FAILED` or `STOPPED` (canceled). A status posted with
a key the commit has overwrites it, so the start's turns into the outcome.

The repository is `bitbucket.repository` or the path of the DeployJob's
`spec.source.repository` (`https://bitbucket.org/acme/web.git` → `acme/web`); the commit is
`spec.source.revision`. Bitbucket keeps keys to 40 characters: a longer
`deploybell/<namespace>/<job>` is cut and ends with a digest of it, the same after a restart.
The status links to the run (the operator's link) or else to the commit on bitbucket.org, since
Bitbucket requires a URL.

Credentials, as Bitbucket documents them for apps: `username` and `password` (an API token with
the Atlassian account's e-mail, or an app password with the Bitbucket username) sent with basic
auth; or `token`, a repository, project or workspace access token sent as a Bearer token. A
`token` of the form `user:password` is basic auth, as Flux's `bitbucket` provider reads it.
"""

from __future__ import annotations

import base64
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import clip
from deploybell.notify.providers import _commitstatus, _forge, _http, _layout, base

DEFAULT_API_URL = "https://api.bitbucket.org/2.0"
WEB = "https://bitbucket.org"
STATES = {
    "start": "INPROGRESS",
    "success": "SUCCESSFUL",
    "failure": "FAILED",
    "cancel": "STOPPED",
}
MAX_KEY = 40  # Bitbucket refuses a longer key
MAX_TEXT = 255  # name, description and url
# Without Retry-After: Bitbucket's limits are a rolling hour that gives back a minute's share
# every minute.
RATE_LIMIT_DELAY = 60.0
_SLUG = r"[A-Za-z0-9_.-]+"
_BRACED = r"\{[0-9a-fA-F-]{36}\}"  # a workspace or repository by UUID

RULES = ProviderRules(
    type="bitbucket",
    title="Bitbucket Cloud",
    doc="A build status of the run's commit, one key per DeployJob: in progress at start, then "
    "the outcome.",
    recipients=Recipients(
        required=False,
        doc="the repository comes from the DeployJob's `spec.source` or `bitbucket.repository`",
    ),
    options=(
        Field(
            "repository",
            "string",
            "The repository as `workspace/repo_slug`; default: the path of the DeployJob's "
            "`spec.source.repository`.",
            max_length=200,
            pattern=f"({_SLUG}|{_BRACED})/({_SLUG}|{_BRACED})",
            expected="workspace/repo_slug",
        ),
    ),
    secret_keys=(
        SecretKey(
            "token",
            "A repository, project or workspace access token (Bearer), or `user:password` "
            "(basic auth, as Flux reads it).",
        ),
        SecretKey(
            "username",
            "With `password`: the Atlassian account's e-mail (API token) or "
            "the Bitbucket username (app password).",
            sensitive=False,
        ),
        SecretKey("password", "An API token or app password that may read the repository."),
        SecretKey(
            "apiUrl", "The API root; default https://api.bitbucket.org/2.0.", sensitive=False
        ),
    ),
    secret_needs=(frozenset({"token"}), frozenset({"username", "password"})),
    edits_in_place=True,
    setup="A repository access token (repository settings > Access tokens) with the "
    "**`repository`** (read) scope, as the Secret's `token`; or an Atlassian API token with "
    "**`read:repository:bitbucket`** (the account's e-mail as `username`), or an app password "
    "with **Repositories: Read**, as `username`/`password`. Bitbucket lets whoever reads a "
    "repository post build statuses, but only their creator (or an admin) may overwrite one: "
    "start and outcome must go with the same credentials.",
)


class BitbucketProvider(_commitstatus.CommitStatusForge):
    """Sets the run's build status at every event."""

    rules = RULES
    option = "repository"
    home = "bitbucket.org"
    default_api = DEFAULT_API_URL
    path_pattern = f"({_SLUG}|{_BRACED})/({_SLUG}|{_BRACED})"
    path_words = "a repository as workspace/repo_slug"
    self_hosted = "the API of {host}, or use the type bitbucketserver for Bitbucket Data Center"
    reset_header = "X-RateLimit-Reset"
    status_name = "key"

    def credentials(self, out: _http.Outgoing) -> dict[str, str]:
        token = out.word("token", required=False)
        if token and ":" not in token:
            return {"Authorization": f"Bearer {token}"}
        user, _, password = token.partition(":")
        if not token:
            user, password = out.word("username"), out.word("password")
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        out.hide(pair)
        return {"Authorization": f"Basic {pair}"}

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def url(self, repo: _forge.Repository, *segments: str) -> URL:
        workspace, slug = repo.path.split("/")
        return repo.root.joinpath("repositories", workspace, slug, *segments)

    def status_url(self, repo: _forge.Repository, sha: str) -> URL:
        return self.url(repo, "commit", sha, "statuses", "build")

    def whoami(self, root: URL) -> URL:
        return root.joinpath("user")

    def answer(self, out: _http.Outgoing, reply: Any, context: str) -> base.Sent:
        """A 429 without Retry-After waits a minute (the rolling hour's share)."""
        return out.check(reply, context, default_delay=RATE_LIMIT_DELAY)

    def status_body(self, out: _http.Outgoing, repo: _forge.Repository) -> dict[str, Any]:
        return commit_status(out, repo.path)

    def commit_status_body(self, draft: base.Draft) -> dict[str, Any]:
        return commit_status(draft)


def _repository(draft: base.Draft) -> str:
    """`workspace/repo_slug` as far as the draft tells, for a preview."""
    option = str(draft.options.get("repository") or "")
    path = URL(draft.message.repository).path.strip("/").removesuffix(".git")
    return option or path or "{workspace}/{repo_slug}"


def commit_status(draft: base.Draft, repository: str = "") -> dict[str, Any]:
    """`POST …/commit/{commit}/statuses/build`, one key per DeployJob (pure). Without a web link
    of the run it links to the commit on bitbucket.org: Bitbucket requires a URL."""
    message = draft.message
    name = _commitstatus.status_name(message)
    where = repository or _repository(draft)
    link = _layout.web_link(message.link, MAX_TEXT)
    link = link or _layout.web_link(f"{WEB}/{where}/commits/{message.commit}", MAX_TEXT) or WEB
    return {
        "key": _commitstatus.short_key(name, MAX_KEY),
        "state": STATES[message.event],
        "name": clip(name, MAX_TEXT),
        "description": _commitstatus.description(draft, MAX_TEXT),
        "url": link,
    }


def _render(preview: base.Preview) -> dict[str, Any]:
    return commit_status(preview)


def _preview(preview: base.Preview) -> list[str]:
    return [
        "POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build",
        _http.indented(_render(preview)),
    ]


PROVIDER = base.ProviderType(BitbucketProvider, _render, _preview)
