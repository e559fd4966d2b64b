"""A local Sentry API (`/api/0/`) for one organization: releases and their deploys, with
Sentry's auth, validation and answers. Point a Secret's `apiUrl` at `peer.url`.

What it enforces, from Sentry's API documentation:
- `Authorization: Bearer <token>`, else 401 `{"detail": "Invalid token"}`; a token without the
  `project:releases` scope 403; an unknown organization 404.
- create a release (`POST …/releases/`): `version` required, at most 200 characters, no `/`,
  white space at either end or line break, not `.`, `..` or `latest`; `projects` required,
  each a project of the organization (400 with the field's error); 201, or 208 when the version
  exists.
- create a deploy (`POST …/releases/{version}/deploys/`): an unknown release 404; `environment`
  required, at most 64 characters, no `/` or line break; `name` at most 64 characters; `url`
  an http(s) URL; `dateStarted`/`dateFinished` ISO 8601; `projects` projects of the release;
  201 with the deploy. `GET` lists the release's deploys.
- rate limits: 429 `{"detail": "You are attempting to use this endpoint too frequently…"}`
  with `X-Sentry-Rate-Limit-Reset` (UTC epoch seconds).
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.support.peers._http import JsonApiPeer
from tests.support.peers.contract import PeerContract

DEFAULT_TOKEN = "sntrys_test-token-51ab"
MAX_VERSION = 200
MAX_NAME = 64
NOT_FOUND = (404, {"detail": "The requested resource does not exist"})


class SentryPeer(JsonApiPeer):
    """One organization with its projects; one token with its scopes."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        organization: str = "acme",
        projects: frozenset[str] = frozenset({"web", "api"}),
        scopes: frozenset[str] = frozenset({"project:releases"}),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.organization = organization
        self.projects = projects
        self.scopes = scopes
        self._releases: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(7001)

    def releases(self) -> dict[str, dict[str, Any]]:
        """Each release by version, with its `deploys` (oldest first)."""
        with self._changed:
            return {v: {**r, "deploys": list(r["deploys"])} for v, r in self._releases.items()}

    def deploys(self) -> list[dict[str, Any]]:
        with self._changed:
            return [d for r in self._releases.values() for d in r["deploys"]]

    def rate_limit(self, seconds: int) -> None:
        body = json.dumps(
            {
                "detail": "You are attempting to use this endpoint too frequently. Limit is 40 "
                "requests in 1 seconds"
            }
        )
        reset = {"X-Sentry-Rate-Limit-Reset": str(int(time.time()) + seconds)}
        self.respond_next(1, 429, body=body, headers=reset)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/0/organizations/{org}/{tail:.*}", self._handle)
        return app

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"detail": "Invalid token"}, {}
        if request.match_info["org"] != self.organization:
            return (*NOT_FOUND, {})
        if body is ValueError:
            return 400, {"detail": "JSON parse error"}, {}
        parts = [unquote(p) for p in request.raw_path.split("?")[0].split("/")[5:] if p]
        if parts and "project:releases" not in self.scopes:
            return 403, {"detail": "You do not have permission to perform this action."}, {}
        with self._changed:
            return (*self._route(request.method, parts, body or {}), {})

    def _route(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        match method, parts:
            case "GET", []:
                return 200, {"slug": self.organization, "name": self.organization}
            case "POST", ["releases"]:
                return self._release(body)
            case "POST", ["releases", version, "deploys"]:
                return self._deploy(version, body)
            case "GET", ["releases", version, "deploys"]:
                release = self._releases.get(version)
                return (200, list(reversed(release["deploys"]))) if release else NOT_FOUND
        return NOT_FOUND

    def _release(self, body: dict[str, Any]) -> tuple[int, Any]:
        version = body.get("version")
        if not isinstance(version, str) or not version:
            return 400, {"version": ["This field is required."]}
        if (
            len(version) > MAX_VERSION
            or "/" in version
            or "\n" in version
            or version != version.strip()
            or version in (".", "..", "latest")
        ):
            return 400, {"version": [f"Release with name {version[:50]} is not allowed"]}
        projects = body.get("projects")
        if not isinstance(projects, list) or not projects:
            return 400, {"projects": ["This field is required."]}
        if not set(projects) <= self.projects:
            return 400, {"projects": ["Invalid project ids or slugs"]}
        if version in self._releases:
            return 208, _public(self._releases[version])
        release = {"version": version, "projects": projects, "ref": body.get("ref"), "deploys": []}
        release["url"] = body.get("url")
        self._releases[version] = release
        return 201, _public(release)

    def _deploy(self, version: str, body: dict[str, Any]) -> tuple[int, Any]:
        release = self._releases.get(version)
        if release is None:
            return NOT_FOUND
        problem = _deploy_problem(body, set(release["projects"]))
        if problem:
            return 400, problem
        deploy = {"id": str(next(self._ids)), **body}
        deploy.setdefault("name", None)
        release["deploys"].append(deploy)
        return 201, deploy


def _deploy_problem(body: dict[str, Any], projects: set[str]) -> dict[str, Any] | None:
    environment = body.get("environment")
    if not isinstance(environment, str) or not environment:
        return {"environment": ["This field is required."]}
    if len(environment) > 64 or "/" in environment or "\n" in environment:
        return {"environment": ["Invalid environment name"]}
    name = body.get("name")
    if name is not None and len(str(name)) > MAX_NAME:
        return {"name": [f"Ensure this field has no more than {MAX_NAME} characters."]}
    url = body.get("url")
    if url is not None and not str(url).startswith(("http://", "https://")):
        return {"url": ["Enter a valid URL."]}
    for key in ("dateStarted", "dateFinished"):
        if key in body:
            try:
                datetime.fromisoformat(str(body[key]).replace("Z", "+00:00"))
            except ValueError:
                return {key: ["Datetime has wrong format."]}
    if not set(body.get("projects") or []) <= projects:
        return {"projects": ["Invalid projects"]}
    return None


def _public(release: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in release.items() if k != "deploys"}


class SentryContract(PeerContract[SentryPeer]):
    """What a person sees on the releases page: each deploy's environment and name."""

    # A deploy holds no message text to cut: its name is built within Sentry's 64 characters
    # (which `problems` checks on every fuzzed render).
    limits_size = False

    def __init__(self) -> None:
        super().__init__(SentryPeer())

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.url}

    def options(self) -> dict[str, Any]:
        return {"organization": "acme", "projects": "web", "versionPrefix": "web@"}

    def visible(self) -> list[str]:
        return [f"{d['environment']}: {d['name']}" for d in self.peer.deploys()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        if rendered is None:
            return []
        problem = _deploy_problem(rendered["deploy"], {"web"})
        return [str(problem)] if problem else []
