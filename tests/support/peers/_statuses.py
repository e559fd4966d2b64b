"""What the commit-status forge peers (Gitea, Bitbucket Cloud and Data Center, Azure DevOps)
share: repositories with their commits, every status set on them in order, and what the forge
shows (the latest status of each name on a commit). Each forge's peer writes its own routes,
auth, validation and answers in `_answer`; its contract says what its limits are.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from aiohttp import web

from tests.support.peers._http import HttpCall, JsonApiPeer, json_answer
from tests.support.peers.contract import PeerContract

SAMPLE_SHA = "4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"


def run_commit(run: int) -> str:
    """The commit the contract test deploys in run `run`: a status is kept per DeployJob and
    commit, so each run of the same DeployJob stays visible on its own commit."""
    return f"{run:040x}"


CONTRACT_COMMITS = frozenset({SAMPLE_SHA, *(run_commit(run) for run in range(1, 5))})


@dataclass(frozen=True)
class Status:
    """One status as the forge stored it."""

    repository: str
    sha: str
    name: str
    state: str
    description: str
    url: str
    id: int


class StatusPeer(JsonApiPeer):
    """A forge's API for `repositories` (path → commits), with one valid credential."""

    prefix: ClassVar[str]  # where the API is served, e.g. "/api/v1"

    def __init__(
        self,
        repositories: dict[str, set[str]] | None = None,
        default: str = "acme/web",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        given = repositories or {default: set(CONTRACT_COMMITS)}
        self.repositories = {path: set(commits) for path, commits in given.items()}
        self._set: list[Status] = []
        self._ids = itertools.count(1)

    async def _handle(self, request: web.Request) -> web.Response:
        """JsonApiPeer's skeleton; an answer may also be a whole response (a sign-in page)."""
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = ValueError
        scripted = self._scripted()
        if scripted is not None:
            self._record(HttpCall(request.method, request.path, body, scripted.status))
            return scripted.text_response()
        status, answer, headers = self._answer(request, body)
        if isinstance(answer, web.Response):
            status = answer.status
        self._record(HttpCall(request.method, request.path, body, status))
        if isinstance(answer, web.Response):
            return answer
        return json_answer(status, answer, headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", self.prefix + "/{tail:.*}", self._handle)
        return app

    @property
    def url(self) -> str:
        return self.base_url + self.prefix

    def statuses(self, repository: str | None = None) -> list[Status]:
        """Every status set, oldest first."""
        with self._changed:
            return [s for s in self._set if repository in (None, s.repository)]

    def shown(self, repository: str | None = None) -> list[Status]:
        """What the forge shows: the latest status of each name on each commit, in the order
        the names first appeared."""
        latest: dict[tuple[str, str, str], Status] = {}
        for status in self.statuses(repository):
            key = (status.repository, status.sha, status.name.lower())
            latest.pop(key, None)
            latest[key] = status
        return sorted(latest.values(), key=lambda s: self._first(s))

    def _first(self, status: Status) -> int:
        return min(
            s.id
            for s in self.statuses(status.repository)
            if (s.sha, s.name.lower()) == (status.sha, status.name.lower())
        )

    def _store(
        self, repository: str, sha: str, name: str, body: dict[str, Any], **keys: str
    ) -> Status:
        """Record a status set from `body` (its state, description and link under `keys`)."""
        status = Status(
            repository,
            sha,
            name,
            str(body.get(keys.get("state", "state")) or ""),
            str(body.get(keys.get("description", "description")) or ""),
            str(body.get(keys.get("url", "url")) or ""),
            next(self._ids),
        )
        with self._changed:
            self._set.append(status)
        return status


Peer = TypeVar("Peer", bound=StatusPeer)


class StatusContract(PeerContract[Peer], Generic[Peer]):
    """The provider contract over a status peer: a person sees each status the commit shows,
    its name, state and description."""

    commit_of = staticmethod(run_commit)

    def visible(self) -> list[str]:
        return [f"{s.name} {s.state}: {s.description}" for s in self.peer.shown()]
