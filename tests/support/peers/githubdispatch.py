"""The local GitHub REST API (tests/support/peers/github.py: its auth, repositories, rate limits
and error shapes) with `POST /repos/{owner}/{repo}/dispatches`, as GitHub documents it:
- the token needs the repository permission Contents: write, else 403 "Resource not accessible
  by personal access token";
- `event_type` is required, a string of 1 to 100 characters; `client_payload`, when given, an
  object of at most 10 top-level properties; else 422 "Invalid request." naming the problem;
- 204 No Content, no body; each dispatch is kept for the workflows that would run.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.support.peers.contract import PeerContract, texts
from tests.support.peers.github import DEFAULT_TOKEN, GithubPeer, Repository, _forbidden

MAX_EVENT_TYPE = 100
MAX_PROPERTIES = 10


class GithubDispatchPeer(GithubPeer):
    """GitHub with repository dispatches; the token may write contents unless told otherwise."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        permissions: frozenset[str] = frozenset({"contents"}),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(token, permissions=permissions, host=host, port=port)
        self._dispatches: dict[str, list[dict[str, Any]]] = {}

    def dispatches(self, repository: str = "acme/web") -> list[dict[str, Any]]:
        with self._changed:
            return list(self._dispatches.get(repository, []))

    def _route(
        self, request: web.Request, repo: Repository, parts: list[str], body: Any
    ) -> tuple[int, Any]:
        if request.method != "POST" or parts != ["dispatches"]:
            return super()._route(request, repo, parts, body)
        if "contents" not in self.permissions:
            return _forbidden()
        problem = dispatch_problem(body)
        if problem:
            return 422, {"message": f"Invalid request.\n\n{problem}", "status": "422"}
        name = next(n for n, r in self.repositories.items() if r is repo)
        self._dispatches.setdefault(name, []).append(body)
        return 204, None


def dispatch_problem(body: Any) -> str:
    """Why GitHub refuses this dispatch ("" when it takes it)."""
    if not isinstance(body, dict):
        return "The body must be an object."
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        return '"event_type" wasn\'t supplied.'
    if len(event_type) > MAX_EVENT_TYPE:
        return f"event_type is too long (maximum is {MAX_EVENT_TYPE} characters)."
    payload = body.get("client_payload", {})
    if not isinstance(payload, dict):
        return "For 'properties/client_payload', it is not an object."
    if len(payload) > MAX_PROPERTIES:
        return f"client_payload: no more than {MAX_PROPERTIES} top-level properties are allowed."
    return ""


class GithubDispatchContract(PeerContract[GithubDispatchPeer]):
    """What the workflows see: each dispatch's client_payload (its title and summary)."""

    limits_size = False  # GitHub documents no size for client_payload, only its properties

    def __init__(self) -> None:
        super().__init__(GithubDispatchPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.api_url}

    def visible(self) -> list[str]:
        shown = []
        for dispatch in self.peer.dispatches():
            payload = dispatch.get("client_payload") or {}
            shown.append(texts([payload.get("title", ""), payload.get("summary", "")]))
        return shown

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        problem = dispatch_problem(rendered)
        return [problem] if problem else []
