"""GitHub pull-request comments: one comment per run on the pull request the DeployJob names
(`spec.source.pullRequest`, or the number in a `…/pull/N` `spec.source.url`), posted at start
and edited with the outcome (`PATCH /repos/{owner}/{repo}/issues/comments/{id}`).

A type of its own rather than an option of `github` (as Flux has `githubpullrequestcomment`):
it needs other permissions (Pull requests or Issues: write, no Deployments), works without a
commit, and a user may want the deployment record, the comment, or both, each with its own
token. The comment id is kept in the ledger (the start entry's refs); a comment posted just
before a crash is found again by the hidden marker in its body among the pull request's comments
updated since the run started, so a restart never posts a second comment.
The repository is the option, else `spec.source.repository`, else the part of the pull request
link before `/pull/N` (`/-/merge_requests/N`).
"""

from __future__ import annotations

from typing import Any

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _forge, _http, _markdown, _records, base, github

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


class GithubPullRequestCommentProvider(github.GithubProvider):
    """Posts the run's comment at start and edits it at every later event."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        if out.message.test:
            return await self._check(out, self._repository(out, None))
        repo = self._repository(out, _records.with_change_repository(out.message))
        number = str(pull_request(out.message, self.rules.type))
        body = {"body": comment(out.message, out.override)}
        where = f"pull request {repo.path}#{number}"
        comment_id = str(out.previous.get("comment") or "") or await self._find(out, repo, number)
        if comment_id:
            url = self.url(repo, "issues", "comments", comment_id)
            reply = await out.request("PATCH", url, json=body)
            if reply.status != 404:  # 404: deleted by someone; post the run's comment again
                self.answer(out, reply, f"comment {comment_id} on {where}")
                return _sent(comment_id, repo, f"comment {comment_id} on {where} edited")
        reply = await out.request("POST", self.url(repo, "issues", number, "comments"), json=body)
        self.answer(out, reply, where)
        created = reply.json()
        if not isinstance(created, dict) or "id" not in created:
            raise base.PermanentDeliveryError(f"{self.rules.type}: no comment id for {where}")
        comment_id = str(created["id"])
        return _sent(comment_id, repo, f"comment {comment_id} posted on {where}")

    async def _find(self, out: _http.Outgoing, repo: _forge.Repository, number: str) -> str:
        """The id of this run's comment, posted before a crash lost it ("" when none)."""
        query = {"per_page": "100"}
        if out.message.started_at:
            query["since"] = out.message.started_at
        url = self.url(repo, "issues", number, "comments").with_query(query)
        reply = await out.request("GET", url)
        self.answer(out, reply, f"the comments of {repo.path}#{number}")
        wanted = _markdown.marker(out.message)
        for listed in reply.json() if isinstance(reply.json(), list) else ():
            if isinstance(listed, dict) and str(listed.get("body", "")).startswith(wanted):
                return str(listed.get("id", ""))
        return ""


def _sent(comment_id: str, repo: _forge.Repository, detail: str) -> base.Sent:
    return base.Sent(refs={"comment": comment_id, "repository": repo.path}, detail=detail)


def pull_request(message: Message, kind: str) -> int:
    """The run's pull (merge) request number, or a permanent error saying where it comes from."""
    if message.pull_request:
        return message.pull_request
    raise base.PermanentDeliveryError(
        f"{kind}: the DeployJob {message.ref} names no pull request: set spec.source.pullRequest "
        "or a pull/merge request link as spec.source.url"
    )


# request bodies (pure)


def comment(message: Message, override: base.Title | None) -> str:
    """The comment's Markdown: the hidden marker, then the run's report within GitHub's limit."""
    return _markdown.report(
        message, override, lambda text: len(text) <= MAX_BODY, _markdown.marker(message)
    )


def _render(preview: base.Preview) -> dict[str, Any]:
    return {"body": comment(preview.message, preview.override)}


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
