"""A local NerdGraph (New Relic's GraphQL API) for change tracking: the mutation
`changeTrackingCreateDeployment` and the `actor { user }` query, with New Relic's auth,
validation and answers. Point a Secret's `apiUrl` at `peer.url` (`…/graphql`).

What it enforces, from New Relic's NerdGraph documentation:
- the `API-Key` header with a User key, else 401 with a GraphQL `errors` list;
- a JSON body with `query` (and `variables`); a mutation it does not serve, or a refused input,
  is answered 200 with `errors` (GraphQL's way), the input's problems named;
- `ChangeTrackingDeploymentInput`: `entityGuid` and `version` required and non-empty, the
  entity one the key can see ("Entity not found"), `deploymentType` one of BASIC, BLUE_GREEN,
  CANARY, OTHER, ROLLING, SHADOW, each string an NRDB attribute of at most 4096 characters,
  `timestamp` epoch milliseconds (an integer), unknown fields refused;
- rate limits: 429 with `Retry-After` (seconds).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

from tests.support.peers._http import JsonApiPeer
from tests.support.peers.contract import PeerContract

DEFAULT_KEY = "NRAK-TESTKEY0123456789ABCDEFGH"
ENTITY = "MXxBUE18QVBQTElDQVRJT058MTIzNDU2Nzg"
DEPLOYMENT_TYPES = frozenset({"BASIC", "BLUE_GREEN", "CANARY", "OTHER", "ROLLING", "SHADOW"})
FIELDS = frozenset(
    {
        "entityGuid",
        "version",
        "commit",
        "user",
        "description",
        "changelog",
        "deepLink",
        "deploymentType",
        "groupId",
        "timestamp",
    }
)
MAX_ATTRIBUTE = 4096


class NewrelicPeer(JsonApiPeer):
    """The entities a User key can see, and the markers set on them."""

    def __init__(
        self,
        api_key: str = DEFAULT_KEY,
        entities: frozenset[str] = frozenset({ENTITY}),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.entities = entities
        self._markers: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        return self.base_url + "/graphql"

    def markers(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._markers)

    def rate_limit(self, seconds: int) -> None:
        body = json.dumps({"errors": [{"message": "Too many requests"}]})
        self.respond_next(1, 429, retry_after=str(seconds), body=body)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/graphql", self._handle)
        return app

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        if request.headers.get("API-Key") != self.api_key:
            return 401, _errors("Invalid API key"), {}
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return 400, _errors("Must provide query string."), {}
        query = body["query"]
        if "changeTrackingCreateDeployment" in query:
            variables = body.get("variables") or {}
            with self._changed:
                return 200, self._create(variables.get("deployment")), {}
        if "actor" in query and "user" in query:
            return 200, {"data": {"actor": {"user": {"email": "ops@example.com"}}}}, {}
        return 200, _errors("Cannot query field on type RootMutationType"), {}

    def _create(self, deployment: Any) -> dict[str, Any]:
        problems = deployment_problems(deployment, self.entities)
        if problems:
            return _errors(*problems)
        marker = {"deploymentId": f"dep-{next(self._ids)}", **deployment}
        self._markers.append(marker)
        answer = {"deploymentId": marker["deploymentId"], "entityGuid": marker["entityGuid"]}
        return {"data": {"changeTrackingCreateDeployment": answer}}


def deployment_problems(deployment: Any, entities: frozenset[str]) -> list[str]:
    if not isinstance(deployment, dict):
        return [
            "Variable $deployment of required type ChangeTrackingDeploymentInput! was not provided."
        ]
    out = [
        f"Unknown field {k!r} in ChangeTrackingDeploymentInput" for k in set(deployment) - FIELDS
    ]
    for key in ("entityGuid", "version"):
        if not isinstance(deployment.get(key), str) or not deployment[key]:
            out.append(f"{key} is required")
    if deployment.get("entityGuid") and deployment["entityGuid"] not in entities:
        out.append(f"Entity not found: {deployment['entityGuid']}")
    kind = deployment.get("deploymentType")
    if kind is not None and kind not in DEPLOYMENT_TYPES:
        out.append(f"Expected type ChangeTrackingDeploymentType, found {kind}")
    for key, value in deployment.items():
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE:
            out.append(f"{key} is over {MAX_ATTRIBUTE} characters")
    if "timestamp" in deployment and not isinstance(deployment["timestamp"], int):
        out.append("timestamp must be epoch milliseconds")
    return out


def _errors(*messages: str) -> dict[str, Any]:
    return {"errors": [{"message": m} for m in messages], "data": None}


class NewrelicContract(PeerContract[NewrelicPeer]):
    """What a person sees in change tracking: each marker's version and description."""

    def __init__(self) -> None:
        super().__init__(NewrelicPeer())

    def secret(self) -> dict[str, str]:
        return {"apiKey": self.peer.api_key, "apiUrl": self.peer.url}

    def recipients(self) -> tuple[str, ...]:
        return (ENTITY,)

    def visible(self) -> list[str]:
        return [f"{m['version']}: {m['description']}" for m in self.peer.markers()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        if rendered is None:
            return []
        return deployment_problems(rendered["variables"]["deployment"], frozenset({ENTITY}))
