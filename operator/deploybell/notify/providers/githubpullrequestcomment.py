"""GitHub pull-request comments: one comment per run on the pull request the DeployJob names
(`spec.source.pullRequest`, or the number in a `…/pull/N` `spec.source.url`), posted at start
and edited with the outcome (`PATCH /repos/{owner}/{repo}/issues/comments/{id}`).

A type of its own rather than an option of `github` (as Flux has `githubpullrequestcomment`):
it needs other permissions (Pull requests or Issues: write, no Deployments), works without a
commit, and a user may want the deployment record, the comment, or both, each with its own
token. What every pull-request comment type shares (the id in the ledger, the marker that finds
a comment posted just before a crash among those updated since the run started) is `_prcomment`.
"""

from __future__ import annotations

from typing import Any

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _http, _prcomment, base, github

# GitHub refuses a comment body over 65536 characters ("body is too long").
MAX_BODY = 65536

RULES = ProviderRules(
    type="githubpullrequestcomment",
    title="GitHub pull-request comment",
    doc="One comment per run on the DeployJob's pull request, posted at start and edited with "
    "the outcome.",
    recipients=Recipients(
        required=False,
        doc="the pull request comes from the DeployJob's `spec.source` (`pullRequest` or `url`)",
    ),
    options=(github.RULES.options[0],),  # repository (default: spec.source.repository or url)
    secret_keys=(
        SecretKey(
            "token",
            "A fine-grained token (or GitHub App token) that may write pull-request comments.",
        ),
        SecretKey("apiUrl", "GitHub Enterprise Server: `https://HOST/api/v3`.", sensitive=False),
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
    setup="A fine-grained personal access token (or a GitHub App installation token) for the "
    "repository with the repository permission **Pull requests: read and write** (comments on "
    "pull requests are issue comments; **Issues: read and write** also works). A classic token "
    "needs `repo` (`public_repo` for a public repository). The DeployJob names the pull request "
    "in `spec.source.pullRequest` or `spec.source.url`. GitHub Enterprise Server: the Secret's "
    "`apiUrl`.",
)


class GithubPullRequestCommentProvider(_prcomment.PullRequestComment, github.GithubProvider):
    """Posts the run's comment at start and edits it at every later event."""

    rules = RULES
    max_body = MAX_BODY

    def search_query(self, message: Message) -> dict[str, str]:
        query = {"per_page": "100"}
        if message.started_at:
            query["since"] = message.started_at
        return query


# request bodies (pure)


def _render(preview: base.Preview) -> dict[str, Any]:
    return _prcomment.render(preview.message, preview.override, MAX_BODY)


def _preview(preview: base.Preview) -> list[str]:
    if preview.message.event == "start":
        how = "POST /repos/{owner}/{repo}/issues/{pull_number}/comments"
    else:
        how = (
            "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id} (the comment posted at "
            "start, its id kept in the ledger)"
        )
    return [how, _http.indented(_render(preview))]


PROVIDER = base.ProviderType(GithubPullRequestCommentProvider, _render, _preview)
