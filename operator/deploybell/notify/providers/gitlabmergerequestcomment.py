"""GitLab merge-request comments: one note per run on the merge request the DeployJob names
(`spec.source.pullRequest`, or the iid in a `…/-/merge_requests/N` `spec.source.url`), posted
at start (`POST /projects/:id/merge_requests/:iid/notes`) and edited with the outcome
(`PUT …/notes/:note_id`).

A type of its own, like `githubpullrequestcomment` (and Flux's `gitlabmergerequestcomment`).
The note id is kept in the ledger; a note posted just before a crash is found again by the
hidden marker in its body among the merge request's newest notes, so a restart never posts a
second one.
The repository is the option, else `spec.source.repository`, else the part of the pull request
link before `/pull/N` (`/-/merge_requests/N`).
"""

from __future__ import annotations

from typing import Any

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _forge, _http, _markdown, _records, base, gitlab
from deploybell.notify.providers.githubpullrequestcomment import pull_request

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


class GitlabMergeRequestCommentProvider(gitlab.GitlabProvider):
    """Posts the run's note at start and edits it at every later event."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        if out.message.test:
            return await self._check(out, self._repository(out, None))
        repo = self._repository(out, _records.with_change_repository(out.message))
        iid = str(pull_request(out.message, self.rules.type))
        body = {"body": note(out.message, out.override)}
        where = f"merge request {repo.path}!{iid}"
        note_id = str(out.previous.get("note") or "") or await self._find(out, repo, iid)
        if note_id:
            url = self.url(repo, "merge_requests", iid, "notes", note_id)
            reply = await out.request("PUT", url, json=body)
            if reply.status != 404:  # 404: deleted by someone; post the run's note again
                self.answer(out, reply, f"note {note_id} on {where}")
                return _sent(note_id, repo, f"note {note_id} on {where} edited")
        url = self.url(repo, "merge_requests", iid, "notes")
        reply = await out.request("POST", url, json=body)
        self.answer(out, reply, where)
        created = reply.json()
        if not isinstance(created, dict) or "id" not in created:
            raise base.PermanentDeliveryError(f"{self.rules.type}: no note id for {where}")
        note_id = str(created["id"])
        return _sent(note_id, repo, f"note {note_id} posted on {where}")

    async def _find(self, out: _http.Outgoing, repo: _forge.Repository, iid: str) -> str:
        """The id of this run's note, posted before a crash lost it ("" when none)."""
        query = {"sort": "desc", "order_by": "created_at", "per_page": str(SEARCHED)}
        url = self.url(repo, "merge_requests", iid, "notes").with_query(query)
        reply = await out.request("GET", url)
        self.answer(out, reply, f"the notes of {repo.path}!{iid}")
        wanted = _markdown.marker(out.message)
        for listed in reply.json() if isinstance(reply.json(), list) else ():
            if isinstance(listed, dict) and str(listed.get("body", "")).startswith(wanted):
                return str(listed.get("id", ""))
        return ""


def _sent(note_id: str, repo: _forge.Repository, detail: str) -> base.Sent:
    return base.Sent(refs={"note": note_id, "project": repo.path}, detail=detail)


# request bodies (pure)


def note(message: Message, override: base.Title | None) -> str:
    """The note's Markdown: the hidden marker, then the run's report within GitLab's limit."""
    return _markdown.report(
        message, override, lambda text: len(text) <= MAX_BODY, _markdown.marker(message)
    )


def _render(preview: base.Preview) -> dict[str, Any]:
    return {"body": note(preview.message, preview.override)}


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
