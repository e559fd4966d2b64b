"""The pull-request side of the local Gitea / Forgejo API: comments on pull requests, on top of
`GiteaPeer` (same auth, repositories, rate limits and answers).

What it enforces, as the real Gitea built here answered it (tests/integration/
test_commit_statuses.py runs the type against one):
- a pull request is an issue to the API: `POST /repos/{o}/{r}/issues/{index}/comments` posts a
  comment (201 with `id`, `body`, `created_at`, `updated_at`, …), `GET` the same path lists
  every comment of the issue, oldest first (no pages; `since` keeps those updated at or after
  an RFC 3339 time, anything else is a 422 "parsing time …"), `PATCH
  /repos/{o}/{r}/issues/comments/{id}` edits one (200; 404 "comment does not exist [id: N,
  issue_id: 0]" when unknown). An index the repository does not have is a **500** "issue does
  not exist [id: 0, repo_id: …, index: N]", for the POST and the listing alike.
- `body` required and not empty (422 "[Body]: Required"); no length limit (Gitea took a
  300,000-character comment).
- scopes: these routes are the `issue` category: writing needs `write:issue`, listing
  `read:issue` (403 "token does not have at least one of required scope(s), required=[…],
  token scope=…"); `GET /repos/{o}/{r}` is `read:repository`, which an issue token lacks, and
  `GET /repos/issues/search` is what an issue token can read without a repository.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from tests.support.peers._statuses import SAMPLE_SHA
from tests.support.peers.contract import PeerContract
from tests.support.peers.gitea import GiteaPeer

ISSUE_TOKEN = "gitea-issue-token-1a2b3c4d5e6f"


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _time(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


class GiteaPullsPeer(GiteaPeer):
    """GiteaPeer with pull requests (by index) and their comments."""

    def __init__(
        self,
        token: str = ISSUE_TOKEN,
        scopes: frozenset[str] = frozenset({"write:issue"}),
        pulls: tuple[int, ...] = (42,),
        **kwargs: Any,
    ) -> None:
        super().__init__(token=token, scopes=scopes, **kwargs)
        self.pulls = set(pulls)
        self._comments: dict[int, dict[str, Any]] = {}  # by id, with its repository and issue

    def comments(self, pull: int | None = None) -> list[dict[str, Any]]:
        """Every comment (of one pull request), oldest first, with its `edits` count."""
        with self._changed:
            return [dict(c) for c in self._comments.values() if pull in (None, c["issue"])]

    def _category(self, path: list[str]) -> str:
        issues = path[2:3] == ["issues"] or path == ["issues", "search"]
        return "issue" if issues else "repository"

    def _across(self, request: web.Request, path: list[str]) -> Any:
        if request.method == "GET" and path == ["issues", "search"]:
            return [{"number": n, "pull_request": {"merged": False}} for n in sorted(self.pulls)]
        return None

    def _route(
        self, request: web.Request, repository: str, rest: list[str], body: Any
    ) -> tuple[int, Any]:
        match request.method, rest:
            case "GET", ["issues"]:
                return 200, self._across(request, ["issues", "search"])
            case "POST", ["issues", n, "comments"] if n.isdigit():
                return self._post(repository, int(n), body)
            case "GET", ["issues", n, "comments"] if n.isdigit():
                return self._listed(repository, int(n), request.query.get("since"))
            case "PATCH", ["issues", "comments", n] if n.isdigit():
                return self._edit(repository, int(n), body)
        return super()._route(request, repository, rest, body)

    def _post(self, repository: str, issue: int, body: Any) -> tuple[int, Any]:
        if issue not in self.pulls:
            return 500, self._error(f"issue does not exist [id: 0, repo_id: 1, index: {issue}]")
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return 422, self._error("[Body]: Required")
        with self._changed:
            comment = {
                "id": next(self._ids),
                "repo": repository,
                "issue": issue,
                "body": text,
                "edits": 0,
            }
            comment["created_at"] = comment["updated_at"] = _now()
            self._comments[comment["id"]] = comment
        return 201, _shown(comment)

    def _edit(self, repository: str, number: int, body: Any) -> tuple[int, Any]:
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return 422, self._error("[Body]: Required")
        with self._changed:
            comment = self._comments.get(number)
            if comment is None or comment["repo"] != repository:
                return 404, self._error(f"comment does not exist [id: {number}, issue_id: 0]")
            comment.update(body=text, updated_at=_now(), edits=comment["edits"] + 1)
        return 200, _shown(comment)

    def _listed(self, repository: str, issue: int, since: str | None) -> tuple[int, Any]:
        if issue not in self.pulls:
            return 500, self._error(f"issue does not exist [id: 0, repo_id: 1, index: {issue}]")
        after = _time(since) if since is not None else None
        if since is not None and after is None:
            return 422, self._error(f'parsing time "{since}" as "2006-01-02T15:04:05Z07:00"')
        found = [
            _shown(c)
            for c in self.comments(issue)
            if c["repo"] == repository and (after is None or _updated(c) >= after)
        ]
        return 200, found


def _updated(comment: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(comment["updated_at"])


def _shown(comment: dict[str, Any]) -> dict[str, Any]:
    """A comment as the API answers it (without the peer's own bookkeeping)."""
    return {k: v for k, v in comment.items() if k not in ("repo", "issue", "edits")}


class GiteaPullRequestCommentContract(PeerContract[GiteaPullsPeer]):
    """What a person sees on the pull request: each comment's current text. Gitea sets no size
    limit on a comment."""

    def __init__(self) -> None:
        super().__init__(GiteaPullsPeer(repositories={"acme/web": {SAMPLE_SHA}}))

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.base_url}

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def visible(self) -> list[str]:
        return [c["body"] for c in self.peer.comments(42)]

    def problems(self, rendered: Any) -> list[str]:
        return [] if rendered.get("body") else ["an empty comment body"]
