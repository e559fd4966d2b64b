"""What the commit-status forges (Gitea/Forgejo, Bitbucket Cloud and Data Center, Azure DevOps)
share: a run is recorded as one commit status of the deployed commit per DeployJob, in progress
at start and set to the outcome after, under one name (`deploybell/<namespace>/<job>`, or a key
made from it where the forge's keys are short).

Setting a status under a name the commit already has replaces what the forge shows for that
name, so the start status turns into the outcome. The name follows from the DeployJob alone: an
outcome sent by a restarted operator (or a retry whose first answer was lost) sets the same name
again, and nothing is shown twice. The ledger keeps the name in the start entry's refs
(`status`), beside the repository.
"""

from __future__ import annotations

import abc
import hashlib
from typing import Any, ClassVar

from yarl import URL

from deploybell.notify.model import Message
from deploybell.notify.providers import _forge, _http, _records, base


class CommitStatusForge(_forge.ForgeProvider):
    """Sets the run's commit status at every event; a notify-test sets nothing."""

    record_ref = "status"
    records = "a status"
    status_name: ClassVar[str]  # the body's key that names the status: "context", "key"

    async def record(
        self, out: _http.Outgoing, repo: _forge.Repository, sha: str
    ) -> tuple[str, str]:
        body = self.status_body(out, repo)
        url = self.status_url(repo, sha)
        reply = await out.request("POST", url, json=body)
        self.answer(out, reply, f"commit {sha[:12]} of {repo.path}")
        name = self.name_of(body)
        return name, f"commit {sha[:12]} of {repo.path}: {name} {body['state']}"

    def status_body(self, out: _http.Outgoing, repo: _forge.Repository) -> dict[str, Any]:
        """The body sent for `repo` (what `commit_status_body` renders, unless the forge needs
        the repository or the instance it goes to)."""
        return self.commit_status_body(out)

    def name_of(self, body: dict[str, Any]) -> str:
        """The name the status is set under (what the ledger keeps)."""
        return str(body[self.status_name])

    @abc.abstractmethod
    def status_url(self, repo: _forge.Repository, sha: str) -> URL:
        """Where a status of commit `sha` is set."""


def status_name(message: Message) -> str:
    """One status per DeployJob: `deploybell/<namespace>/<job>`."""
    return f"deploybell/{message.namespace}/{message.job}"


def short_key(name: str, limit: int) -> str:
    """`name` when it fits `limit` characters, else its start and a digest of all of it (so two
    long names that start alike stay apart, and the same name gives the same key after a
    restart)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{name[: limit - 13]}-{digest}"


def description(draft: base.Draft, limit: int) -> str:
    """The status's one line: the title, then the summary, cut to `limit` characters."""
    return _records.status_text(draft.message, draft.override, limit)
