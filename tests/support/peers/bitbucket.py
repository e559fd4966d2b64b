"""A local Bitbucket Cloud API (2.0) for a few repositories: commit build statuses, with
Bitbucket's auth, validation and answers. Point a Secret's `apiUrl` at `peer.url`.

What it enforces, from Bitbucket Cloud's REST reference (commit statuses) and its limits page:
- basic auth with a username and an app password or API token, or a Bearer access token; else
  401 `{"type": "error", "error": {"message": …}}`; credentials without the `repository` (read)
  scope get 403 "Your credentials lack one or more required privilege scopes."; an unknown
  repository 404. Posting a build status needs only read access, but a status may be
  overwritten only by the credentials that created it (Bitbucket's change of May 2021; admins
  aside): others get 403.
- a build status: `key`, `state` and `url` are required; `state` one of INPROGRESS,
  SUCCESSFUL, FAILED, STOPPED; `key` at most 40 characters; `url` an absolute URL; the commit
  must be one of the repository's (404). A key the commit has is overwritten (200), a new one
  added (201); the answer is the status (`key`, `state`, `uuid`, …).
- `GET /user` answers the user, `GET /repositories/{workspace}/{repo_slug}` the repository.
- rate limits: a rolling hour per user; 429 `{"type": "error", "error": {"message": "Rate limit
  for this resource has been exceeded"}}` with `Retry-After` (Atlassian's cloud APIs' advice).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from aiohttp import web
from yarl import URL

from tests.support.peers._statuses import StatusContract, StatusPeer

DEFAULT_TOKEN = "ATCTT3xFfGN0-bitbucket-test-token"
DEFAULT_USER = "deploybell@example.com"
DEFAULT_PASSWORD = "ATATT3x-api-token-for-tests"
STATES = frozenset({"INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"})
MAX_KEY = 40


def _error(message: str, **more: Any) -> dict[str, Any]:
    return {"type": "error", "error": {"message": message, **more}}


class BitbucketPeer(StatusPeer):
    """Repositories by workspace/repo_slug; one access token and one user, with their scopes."""

    prefix = "/2.0"

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        username: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        scopes: frozenset[str] = frozenset({"repository"}),
        repositories: dict[str, set[str]] | None = None,
    ) -> None:
        super().__init__(repositories)
        self.token, self.username, self.password = token, username, password
        self.scopes = scopes
        self._creators: dict[tuple[str, str, str], str] = {}  # (repository, sha, key) → who

    def rate_limit(self, seconds: int) -> None:
        body = json.dumps(_error("Rate limit for this resource has been exceeded"))
        self.respond_next(1, 429, retry_after=str(seconds), body=body)

    def _signed_in(self, request: web.Request) -> str:
        """Who the credentials are: the access token's own user, the user, or "" (nobody)."""
        auth = request.headers.get("Authorization", "")
        if auth == f"Bearer {self.token}":
            return "access-token"
        pair = f"{self.username}:{self.password}".encode()
        return self.username if auth == f"Basic {base64.b64encode(pair).decode()}" else ""

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        who = self._signed_in(request)
        if not who:
            return 401, _error("Unauthorized"), {}
        path = request.path.removeprefix(self.prefix).strip("/").split("/")
        if request.method == "GET" and path == ["user"]:
            return 200, {"type": "user", "username": "deploybell", "uuid": "{1}"}, {}
        if "repository" not in self.scopes and "repository:write" not in self.scopes:
            required = {"granted": sorted(self.scopes), "required": ["repository"]}
            message = "Your credentials lack one or more required privilege scopes."
            return 403, _error(message, detail=required), {}
        if len(path) < 3 or path[0] != "repositories":
            return 404, _error("Resource not found"), {}
        repository = f"{path[1]}/{path[2]}"
        if repository not in self.repositories:
            return 404, _error(f"Repository {repository} not found"), {}
        match request.method, path[3:]:
            case "GET", []:
                return 200, {"type": "repository", "full_name": repository}, {}
            case "POST", ["commit", sha, "statuses", "build"]:
                status, answer = self._status(repository, sha, body, who)
                return status, answer, {}
        return 404, _error("Resource not found"), {}

    def _status(self, repository: str, sha: str, body: Any, who: str) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, _error("Bad request: the body is not a JSON object")
        problems = status_problems(body)
        if problems:
            fields = {p.split(":")[0]: [p.split(": ", 1)[1]] for p in problems}
            return 400, _error("Bad request", fields=fields)
        if sha not in self.repositories[repository]:
            return 404, _error(f"Commit not found: {sha}")
        created_by = self._creators.setdefault((repository, sha, str(body["key"])), who)
        if created_by != who:
            return 403, _error("Only the creator of a build status may update it.")
        before = [s for s in self.statuses(repository) if (s.sha, s.name) == (sha, body["key"])]
        stored = self._store(repository, sha, str(body["key"]), body)
        answer = {
            "type": "build",
            "key": stored.name,
            "state": stored.state,
            "name": body.get("name"),
            "description": stored.description,
            "url": stored.url,
            "uuid": f"{{{uuid.uuid4()}}}",
        }
        return (200 if before else 201), answer


def status_problems(body: dict[str, Any]) -> list[str]:
    """Bitbucket's refusals of a build status body, as "field: why"."""
    out = [f"{k}: This field is required." for k in ("key", "state", "url") if not body.get(k)]
    if body.get("state") and body["state"] not in STATES:
        out.append(f"state: {body['state']!r} is not a valid choice.")
    key = str(body.get("key") or "")
    if len(key) > MAX_KEY:
        out.append(f"key: Ensure this value has at most {MAX_KEY} characters (it has {len(key)}).")
    url = str(body.get("url") or "")
    if url and not (url.startswith(("http://", "https://")) and URL(url).host):
        out.append("url: Enter a valid URL.")
    return out


class BitbucketContract(StatusContract[BitbucketPeer]):
    def __init__(self) -> None:
        super().__init__(BitbucketPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.url}

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        return status_problems(rendered)
