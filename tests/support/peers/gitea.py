"""A local Gitea / Forgejo API (v1) for a few repositories: commit statuses, with Gitea's auth,
validation and answers. Point a Secret's `apiUrl` at `peer.base_url` (the instance; the API is
under `/api/v1`).

What it enforces, from Gitea's API documentation (swagger `CreateStatusOption`) and the answers
of a real Gitea built here from its Go module (tests/providers/test_gitea_server.py runs the
provider against one):
- `Authorization: token <token>` (or `Bearer`): none 401 "token is required", a wrong one 401
  "invalid username, password or token"; a token without the `write:repository` scope 403
  "token does not have at least one of required scope(s), required=[write:repository], token
  scope=…"; an unknown repository 404 "not found".
- a status: Gitea stores whatever `state` it is given (the UI knows pending, success, error,
  failure, warning: the contract holds the renderer to those); a commit the repository does
  not have is a 500 "GetCommit[…]: object does not exist"; `context`, `description` and
  `target_url` are TEXT (no length limit); 201 with the status (`id`, `status`, `context`, …).
  Every status is kept; Gitea shows the latest of each context.
- `GET /user` answers the token's user, `GET /repos/{owner}/{repo}` the repository.
- rate limits: Gitea has none of its own; instances behind a rate-limiting proxy (as Codeberg
  runs Forgejo) answer 429 with `Retry-After`, which this peer does when told to.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.support.peers._statuses import StatusContract, StatusPeer

DEFAULT_TOKEN = "gitea-test-token-5e6f7a8b9c0d"
STATES = frozenset({"pending", "success", "error", "failure", "warning"})
_NOT_FOUND = "not found"


class GiteaPeer(StatusPeer):
    """Repositories by owner/name; one token with its scopes."""

    prefix = "/api/v1"

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        scopes: frozenset[str] = frozenset({"write:repository"}),
        repositories: dict[str, set[str]] | None = None,
    ) -> None:
        super().__init__(repositories)
        self.token = token
        self.scopes = scopes

    def rate_limit(self, seconds: int) -> None:
        body = json.dumps({"message": "Too Many Requests"})
        self.respond_next(1, 429, retry_after=str(seconds), body=body)

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("token ").removeprefix("Bearer ")
        if token != self.token or auth == token:
            said = "token is required" if not auth else "invalid username, password or token"
            return 401, self._error(said), {}
        path = request.path.removeprefix(self.prefix).strip("/").split("/")
        if request.method == "GET" and path == ["user"]:
            return 200, {"id": 1, "login": "deploybell", "is_admin": False}, {}
        if len(path) < 3 or path[0] != "repos":
            return 404, self._error(_NOT_FOUND), {}
        refused = self._refused(request.method, self._category(path[1:]))
        if refused:
            return 403, self._error(refused), {}
        repository = f"{path[1]}/{path[2]}"
        if (across := self._across(request, path[1:])) is not None:
            return 200, across, {}
        if repository not in self.repositories:
            return 404, self._error(_NOT_FOUND), {}
        status, answer = self._route(request, repository, path[3:], body)
        return status, answer, {}

    def _refused(self, method: str, category: str) -> str:
        """Gitea's 403 for a token without the scope (a `write:` scope includes `read:`)."""
        wanted = f"{'read' if method == 'GET' else 'write'}:{category}"
        if wanted in self.scopes or f"write:{category}" in self.scopes:
            return ""
        return (
            f"token does not have at least one of required scope(s), required=[{wanted}], "
            f"token scope={','.join(sorted(self.scopes))}"
        )

    def _category(self, path: list[str]) -> str:
        """The scope category of `/repos/<path>` (the pull-request peer adds `issue`)."""
        return "repository"

    def _across(self, request: web.Request, path: list[str]) -> Any:
        """The answer of a `/repos/…` route that spans repositories (None: not one)."""
        return None

    def _route(
        self, request: web.Request, repository: str, rest: list[str], body: Any
    ) -> tuple[int, Any]:
        match request.method, rest:
            case "GET", []:
                return 200, {"id": 7, "full_name": repository, "private": True}
            case "POST", ["statuses", sha]:
                return self._status(repository, sha, body)
        return 404, self._error(_NOT_FOUND)

    def _status(self, repository: str, sha: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 422, self._error("[]: invalid JSON body")
        if sha not in self.repositories[repository]:
            said = f"GetCommit[{sha}]: object does not exist [id: {sha}, rel_path: ]"
            return 500, self._error(said)
        context = str(body.get("context") or "default")
        stored = self._store(repository, sha, context, body, url="target_url")
        return 201, {
            "id": stored.id,
            "status": stored.state,
            "target_url": stored.url,
            "description": stored.description,
            "context": context,
        }

    def _error(self, message: str) -> dict[str, Any]:
        return {"message": message, "url": f"{self.base_url}/api/swagger"}


class GiteaContract(StatusContract[GiteaPeer]):
    """Gitea stores status texts as TEXT: no size limit to hold the renderer to."""

    limits_size = False

    def __init__(self) -> None:
        super().__init__(GiteaPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.base_url}

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        out = []
        if rendered.get("state") not in STATES:
            out.append(f"state {rendered.get('state')!r}")
        if not str(rendered.get("context") or ""):
            out.append("no context")
        return out
