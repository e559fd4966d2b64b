"""What GitHub and GitLab share: a run recorded as a deployment of its commit in a repository
reached through the forge's API with a token, optionally with a commit status, and the check
`deploybell notify-test` makes (the token, and the repository option when it is set).

`ForgeProvider.deliver` is the one flow; a forge says how its API is addressed (`headers`,
`api_root`, `url`, `whoami`), how it records a run (`record`), its commit status body, and how
its rate limits read (`reset_header`, `limited`).
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from yarl import URL

from deploybell.notify.model import Message
from deploybell.notify.providers import _answers, _http, _records, base


@dataclass(frozen=True)
class Repository:
    """The forge's API root and the repository (project) path as the API names it."""

    root: URL
    path: str  # "" for a notify-test without the repository option


class ForgeProvider(_http.HttpProvider):
    """Records each run as a deployment (and a commit status); a test records nothing."""

    option: ClassVar[str]  # the option naming the repository: "repository" | "project"
    home: ClassVar[str]  # the public service's host, e.g. "github.com"
    default_api: ClassVar[str]
    path_pattern: ClassVar[str]  # a repository path the API takes, in full
    path_words: ClassVar[str]  # that pattern in words, e.g. "a repository as owner/name"
    self_hosted: ClassVar[str]  # where apiUrl points for a repository on `{host}`
    reset_header: ClassVar[str]  # the epoch second a rate limit ends
    status_name: ClassVar[str]  # the commit status body's key that names it
    can: ClassVar[str] = "read"  # what notify-test says the token can do with the repository
    record_ref: ClassVar[str] = "deployment"  # the ledger ref that keeps the record's id
    records: ClassVar[str] = "a deployment"  # what it makes of a commit, for error messages

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        if out.message.test:
            return await self._check(out, self._repository(out, None))
        # first: without spec.source, say that
        sha = _records.commit(out.message, self.rules.type, self.records)
        repo = self._repository(out, out.message)
        deployment, detail = await self.record(out, repo, sha)
        if out.options.get("commitStatus", False):
            body = self.commit_status_body(out)
            reply = await out.request("POST", self.url(repo, "statuses", sha), json=body)
            if not self.already(reply, body["state"]):
                self.answer(out, reply, f"commit {sha[:12]} of {repo.path}")
            detail += f"; commit status {body[self.status_name]}: {body['state']}"
        return base.Sent(refs={self.record_ref: deployment, self.option: repo.path}, detail=detail)

    async def _check(self, out: _http.Outgoing, repo: Repository) -> base.Sent:
        """`deploybell notify-test`: the token (and the repository it names); a test records no
        deployment."""
        where = self.readable(repo) if repo.path else self.whoami(repo.root)
        reply = await out.request("GET", where)
        self.answer(out, reply, repo.path or "the token")
        if repo.path:
            return base.Sent(detail=f"the token can {self.can} {repo.path}; a test records nothing")
        kind = self.rules.type
        return base.Sent(
            detail=f"the token is valid; a test records nothing (with {kind}.{self.option} it "
            f"also checks that {self.option})"
        )

    def _repository(self, out: _http.Outgoing, message: Message | None) -> Repository:
        """The API and the repository of `message` (None: only the option's, "" without one)."""
        kind = self.rules.type
        out.headers.update(self.credentials(out))
        root = self.api_root(out.url("apiUrl", self.default_api))
        option = str(out.options.get(self.option) or "")
        if message is None:
            return Repository(root, option)
        host, path = _records.repository(message, kind, self.option, option)
        path = self.repository_path(host, path) if host else path
        if not re.fullmatch(self.path_pattern, path):
            raise base.PermanentDeliveryError(
                f"{kind}: spec.source.repository of {message.ref} must name {self.path_words}, "
                f"got {path!r}"
            )
        if host and not out.destination.secret.get("apiUrl", "").strip() and not self._home(host):
            raise base.PermanentDeliveryError(
                f"{kind}: the repository is on {host}, not {self.home}: set the Secret's apiUrl "
                f"to {self.self_hosted.format(host=host)}"
            )
        return Repository(root, path)

    def _home(self, host: str) -> bool:
        return host in (self.home, f"www.{self.home}")

    def answer(self, out: _http.Outgoing, reply: _answers.Reply, context: str) -> base.Sent:
        """The shared classification; a rate limit without Retry-After ends at the epoch second
        in `reset_header`."""
        reset = _answers.reset_delay(reply.headers, self.reset_header, datetime.now(UTC))
        return out.check(reply, context, default_delay=reset, limited=self.limited(reply))

    def limited(self, reply: _answers.Reply) -> bool:
        """Whether an answer that is not a 429 is a rate limit all the same."""
        return False

    def already(self, reply: _answers.Reply, state: str) -> bool:
        """Whether a refused commit status is one already set (a retry that landed before)."""
        return False

    def credentials(self, out: _http.Outgoing) -> dict[str, str]:
        """The headers that carry the Secret's credentials (by default its `token`)."""
        return self.headers(out.word("token"))

    def repository_path(self, host: str, path: str) -> str:
        """The API's name of the repository at `path` of a `spec.source.repository` URL on
        `host` (a forge whose clone URLs carry more than owner/name strips it here)."""
        return path

    # What each forge says for itself.

    @abc.abstractmethod
    def headers(self, token: str) -> dict[str, str]:
        """The request headers that carry the token."""

    def api_root(self, url: URL) -> URL:
        return url

    @abc.abstractmethod
    def url(self, repo: Repository, *segments: str) -> URL:
        """The API URL of the repository (and the path segments below it)."""

    def readable(self, repo: Repository) -> URL:
        """What notify-test reads of the repository (the token's scopes must allow it)."""
        return self.url(repo)

    @abc.abstractmethod
    def whoami(self, root: URL) -> URL:
        """What the token alone may read (notify-test without a repository)."""

    @abc.abstractmethod
    async def record(self, out: _http.Outgoing, repo: Repository, sha: str) -> tuple[str, str]:
        """The run's deployment brought to the message's event: (its id, what was done)."""

    @abc.abstractmethod
    def commit_status_body(self, draft: base.Draft) -> dict[str, Any]:
        """The commit status's body (pure), with its `state`."""
