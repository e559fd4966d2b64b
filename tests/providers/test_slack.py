"""SlackProvider against a local Slack (Web API + incoming webhook) through the real slack_sdk."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.providers.base import (
    DeliveryError,
    Destination,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)
from deploybell.notify.providers.slack import SlackProvider
from tests.support.peers.slack import SlackPeer


@pytest.fixture
def peer() -> Iterator[SlackPeer]:
    with SlackPeer() as running:
        yield running


@pytest.fixture
async def provider() -> AsyncIterator[SlackProvider]:
    sender = SlackProvider()
    yield sender
    await sender.close()


def with_token(
    peer: SlackPeer,
    recipient: str = "#deploys",
    previous: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    token: str | None = None,
) -> Destination:
    secret = {"token": peer.token if token is None else token, "apiUrl": peer.base_url}
    return Destination("slack", recipient, options or {}, secret, previous=previous or {})


def with_webhook(peer: SlackPeer, url: str | None = None) -> Destination:
    return Destination("slack", "#ignored", {}, {"webhookUrl": url or peer.webhook_url})


def assert_no_secret(error: DeliveryError, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in str(error), str(error)
        assert secret not in error.message, error.message


async def test_outcome_updates_the_start_message_in_place_and_replies_in_its_thread(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    started = await provider.send(sample("start"), with_token(peer))
    assert started.refs["channel"] == "C0DEPLOYS"
    channel, ts = started.refs["channel"], started.refs["ts"]
    start_message = peer.message(channel, ts)
    assert start_message is not None
    assert start_message["text"] == "▶ team-a/web started on prod-eu (run 3)"
    assert start_message["attachments"][0]["color"] == "#2f80ed"

    outcome = await provider.send(sample("success"), with_token(peer, previous=started.refs))

    updated = peer.message(channel, ts)
    assert updated is not None
    assert "edited" in updated
    assert updated["text"] == "✔ team-a/web succeeded on prod-eu (run 3)"
    assert updated["attachments"][0]["color"] == "#2eb67d"
    [reply] = peer.replies(channel, ts)
    assert reply["text"].startswith("*✔ team-a/web succeeded on prod-eu (run 3)*\n")
    assert outcome.refs == {"channel": channel, "ts": ts, "reply_ts": reply["ts"]}
    assert len(peer.messages(channel)) == 2  # the start message and its reply, nothing else
    assert [c.method for c in peer.calls] == ["chat.postMessage", "chat.update", "chat.postMessage"]
    assert all(c.authorization == f"Bearer {peer.token}" for c in peer.calls)


async def test_failure_update_carries_the_diagnosis(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    started = await provider.send(sample("start"), with_token(peer))
    await provider.send(sample("failure"), with_token(peer, previous=started.refs))
    updated = peer.message(started.refs["channel"], started.refs["ts"])
    assert updated is not None
    assert updated["attachments"][0]["color"] == "#e01e5a"
    sections = [b["text"]["text"] for b in updated["attachments"][0]["blocks"] if "text" in b]
    assert any(
        s.startswith("*Failing pods*\n• pod web-7d9f8-x2kqp container app") for s in sections
    )
    [reply] = peer.replies(started.refs["channel"], started.refs["ts"])
    assert "CrashLoopBackOff, exit code 1, 5 restarts" in reply["text"]


async def test_without_previous_refs_the_outcome_is_just_posted(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    sent = await provider.send(sample("cancel"), with_token(peer))
    assert [c.method for c in peer.calls] == ["chat.postMessage"]
    posted = peer.message(sent.refs["channel"], sent.refs["ts"])
    assert posted is not None
    assert "thread_ts" not in posted
    assert posted["attachments"][0]["color"] == "#9e9e9e"


async def test_threads_off_posts_the_outcome_as_a_new_message(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    started = await provider.send(sample("start"), with_token(peer))
    destination = with_token(peer, previous=started.refs, options={"threads": False})
    outcome = await provider.send(sample("success"), destination)
    assert outcome.refs["ts"] != started.refs["ts"]
    assert peer.calls_to("chat.update") == []
    assert peer.replies(started.refs["channel"], started.refs["ts"]) == []


async def test_a_deleted_start_message_still_gets_its_outcome_delivered(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    gone = {"channel": "C0DEPLOYS", "ts": "1700000000.000001"}
    outcome = await provider.send(sample("success"), with_token(peer, previous=gone))
    assert [(c.method, c.error) for c in peer.calls] == [
        ("chat.update", "message_not_found"),
        ("chat.postMessage", ""),
    ]
    posted = peer.message(outcome.refs["channel"], outcome.refs["ts"])
    assert posted is not None
    assert posted["text"].startswith("✔ team-a/web succeeded")


async def test_channel_by_id(peer: SlackPeer, provider: SlackProvider) -> None:
    sent = await provider.send(sample("start"), with_token(peer, "#C0OPS"))
    assert sent.refs["channel"] == "C0OPS"
    assert peer.calls_to("chat.postMessage")[0].body["channel"] == "C0OPS"


async def test_user_by_email_is_resolved_with_users_lookup_by_email(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    sent = await provider.send(sample("start"), with_token(peer, "@alice@example.test"))
    [lookup] = peer.calls_to("users.lookupByEmail")
    assert lookup.body["email"] == "alice@example.test"
    [post] = peer.calls_to("chat.postMessage")
    assert post.body["channel"] == "U0ALICE"
    assert sent.refs["channel"] == "D0ALICE"  # the app's DM with alice


async def test_user_by_id_is_posted_directly(peer: SlackPeer, provider: SlackProvider) -> None:
    await provider.send(sample("start"), with_token(peer, "@U0BOB"))
    assert [c.method for c in peer.calls] == ["chat.postMessage"]
    assert peer.calls[0].body["channel"] == "U0BOB"


async def test_unknown_email_is_permanent(peer: SlackPeer, provider: SlackProvider) -> None:
    with pytest.raises(PermanentDeliveryError, match="users_not_found"):
        await provider.send(sample("start"), with_token(peer, "@nobody@example.test"))
    assert peer.calls_to("chat.postMessage") == []


@pytest.mark.parametrize("recipient", ["@alice", "deploys", "", "#"])
async def test_recipients_slack_cannot_address_are_permanent_and_send_nothing(
    peer: SlackPeer, provider: SlackProvider, recipient: str
) -> None:
    with pytest.raises(PermanentDeliveryError, match="recipient"):
        await provider.send(sample("start"), with_token(peer, recipient))
    assert peer.calls == []


async def test_incoming_webhook_gets_the_blocks(peer: SlackPeer, provider: SlackProvider) -> None:
    sent = await provider.send(sample("failure"), with_webhook(peer))
    assert sent.refs == {}
    assert sent.detail == "ok"
    [posted] = peer.webhook_posts
    assert posted["text"] == "✖ team-a/web failed on prod-eu (run 3)"
    assert posted["attachments"][0]["color"] == "#e01e5a"
    assert posted["blocks"][0]["type"] == "section"
    assert peer.calls_to("chat.postMessage") == []


async def test_webhook_outcome_with_previous_refs_is_posted_too(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    destination = dataclasses.replace(
        with_webhook(peer), previous={"channel": "C0DEPLOYS", "ts": "1.2"}
    )
    await provider.send(sample("success"), destination)
    assert len(peer.webhook_posts) == 1


async def test_unknown_webhook_is_permanent_and_the_url_is_not_in_the_error(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    url = f"{peer.root}/hooks/T0TEAM/B0HOOK/wr0ngs3cr3tpath"
    with pytest.raises(PermanentDeliveryError, match="404") as caught:
        await provider.send(sample("start"), with_webhook(peer, url))
    assert_no_secret(caught.value, url, "wr0ngs3cr3tpath")
    assert peer.webhook_posts == []


async def test_webhook_rate_limited_is_temporary_with_retry_after(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    peer.fail(method="webhook", status=429, error="rate_limited", retry_after=12)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("start"), with_webhook(peer))
    assert caught.value.retry_after == 12.0
    assert len(peer.calls_to("webhook")) == 1
    assert_no_secret(caught.value, peer.webhook_url, peer.hook_id)


async def test_rate_limited_is_temporary_with_retry_after_and_no_library_retry(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    peer.rate_limit(calls=1, retry_after=7)
    with pytest.raises(TemporaryDeliveryError, match="ratelimited") as caught:
        await provider.send(sample("start"), with_token(peer))
    assert caught.value.retry_after == 7.0
    # slack_sdk must not have slept and retried by itself: exactly one request reached Slack.
    assert [(c.method, c.status) for c in peer.calls] == [("chat.postMessage", 429)]
    assert_no_secret(caught.value, peer.token)
    # The peer answers normally again, so the next attempt (scheduled by the outbox) succeeds.
    sent = await provider.send(sample("start"), with_token(peer))
    assert sent.refs["channel"] == "C0DEPLOYS"


async def test_invalid_auth_is_permanent_and_the_token_is_not_in_the_error(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    wrong = "xoxb-wrong-token-0123456789"
    with pytest.raises(PermanentDeliveryError, match="invalid_auth") as caught:
        await provider.send(sample("start"), with_token(peer, token=wrong))
    assert_no_secret(caught.value, wrong, peer.token)
    assert peer.calls[0].authorization == f"Bearer {wrong}"


async def test_channel_not_found_is_permanent(peer: SlackPeer, provider: SlackProvider) -> None:
    with pytest.raises(PermanentDeliveryError, match="channel_not_found") as caught:
        await provider.send(sample("start"), with_token(peer, "#nowhere"))
    assert_no_secret(caught.value, peer.token)


@pytest.mark.parametrize("error", ["not_in_channel", "is_archived", "account_inactive"])
async def test_slack_errors_a_human_must_fix_are_permanent(
    peer: SlackPeer, provider: SlackProvider, error: str
) -> None:
    peer.fail(method="chat.postMessage", error=error)
    with pytest.raises(PermanentDeliveryError, match=error):
        await provider.send(sample("start"), with_token(peer))


async def test_server_errors_are_temporary_and_not_retried_by_the_library(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    peer.fail(status=503, error="service_unavailable")
    with pytest.raises(TemporaryDeliveryError, match="503") as caught:
        await provider.send(sample("start"), with_token(peer))
    assert caught.value.retry_after is None
    assert len(peer.calls) == 1


async def test_a_thread_reply_rate_limited_after_the_update_is_temporary(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    started = await provider.send(sample("start"), with_token(peer))
    peer.fail(method="chat.postMessage", status=429, error="ratelimited", retry_after=3)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await provider.send(sample("success"), with_token(peer, previous=started.refs))
    assert caught.value.retry_after == 3.0
    # The retry updates the same message again (idempotent) and then replies once.
    await provider.send(sample("success"), with_token(peer, previous=started.refs))
    assert len(peer.replies(started.refs["channel"], started.refs["ts"])) == 1
    assert len(peer.calls_to("chat.update")) == 2


async def test_unreachable_slack_is_temporary_and_masked(provider: SlackProvider) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "xoxb-unreachable-0123456789"
    api_url = f"http://127.0.0.1:{port}/api/"
    destination = Destination("slack", "#deploys", {}, {"token": token, "apiUrl": api_url})
    with pytest.raises(TemporaryDeliveryError, match="cannot reach Slack") as caught:
        await provider.send(sample("start"), destination)
    assert_no_secret(caught.value, token)


async def test_api_url_without_trailing_slash_works(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    destination = Destination(
        "slack", "#deploys", {}, {"token": peer.token, "apiUrl": peer.base_url.rstrip("/")}
    )
    sent = await provider.send(sample("start"), destination)
    assert sent.refs["channel"] == "C0DEPLOYS"


@pytest.mark.parametrize(
    ("secret", "options", "named"),
    [
        ({}, {}, "`token` or `webhookUrl`"),
        ({"webhookUrl": "hooks.slack.com/services/x"}, {}, "`webhookUrl`"),
        ({"token": "xoxb-1", "apiUrl": "slack.local"}, {}, "`apiUrl`"),
    ],
)
async def test_bad_settings_are_permanent_and_name_the_key(
    provider: SlackProvider, secret: dict[str, str], options: dict[str, Any], named: str
) -> None:
    with pytest.raises(PermanentDeliveryError, match=named) as caught:
        await provider.send(sample("start"), Destination("slack", "#deploys", options, secret))
    assert_no_secret(caught.value, *(v for v in secret.values() if len(v) > 6))


async def test_manifest_text_reaches_slack_escaped(
    peer: SlackPeer, provider: SlackProvider
) -> None:
    hostile = dataclasses.replace(sample("failure"), message="<!channel> & <@U0ALICE>")
    sent = await provider.send(hostile, with_token(peer))
    posted = peer.message(sent.refs["channel"], sent.refs["ts"])
    assert posted is not None
    headline = posted["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt; &amp; &lt;@U0ALICE&gt;" in headline
    assert "<!channel>" not in str(posted)
