"""NATS: each message published as the webhook type's CloudEvent (structured mode, the same
JSON) to each recipient subject.

The event's `id` also goes in the `Nats-Msg-Id` header. Core NATS delivers a message at most
once to each subscriber that is connected when it is published; deploybell's outbox sends at
least once (a send whose outcome was not recorded is sent again, with the same CloudEvent `id`).
With `jetstream: true` deploybell publishes through JetStream and waits for the stream's
acknowledgement: a stream whose duplicate window covers the retry stores the event once
(`Nats-Msg-Id`), and a subject no stream captures is an error instead of a message nobody kept.

Credentials: a user and password, or a token (what nats-py takes without extra packages; NKeys
and `.creds` files need the `nkeys` package and are left out).
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from typing import Any, ClassVar

import nats
import nats.errors
import nats.js.errors

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _http, base, webhook

TIMEOUT_SECONDS = 10.0
MSG_ID_HEADER = "Nats-Msg-Id"
# A subject: dot-separated tokens of printable characters, no wildcards (a publish names one).
SUBJECT = r"[^\s.*>]+(\.[^\s.*>]+)*"

RULES = ProviderRules(
    type="nats",
    title="NATS",
    doc="The webhook type's CloudEvent (JSON, structured mode) published to each subject; "
    "optionally through JetStream, deduplicated by `Nats-Msg-Id`.",
    recipients=Recipients(
        syntax="a subject like 'deploys.team-a' (no wildcards)",
        pattern=SUBJECT,
        valid=("deploys", "deploys.team-a.web"),
        invalid=("deploys.*", "deploys.>", "a..b", "two words"),
        doc="the subjects each CloudEvent is published to",
    ),
    options=(
        Field(
            "jetstream",
            "boolean",
            "Publish through JetStream and wait for the stream's acknowledgement (a stream must "
            "capture the subject); the stream drops repeats by `Nats-Msg-Id`.",
            default=False,
        ),
    ),
    secret_keys=(
        SecretKey(
            "url",
            "The server(s): `nats://host:4222` (`tls://` for TLS), several separated by commas.",
        ),
        SecretKey("username", "A user of the server's `authorization`.", sensitive=False),
        SecretKey("password", "That user's password."),
        SecretKey("token", "An authorization token (instead of a user)."),
    ),
    secret_needs=(frozenset({"url"}),),
    setup="Give deploybell a NATS user (or token) allowed to publish to the subjects, e.g. "
    '`permissions: {publish: ["deploys.>"]}`. With `jetstream: true` it also subscribes to '
    "`_INBOX.>` for the acknowledgements, and a stream must capture the subjects with a "
    "duplicate window (e.g. `nats stream add DEPLOYS --subjects 'deploys.>' --dupe-window 2h`).",
)


def servers(raw: str) -> list[str]:
    """The Secret's `url` as nats-py's server list (permanent error when it is not one)."""
    found = [part.strip() for part in raw.split(",") if part.strip()]
    if not found or not all(s.startswith(("nats://", "tls://")) for s in found):
        raise base.PermanentDeliveryError(
            "nats: Secret key 'url' must be nats://host:port or tls://host:port (comma-separated)"
        )
    return found


def headers(message: Message, override: base.Title | None) -> dict[str, str]:
    event = webhook.event(message, override)
    return {MSG_ID_HEADER: str(event["id"]), "Content-Type": webhook.CONTENT_TYPE}


class NatsProvider:
    """Connects, publishes and closes per message (deploy events are rare; a held connection
    would need reconnect handling for nothing)."""

    rules: ClassVar[ProviderRules] = RULES

    async def send(
        self, message: Message, destination: base.Destination, override: base.Title | None = None
    ) -> base.Sent:
        secret = destination.secret
        secrets = _http.secrets_of(secret)
        body = webhook.serialize(message, override, now=datetime.now(UTC))
        try:
            return await self._publish(destination, body, headers(message, override))
        except base.DeliveryError as e:
            raise base.masked(e, secrets) from None

    async def _publish(
        self, destination: base.Destination, body: bytes, sent_headers: dict[str, str]
    ) -> base.Sent:
        client = await _connect(destination.secret)
        try:
            if destination.options.get("jetstream"):
                stream = client.jetstream(timeout=TIMEOUT_SECONDS)
                ack = await _call(stream.publish(destination.recipient, body, headers=sent_headers))
                repeat = " (a repeat: the stream kept the first)" if ack.duplicate else ""
                return base.Sent(detail=f"stored in stream {ack.stream} seq {ack.seq}{repeat}")
            await _call(client.publish(destination.recipient, body, headers=sent_headers))
            await _call(client.flush(timeout=TIMEOUT_SECONDS))
            return base.Sent(detail=f"published to {destination.recipient}")
        finally:
            await client.close()

    async def close(self) -> None:
        return None


async def _connect(secret: Any) -> Any:
    urls = servers(secret.get("url", ""))
    auth: dict[str, Any] = {}
    if token := secret.get("token", "").strip():
        auth["token"] = token
    elif user := secret.get("username", "").strip():
        auth.update(user=user, password=secret.get("password", "").strip())
    tls = ssl.create_default_context() if any(u.startswith("tls://") for u in urls) else None
    failures: list[str] = []

    async def noted(error: Exception) -> None:
        failures.append(f"{type(error).__name__}: {error}")

    try:
        return await nats.connect(
            urls,
            name="deploybell",
            allow_reconnect=False,
            connect_timeout=int(TIMEOUT_SECONDS),
            max_reconnect_attempts=0,
            error_cb=noted,
            tls=tls,
            **auth,
        )
    except nats.errors.NoServersError as e:
        said = f" ({failures[-1]})" if failures else ""
        kind = base.PermanentDeliveryError if _refused(failures) else base.TemporaryDeliveryError
        raise kind(f"nats: cannot connect{said}") from e
    except (OSError, TimeoutError, nats.errors.Error) as e:
        kind = base.PermanentDeliveryError if _refused([str(e)]) else base.TemporaryDeliveryError
        raise kind(f"nats: cannot connect ({type(e).__name__}: {e})") from e


def _refused(failures: list[str]) -> bool:
    """The server refused the credentials: a person must change them."""
    return any("authorization" in f.lower() or "authentication" in f.lower() for f in failures)


async def _call(awaitable: Any) -> Any:
    """One NATS operation; its failures become delivery errors (permanent: a person must fix)."""
    try:
        return await awaitable
    except nats.js.errors.NoStreamResponseError as e:
        raise base.PermanentDeliveryError(
            "nats: no JetStream stream captures the subject (add one, or set jetstream: false)"
        ) from e
    except (nats.errors.MaxPayloadError, nats.errors.BadSubjectError) as e:
        raise base.PermanentDeliveryError(f"nats: {type(e).__name__}: {e}") from e
    except (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError) as e:
        raise base.TemporaryDeliveryError(f"nats: {type(e).__name__}: {e}") from e


def _render(preview: base.Preview) -> dict[str, Any]:
    return webhook.event(preview.message, preview.override, _http.preview_time(preview.message))


def _preview(preview: base.Preview) -> list[str]:
    how = "JetStream publish" if preview.options.get("jetstream") else "PUB"
    lines = [f"{how} {preview.recipient} (the body is sent compact; indented here)"]
    lines += [f"{k}: {v}" for k, v in headers(preview.message, preview.override).items()]
    return [*lines, "", _http.indented(_render(preview))]


PROVIDER = base.ProviderType(NatsProvider, _render, _preview)
