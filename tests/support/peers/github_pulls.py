"""The pull-request side of the local GitHub API: issue comments on pull requests and check
runs, on top of `GithubPeer` (same auth, repositories, rate limits and answers).

What it enforces, from GitHub's REST documentation:
- comments: `POST /repos/{o}/{r}/issues/{n}/comments` on an existing issue or pull request
  (404 otherwise), `body` required and at most 65536 characters (422 "body is too long
  (maximum is 65536 characters)"); `PATCH /repos/{o}/{r}/issues/comments/{id}` edits one (404
  when unknown); listing takes `since` (updated at or after) and `per_page` (≤ 100). Writing
  needs the `issues` or `pull_requests` permission (403).
- check runs: only a GitHub App may write them: a token that is not an installation token
  (`ghs_…`) gets 403 "You must authenticate via a GitHub App."; `name` and `head_sha` required,
  the SHA a commit of the repository (422); `status` queued, in_progress or completed;
  `conclusion` one of GitHub's and required once completed; `output` needs `title` and
  `summary`, summary and text at most 65535 (counted in UTF-8 bytes, as GitHub counts them:
  "Only 65535 characters are allowed; N were supplied."); `details_url` an http(s) URL; at
  most 1000 check runs of one name per commit. `GET /repos/{o}/{r}/commits/{ref}/check-runs`
  filters by `check_name`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.support.peers.contract import PeerContract
from tests.support.peers.github import (
    SAMPLE_SHA,
    GithubPeer,
    Repository,
    _forbidden,
    _invalid,
    _now,
)

APP_TOKEN = "ghs_test-installation-token-7c1d"
MAX_COMMENT = 65536
MAX_OUTPUT = 65535
CHECK_STATUSES = frozenset({"queued", "in_progress", "completed"})
CONCLUSIONS = frozenset(
    {
        "action_required",
        "cancelled",
        "failure",
        "neutral",
        "success",
        "skipped",
        "stale",
        "timed_out",
    }
)
NOT_FOUND = (404, {"message": "Not Found", "status": "404"})


class GithubPullsPeer(GithubPeer):
    """GithubPeer with pull requests (by number), their comments, and check runs."""

    def __init__(
        self,
        token: str = APP_TOKEN,
        pulls: tuple[int, ...] = (42,),
        permissions: frozenset[str] = frozenset({"pull_requests", "checks"}),
        **kwargs: Any,
    ) -> None:
        super().__init__(token=token, permissions=permissions, **kwargs)
        self.pulls = set(pulls)
        self._comments: dict[int, dict[str, Any]] = {}  # by id, with its repository and issue
        self._checks: dict[int, dict[str, Any]] = {}

    def comments(self, pull: int | None = None) -> list[dict[str, Any]]:
        """Every comment (of one pull request), oldest first, with its `edits` count."""
        with self._changed:
            return [dict(c) for c in self._comments.values() if pull in (None, c["issue"])]

    def check_runs(self, sha: str | None = None) -> list[dict[str, Any]]:
        with self._changed:
            return [dict(c) for c in self._checks.values() if sha in (None, c["head_sha"])]

    def _route(
        self, request: web.Request, repo: Repository, parts: list[str], body: Any
    ) -> tuple[int, Any]:
        match request.method, parts:
            case ("POST", ["issues", n, "comments"]) if n.isdigit():
                return self._comment(repo, int(n), None, body)
            case ("GET", ["issues", n, "comments"]) if n.isdigit():
                return self._listed_comments(repo, int(n), request.query)
            case ("PATCH", ["issues", "comments", n]) if n.isdigit():
                return self._comment(repo, None, int(n), body)
            case ("POST", ["check-runs"]):
                return self._check_run(repo, None, body)
            case ("PATCH", ["check-runs", n]) if n.isdigit():
                return self._check_run(repo, int(n), body)
            case ("GET", ["commits", sha, "check-runs"]):
                wanted = request.query.get("check_name")
                found = [
                    c
                    for c in self._checks.values()
                    if c["repo"] is repo and c["head_sha"] == sha and wanted in (None, c["name"])
                ]
                return 200, {"total_count": len(found), "check_runs": [_shown(c) for c in found]}
        return super()._route(request, repo, parts, body)

    def _comment(
        self, repo: Repository, issue: int | None, number: int | None, body: Any
    ) -> tuple[int, Any]:
        if not {"pull_requests", "issues"} & self.permissions:
            return _forbidden()
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return _invalid("IssueComment", "body", "missing_field")
        if len(text) > MAX_COMMENT:
            return 422, {
                "message": "Validation Failed",
                "errors": [
                    {
                        "resource": "IssueComment",
                        "code": "custom",
                        "field": "body",
                        "message": f"body is too long (maximum is {MAX_COMMENT} characters)",
                    }
                ],
            }
        if number is not None:  # an edit
            comment = self._comments.get(number)
            if comment is None or comment["repo"] is not repo:
                return NOT_FOUND
            comment.update(body=text, updated_at=_now(), edits=comment["edits"] + 1)
            return 200, _shown(comment)
        if issue not in self.pulls:
            return NOT_FOUND
        comment = {"id": next(self._ids), "repo": repo, "issue": issue, "body": text, "edits": 0}
        comment["created_at"] = comment["updated_at"] = _now()
        self._comments[comment["id"]] = comment
        return 201, _shown(comment)

    def _listed_comments(self, repo: Repository, issue: int, query: Any) -> tuple[int, Any]:
        if issue not in self.pulls:
            return NOT_FOUND
        since = query.get("since", "")
        found = [
            _shown(c)
            for c in self._comments.values()
            if c["repo"] is repo and c["issue"] == issue and c["updated_at"] >= since
        ]
        return 200, found[: min(int(query.get("per_page", 30)), 100)]

    def _check_run(self, repo: Repository, number: int | None, body: Any) -> tuple[int, Any]:
        if not self.token.startswith("ghs_"):
            return 403, {"message": "You must authenticate via a GitHub App.", "status": "403"}
        if "checks" not in self.permissions:
            return _forbidden()
        if not isinstance(body, dict):
            return _invalid("CheckRun", "name", "missing_field")
        existing = self._checks.get(number) if number is not None else None
        if number is not None and (existing is None or existing["repo"] is not repo):
            return NOT_FOUND
        merged = {**(existing or {}), **body}
        problem = _check_problem(repo, merged)
        if problem:
            return 422, {"message": f"Invalid request.\n\n{problem}", "status": "422"}
        if existing is None:
            same = [c for c in self._checks.values() if c["name"] == merged["name"]]
            if len([c for c in same if c["head_sha"] == merged["head_sha"]]) >= 1000:
                return _invalid("CheckRun", "name", "custom")
            merged.update(id=next(self._ids), repo=repo, history=[])
            self._checks[merged["id"]] = merged
        merged["history"] = [*merged["history"], merged.get("conclusion") or merged["status"]]
        self._checks[merged["id"]] = merged
        return (200 if existing else 201), _shown(merged)


def _check_problem(repo: Repository, run: dict[str, Any]) -> str:
    for key in ("name", "head_sha"):
        if not isinstance(run.get(key), str) or not run[key]:
            return f"No {key} given."
    if run["head_sha"] not in repo.commits:
        return f"No commit found for SHA: {run['head_sha']}"
    status = run.get("status", "queued")
    if status not in CHECK_STATUSES:
        return f"{status} is not a valid status."
    conclusion = run.get("conclusion")
    if conclusion is not None and conclusion not in CONCLUSIONS:
        return f"{conclusion} is not a valid conclusion."
    if status == "completed" and conclusion is None:
        return "Conclusion must be provided when the status is completed."
    details = run.get("details_url")
    if details is not None and not str(details).startswith(("http://", "https://")):
        return "details_url must be an http(s) URL."
    output = run.get("output")
    if output is not None:
        if not output.get("title") or not output.get("summary"):
            return "output needs a title and a summary."
        for key in ("summary", "text"):
            size = len(str(output.get(key) or "").encode())
            if size > MAX_OUTPUT:
                return f"Only {MAX_OUTPUT} characters are allowed; {size} were supplied."
    return ""


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the API answers it (without the peer's own bookkeeping)."""
    return {k: v for k, v in record.items() if k not in ("repo", "history", "edits")}


class _PullsContract(PeerContract[GithubPullsPeer]):
    def __init__(self) -> None:
        super().__init__(GithubPullsPeer(repositories={"acme/web": {SAMPLE_SHA}}))

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.api_url}

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)


class GithubPullRequestCommentContract(_PullsContract):
    """What a person sees on the pull request: each comment's current text."""

    def visible(self) -> list[str]:
        return [c["body"] for c in self.peer.comments(42)]

    def problems(self, rendered: Any) -> list[str]:
        size = len(rendered.get("body") or "")
        return [f"comment body of {size} characters"] if not 0 < size <= MAX_COMMENT else []


class GithubCheckRunContract(_PullsContract):
    """What a person sees in the commit's checks: each check run's title, state and summary."""

    def visible(self) -> list[str]:
        return [
            f"{c['output']['title']} {c.get('conclusion') or c['status']}: {c['output']['summary']}"
            for c in self.peer.check_runs()
        ]

    def problems(self, rendered: Any) -> list[str]:
        # An edit (the outcome) names no head_sha: the check run made at start has it.
        problem = _check_problem(Repository({SAMPLE_SHA}, {}), {"head_sha": SAMPLE_SHA, **rendered})
        return [problem] if problem else []
