"""A local Bitbucket Data Center REST API for a few repositories: commit build statuses (the
builds API of 7.4+), with Bitbucket's auth, validation and answers, served under a context path
(`/bitbucket`) as many instances are. Point a Secret's `apiUrl` at `peer.url`.

What it enforces, from Bitbucket Data Center's REST reference and how-to on build statuses:
- a Bearer HTTP access token or basic auth; else 401 `{"errors": [{"message": "Authentication
  failed. …", "exceptionName": …}]}`. A basic-auth POST without `X-Atlassian-Token: no-check`
  fails the XSRF check (403). Storing a build status needs REPO_READ on the repository; an
  unknown project or repository 404.
- a build status: `key`, `state` and `url` are required; `state` one of INPROGRESS,
  SUCCESSFUL, FAILED, CANCELLED, UNKNOWN; `key` and `name` at most 255 characters (400 with
  the field as `context`); the commit must exist (404 NoSuchCommitException); 204 No Content.
  The latest status of a key on a commit is what Bitbucket shows.
- `GET /rest/api/latest/projects` lists the projects the credentials see.
- rate limits: 429 with `Retry-After` and `X-RateLimit-*` headers (token-bucket rate limiting).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from tests.support.peers._statuses import StatusContract, StatusPeer

DEFAULT_TOKEN = "BBDC-test-token-NzQ2MTgwNDQ1"
DEFAULT_USER = "deploybell"
DEFAULT_PASSWORD = "bitbucket-password-for-tests"
STATES = frozenset({"INPROGRESS", "SUCCESSFUL", "FAILED", "CANCELLED", "UNKNOWN"})
MAX_TEXT = 255
REST = "/rest/api/latest"


def _errors(message: str, context: str | None = None, exception: str | None = None) -> Any:
    return {"errors": [{"context": context, "message": message, "exceptionName": exception}]}


class BitbucketServerPeer(StatusPeer):
    """Repositories by PROJECT/repo; one access token and one user."""

    prefix = "/bitbucket"

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        username: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        repositories: dict[str, set[str]] | None = None,
    ) -> None:
        super().__init__(repositories, default="ACME/web")
        self.token, self.username, self.password = token, username, password

    def rate_limit(self, seconds: int) -> None:
        headers = {
            "X-RateLimit-Limit": "60",
            "X-RateLimit-Interval-Seconds": "1",
            "X-RateLimit-Fill-Rate": "5",
        }
        body = json.dumps(_errors("You have been rate limited. Try again later."))
        self.respond_next(1, 429, retry_after=str(seconds), body=body, headers=headers)

    def _auth(self, request: web.Request) -> str:
        """ "bearer", "basic" or "" (not signed in)."""
        auth = request.headers.get("Authorization", "")
        if auth == f"Bearer {self.token}":
            return "bearer"
        pair = f"{self.username}:{self.password}".encode()
        return "basic" if auth == f"Basic {base64.b64encode(pair).decode()}" else ""

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        how = self._auth(request)
        if not how:
            message = "Authentication failed. Please check your credentials and try again."
            exception = "com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"
            return 401, _errors(message, exception=exception), {}
        xsrf_checked = request.headers.get("X-Atlassian-Token") == "no-check"
        if how == "basic" and request.method == "POST" and not xsrf_checked:
            return 403, _errors("XSRF check failed"), {}
        path = request.path.removeprefix(self.prefix + REST).strip("/").split("/")
        if request.method == "GET" and path == ["projects"]:
            return 200, {"size": 1, "limit": 1, "isLastPage": False, "values": []}, {}
        if len(path) < 4 or (path[0], path[2]) != ("projects", "repos"):
            return 404, _errors("Not found"), {}
        repository = f"{path[1]}/{path[3]}"
        if repository not in self.repositories:
            message = f"Repository {path[1]}/{path[3]} does not exist."
            return 404, _errors(message, exception="NoSuchRepositoryException"), {}
        match request.method, path[4:]:
            case "GET", []:
                return 200, {"slug": path[3], "project": {"key": path[1]}}, {}
            case "POST", ["commits", sha, "builds"]:
                status, answer = self._status(repository, sha, body)
                return status, answer, {}
        return 404, _errors("Not found"), {}

    def _status(self, repository: str, sha: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, _errors("The request body is not a JSON object")
        problems = status_problems(body)
        if problems:
            field, _, why = problems[0].partition(": ")
            return 400, _errors(why, context=field)
        if sha not in self.repositories[repository]:
            message = f"Commit '{sha}' does not exist in repository '{repository}'."
            return 404, _errors(message, exception="NoSuchCommitException")
        self._store(repository, sha, str(body["key"]), body)
        return 204, None


def status_problems(body: dict[str, Any]) -> list[str]:
    """Bitbucket's refusals of a build status body, as "field: why"."""
    out = [f"{k}: {k} must not be blank" for k in ("key", "state", "url") if not body.get(k)]
    if body.get("state") and body["state"] not in STATES:
        out.append(f"state: {body['state']!r} is not a valid build state")
    for field in ("key", "name"):
        if len(str(body.get(field) or "")) > MAX_TEXT:
            out.append(f"{field}: size must be between 0 and {MAX_TEXT}")
    return out


class BitbucketServerContract(StatusContract[BitbucketServerPeer]):
    def __init__(self) -> None:
        super().__init__(BitbucketServerPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.url}

    def options(self) -> dict[str, Any]:
        return {"repository": "ACME/web"}

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        return status_problems(rendered)
