"""A local Google Cloud Pub/Sub REST API and the OAuth 2.0 token endpoint a service account's
key names (`token_uri`). `peer.key()` is a service account JSON key whose RSA pair the peer
made; only its public half stays here, to verify the JWTs.

What it enforces, from Pub/Sub's REST reference, its quotas and Google's OAuth 2.0 for service
accounts:
- `POST /token` (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `assertion`): an RS256
  JWT whose signature verifies with the key's public half, `kid` the key's id, `iss` the
  service account, `aud` Google's token URI, a `scope` with Pub/Sub (or cloud-platform), and
  `iat`/`exp` current and at most an hour apart; else 400 `invalid_grant`. Answers a bearer
  token valid for an hour;
- `POST /v1/projects/P/topics/T:publish` with that token (else 401 `UNAUTHENTICATED`), a topic
  that exists (else 404 `NOT_FOUND`), 1 to 1,000 messages, each with base64 `data` or attributes,
  at most 100 attributes of keys up to 256 bytes (not starting with `goog`) and values up to
  1,024 bytes, messages and the request at most 10 MB (else 400 `INVALID_ARGUMENT`); answers
  `{"messageIds": [...]}`;
- errors in Google's error model; `rate_limit` scripts 429 `RESOURCE_EXHAUSTED` with a `RetryInfo`
  detail, as the googlechat peer does for Google's APIs.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.peers._http import HttpPeer
from tests.support.peers.contract import PeerContract, texts
from tests.support.peers.webhook import cloudevent_problems

PROJECT = "deploy-project"
ACCOUNT = f"deploybell@{PROJECT}.iam.gserviceaccount.com"
SCOPES = (
    "https://www.googleapis.com/auth/pubsub",
    "https://www.googleapis.com/auth/cloud-platform",
)
MAX_REQUEST = 10_000_000
MAX_MESSAGES = 1000
MAX_ATTRIBUTES = 100
AUDIENCE = "https://oauth2.googleapis.com/token"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class Published:
    topic: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str
    message_id: str


class PubsubPeer(HttpPeer[dict[str, Any]]):
    """Topics `deploys` and `audit` of one project; the messages published to each."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public = self._private.public_key()
        self.key_id = secrets.token_hex(20)
        self.topics = {f"projects/{PROJECT}/topics/{t}" for t in ("deploys", "audit")}
        self.tokens: dict[str, float] = {}  # access token → when it expires
        self.published: list[Published] = []
        self.grants: list[dict[str, Any]] = []  # the JWT claims of every token granted
        self._ids = itertools.count(4_000_000_000_000_001)

    def key(self) -> str:
        """The service account's JSON key, as `gcloud iam service-accounts keys create` writes."""
        pem = self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": self.key_id,
                "private_key": pem,
                "client_email": ACCOUNT,
                "client_id": "104200000000000000001",
                "token_uri": f"{self.base_url}/token",
            }
        )

    def messages(self, topic: str = "deploys") -> list[Published]:
        with self._changed:
            return [p for p in self.published if p.topic.endswith(f"/topics/{topic}")]

    def rate_limit(self, seconds: int) -> None:
        error = _error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
        error["error"]["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"}
        ]
        self.respond_next(
            1, 429, body=json.dumps(error), headers={"Content-Type": "application/json"}
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * MAX_REQUEST)
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/topics/{topic}", self._publish)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        claims, why = self._verify(str(form.get("grant_type", "")), str(form.get("assertion", "")))
        self._record({"path": "/token", "claims": claims, "error": why})
        if why:
            return web.json_response(
                {"error": "invalid_grant", "error_description": why}, status=400
            )
        token = "ya29." + secrets.token_urlsafe(48)
        with self._changed:
            self.tokens[token] = time.time() + 3600
            self.grants.append(claims)
        return web.json_response(
            {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        )

    def _verify(self, grant: str, assertion: str) -> tuple[dict[str, Any], str]:
        if grant != GRANT:
            return {}, "Invalid grant_type."
        try:
            head, body, signature = (_unb64(p) for p in assertion.split("."))
            header, claims = json.loads(head), json.loads(body)
        except (ValueError, binascii.Error):
            return (
                {},
                "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe",
            )
        signed = assertion.rsplit(".", 1)[0].encode()
        try:
            self.public.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return claims, "Invalid JWT Signature."
        now = time.time()
        if header.get("alg") != "RS256" or header.get("kid") != self.key_id:
            return claims, "Invalid JWT: unknown key or algorithm."
        if claims.get("iss") != ACCOUNT:
            return claims, "Invalid issuer: unknown service account."
        # Google's documented audience, whichever URI the key's token_uri names.
        if claims.get("aud") != AUDIENCE:
            return claims, "Invalid JWT: audience is not the token URI."
        if not set(str(claims.get("scope", "")).split()) & set(SCOPES):
            return claims, "Invalid OAuth scope or ID token audience provided."
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 300 <= now <= exp + 300) or exp - iat > 3600:
            return (
                claims,
                "Invalid JWT: Token must be a short-lived token (60 minutes).",
            )
        return claims, ""

    async def _publish(self, request: web.Request) -> web.Response:
        raw = await request.read()
        scripted = self._scripted()
        if scripted is not None:
            self._record({"path": request.path, "status": scripted.status})
            return scripted.text_response()
        status, answer = self._answer(request, raw)
        self._record({"path": request.path, "status": status, "answer": answer})
        return web.json_response(answer, status=status)

    def _answer(self, request: web.Request, raw: bytes) -> tuple[int, dict[str, Any]]:
        project, _, action = request.match_info["topic"].partition(":")
        topic = f"projects/{request.match_info['project']}/topics/{project}"
        if action != "publish":
            return 404, _error(404, "NOT_FOUND", "Method not found.")
        auth = request.headers.get("Authorization", "")
        expires = (
            self.tokens.get(auth.removeprefix("Bearer "), 0) if auth.startswith("Bearer ") else 0
        )
        if expires < time.time():
            return 401, _error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        if len(raw) > MAX_REQUEST:
            return 400, _error(
                400,
                "INVALID_ARGUMENT",
                f"Request payload size exceeds the limit: {MAX_REQUEST} bytes.",
            )
        if topic not in self.topics:
            return 404, _error(404, "NOT_FOUND", f"Resource not found (resource={project}).")
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        problems = publish_problems(body)
        if problems:
            return 400, _error(400, "INVALID_ARGUMENT", problems[0])
        ids = []
        for message in body["messages"]:
            ids.append(str(next(self._ids)))
            with self._changed:
                self.published.append(
                    Published(
                        topic,
                        base64.b64decode(message.get("data", "")),
                        dict(message.get("attributes", {})),
                        message.get("orderingKey", ""),
                        ids[-1],
                    )
                )
        return 200, {"messageIds": ids}


def publish_problems(body: Any) -> list[str]:
    """Why Pub/Sub refuses this publish request (empty when it accepts it)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        return [f"The request must hold 1 to {MAX_MESSAGES} messages."]
    if len(json.dumps(body).encode()) > MAX_REQUEST:
        return [f"Request payload size exceeds the limit: {MAX_REQUEST} bytes."]
    out = []
    for message in messages:
        try:
            data = base64.b64decode(message.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            out.append("Invalid value at 'messages[0].data' (TYPE_BYTES), Base64 decoding failed")
            continue
        attributes = message.get("attributes") or {}
        if not data and not attributes:
            out.append(
                "Some messages in the publish request are empty. Each message must contain "
                "a non-empty data field, or at least one attribute."
            )
        if len(attributes) > MAX_ATTRIBUTES:
            out.append(
                f"The number of message attributes ({len(attributes)}) exceeds the maximum "
                f"allowed ({MAX_ATTRIBUTES})."
            )
        for key, value in attributes.items():
            if len(key.encode()) > 256 or key.startswith("goog"):
                out.append(f"An attribute key is too long or reserved: {key[:40]!r}.")
            if not isinstance(value, str) or len(value.encode()) > 1024:
                out.append("One of the attributes in the request has a value that is too long.")
    return out


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class GooglepubsubContract(PeerContract[PubsubPeer]):
    limits_size = False  # 10 MB: more than a DeployJob's status can hold

    def __init__(self) -> None:
        super().__init__(PubsubPeer())

    def secret(self) -> dict[str, str]:
        return {"credentials": self.peer.key(), "apiUrl": self.peer.base_url}

    def recipients(self) -> tuple[str, ...]:
        return ("deploys",)

    def options(self) -> dict[str, Any]:
        return {"orderingKey": True}

    def visible(self) -> list[str]:
        return [texts(json.loads(p.data).get("data")) for p in self.peer.messages()]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.rate_limit(seconds)

    def problems(self, rendered: Any) -> list[str]:
        out = publish_problems(rendered)
        for message in rendered.get("messages", []):
            event = json.loads(base64.b64decode(message["data"]))
            out += cloudevent_problems(message["attributes"].get("content-type"), event)
        return out
