"""Merge-request notes on the local GitLab API, on top of `GitlabPeer` (same auth, projects,
scopes, rate limits and answers).

What it enforces, from GitLab's Notes API documentation:
- `POST /projects/:id/merge_requests/:iid/notes` on an existing merge request (404 "404 Not
  found"), `body` required (400 "body is missing") and at most 1,000,000 characters (400 "Note
  is too long"); `PUT …/notes/:note_id` with `body` edits one (404 when unknown);
  `GET …/notes` takes `sort` (asc/desc), `order_by` (created_at/updated_at) and `per_page`
  (≤ 100).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.support.peers.contract import PeerContract
from tests.support.peers.gitlab import SAMPLE_SHA, GitlabPeer, Project, _now

MAX_NOTE = 1_000_000
NOT_FOUND = (404, {"message": "404 Not found"})


class GitlabNotesPeer(GitlabPeer):
    """GitlabPeer with merge requests (by iid) and their notes."""

    def __init__(self, merge_requests: tuple[int, ...] = (42,), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.merge_requests = set(merge_requests)
        self._notes: dict[int, dict[str, Any]] = {}

    def notes(self, iid: int | None = None) -> list[dict[str, Any]]:
        """Every note (of one merge request), oldest first, with its `edits` count."""
        with self._changed:
            return [dict(n) for n in self._notes.values() if iid in (None, n["noteable_iid"])]

    def _route(
        self, request: web.Request, project: Project, parts: list[str], body: Any
    ) -> tuple[int, Any]:
        match request.method, parts:
            case ("POST", ["merge_requests", iid, "notes"]) if iid.isdigit():
                return self._note(project, int(iid), None, body)
            case ("PUT", ["merge_requests", iid, "notes", n]) if iid.isdigit() and n.isdigit():
                return self._note(project, int(iid), int(n), body)
            case ("GET", ["merge_requests", iid, "notes"]) if iid.isdigit():
                if int(iid) not in self.merge_requests:
                    return NOT_FOUND
                found = [_shown(n) for n in self._notes.values() if n["noteable_iid"] == int(iid)]
                key = request.query.get("order_by", "created_at")
                found.sort(key=lambda n: (n[key], n["id"]))
                if request.query.get("sort", "desc") == "desc":
                    found.reverse()
                return 200, found[: min(int(request.query.get("per_page", 20)), 100)]
        return super()._route(request, project, parts, body)

    def _note(self, project: Project, iid: int, number: int | None, body: Any) -> tuple[int, Any]:
        if iid not in self.merge_requests:
            return NOT_FOUND
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return 400, {"error": "body is missing"}
        if len(text) > MAX_NOTE:
            return 400, {"message": {"note": ["Note is too long"]}}
        if number is not None:
            note = self._notes.get(number)
            if note is None or note["project"] is not project or note["noteable_iid"] != iid:
                return NOT_FOUND
            note.update(body=text, updated_at=_now(), edits=note["edits"] + 1)
            return 200, _shown(note)
        note = {"id": next(self._ids), "project": project, "noteable_iid": iid, "body": text}
        note.update(noteable_type="MergeRequest", edits=0, created_at=_now(), updated_at=_now())
        self._notes[note["id"]] = note
        return 201, _shown(note)


def _shown(note: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in note.items() if k not in ("project", "edits")}


class GitlabMergeRequestCommentContract(PeerContract[GitlabNotesPeer]):
    """What a person sees on the merge request: each note's current text."""

    def __init__(self) -> None:
        super().__init__(GitlabNotesPeer(projects={"acme/web": {SAMPLE_SHA}}))

    def secret(self) -> dict[str, str]:
        return {"token": self.peer.token, "apiUrl": self.peer.url}

    def visible(self) -> list[str]:
        return [n["body"] for n in self.peer.notes(42)]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        size = len(rendered.get("body") or "")
        return [f"note body of {size} characters"] if not 0 < size <= MAX_NOTE else []
