"""Mattermost: an incoming webhook (its channel, or a `#channel` / `@user` override), or the REST
API v4 with a bot token: the start post is updated with the outcome (`PUT /posts/{id}/patch`) and
the outcome is replied in its thread (`root_id`).

Recipients for the REST API name a channel the API can find without a search: `#team/channel`
(the team's and the channel's URL names, as in `https://chat.example/team/channels/channel`), a
26-character channel id (`#4xp9fdt9rbg7zk8yy7hzmnbqqr`), or `@username` (a direct message from the
bot). An incoming webhook takes `#channel` (a `#team/channel` is cut to its channel: a webhook
posts in its own team) and `@username`.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.providers import _answers, _http, base
from deploybell.notify.providers._mattermost_posts import Post, render, thread_reply

_NAME = r"[a-z0-9][a-z0-9_-]{0,63}"
CHANNEL_ID = re.compile(r"[a-z0-9]{26}")
# A patch of a post that is gone (deleted, or never this bot's) answers these: post anew.
_PATCH_IMPOSSIBLE = frozenset({403, 404})

RULES = ProviderRules(
    type="mattermost",
    title="Mattermost",
    doc="A message with a coloured attachment; with a bot token (REST API) the start post is "
    "updated in place with the outcome, which is also replied in its thread.",
    recipients=Recipients(
        syntax="'#team/channel', '#<channel id>', '#channel' (webhook) or '@user'",
        pattern=rf"#{_NAME}(/{_NAME})?|@[a-z0-9][a-z0-9._-]{{0,63}}",
        required=False,
        required_with=frozenset({"token", "url"}),
        valid=("#platform/deploys", "#4xp9fdt9rbg7zk8yy7hzmnbqqr", "#town-square", "@alice"),
        invalid=("deploys", "#Deploys", "#a/b/c", "@", "#two words"),
        doc="with the REST API a channel as `#team/channel` or `#<channel id>`, or `@user` for a "
        "direct message (one recipient at least); with an incoming webhook an optional override "
        "of its channel",
    ),
    options=(
        Field(
            "threads",
            "boolean",
            "REST API: update a run's start post in place with the outcome and reply in its "
            "thread. Defaults to true.",
            default=True,
        ),
        Field(
            "username",
            "string",
            "Incoming webhook: the name shown as the sender (the server must allow overrides).",
            min_length=1,
            max_length=64,
        ),
        Field(
            "iconUrl",
            "string",
            "Incoming webhook: the sender's picture (the server must allow overrides).",
            max_length=2000,
            pattern=r"https?://\S+",
            expected="an http(s) URL",
        ),
    ),
    secret_keys=(
        SecretKey("webhookUrl", "An incoming-webhook URL (`https://chat.example/hooks/<id>`)."),
        SecretKey("token", "A bot (or personal) access token for the REST API v4."),
        SecretKey("url", "The server's base URL for the REST API.", sensitive=False),
    ),
    secret_needs=(frozenset({"webhookUrl"}), frozenset({"token", "url"})),
    edits_in_place=True,
    threads=True,
    setup="Either an incoming webhook (Integrations > Incoming Webhooks; allow username and icon "
    "overrides for `username`/`iconUrl`), or a bot account's access token with the server URL "
    "(keys `token` and `url`): the bot must be a member of each `#team/channel` it posts to.",
)


class MattermostProvider(_http.HttpProvider):
    """Posts through the shared HTTP session: REST API v4 or an incoming webhook."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        secret = out.destination.secret
        if secret.get("token", "").strip() and secret.get("url", "").strip():
            return await _RestCall(out).send()
        webhook = out.url("webhookUrl")
        body = render(out.message, out.override).webhook_body(out.recipient, out.options)
        reply = await out.request("POST", webhook, json=body)
        sent = _check(out, reply, out.recipient or "the webhook's channel")
        return base.Sent(detail=f"webhook: {sent.detail}")


class _RestCall:
    """One message through the REST API v4: resolve the channel, post, or patch and reply."""

    def __init__(self, out: _http.Outgoing):
        out.headers["Authorization"] = f"Bearer {out.word('token')}"
        self.out = out
        self.base = out.url("url")

    async def send(self) -> base.Sent:
        message, override = self.out.message, self.out.override
        post = render(message, override)
        previous = self.out.previous
        channel, root = str(previous.get("channel", "")), str(previous.get("post", ""))
        threads = bool(self.out.options.get("threads", True))
        if message.event != "start" and threads and channel and root:
            if await self._patch(root, post):
                reply = await self._post(channel, thread_reply(message, override), root=root)
                refs = {"channel": channel, "post": root, "reply": reply}
                return base.Sent(refs=refs, detail=f"updated post {root} and replied in its thread")
        else:
            channel = await self._channel(self.out.recipient)
        posted = await self._post(channel, post.message, props=post.props())
        return base.Sent(refs={"channel": channel, "post": posted}, detail=f"posted {posted}")

    async def _channel(self, recipient: str) -> str:
        """The channel id for `#team/channel`, `#<id>` or `@user` (a direct channel)."""
        name = recipient[1:]
        if recipient.startswith("#") and CHANNEL_ID.fullmatch(name):
            return name
        if recipient.startswith("#") and "/" in name:
            team, channel = name.split("/", 1)
            path = f"teams/name/{quote(team)}/channels/name/{quote(channel)}"
            return str((await self._call("GET", path, context=f"channel {recipient}"))["id"])
        if recipient.startswith("@") and len(name) > 0:
            me = await self._call("GET", "users/me", context="the token's user")
            user = await self._call("GET", f"users/username/{quote(name)}", context=recipient)
            direct = await self._call(
                "POST", "channels/direct", [me["id"], user["id"]], context=f"direct to {recipient}"
            )
            return str(direct["id"])
        if not recipient:
            raise base.PermanentDeliveryError(
                "mattermost: the REST API (Secret keys token and url) needs at least one recipient"
            )
        raise base.PermanentDeliveryError(
            "mattermost: the REST API needs a recipient '#team/channel', '#<channel id>' or "
            f"'@user', got {recipient!r}"
        )

    async def _post(
        self, channel: str, text: str, *, root: str = "", props: dict[str, Any] | None = None
    ) -> str:
        body: dict[str, Any] = {"channel_id": channel, "message": text}
        if root:
            body["root_id"] = root
        if props:
            body["props"] = props
        return str((await self._call("POST", "posts", body, context=f"channel {channel}"))["id"])

    async def _patch(self, post_id: str, post: Post) -> bool:
        """Rewrite the start post; False when it is gone (deleted, or not ours to edit)."""
        reply = await self._request(
            "PUT", f"posts/{quote(post_id)}/patch", {"message": post.message, "props": post.props()}
        )
        if reply.status in _PATCH_IMPOSSIBLE:
            return False
        _check(self.out, reply, f"post {post_id}")
        return True

    async def _call(
        self, method: str, path: str, body: Any = None, *, context: str
    ) -> dict[str, Any]:
        reply = await self._request(method, path, body)
        _check(self.out, reply, context)
        answer = reply.json()
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
            raise base.PermanentDeliveryError(f"mattermost: {method} {path}: the answer has no id")
        return answer

    async def _request(self, method: str, path: str, body: Any = None) -> _answers.Reply:
        url = URL(str(self.base).rstrip("/") + "/api/v4/" + path, encoded=True)
        return await self.out.request(method, url, json=body)


def _check(out: _http.Outgoing, reply: _answers.Reply, context: str) -> base.Sent:
    """The shared classification; a 429 without Retry-After waits for `X-Ratelimit-Reset`."""
    return out.check(reply, context=context, default_delay=_reset_seconds(reply))


def _reset_seconds(reply: _answers.Reply) -> float | None:
    """Mattermost's rate limiter says in `X-Ratelimit-Reset` how many seconds are left."""
    return _answers.seconds(reply.headers, "X-Ratelimit-Reset") if reply.status == 429 else None


def _render(preview: base.Preview) -> dict[str, Any]:
    return render(preview.message, preview.override).rest_body("<channel id>")


def _preview(preview: base.Preview) -> list[str]:
    message, override = preview.message, preview.override
    post = render(message, override)
    out = [
        f"to {preview.recipient or '(the webhook channel)'}: with a bot token POST /api/v4/posts",
        _http.indented(post.rest_body("<channel id>")),
    ]
    hook = post.webhook_body(preview.recipient, preview.options)
    extra = {k: v for k, v in hook.items() if k not in ("text", "attachments")}
    out.append(
        "an incoming webhook gets the same message and attachment as `text` and `attachments`"
        + (f", with {json.dumps(extra, ensure_ascii=False)}" if extra else "")
    )
    return out + preview.update_and_reply(
        "post",
        "(PUT /api/v4/posts/<id>/patch) and this reply is posted in its thread (root_id):",
        thread_reply(message, override),
    )


PROVIDER = base.ProviderType(MattermostProvider, _render, _preview)
