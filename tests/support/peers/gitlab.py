"""A local GitLab REST API (v4) for a few projects: deployments and external commit statuses,
with GitLab's auth, validation and answers. Point a Secret's `apiUrl` at `peer.url` (the
instance URL; the API is under `/api/v4`).

What it enforces, from GitLab's API documentation:
- `PRIVATE-TOKEN: <token>` (or `Authorization: Bearer <token>`), else 401 "401 Unauthorized"; a
  token without the `api` scope gets 403 `insufficient_scope` on writes; a token of a Reporter
  403 "403 Forbidden" (deployments and statuses need the Developer role); a project by id or
  URL-encoded path (`acme%2Fweb`), else 404 "404 Project Not Found".
- create a deployment: `environment`, `sha`, `ref` and `tag` are required (400 "… is
  missing"), `status` one of running, success, failed, canceled; the commit must exist and the
  ref resolve (400 with the field's error); an environment name of letters, digits, spaces and
  `-_/.${}`, not starting or ending with `/`; 201 with the deployment (`id`, `iid`, …).
- update a deployment: only from `running` (created) to success, failed or canceled, else 400;
  an unknown deployment 404 "404 Not found".
- a commit status: `state` one of pending, running, success, failed, canceled, skipped; the
  commit must exist (404 "404 Commit Not Found"); description and target_url at most 255
  characters; a status of the same name that is still pending or running is updated (a
  transition to the state it is in is refused: "Cannot transition status via :run from
  :running"), else a new one is added.
- `GET /user` answers the token's user; `GET /projects/:id` the project.
- rate limits: 429 "Retry later" with `Retry-After` and `RateLimit-Reset` (epoch seconds).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from tests.support.peers._http import HttpCall, HttpPeer
from tests.support.peers.contract import PeerContract

DEFAULT_TOKEN = "glpat-test-token-9d8e7f6a"
SAMPLE_SHA = "4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
DEPLOYMENT_STATES = frozenset({"running", "success", "failed", "canceled"})
COMMIT_STATES = frozenset({"pending", "running", "success", "failed", "canceled", "skipped"})
EVENTS = {
    "pending": "enqueue",
    "running": "run",
    "success": "success",
    "failed": "drop",
    "canceled": "cancel",
    "skipped": "skip",
}
MAX_TEXT = 255
_ENVIRONMENT = re.compile(r"[A-Za-z0-9 _/.${}-]+")


@dataclass
class Project:
    id: int
    path: str
    commits: set[str]
    branches: dict[str, str]
    deployments: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)

    def resolve(self, ref: str) -> str | None:
        if ref in self.branches:
            return self.branches[ref]
        return ref if ref in self.commits else None


class GitlabPeer(HttpPeer[HttpCall]):
    """Projects by path; one token with its scopes and role."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        projects: dict[str, set[str]] | None = None,
        scopes: frozenset[str] = frozenset({"api"}),
        role: str = "developer",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.scopes = scopes
        self.role = role
        self.projects = [
            Project(42 + i, path, set(commits), {"main": sorted(commits)[0]})
            for i, (path, commits) in enumerate((projects or {"acme/web": {SAMPLE_SHA}}).items())
        ]
        self._ids = itertools.count(501)

    def deployments(self, project: str = "acme/web") -> list[dict[str, Any]]:
        with self._changed:
            return [dict(d) for d in self._project(project).deployments]  # type: ignore[union-attr]

    def statuses(self, project: str = "acme/web") -> list[dict[str, Any]]:
        with self._changed:
            return [dict(s) for s in self._project(project).statuses]  # type: ignore[union-attr]

    def rate_limit(self, seconds: int) -> None:
        reset = str(int(time.time()) + seconds)
        self.respond_next(
            1, 429, retry_after=str(seconds), body="Retry later", headers={"RateLimit-Reset": reset}
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/v4/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body: Any
        if request.content_type == "application/json":
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = None
        else:
            body = dict(parse_qsl(raw.decode(errors="replace")))
        status, answer, headers = self._answer(request, body)
        # the raw path, as sent: the project path stays encoded
        self._record(HttpCall(request.method, request.raw_path, body, status))
        if isinstance(answer, str):
            return web.Response(status=status, text=answer, headers=headers)
        return web.json_response(answer, status=status, headers=headers)

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        scripted = self._scripted()
        if scripted is not None:
            return scripted.status, scripted.body or "", scripted.response_headers()
        auth = request.headers.get("PRIVATE-TOKEN") or request.headers.get(
            "Authorization", ""
        ).removeprefix("Bearer ")
        if auth != self.token:
            return 401, {"message": "401 Unauthorized"}, {}
        if request.method != "GET" and "api" not in self.scopes:
            return (
                403,
                {
                    "error": "insufficient_scope",
                    "scope": "api",
                    "error_description": "The request requires higher privileges than "
                    "provided by the access token.",
                },
                {},
            )
        if body is None:
            return 400, {"error": "400 Bad request - the body is not valid JSON"}, {}
        path = request.raw_path.split("?")[0].removeprefix("/api/v4/").split("/")
        if request.method == "GET" and path == ["user"]:  # the token's (bot) user
            return 200, {"id": 7, "username": "project_42_bot", "bot": True}, {}
        if len(path) < 2 or path[0] != "projects":
            return 404, {"error": "404 Not Found"}, {}
        with self._changed:
            project = self._project(unquote(path[1]))
            if project is None:
                return 404, {"message": "404 Project Not Found"}, {}
            if request.method != "GET" and self.role not in ("developer", "maintainer", "owner"):
                return 403, {"message": "403 Forbidden"}, {}
            status, answer = self._route(request, project, path[2:], body)
            return status, answer, {}

    def _project(self, key: str) -> Project | None:
        return next((p for p in self.projects if key in (str(p.id), p.path)), None)

    def _route(
        self, request: web.Request, project: Project, parts: list[str], body: Any
    ) -> tuple[int, Any]:
        match request.method, parts:
            case "GET", []:
                return 200, {"id": project.id, "path_with_namespace": project.path}
            case "POST", ["deployments"]:
                return self._create(project, body)
            case "GET", ["deployments"]:
                return 200, _listed(project.deployments, request.query)
            case "GET", ["deployments", number]:
                found = _by_id(project.deployments, number)
                return (200, found) if found else (404, {"message": "404 Not found"})
            case "PUT", ["deployments", number]:
                return self._update(project, number, body)
            case "POST", ["statuses", sha]:
                return self._commit_status(project, sha, body)
        return 404, {"error": "404 Not Found"}

    def _create(self, project: Project, body: dict[str, Any]) -> tuple[int, Any]:
        missing = [k for k in ("environment", "sha", "ref", "tag") if k not in body]
        if missing:
            return 400, {"error": ", ".join(f"{k} is missing" for k in missing)}
        if body.get("status") not in DEPLOYMENT_STATES:
            return 400, {"error": "status does not have a valid value"}
        if not isinstance(body["tag"], bool) and body["tag"] not in ("true", "false"):
            return 400, {"error": "tag is invalid"}
        name = str(body["environment"])
        if not _ENVIRONMENT.fullmatch(name) or name.startswith("/") or name.endswith("/"):
            return 400, {
                "message": {
                    "environment": [
                        "name can contain only letters, digits, "
                        "'-', '_', '/', '$', '{', '}', '.', and spaces"
                    ]
                }
            }
        if body["sha"] not in project.commits:
            return 400, {"message": {"sha": ["The commit does not exist"]}}
        if project.resolve(str(body["ref"])) is None:
            return 400, {"message": {"ref": ["The branch or tag does not exist"]}}
        now = _now()
        deployment = {
            "id": next(self._ids),
            "iid": len(project.deployments) + 1,
            "ref": body["ref"],
            "sha": body["sha"],
            "status": body["status"],
            "environment": {"name": name},
            "created_at": now,
            "updated_at": now,
            "deployable": None,
            "history": [body["status"]],
        }
        project.deployments.append(deployment)
        return 201, deployment

    def _update(self, project: Project, number: str, body: dict[str, Any]) -> tuple[int, Any]:
        deployment = _by_id(project.deployments, number)
        if deployment is None:
            return 404, {"message": "404 Not found"}
        wanted = body.get("status")
        if wanted not in DEPLOYMENT_STATES:
            return 400, {"error": "status does not have a valid value"}
        if deployment["status"] != "running" or wanted == "running":
            return 400, {
                "message": {
                    "status": [f"cannot transition from {deployment['status']} to {wanted}"]
                }
            }
        deployment.update(status=wanted, updated_at=_now())
        deployment["history"].append(wanted)
        return 200, deployment

    def _commit_status(self, project: Project, sha: str, body: dict[str, Any]) -> tuple[int, Any]:
        state = body.get("state")
        if state not in COMMIT_STATES:
            return 400, {"error": "state does not have a valid value"}
        if sha not in project.commits:
            return 404, {"message": "404 Commit Not Found"}
        for key in ("description", "target_url"):
            if len(str(body.get(key) or "")) > MAX_TEXT:
                return 400, {"message": {key: [f"is too long (maximum is {MAX_TEXT} characters)"]}}
        name = body.get("name") or body.get("context") or "default"
        open_ = [
            s
            for s in project.statuses
            if s["sha"] == sha and s["name"] == name and s["status"] in ("pending", "running")
        ]
        if open_:
            status = open_[-1]
            if status["status"] == state or (status["status"] == "running" and state == "pending"):
                return 400, {
                    "message": f"Cannot transition status via :{EVENTS[state]} from "
                    f":{status['status']} (Reason(s): Status cannot transition via "
                    f'"{EVENTS[state]}")'
                }
        else:
            status = {"id": next(self._ids), "sha": sha, "name": name, "created_at": _now()}
            project.statuses.append(status)
        status.update(
            status=state,
            description=body.get("description"),
            target_url=body.get("target_url"),
            ref=body.get("ref"),
        )
        return 201, status


def _by_id(items: list[dict[str, Any]], number: str) -> dict[str, Any] | None:
    return next((d for d in items if str(d["id"]) == number), None)


def _listed(deployments: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    found = [
        d
        for d in deployments
        if query.get("environment") in (None, d["environment"]["name"])
        and query.get("status") in (None, d["status"])
    ]
    if query.get("sort", "asc") == "desc":
        found.reverse()
    return found[: min(int(query.get("per_page", 20)), 100)]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class GitlabContract(PeerContract[GitlabPeer]):
    """The provider contract over a GitlabPeer. What a person sees is the commit's external
    jobs (the commit statuses, each with its description: deployments have no text) and the
    environment's deployments with their status."""

    def __init__(self) -> None:
        super().__init__(GitlabPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.url}

    def options(self) -> dict[str, Any]:
        return {"commitStatus": True}

    def visible(self) -> list[str]:
        deployments = [
            f"deployment #{d['iid']} of {d['sha'][:8]} to {d['environment']['name']}: {d['status']}"
            for d in self.peer.deployments()
        ]
        jobs = [f"{s['name']} {s['status']}: {s['description']}" for s in self.peer.statuses()]
        return deployments + jobs

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        out = []
        status = rendered.get("commitStatus") or {}
        for key in ("description", "target_url", "name"):
            if len(str(status.get(key) or "")) > MAX_TEXT:
                out.append(f"commit status {key} over {MAX_TEXT} characters")
        if status and status.get("state") not in COMMIT_STATES:
            out.append(f"commit status state {status.get('state')!r}")
        deployment = rendered.get("deployment") or rendered.get("update") or {}
        if deployment.get("status") not in DEPLOYMENT_STATES:
            out.append(f"deployment status {deployment.get('status')!r}")
        return out
