"""Slack: a bot token (post, then update in place + thread reply) or an incoming webhook."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message
from deploybell.notify.providers import _http, base
from deploybell.notify.providers._slack_blocks import render, thread_reply

DEFAULT_API_URL = "https://slack.com/api/"

RULES = ProviderRules(
    type="slack",
    title="Slack",
    doc="A Block Kit message with a coloured attachment; with a bot token the start message "
    "is updated in place with the outcome, which is also posted in its thread.",
    recipients=Recipients(
        syntax="'#channel' or '@user'",
        pattern=r"[#@][^\s,]+",
        valid=("#deploys", "#C0123ABCD", "@U0123ABCD", "@alice@example.com"),
        invalid=("deploys", "#two words", "#a,#b"),
        doc="a channel by name or id, a user by id or e-mail address",
    ),
    options=(
        Field(
            "threads",
            "boolean",
            "Post a run's later messages as replies in the thread of its first message "
            "(and update that message in place). Defaults to true.",
            default=True,
        ),
    ),
    secret_keys=(
        SecretKey("token", "A bot token (`xoxb-…`)."),
        SecretKey("webhookUrl", "An incoming-webhook URL (the webhook's channel; no updates)."),
        SecretKey("apiUrl", "Another Web API base URL (Enterprise proxies).", sensitive=False),
    ),
    secret_needs=(frozenset({"token"}), frozenset({"webhookUrl"})),
    edits_in_place=True,
    threads=True,
    setup="Create a Slack app with a bot token and the scopes `chat:write` (plus "
    "`chat:write.public` for channels the bot has not joined) and, for `@email` recipients, "
    "`users:read` and `users:read.email`. An incoming-webhook URL also works (the webhook's "
    "channel; no updates in place).",
)

# Slack errors that will not go away by retrying: a human must fix the token, channel or app.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "channel_not_found",
        "users_not_found",
        "user_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "invalid_blocks",
        "msg_too_long",
    }
)
# Slack errors that say "not now"; together with 429 and 5xx they are retried.
TEMPORARY_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# chat.update answers these when the start message is gone or frozen: post a new one instead.
UPDATE_IMPOSSIBLE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")  # names are lowercase, IDs upper
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


class SlackProvider(_http.HttpProvider):
    """Sends run events to Slack with slack_sdk, over the shared HTTP session."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        try:
            token, webhook_url, api_url, threads = _settings(out.destination)
            if token:
                return await self._send_with_token(out, token, api_url, threads)
            return await self._send_to_webhook(out.message, out.override, webhook_url)
        except base.DeliveryError as e:
            raise base.masked(e, out.secrets) from None
        except SlackApiError as e:
            raise _api_error(e, out.secrets) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            text = base.mask(f"slack: cannot reach Slack: {type(e).__name__}: {e}", out.secrets)
            raise base.TemporaryDeliveryError(text) from None
        except SlackClientError as e:
            text = base.mask(f"slack: client error: {type(e).__name__}: {e}", out.secrets)
            raise base.PermanentDeliveryError(text) from None

    async def _send_with_token(
        self, out: _http.Outgoing, token: str, api_url: str, threads: bool
    ) -> base.Sent:
        message, override = out.message, out.override
        # retry_handlers=[]: the outbox schedules retries (and honours Retry-After) itself.
        client = AsyncWebClient(
            token=token, base_url=api_url, session=self._http.client(), retry_handlers=[]
        )
        payload = render(message, override).as_payload()
        channel, parent = out.previous.get("channel"), out.previous.get("ts")
        follow_up = message.event != "start" and threads and channel and parent
        if follow_up and await _update_in_place(client, str(channel), str(parent), payload):
            reply = await client.chat_postMessage(
                channel=str(channel), thread_ts=str(parent), text=thread_reply(message, override)
            )
            refs = {"channel": str(channel), "ts": str(parent), "reply_ts": str(reply["ts"])}
            return base.Sent(refs=refs, detail=f"updated {channel} {parent} and replied in thread")
        target = await _resolve(client, out.recipient)
        posted = await client.chat_postMessage(
            channel=target, unfurl_links=False, unfurl_media=False, **payload
        )
        refs = {"channel": str(posted["channel"]), "ts": str(posted["ts"])}
        return base.Sent(refs=refs, detail=f"posted to {refs['channel']} at {refs['ts']}")

    async def _send_to_webhook(
        self, message: Message, override: base.Title | None, webhook_url: str
    ) -> base.Sent:
        client = AsyncWebhookClient(url=webhook_url, session=self._http.client(), retry_handlers=[])
        response = await client.send_dict(render(message, override).as_payload())
        if response.status_code == 200:
            return base.Sent(detail=response.body or "ok")
        error = (
            f"slack: incoming webhook answered HTTP {response.status_code}: {response.body[:200]}"
        )
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = _retry_after(response.headers)
            raise base.TemporaryDeliveryError(error, retry_after)
        raise base.PermanentDeliveryError(error)


def _settings(destination: base.Destination) -> tuple[str, str, str, bool]:
    """Validate the Secret and `slack` options: (token, webhookUrl, apiUrl, threads)."""
    secret = destination.secret
    token = secret.get("token", "").strip()
    webhook_url = secret.get("webhookUrl", "").strip()
    api_url = secret.get("apiUrl", "").strip() or DEFAULT_API_URL
    if not token and not webhook_url:
        raise base.PermanentDeliveryError("slack: the Secret needs the key `token` or `webhookUrl`")
    if not token and not webhook_url.startswith(("https://", "http://")):
        raise base.PermanentDeliveryError("slack: Secret key `webhookUrl` must be an http(s) URL")
    if not api_url.startswith(("https://", "http://")):
        raise base.PermanentDeliveryError("slack: Secret key `apiUrl` must be an http(s) URL")
    threads = bool(destination.options.get("threads", True))
    # slack_sdk joins method names onto the base URL, which must end with a slash.
    return token, webhook_url, api_url if api_url.endswith("/") else api_url + "/", threads


async def _resolve(client: AsyncWebClient, recipient: str) -> str:
    """`#name`/`#C123` → a channel for chat.postMessage; `@U123`/`@a@b.c` → a user ID."""
    kind, name = recipient[:1], recipient[1:].strip()
    if kind == "#" and name:
        return name if _CHANNEL_ID.match(name) else f"#{name}"
    if kind == "@" and _USER_ID.match(name):
        return name
    if kind == "@" and "@" in name:
        found = await client.users_lookupByEmail(email=name)
        user = found.get("user") or {}
        if not user.get("id"):
            raise base.PermanentDeliveryError(f"slack: no user id for {recipient}")
        return str(user["id"])
    if kind == "@" and name:
        raise base.PermanentDeliveryError(
            f"slack: recipient {recipient!r} must be a user ID (@U…) or an e-mail address"
        )
    raise base.PermanentDeliveryError(f"slack: recipient {recipient!r} must be #channel or @user")


async def _update_in_place(
    client: AsyncWebClient, channel: str, ts: str, payload: Mapping[str, Any]
) -> bool:
    """Rewrite the start message with the outcome; False when that message cannot be edited."""
    try:
        await client.chat_update(channel=channel, ts=ts, **payload)
    except SlackApiError as e:
        if _error_code(e) in UPDATE_IMPOSSIBLE:
            return False
        raise
    return True


def _error_code(error: SlackApiError) -> str:
    data = error.response.data if error.response is not None else None
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value[0] if isinstance(value, list) else value))
            except (TypeError, ValueError):
                return None
    return None


def _api_error(error: SlackApiError, secrets: list[str]) -> base.DeliveryError:
    """Classify a Web API failure; the message names the method and Slack's error code only."""
    response = error.response
    status = int(getattr(response, "status_code", 0) or 0)
    code = _error_code(error) or "no error code"
    url = str(getattr(response, "api_url", ""))
    method = url.rstrip("/").rsplit("/", 1)[-1] or "call"
    text = base.mask(f"slack: {method} failed: {code} (HTTP {status})", secrets)
    if status == 429 or code == "ratelimited":
        return base.TemporaryDeliveryError(text, _retry_after(getattr(response, "headers", None)))
    if code in PERMANENT_ERRORS:
        return base.PermanentDeliveryError(text)
    if status >= 500 or code in TEMPORARY_ERRORS or status == 0:
        return base.TemporaryDeliveryError(text)
    return base.PermanentDeliveryError(text)


def _preview(preview: base.Preview) -> list[str]:
    message, override = preview.message, preview.override
    out = [
        f"to {preview.recipient}: chat.postMessage (an incoming webhook gets the same body)",
        _http.indented(_render(preview)),
    ]
    return out + preview.update_and_reply(
        "message",
        "with the body above (chat.update), and this reply is posted in its thread:",
        thread_reply(message, override),
    )


def _render(draft: base.Draft) -> dict[str, Any]:
    return render(draft.message, draft.override).as_payload()


PROVIDER = base.ProviderType(SlackProvider, _render, _preview, preview_once=True)
