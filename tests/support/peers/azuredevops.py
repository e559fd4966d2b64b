"""A local Azure DevOps Git API for a few repositories: commit statuses, with Azure DevOps' auth,
versions, validation and answers. Point a Secret's `apiUrl` at `peer.url` (the organization
sits in the path, as on dev.azure.com).

What it enforces, from the Azure DevOps REST reference (Git > Statuses) and its rate-limit page:
- a personal access token as the password of basic auth; a request without credentials is
  answered 203 with the HTML sign-in page (what Azure DevOps does), a wrong token 401.
- every request names an `api-version` the server takes (400 VssVersionNotSpecifiedException
  without one, VssVersionOutOfRangeException above the newest: Azure DevOps Server 2020 takes
  6.0 at most, the Services 7.1).
- an unknown repository 404 (TF401019), an unknown commit 404 (TF401175).
- a status: `state` one of notSet, pending, succeeded, failed, error, notApplicable, and a
  `context` with a `name` (400 otherwise); 201 with the status (`id`, `state`, `context`, …).
  Every status is kept; Azure DevOps shows the latest of each context (genre and name).
- rate limits: 429 with `Retry-After` and `X-RateLimit-Resource`, `X-RateLimit-Delay`,
  `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from aiohttp import web

from tests.support.peers._statuses import StatusContract, StatusPeer

DEFAULT_TOKEN = "azdo-pat-0123456789abcdefghijklmnopqrstuvwxyz01"
STATES = frozenset({"notSet", "pending", "succeeded", "failed", "error", "notApplicable"})
SIGN_IN = "<html><head><title>Sign in to your account</title></head><body></body></html>"


def _error(message: str, key: str) -> dict[str, Any]:
    return {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"Microsoft.TeamFoundation.{key}",
        "typeKey": key,
        "errorCode": 0,
        "eventId": 3000,
    }


class AzureDevopsPeer(StatusPeer):
    """Repositories by organization/project/repository; one PAT; the newest API version."""

    prefix = ""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        newest: str = "7.1",
        repositories: dict[str, set[str]] | None = None,
    ) -> None:
        super().__init__(repositories, default="acme/Platform/web")
        self.token = token
        self.newest = newest

    def rate_limit(self, seconds: int) -> None:
        headers = {
            "X-RateLimit-Resource": "Core",
            "X-RateLimit-Delay": "0.5",
            "X-RateLimit-Limit": "200",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time()) + seconds),
        }
        body = json.dumps(_error("TF400733: The request has been throttled.", "RequestBlocked"))
        self.respond_next(1, 429, retry_after=str(seconds), body=body, headers=headers)

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        auth = request.headers.get("Authorization", "")
        if not auth:
            return 203, web.Response(status=203, text=SIGN_IN, content_type="text/html"), {}
        if auth != "Basic " + base64.b64encode(f":{self.token}".encode()).decode():
            return 401, web.Response(status=401, text="Access Denied", content_type="text/html"), {}
        version = request.query.get("api-version", "")
        if not version:
            message = f'No api-version was supplied for the "{request.method}" request.'
            return 400, _error(message, "VssVersionNotSpecifiedException"), {}
        if tuple(map(int, version.split(".")[:2])) > tuple(map(int, self.newest.split("."))):
            message = (
                f"The requested REST API version of {version} is out of range for this server. "
                f"The latest REST API version this server supports is {self.newest}."
            )
            return 400, _error(message, "VssVersionOutOfRangeException"), {}
        path = request.path.strip("/").split("/")
        if len(path) < 6 or path[2:5] != ["_apis", "git", "repositories"]:
            return 404, _error("The resource cannot be found.", "NotFound"), {}
        repository = f"{path[0]}/{path[1]}/{path[5]}"
        if repository not in self.repositories:
            message = (
                f"TF401019: The Git repository with name or identifier {path[5]} does not exist "
                "or you do not have permissions for the operation you are attempting."
            )
            return 404, _error(message, "GitRepositoryNotFoundException"), {}
        match request.method, path[6:]:
            case "GET", []:
                return 200, {"id": "9f1b", "name": path[5], "project": {"name": path[1]}}, {}
            case "POST", ["commits", sha, "statuses"]:
                status, answer = self._status(repository, sha, body)
                return status, answer, {}
        return 404, _error("The resource cannot be found.", "NotFound"), {}

    def _status(self, repository: str, sha: str, body: Any) -> tuple[int, Any]:
        problems = status_problems(body) if isinstance(body, dict) else ["a JSON object"]
        if problems:
            return 400, _error(f"Invalid status: {problems[0]}", "ArgumentException")
        if sha not in self.repositories[repository]:
            message = f"TF401175: The commit {sha} does not exist in the repository."
            return 404, _error(message, "GitCommitDoesNotExistException")
        context = body["context"]
        name = f"{context.get('genre') or ''}/{context['name']}".lstrip("/")
        stored = self._store(repository, sha, name, body, url="targetUrl")
        answer = {"id": stored.id, "state": stored.state, "description": stored.description}
        return 201, {**answer, "context": context, "targetUrl": stored.url or None}


def status_problems(body: dict[str, Any]) -> list[str]:
    """Azure DevOps' refusals of a status body."""
    out = []
    if body.get("state") not in STATES:
        out.append(f"state {body.get('state')!r} is not a GitStatusState")
    context = body.get("context")
    if not isinstance(context, dict) or not str(context.get("name") or ""):
        out.append("the context needs a name")
    return out


class AzureDevopsContract(StatusContract[AzureDevopsPeer]):
    """Azure DevOps documents no size limit for a status."""

    limits_size = False

    def __init__(self) -> None:
        super().__init__(AzureDevopsPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.url}

    def options(self) -> dict[str, Any]:
        return {"repository": "acme/Platform/web"}

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        return status_problems(rendered)
