"""Google Cloud Pub/Sub: each message as the CloudEvent the `webhook` type sends, published to a
topic with the REST API (`POST v1/projects/P/topics/T:publish`) in the CloudEvents Pub/Sub
binding's structured mode (`data` is the event's JSON, attribute `content-type`).

Authentication is a service account's JSON key: google-auth signs the JWT and exchanges it at
the key's `token_uri` for an access token, kept until shortly before it expires. Pub/Sub has no
publisher-side deduplication; subscribers drop repeats by the CloudEvent `id` (the idempotency
key). With `orderingKey` the run's events carry the DeployJob as ordering key, which a
subscription with message ordering delivers in order.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from google.auth.exceptions import GoogleAuthError, TransportError
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _bus, _http, base, webhook

API = "https://pubsub.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/pubsub"
MAX_REQUEST = 10_000_000  # Pub/Sub: a publish request and a message are at most 10 MB
# The event is base64 in the JSON request: 4 bytes for every 3, plus the request's own fields.
MAX_EVENT = (MAX_REQUEST - 4096) * 3 // 4
_TOPIC = r"[A-Za-z][A-Za-z0-9._~%+-]{2,254}"
_RECIPIENT = rf"(projects/[a-z][a-z0-9.:-]{{4,62}}/topics/)?{_TOPIC}"


def _topic_problem(recipient: str) -> str | None:
    topic = recipient.rsplit("/", 1)[-1]
    return "a topic name must not start with 'goog'" if topic.startswith("goog") else None


RULES = ProviderRules(
    type="googlepubsub",
    title="Google Cloud Pub/Sub",
    doc="A CloudEvents 1.0 JSON event per message, published to a Pub/Sub topic.",
    recipients=Recipients(
        syntax="a topic: `projects/PROJECT/topics/TOPIC`, or `TOPIC` in the key's project",
        pattern=_RECIPIENT,
        check=_topic_problem,
        valid=("deploys", "projects/my-project/topics/deploys"),
        invalid=("projects/my-project/deploys", "goog-deploys", "x"),
        doc="each topic gets every event",
    ),
    options=(
        Field(
            "orderingKey",
            "boolean",
            "Publish with the DeployJob (`namespace/job`) as ordering key, so a subscription "
            "with message ordering delivers a run's events in order.",
            default=False,
        ),
    ),
    secret_keys=(
        SecretKey(
            "credentials",
            "The service account's JSON key (`gcloud iam service-accounts keys create`).",
        ),
        SecretKey(
            "apiUrl",
            "Another endpoint, e.g. a regional one or Private Service Connect.",
            sensitive=False,
        ),
    ),
    secret_needs=(frozenset({"credentials"}),),
    setup="A service account with the role **Pub/Sub Publisher** (`roles/pubsub.publisher`) "
    "granted on the topic only, and a JSON key for it in the Secret's `credentials`.",
)


class GooglepubsubProvider(_http.HttpProvider):
    """One publish request per message and topic, with a cached access token per key."""

    rules = RULES

    def __init__(self) -> None:
        super().__init__()
        self._tokens: dict[str, service_account.Credentials] = {}
        self._lock = asyncio.Lock()

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        info = key_of(out)
        token = await self._token(info)
        out.hide(token)
        topic = topic_path(out.recipient, str(info.get("project_id", "")))
        api = out.url("apiUrl", API)
        url = api.with_path(f"{api.path.rstrip('/')}/v1/{topic}:publish", encoded=False)
        body = _render(out)
        headers = {"Authorization": f"Bearer {token}"}
        reply = await out.request("POST", url, json=body, headers=headers)
        out.check(reply, context=f"topic {topic}")
        ids = (reply.json() or {}).get("messageIds") or ["?"]
        return base.Sent(detail=f"published to {topic} as message {ids[0]}")

    async def _token(self, info: dict[str, Any]) -> str:
        """A valid access token for this key, refreshed (off the event loop) when it is not."""
        name = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
        async with self._lock:
            credentials = self._tokens.get(name)
            if credentials is None:
                # google-auth's constructor is not annotated; it returns a Credentials.
                credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                    info, scopes=[SCOPE]
                )
                self._tokens[name] = credentials
            if not credentials.valid:
                try:
                    # google-auth's token request waits up to 120 s; a send waits as long as
                    # any other request (the thread ends on its own).
                    await asyncio.wait_for(
                        asyncio.to_thread(credentials.refresh, Request()), _http.TIMEOUT_SECONDS
                    )
                except TimeoutError:
                    raise base.TemporaryDeliveryError(
                        f"googlepubsub: the token endpoint gave no answer within "
                        f"{_http.TIMEOUT_SECONDS:.0f}s"
                    ) from None
                except GoogleAuthError as e:
                    raise _auth_error(e) from None
            return str(credentials.token)


def key_of(out: _http.Outgoing) -> dict[str, Any]:
    """The Secret's service account key, checked enough to say what is wrong with it."""
    where = "googlepubsub: Secret key 'credentials'"
    try:
        info = json.loads(out.destination.secret.get("credentials", ""))
    except ValueError:
        raise base.PermanentDeliveryError(f"{where} is not a JSON key") from None
    missing = [
        k
        for k in ("client_email", "private_key", "token_uri")
        if not isinstance(info, dict) or not info.get(k)
    ]
    if missing or info.get("type") != "service_account":
        raise base.PermanentDeliveryError(
            f"{where} is not a service account key (needs type service_account, "
            "client_email, private_key and token_uri)"
        )
    out.hide(str(info["private_key"]), str(info.get("private_key_id", "")))
    return dict(info)


def _auth_error(error: GoogleAuthError) -> base.DeliveryError:
    """The token endpoint's refusal: a bad key is permanent, a transport problem temporary."""
    text = str(error)
    said = re.sub(r"\s+", " ", text)[:200]
    # google-auth raises RefreshError with the endpoint's `error` (invalid_grant, ...); the
    # message never holds the key itself.
    if isinstance(error, TransportError) or getattr(error, "retryable", False):
        return base.TemporaryDeliveryError(f"googlepubsub: the token endpoint failed: {said}")
    return base.PermanentDeliveryError(f"googlepubsub: the token endpoint refused the key: {said}")


def topic_path(recipient: str, project: str) -> str:
    """`projects/P/topics/T`; a bare topic is in the key's project."""
    if recipient.startswith("projects/"):
        return recipient
    if not project:
        raise base.PermanentDeliveryError(
            "googlepubsub: the key names no project_id; name the topic as projects/P/topics/T"
        )
    return f"projects/{project}/topics/{recipient}"


# the request body (pure)


def publish(
    message: Message, override: base.Title | None, now: datetime | None, ordered: bool
) -> dict[str, Any]:
    """The publish request: one message, the event base64 in `data`, structured mode."""
    event = _bus.fitted(message, override, now, MAX_EVENT)
    pubsub: dict[str, Any] = {
        "data": base64.b64encode(event).decode("ascii"),
        "attributes": {"content-type": webhook.CONTENT_TYPE},
    }
    if ordered:
        pubsub["orderingKey"] = f"{message.namespace}/{message.job}"
    return {"messages": [pubsub]}


def _render(draft: base.Draft) -> dict[str, Any]:
    now = (
        _http.preview_time(draft.message) if isinstance(draft, base.Preview) else datetime.now(UTC)
    )
    ordered = bool(draft.options.get("orderingKey"))
    return publish(draft.message, draft.override, now, ordered)


def _preview(preview: base.Preview) -> list[str]:
    body = _render(preview)
    (pubsub,) = body["messages"]
    shown = {**pubsub, "data": "<base64 of the event below>"}
    topic = topic_path(preview.recipient, "<the key's project_id>")
    return [
        f"POST /v1/{topic}:publish (Authorization: Bearer <token for the key's service account>)",
        _http.indented({"messages": [shown]}),
        "",
        "the event (its JSON is sent compact):",
        _http.indented(json.loads(base64.b64decode(pubsub["data"]))),
    ]


PROVIDER = base.ProviderType(GooglepubsubProvider, _render, _preview)
