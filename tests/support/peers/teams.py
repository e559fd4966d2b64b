"""A local Microsoft Teams Workflows webhook: the HTTP trigger of the flow "Post to a channel when
a webhook request is received" and the channel it posts to. Point a Secret's `webhookUrl` at
`peer.url`.

What it enforces, as the service does (limits from Microsoft's documentation):
- the trigger URL is `…/workflows/<id>/triggers/manual/paths/invoke?api-version=…&sp=…&sv=…&sig=…`;
  the `sig` parameter is the credential: missing or wrong → 401, an unknown workflow → 404, both
  with Azure's JSON error shape `{"error": {"code", "message"}}`;
- the body must be JSON (`Content-Type: application/json`), else 400;
- a valid request is answered `202 Accepted` with an empty body and an `x-ms-workflow-run-id`
  header, never a message id; the flow then posts each attachment whose `contentType` is
  `application/vnd.microsoft.card.adaptive` as a card. A card the flow cannot post (not an
  Adaptive Card, a version Teams does not render, an unknown element, over 28 KB) fails the run
  after the 202: it is recorded in `runs` with its problems, and nothing shows in the channel;
- a rate-limit answer is 429 with a `Retry-After` header (seconds) and a JSON error.

    with TeamsPeer() as peer:
        ...send to peer.url...
        card = peer.wait_for(lambda runs: runs and runs[-1].posted and runs[-1].posted[0])
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.peers._http import HttpPeer, json_or_none
from tests.support.peers.contract import PeerContract, texts

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_CARD_BYTES = 28 * 1024
VERSIONS = frozenset({"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"})
CONTAINER_STYLES = frozenset({"default", "emphasis", "good", "attention", "warning", "accent"})
ELEMENTS = frozenset(
    {"TextBlock", "RichTextBlock", "FactSet", "Container", "ColumnSet", "Image", "ActionSet"}
)
ACTIONS = frozenset(
    {"Action.OpenUrl", "Action.Submit", "Action.ShowCard", "Action.ToggleVisibility"}
)
DEFAULT_SIG = "teams-test-signature-0123456789"


@dataclass(frozen=True)
class TeamsRun:
    """One trigger request and the flow run it started (when it was accepted)."""

    path: str
    query: dict[str, str]
    content_type: str
    json: Any  # the parsed body, None when it is not JSON
    status: int  # what the trigger answered
    run_id: str
    posted: tuple[dict[str, Any], ...]  # the cards the flow posted to the channel
    problems: tuple[str, ...]  # why the run failed after the 202 (nothing posted)


class TeamsPeer(HttpPeer[TeamsRun]):
    """One workflow, one channel."""

    def __init__(
        self,
        workflow: str = "0f5c2bd1e1d04f61a2d7a31c9e6b5d80",
        sig: str = DEFAULT_SIG,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.workflow = workflow
        self.sig = sig
        self._runs = itertools.count(8584_0000_0000_0000_000)

    @property
    def url(self) -> str:
        """The trigger URL a Workflows webhook shows (credential included)."""
        return (
            f"{self.base_url}/workflows/{self.workflow}/triggers/manual/paths/invoke"
            f"?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.sig}"
        )

    def cards(self) -> list[dict[str, Any]]:
        """Every card the channel shows, oldest first."""
        return [card for run in self.received for card in run.posted]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_post("/workflows/{workflow}/triggers/manual/paths/invoke", self._trigger)
        return app

    async def _trigger(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json_or_none(raw)
        status, headers, error = self._answer(request, body)
        posted: tuple[dict[str, Any], ...] = ()
        problems: tuple[str, ...] = ()
        run_id = ""
        if status == 202:
            run_id = f"{next(self._runs)}CU{self.port}"
            headers = {**headers, "x-ms-workflow-run-id": run_id}
            problems = tuple(request_problems(body))
            posted = () if problems else tuple(a["content"] for a in _cards(body))
        self._record(
            TeamsRun(
                path=request.path,
                query=dict(request.query),
                content_type=request.headers.get("Content-Type", ""),
                json=body,
                status=status,
                run_id=run_id,
                posted=posted,
                problems=problems,
            )
        )
        if error is None:
            return web.Response(status=status, headers=headers)
        return web.json_response({"error": error}, status=status, headers=headers)

    def _answer(
        self, request: web.Request, body: Any
    ) -> tuple[int, dict[str, str], dict[str, str] | None]:
        scripted = self._scripted()
        if scripted is not None:
            code = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(scripted.status, "Error")
            error = {"code": code, "message": scripted.body or "Rate limit is exceeded."}
            return scripted.status, scripted.response_headers(), error
        if request.match_info["workflow"] != self.workflow:
            return 404, {}, {"code": "WorkflowNotFound", "message": "The workflow was not found."}
        sig = request.query.get("sig")
        if sig is None:
            message = "The request must be authenticated only by Shared Access scheme."
            return 401, {}, {"code": "DirectApiAuthorizationRequired", "message": message}
        if sig != self.sig:
            message = "The provided shared access signature is not valid."
            return 401, {}, {"code": "DirectApiInvalidAuthorizationSignature", "message": message}
        media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media != "application/json" or body is None:
            message = "The request content is not valid JSON (Content-Type application/json)."
            return 400, {}, {"code": "InvalidRequestContent", "message": message}
        return 202, {}, None


def _cards(body: Any) -> Iterator[dict[str, Any]]:
    for attachment in (body or {}).get("attachments") or []:
        if isinstance(attachment, dict) and attachment.get("contentType") == CARD_CONTENT_TYPE:
            yield attachment


def request_problems(body: Any) -> list[str]:
    """Why the flow would fail to post this request's cards (empty when it posts them)."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["no attachments: the flow posts each attachment's card"]
    out = []
    for i, attachment in enumerate(attachments):
        if not isinstance(attachment, dict) or attachment.get("contentType") != CARD_CONTENT_TYPE:
            out.append(f"attachments[{i}] is not an Adaptive Card ({CARD_CONTENT_TYPE})")
            continue
        out += [f"attachments[{i}]: {p}" for p in card_problems(attachment.get("content"))]
    return out


def card_problems(card: Any) -> list[str]:
    """What Teams refuses in an Adaptive Card: its shape, version, elements and size."""
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return ["content is not an AdaptiveCard"]
    out = []
    if card.get("version") not in VERSIONS:
        out.append(f"version {card.get('version')!r} is not one Teams renders")
    body = card.get("body")
    if not isinstance(body, list):
        out.append("body is not a list")
        body = []
    out += [p for element in body for p in _element_problems(element)]
    for action in card.get("actions") or []:
        out += _action_problems(action)
    size = len(json.dumps(card, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_CARD_BYTES:
        out.append(f"the card is {size} bytes (at most {MAX_CARD_BYTES})")
    return out


def _element_problems(element: Any) -> list[str]:
    if not isinstance(element, dict) or element.get("type") not in ELEMENTS:
        kind = element.get("type") if isinstance(element, dict) else element
        return [f"unknown element {kind!r}"]
    kind = element["type"]
    if kind == "TextBlock" and not isinstance(element.get("text"), str):
        return ["a TextBlock without text"]
    if kind == "RichTextBlock":
        inlines = element.get("inlines")
        if not isinstance(inlines, list) or not all(
            isinstance(i, dict) and i.get("type") == "TextRun" and isinstance(i.get("text"), str)
            for i in inlines
        ):
            return ["a RichTextBlock whose inlines are not TextRuns with text"]
    if kind == "FactSet":
        facts = element.get("facts")
        if not isinstance(facts, list) or not all(
            isinstance(f, dict)
            and isinstance(f.get("title"), str)
            and isinstance(f.get("value"), str)
            for f in facts
        ):
            return ["a FactSet whose facts are not title/value strings"]
    if kind == "Container":
        if element.get("style", "default") not in CONTAINER_STYLES:
            return [f"container style {element.get('style')!r}"]
        return [p for item in element.get("items") or [] for p in _element_problems(item)]
    return []


def _action_problems(action: Any) -> list[str]:
    if not isinstance(action, dict) or action.get("type") not in ACTIONS:
        return [f"unknown action {action!r}"[:200]]
    url = action.get("url", "")
    if action["type"] == "Action.OpenUrl" and not str(url).startswith(("https://", "http://")):
        return [f"Action.OpenUrl url {url!r} is not an http(s) URL"[:200]]
    return []


class TeamsContract(PeerContract[TeamsPeer]):
    """The provider contract (tests/support/peers/contract.py) against a TeamsPeer."""

    def __init__(self) -> None:
        super().__init__(TeamsPeer())

    def secret(self) -> dict[str, str]:
        return {"webhookUrl": self.peer.url}

    def visible(self) -> list[str]:
        return [texts(card) for card in self.peer.cards()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.respond_next(1, 429, retry_after=str(seconds))

    def problems(self, rendered: Any) -> list[str]:
        return request_problems(rendered)
