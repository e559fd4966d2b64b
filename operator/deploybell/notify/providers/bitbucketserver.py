"""Bitbucket Data Center (Server): each run sets the build status of its commit (`POST
/rest/api/latest/projects/{projectKey}/repos/{repositorySlug}/commits/{commitId}/builds`, the
builds API of Bitbucket 7.4 and later) under one key per DeployJob: `INPROGRESS` at start, then
`SUCCESSFUL`, `FAILED` or `CANCELLED`. Bitbucket keeps the latest status of a key per commit, so
the start's turns into the outcome, also when a restarted operator sends it.

The repository is `bitbucketserver.repository` (`PROJECT/repo`, `~user/repo` for a personal
one) or comes from the DeployJob's `spec.source.repository`: a clone URL
(`https://host/scm/PROJECT/repo.git`, `ssh://git@host:7999/project/repo.git`) or a browse URL
(`…/projects/PROJECT/repos/repo/browse`). The instance is the Secret's `apiUrl` (its base URL,
context path included). The status links to the run (the operator's link), else to the
repository URL of `spec.source`, else to the commit on the instance, since Bitbucket requires a
URL.
"""

from __future__ import annotations

import base64
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import clip
from deploybell.notify.providers import _commitstatus, _forge, _http, _layout, base

STATES = {
    "start": "INPROGRESS",
    "success": "SUCCESSFUL",
    "failure": "FAILED",
    "cancel": "CANCELLED",
}
MAX_TEXT = 255  # Bitbucket keeps key, name, url and description in 255-character columns
_KEY = r"~?[A-Za-z0-9_.-]+"
_SLUG = r"[A-Za-z0-9_.-]+"
INSTANCE = "{apiUrl}"  # the instance, in a preview

RULES = ProviderRules(
    type="bitbucketserver",
    title="Bitbucket Data Center",
    doc="A build status of the run's commit, one key per DeployJob: in progress at start, then "
    "the outcome.",
    recipients=Recipients(
        required=False,
        doc="the repository comes from the DeployJob's `spec.source` or "
        "`bitbucketserver.repository`",
    ),
    options=(
        Field(
            "repository",
            "string",
            "The repository as `PROJECT/repo` (`~user/repo` for a personal one); default: from "
            "the DeployJob's `spec.source.repository`.",
            max_length=200,
            pattern=f"{_KEY}/{_SLUG}",
            expected="PROJECT/repo",
        ),
    ),
    secret_keys=(
        SecretKey("apiUrl", "The instance's base URL, context path included.", sensitive=False),
        SecretKey("token", "An HTTP access token with **Repository read** permission."),
        SecretKey(
            "username", "With `password`: a user who may read the repository.", sensitive=False
        ),
        SecretKey("password", "The user's password (basic auth)."),
    ),
    secret_needs=(
        frozenset({"apiUrl", "token"}),
        frozenset({"apiUrl", "username", "password"}),
    ),
    edits_in_place=True,
    setup="An HTTP access token of the repository (or its project) with **Repository read** "
    "permission (repository settings > HTTP access tokens; the builds API asks REPO_READ), sent "
    "as a Bearer token; or the `username`/`password` of a user who may read it (basic auth). "
    "The Secret's `apiUrl` is the instance's base URL. Needs Bitbucket 7.4 or later (the "
    "builds API).",
)


class BitbucketServerProvider(_commitstatus.CommitStatusForge):
    """Sets the run's build status at every event."""

    rules = RULES
    option = "repository"
    home = ""  # self-hosted only: the Secret's apiUrl is required
    default_api = ""
    path_pattern = f"{_KEY}/{_SLUG}"
    path_words = "a repository as PROJECT/repo"
    self_hosted = "the base URL of {host}"
    reset_header = "X-RateLimit-Reset"
    status_name = "key"

    def credentials(self, out: _http.Outgoing) -> dict[str, str]:
        # Bitbucket's XSRF check refuses a basic-auth POST without this header.
        headers = {"X-Atlassian-Token": "no-check"}
        if token := out.word("token", required=False):
            return {**headers, "Authorization": f"Bearer {token}"}
        pair = f"{out.word('username')}:{out.word('password')}"
        encoded = base64.b64encode(pair.encode()).decode()
        out.hide(encoded)
        return {**headers, "Authorization": f"Basic {encoded}"}

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def repository_path(self, host: str, path: str) -> str:
        return server_path(path)

    def url(self, repo: _forge.Repository, *segments: str) -> URL:
        project, slug = repo.path.split("/")
        rest = ("rest", "api", "latest", "projects", project, "repos", slug, *segments)
        return repo.root.joinpath(*rest)

    def status_url(self, repo: _forge.Repository, sha: str) -> URL:
        return self.url(repo, "commits", sha, "builds")

    def whoami(self, root: URL) -> URL:
        # Any valid credentials may list the projects they see; bad ones get 401.
        return root.joinpath("rest", "api", "latest", "projects").with_query(limit="1")

    def status_body(self, out: _http.Outgoing, repo: _forge.Repository) -> dict[str, Any]:
        return commit_status(out, str(repo.root).rstrip("/"), repo.path)

    def commit_status_body(self, draft: base.Draft) -> dict[str, Any]:
        return commit_status(draft)


def server_path(path: str) -> str:
    """`PROJECT/repo` from the path of a clone or browse URL, a context path before it dropped:
    `…/scm/P/r`, `…/projects/P/repos/r/…`, `…/users/u/repos/r/…` (`~u/r`), or `P/r` (SSH)."""
    parts = path.split("/")
    if "scm" in parts:
        at = len(parts) - 1 - parts[::-1].index("scm")
        return "/".join(parts[at + 1 : at + 3])
    if "repos" in parts and 2 <= parts.index("repos") < len(parts) - 1:
        at = parts.index("repos")
        owner = parts[at - 1]
        personal = parts[at - 2] == "users"
        return f"{'~' if personal else ''}{owner}/{parts[at + 1]}"
    return "/".join(parts[-2:])


def commit_status(
    draft: base.Draft, instance: str = INSTANCE, repository: str = ""
) -> dict[str, Any]:
    """`POST …/commits/{commitId}/builds`, one key per DeployJob (pure). Without a web link of
    the run or of `spec.source`, it links to the commit on `instance` (a preview, which knows no
    instance, shows `{apiUrl}`)."""
    message = draft.message
    name = _commitstatus.status_name(message)
    link = _layout.web_link(message.link, MAX_TEXT) or _layout.web_link(
        message.repository, MAX_TEXT
    )
    if not link:
        project, _, slug = (repository or _repository(draft)).partition("/")
        page = f"{instance}/projects/{project}/repos/{slug}/commits/{message.commit}"
        link = page if len(page) <= MAX_TEXT else clip(instance, MAX_TEXT)
    return {
        "key": _commitstatus.short_key(name, MAX_TEXT),
        "state": STATES[message.event],
        "name": clip(name, MAX_TEXT),
        "description": _commitstatus.description(draft, MAX_TEXT),
        "url": link,
    }


def _repository(draft: base.Draft) -> str:
    option = str(draft.options.get("repository") or "")
    path = URL(draft.message.repository).path.strip("/").removesuffix(".git")
    return option or (server_path(path) if "/" in path else "{projectKey}/{repositorySlug}")


def _render(preview: base.Preview) -> dict[str, Any]:
    return commit_status(preview)


def _preview(preview: base.Preview) -> list[str]:
    return [
        "POST /rest/api/latest/projects/{projectKey}/repos/{repositorySlug}/commits/{commitId}"
        "/builds",
        _http.indented(_render(preview)),
    ]


PROVIDER = base.ProviderType(BitbucketServerProvider, _render, _preview)
