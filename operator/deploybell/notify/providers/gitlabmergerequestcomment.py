"""GitLab merge-request comments: one note per run on the merge request the DeployJob names
(`spec.source.pullRequest`, or the iid in a `…/-/merge_requests/N` `spec.source.url`), posted
at start (`POST /projects/:id/merge_requests/:iid/notes`) and edited with the outcome
(`PUT …/notes/:note_id`).

A type of its own, like `githubpullrequestcomment` (and Flux's `gitlabmergerequestcomment`).
What they share (the note id in the ledger, the marker that finds a note posted just before a
crash among the merge request's newest notes) is `_prcomment`.
"""

from __future__ import annotations

from typing import Any

from yarl import URL

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _forge, _http, _prcomment, base, gitlab

# GitLab refuses a note over 1,000,000 characters ("Note is too long").
MAX_BODY = 1_000_000
# How many of the newest notes are searched for the marker after a crash.
SEARCHED = 100

RULES = ProviderRules(
    type="gitlabmergerequestcomment",
    title="GitLab merge-request comment",
    doc="One comment (note) per run on the DeployJob's merge request, posted at start and "
    "edited with the outcome.",
    recipients=Recipients(
        required=False,
        doc="the merge request comes from the DeployJob's `spec.source` (`pullRequest` or `url`)",
    ),
    options=(gitlab.RULES.options[0],),  # project
    secret_keys=(
        SecretKey("token", "A project, group or personal access token with the `api` scope."),
        gitlab.RULES.secret_keys[1],  # apiUrl
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
    setup="A project access token (or a group or personal one) with the **`api`** scope and at "
    "least the **Reporter** role in the project (a token's own notes can be edited by it). The "
    "DeployJob names the merge request in `spec.source.pullRequest` (its iid) or "
    "`spec.source.url`. Self-managed GitLab: the Secret's `apiUrl`.",
)


class GitlabMergeRequestCommentProvider(_prcomment.PullRequestComment, gitlab.GitlabProvider):
    """Posts the run's note at start and edits it at every later event."""

    rules = RULES
    max_body = MAX_BODY
    comment_ref = "note"
    noun = "note"
    change = "merge request"
    sign = "!"
    edit_verb = "PUT"

    def comments_url(self, repo: _forge.Repository, number: str) -> URL:
        return self.url(repo, "merge_requests", number, "notes")

    def comment_url(self, repo: _forge.Repository, number: str, comment_id: str) -> URL:
        return self.url(repo, "merge_requests", number, "notes", comment_id)

    def search_query(self, message: Message) -> dict[str, str]:
        return {"sort": "desc", "order_by": "created_at", "per_page": str(SEARCHED)}


# request bodies (pure)


def _render(preview: base.Preview) -> dict[str, Any]:
    return _prcomment.render(preview.message, preview.override, MAX_BODY)


def _preview(preview: base.Preview) -> list[str]:
    if preview.message.event == "start":
        how = "POST /projects/:id/merge_requests/:merge_request_iid/notes"
    else:
        how = (
            "PUT /projects/:id/merge_requests/:merge_request_iid/notes/:note_id (the note posted "
            "at start, its id kept in the ledger)"
        )
    return [how, _http.indented(_render(preview))]


PROVIDER = base.ProviderType(GitlabMergeRequestCommentProvider, _render, _preview)
