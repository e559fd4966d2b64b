"""Gitea and Forgejo pull-request comments: one comment per run on the pull request the
DeployJob names (`spec.source.pullRequest`, or the number in a `…/pulls/N` `spec.source.url`),
posted at start (`POST /repos/{owner}/{repo}/issues/{index}/comments`: a pull request is an
issue to Gitea's API) and edited with the outcome (`PATCH …/issues/comments/{id}`).

A type of its own beside the `gitea` commit status, as `githubpullrequestcomment` is beside
`github`: another token scope (`write:issue`), no commit needed. What every pull-request comment
type shares (the id in the ledger, the marker that finds a comment posted just before a crash
among those updated since the run started) is `_prcomment`; the instance, the token and Gitea's
answers are the `gitea` type's.
"""

from __future__ import annotations

from typing import Any

from yarl import URL

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _forge, _http, _prcomment, base, gitea

# Gitea sets no limit of its own on a comment (the column is TEXT, the API checks only that a
# body is given); the report keeps to GitHub's 65,536 characters so a page stays readable.
MAX_BODY = 65536

RULES = ProviderRules(
    type="giteapullrequestcomment",
    title="Gitea / Forgejo pull-request comment",
    doc="One comment per run on the DeployJob's pull request, posted at start and edited with "
    "the outcome.",
    recipients=Recipients(
        required=False,
        doc="the pull request comes from the DeployJob's `spec.source` (`pullRequest` or `url`)",
    ),
    options=(gitea.RULES.options[0],),  # repository (default: spec.source.repository or url)
    secret_keys=(
        SecretKey("token", "An access token with the `write:issue` scope."),
        gitea.RULES.secret_keys[1],  # apiUrl
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
    setup="An access token (user settings > Applications) of a user who may comment on the "
    "repository's pull requests, scope **`write:issue`** (pull-request comments are issue "
    "comments to Gitea; older tokens have every right). The DeployJob names the pull request in "
    "`spec.source.pullRequest` or `spec.source.url` (`…/owner/repo/pulls/N`). The Secret's "
    "`apiUrl` names the instance (Codeberg: `https://codeberg.org`).",
)


class GiteaPullRequestCommentProvider(_prcomment.PullRequestComment, gitea.GiteaProvider):
    """Posts the run's comment at start and edits it at every later event."""

    rules = RULES
    max_body = MAX_BODY
    can = "read the issues and pull requests of"

    # notify-test: an issue token may not read the repository itself (`read:repository`) nor
    # the user (`read:user`), only issues.
    def readable(self, repo: _forge.Repository) -> URL:
        return self.url(repo, "issues").with_query({"limit": "1"})

    def whoami(self, root: URL) -> URL:
        return root.joinpath("repos", "issues", "search").with_query({"limit": "1"})

    def search_query(self, message: Message) -> dict[str, str]:
        # Gitea lists every comment of the issue (no pages); `since` keeps those updated after.
        return {"since": message.started_at} if message.started_at else {}


# request bodies (pure)


def _render(preview: base.Preview) -> dict[str, Any]:
    return _prcomment.render(preview.message, preview.override, MAX_BODY)


def _preview(preview: base.Preview) -> list[str]:
    if preview.message.event == "start":
        how = "POST /api/v1/repos/{owner}/{repo}/issues/{index}/comments"
    else:
        how = (
            "PATCH /api/v1/repos/{owner}/{repo}/issues/comments/{id} (the comment posted at "
            "start, its id kept in the ledger)"
        )
    return [how, _http.indented(_render(preview))]


PROVIDER = base.ProviderType(GiteaPullRequestCommentProvider, _render, _preview)
