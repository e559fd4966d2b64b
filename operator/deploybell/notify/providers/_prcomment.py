"""What the pull-request comment types (GitHub, GitLab, Gitea/Forgejo) share: one comment per
run on the pull (merge) request the DeployJob names (`spec.source.pullRequest`, or the number in
its `spec.source.url`), posted at start and edited with the outcome.

The comment id is kept in the ledger (the start entry's refs). A comment posted just before a
crash (its id not yet in the ledger) is found again by the hidden marker that starts its body
(`_markdown.marker`) among the pull request's comments, so a restart never posts a second one;
a comment someone deleted (404 on the edit) is posted again. The repository is the option, else
`spec.source.repository`, else the part of the pull request link before its number.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from yarl import URL

from deploybell.notify.model import Message
from deploybell.notify.providers import _forge, _http, _markdown, _records, base


class PullRequestComment(_forge.ForgeProvider):
    """Posts the run's comment at start and edits it at every later event (a forge's own
    provider supplies the URLs, the token and the answers)."""

    comment_ref: ClassVar[str] = "comment"  # the ledger ref of the comment's id
    noun: ClassVar[str] = "comment"  # what the forge calls it: "comment", "note"
    change: ClassVar[str] = "pull request"  # "merge request"
    sign: ClassVar[str] = "#"  # before the number: acme/web#42, acme/web!42
    edit_verb: ClassVar[str] = "PATCH"
    max_body: ClassVar[int]  # the longest body the forge takes

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        if out.message.test:
            return await self._check(out, self._repository(out, None))
        repo = self._repository(out, _records.with_change_repository(out.message))
        number = str(pull_request(out.message, self.rules.type))
        body = {"body": comment(out.message, out.override, self.max_body)}
        where = f"{self.change} {repo.path}{self.sign}{number}"
        found = str(out.previous.get(self.comment_ref) or "") or await self._find(out, repo, number)
        if found:
            url = self.comment_url(repo, number, found)
            reply = await out.request(self.edit_verb, url, json=body)
            if reply.status != 404:  # 404: deleted by someone; post the run's comment again
                self.answer(out, reply, f"{self.noun} {found} on {where}")
                return self._sent(found, repo, f"{self.noun} {found} on {where} edited")
        reply = await out.request("POST", self.comments_url(repo, number), json=body)
        self.answer(out, reply, where)
        created = reply.json()
        if not isinstance(created, dict) or "id" not in created:
            raise base.PermanentDeliveryError(f"{self.rules.type}: no {self.noun} id for {where}")
        posted = str(created["id"])
        return self._sent(posted, repo, f"{self.noun} {posted} posted on {where}")

    async def _find(self, out: _http.Outgoing, repo: _forge.Repository, number: str) -> str:
        """The id of this run's comment, posted before a crash lost it ("" when none)."""
        url = self.comments_url(repo, number).with_query(self.search_query(out.message))
        reply = await out.request("GET", url)
        self.answer(out, reply, f"the {self.noun}s of {repo.path}{self.sign}{number}")
        wanted = _markdown.marker(out.message)
        for listed in reply.json() if isinstance(reply.json(), list) else ():
            if isinstance(listed, dict) and str(listed.get("body", "")).startswith(wanted):
                return str(listed.get("id", ""))
        return ""

    def _sent(self, comment_id: str, repo: _forge.Repository, detail: str) -> base.Sent:
        return base.Sent(refs={self.comment_ref: comment_id, self.option: repo.path}, detail=detail)

    # GitHub and Gitea keep a pull request's comments as the of the same number.

    def comments_url(self, repo: _forge.Repository, number: str) -> URL:
        """Where the pull request's comments are listed and a new one is posted."""
        return self.url(repo, "issues", number, "comments")

    def comment_url(self, repo: _forge.Repository, number: str, comment_id: str) -> URL:
        """Where one comment is edited."""
        return self.url(repo, "issues", "comments", comment_id)

    @abc.abstractmethod
    def search_query(self, message: Message) -> dict[str, str]:
        """The listing's query that holds the run's comment (the newest, or those updated
        since the run started)."""


def pull_request(message: Message, kind: str) -> int:
    """The run's pull (merge) request number, or a permanent error saying where it comes from."""
    if message.pull_request:
        return message.pull_request
    raise base.PermanentDeliveryError(
        f"{kind}: the DeployJob {message.ref} names no pull request: set spec.source.pullRequest "
        "or a pull/merge request link as spec.source.url"
    )


def comment(message: Message, override: base.Title | None, limit: int) -> str:
    """The comment's Markdown (pure): the hidden marker, then the run's report within `limit`
    characters."""
    return _markdown.report(
        message, override, lambda text: len(text) <= limit, _markdown.marker(message)
    )


def render(message: Message, override: base.Title | None, limit: int) -> dict[str, Any]:
    """The body of the POST and of every edit (pure)."""
    return {"body": comment(message, override, limit)}
