"""A local GitHub REST API for one or more repositories: deployments, deployment statuses and
commit statuses, with GitHub's auth, validation and answers. Point a Secret's `apiUrl` at
`peer.api_url` (served under `/api/v3`, as GitHub Enterprise Server serves it).

What it enforces, from GitHub's REST documentation:
- `Authorization: Bearer <token>` (or `token <token>`), else 401 "Bad credentials"; a token
  without the repository permission an endpoint needs (`deployments`, `statuses`) gets 403
  "Resource not accessible by personal access token"; an unknown repository 404 "Not Found";
  an `X-GitHub-Api-Version` GitHub does not know, 400; a body that is not JSON, 400.
- create a deployment: `ref` required and must resolve to a branch, tag or commit of the
  repository (422 "No ref found for: …"); without `required_contexts` every commit status of
  the ref must be `success` (409 "Conflict: Commit status checks failed for …"); 201 with the
  deployment (`id`, `sha`, `payload`, …). List deployments filters by `sha`, `ref`, `task` and
  `environment`, newest first, at most 100 per page.
- a deployment status: `state` one of error, failure, inactive, in_progress, queued, pending,
  success (422); `description` at most 140 characters (422); an unknown deployment 404.
- a commit status: the SHA must be a commit of the repository (422 "No commit found for SHA"),
  `state` one of error, failure, pending, success, `description` at most 140 characters, at
  most 1000 statuses per SHA and context (422).
- `GET /rate_limit` answers any valid token; `GET /repos/{owner}/{name}` the repository.
- rate limits: 403 (primary: `x-ratelimit-remaining: 0`, `x-ratelimit-reset` epoch seconds) or
  429 with `retry-after` (secondary), body `{"message": "API rate limit exceeded …"}`.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.peers._http import JsonApiPeer
from tests.support.peers.contract import PeerContract

DEFAULT_TOKEN = "ghp-test-token-4f2c9e1d"
SAMPLE_SHA = "4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
API_VERSIONS = frozenset({"2022-11-28", "2026-03-10"})
DEPLOYMENT_STATES = frozenset(
    {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
)
COMMIT_STATES = frozenset({"error", "failure", "pending", "success"})
MAX_DESCRIPTION = 140
MAX_STATUSES_PER_CONTEXT = 1000
PREFIX = "/api/v3"


@dataclass
class Repository:
    """A repository's commits and branches, and what was recorded on it."""

    commits: set[str]
    branches: dict[str, str]
    deployments: list[dict[str, Any]] = field(default_factory=list)
    statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by deployment
    commit_statuses: list[dict[str, Any]] = field(default_factory=list)

    def resolve(self, ref: str) -> str | None:
        if ref in self.branches:
            return self.branches[ref]
        matches = [c for c in self.commits if len(ref) >= 7 and c.startswith(ref)]
        return matches[0] if len(matches) == 1 else None


class GithubPeer(JsonApiPeer):
    """Repositories by `owner/name`; one token with the permissions it was given."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        repositories: dict[str, set[str]] | None = None,
        permissions: frozenset[str] = frozenset({"deployments", "statuses"}),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.permissions = permissions
        self.repositories = {
            name: Repository(set(commits), {"main": sorted(commits)[0]})
            for name, commits in (repositories or {"acme/web": {SAMPLE_SHA}}).items()
        }
        self._ids = itertools.count(1001)

    @property
    def api_url(self) -> str:
        return self.base_url + PREFIX

    def deployments(self, repository: str = "acme/web") -> list[dict[str, Any]]:
        """The repository's deployments, oldest first, each with its `statuses` (oldest first)."""
        with self._changed:
            repo = self.repositories[repository]
            return [{**d, "statuses": list(repo.statuses[d["id"]])} for d in repo.deployments]

    def commit_statuses(self, repository: str = "acme/web") -> list[dict[str, Any]]:
        with self._changed:
            return list(self.repositories[repository].commit_statuses)

    def rate_limit(self, seconds: int, primary: bool = False) -> None:
        """The next request is rate limited: primary (403, reset time) or secondary (429)."""
        body = json.dumps({"message": "API rate limit exceeded for user ID 1."})
        if primary:
            reset = str(int(time.time()) + seconds)
            headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
            self.respond_next(1, 403, body=body, headers=headers)
        else:
            self.respond_next(1, 429, retry_after=str(seconds), body=body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", PREFIX + "/repos/{owner}/{name}/{tail:.*}", self._handle)
        app.router.add_get(PREFIX + "/repos/{owner}/{name}", self._handle)
        app.router.add_get(PREFIX + "/rate_limit", self._handle)
        return app

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        auth = request.headers.get("Authorization", "")
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return 401, {"message": "Bad credentials", "status": "401"}, {}
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            return 400, {"message": f"Unsupported 'X-GitHub-Api-Version' header: {version}"}, {}
        if "owner" not in request.match_info:  # GET /rate_limit: any valid token
            rate = {"limit": 5000, "remaining": 4999, "reset": int(time.time()) + 3600}
            return 200, {"resources": {"core": rate}, "rate": rate}, {}
        full_name = f"{request.match_info['owner']}/{request.match_info['name']}"
        repo = self.repositories.get(full_name)
        if repo is None:
            return 404, {"message": "Not Found", "status": "404"}, {}
        if body is ValueError:
            return 400, {"message": "Problems parsing JSON"}, {}
        if "tail" not in request.match_info:  # GET /repos/{owner}/{name}
            return 200, {"full_name": full_name, "default_branch": "main"}, {}
        parts = request.match_info["tail"].strip("/").split("/")
        with self._changed:
            return (*self._route(request, repo, parts, body or {}), {})

    def _route(
        self, request: web.Request, repo: Repository, parts: list[str], body: Any
    ) -> tuple[int, Any]:
        if parts[0] == "deployments" and "deployments" not in self.permissions:
            return _forbidden()
        if parts[0] == "statuses" and "statuses" not in self.permissions:
            return _forbidden()
        match request.method, parts:
            case "POST", ["deployments"]:
                return self._create_deployment(repo, body)
            case "GET", ["deployments"]:
                return 200, _listed(repo.deployments, request.query)
            case "POST", ["deployments", number, "statuses"] if number.isdigit():
                return self._deployment_status(repo, int(number), body)
            case "POST", ["statuses", sha]:
                return self._commit_status(repo, sha, body)
        return 404, {"message": "Not Found", "status": "404"}

    def _create_deployment(self, repo: Repository, body: dict[str, Any]) -> tuple[int, Any]:
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            return _invalid("Deployment", "ref", "missing_field")
        sha = repo.resolve(ref)
        if sha is None:
            return 422, {"message": f"No ref found for: {ref}", "status": "422"}
        required = body.get("required_contexts")
        states = {s["context"]: s["state"] for s in repo.commit_statuses if s["sha"] == sha}
        needed = states if required is None else {c: states.get(c) for c in required}
        if any(state != "success" for state in needed.values()):
            return 409, {"message": f"Conflict: Commit status checks failed for {ref}."}
        payload = body.get("payload", {})
        if isinstance(payload, str):
            payload = json.loads(payload) if payload else {}
        deployment = {
            "id": next(self._ids),
            "sha": sha,
            "ref": ref,
            "task": body.get("task", "deploy"),
            "payload": payload,
            "environment": body.get("environment", "production"),
            "description": body.get("description"),
            "transient_environment": bool(body.get("transient_environment", False)),
            "created_at": _now(),
        }
        repo.deployments.append(deployment)
        repo.statuses[deployment["id"]] = []
        return 201, deployment

    def _deployment_status(
        self, repo: Repository, number: int, body: dict[str, Any]
    ) -> tuple[int, Any]:
        if number not in repo.statuses:
            return 404, {"message": "Not Found", "status": "404"}
        problem = _status_problem(body, DEPLOYMENT_STATES, "DeploymentStatus")
        if problem:
            return problem
        status = {"id": next(self._ids), **body, "created_at": _now()}
        repo.statuses[number].append(status)
        return 201, status

    def _commit_status(self, repo: Repository, sha: str, body: dict[str, Any]) -> tuple[int, Any]:
        if sha not in repo.commits:
            return 422, {"message": f"No commit found for SHA: {sha}", "status": "422"}
        problem = _status_problem(body, COMMIT_STATES, "Status")
        if problem:
            return problem
        context = body.get("context", "default")
        same = [s for s in repo.commit_statuses if s["sha"] == sha and s["context"] == context]
        if len(same) >= MAX_STATUSES_PER_CONTEXT:
            return _invalid("Status", "context", "custom")
        status = {"id": next(self._ids), **body, "context": context, "sha": sha}
        repo.commit_statuses.append(status)
        return 201, status


def _status_problem(body: Any, states: frozenset[str], resource: str) -> tuple[int, Any] | None:
    if body.get("state") not in states:
        return _invalid(resource, "state", "invalid")
    description = body.get("description")
    if description is not None and len(str(description)) > MAX_DESCRIPTION:
        return 422, {
            "message": "Validation Failed",
            "errors": [f"description is too long (maximum is {MAX_DESCRIPTION} characters)"],
        }
    return None


def _listed(deployments: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    found = [
        d
        for d in deployments
        if all(query.get(k) in (None, d[k]) for k in ("sha", "ref", "task", "environment"))
    ]
    return list(reversed(found))[: min(int(query.get("per_page", 30)), 100)]


def _invalid(resource: str, field_: str, code: str) -> tuple[int, Any]:
    error = {"resource": resource, "field": field_, "code": code}
    return 422, {"message": "Validation Failed", "errors": [error], "status": "422"}


def _forbidden() -> tuple[int, Any]:
    return 403, {"message": "Resource not accessible by personal access token", "status": "403"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GithubContract(PeerContract[GithubPeer]):
    """The provider contract over a GithubPeer: what a person sees on the repository's
    deployments page is each deployment with its latest status's description."""

    def __init__(self) -> None:
        super().__init__(GithubPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.api_url}

    def options(self) -> dict[str, Any]:
        return {"commitStatus": True}

    def visible(self) -> list[str]:
        return [
            str((d["statuses"] or [d])[-1].get("description") or "")
            for d in self.peer.deployments()
        ]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        out = []
        for name, body in rendered.items():
            if len(str(body.get("description") or "")) > MAX_DESCRIPTION:
                out.append(f"{name}: description over {MAX_DESCRIPTION} characters")
            if name == "deployment" and not body.get("ref"):
                out.append("deployment: no ref")
            states = COMMIT_STATES if name == "commitStatus" else DEPLOYMENT_STATES
            if name != "deployment" and body.get("state") not in states:
                out.append(f"{name}: state {body.get('state')!r}")
        if not rendered.get("status"):
            out.append("no deployment status")
        return out
