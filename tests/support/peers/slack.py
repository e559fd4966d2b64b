"""A local Slack: the Web API methods deploybell uses plus incoming webhooks, on 127.0.0.1.

It runs its own event loop in a thread so sync tests, async tests and the demo can all use it:

    peer = SlackPeer(token="xoxb-test")
    peer.start()
    ...  # point slack_sdk at peer.base_url, or post to peer.webhook_url
    peer.calls_to("chat.postMessage"); peer.message("C0DEPLOYS", ts); peer.webhook_posts
    peer.stop()
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_CHANNELS = {"deploys": "C0DEPLOYS", "ops": "C0OPS"}
DEFAULT_USERS = {"alice@example.test": "U0ALICE", "bob@example.test": "U0BOB"}
TEST_TOKEN = "xoxb-deploybell-test-token"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"


@dataclass(frozen=True)
class SlackCall:
    """One request the peer received: Web API method (or `webhook`) and its merged arguments."""

    method: str
    body: Mapping[str, Any]
    authorization: str
    status: int  # what the peer answered
    error: str = ""  # Slack's `error` when the answer was not ok


@dataclass
class _Failure:
    """A scripted answer for the next `calls` requests (optionally of one method)."""

    calls: int
    status: int
    error: str
    method: str | None = None
    retry_after: int | None = None


@dataclass
class _State:
    calls: list[SlackCall] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    webhook_posts: list[dict[str, Any]] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)


class SlackPeer:
    """Slack Web API (`auth.test`, `chat.postMessage`, `chat.update`, `users.lookupByEmail`)."""

    def __init__(
        self,
        token: str = TEST_TOKEN,
        channels: Mapping[str, str] | None = None,
        users: Mapping[str, str] | None = None,
        hook_id: str = "T0TEAM/B0HOOK/s3cr3tw3bh00kpath",
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token
        self.channels = dict(DEFAULT_CHANNELS if channels is None else channels)  # name → ID
        self.users = dict(DEFAULT_USERS if users is None else users)  # e-mail → user ID
        self.hook_id = hook_id
        self.host = host
        self.port = 0
        self._state = _State()
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The Web API base URL, as slack_sdk's `base_url` (and the Secret's `apiUrl`) expect."""
        return f"{self.root}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self.root}/hooks/{self.hook_id}"

    def start(self) -> SlackPeer:
        """Listen on a free port of 127.0.0.1; returns once requests are accepted."""
        ready = threading.Event()
        problem: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen())
            except BaseException as e:  # reported to start() below
                problem.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name="slack-peer", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=30) or problem:
            raise RuntimeError(f"the Slack peer did not start: {problem or 'timeout'}")
        return self

    def stop(self) -> None:
        loop, runner, thread = self._loop, self._runner, self._thread
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        self._loop = self._runner = self._thread = None

    def __enter__(self) -> SlackPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/hooks/{hook_id:.+}", self._webhook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    # ---- knobs

    def rate_limit(self, calls: int = 1, retry_after: int = 30) -> None:
        """Answer the next `calls` requests with 429 `ratelimited` and `Retry-After`."""
        self.fail(calls=calls, status=429, error="ratelimited", retry_after=retry_after)

    def fail(
        self,
        calls: int = 1,
        status: int = 200,
        error: str = "fatal_error",
        method: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `calls` requests (of `method`, or any) with `{"ok": false, error}`."""
        with self._lock:
            self._state.failures.append(_Failure(calls, status, error, method, retry_after))

    # ---- what it received

    @property
    def calls(self) -> list[SlackCall]:
        with self._lock:
            return list(self._state.calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    @property
    def webhook_posts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.webhook_posts)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The message as it stands now (after any chat.update)."""
        with self._lock:
            found = self._state.messages.get((channel, ts))
            return dict(found) if found is not None else None

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(m)
                for (ch, _), m in self._state.messages.items()
                if channel is None or ch == channel
            ]

    def replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages(channel) if m.get("thread_ts") == thread_ts]

    def wait_for(
        self, what: str, probe: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1
    ) -> Any:
        """Poll probe() until truthy (for tests whose sender is another process)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(
            f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}; "
            f"calls: {self.calls!r}; webhook posts: {self.webhook_posts!r}"
        )

    # ---- the Web API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        auth = request.headers.get("Authorization", "")
        failure = self._scripted_failure(method)
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            return self._answer(method, args, auth, failure.status, failure.error, headers=headers)
        token = auth.removeprefix("Bearer ").strip() if auth else str(args.get("token", ""))
        if not token:
            return self._answer(method, args, auth, 200, "not_authed")
        if token != self.token:
            return self._answer(method, args, auth, 200, "invalid_auth")
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "users.lookupByEmail": self._lookup_by_email,
        }.get(method)
        if handler is None:
            return self._answer(method, args, auth, 200, "unknown_method")
        with self._lock:
            result = handler(args)
        if "error" in result:
            return self._answer(method, args, auth, 200, result["error"])
        return self._answer(method, args, auth, 200, "", result)

    def _answer(
        self,
        method: str,
        args: Mapping[str, Any],
        auth: str,
        status: int,
        error: str,
        result: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        with self._lock:
            self._state.calls.append(SlackCall(method, dict(args), auth, status, error))
        body = {"ok": False, "error": error} if error else {"ok": True, **(result or {})}
        return web.json_response(body, status=status, headers=headers)

    def _scripted_failure(self, method: str) -> _Failure | None:
        with self._lock:
            for failure in self._state.failures:
                if failure.calls > 0 and failure.method in (None, method):
                    failure.calls -= 1
                    return failure
        return None

    def _auth_test(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://deploybell-test.slack.com/",
            "team": "deploybell-test",
            "user": "deploybell",
            "team_id": "T0TEAM",
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _channel_id(self, channel: str) -> str | None:
        """A channel name (`#deploys`, `deploys`), channel ID, or user ID (a DM) → channel ID."""
        name = channel.removeprefix("#")
        if name in self.channels:
            return self.channels[name]
        if name in self.channels.values():
            return name
        if name in self.users.values():
            return "D" + name[1:]  # the app's DM with that user
        return None

    def _post_message(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(str(args.get("channel", "")))
        if channel is None:
            return {"error": "channel_not_found"}
        if not (args.get("text") or args.get("blocks") or args.get("attachments")):
            return {"error": "no_text"}
        thread_ts = args.get("thread_ts")
        if thread_ts and (channel, str(thread_ts)) not in self._state.messages:
            return {"error": "thread_not_found"}
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message = {
            "type": "message",
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "ts": ts,
            "text": args.get("text", ""),
            "blocks": _decoded(args.get("blocks", [])),
            "attachments": _decoded(args.get("attachments", [])),
        }
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
        self._state.messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": dict(message)}

    def _update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        if channel not in self.channels.values() and not channel.startswith("D"):
            return {"error": "channel_not_found"}  # chat.update takes channel IDs only
        existing = self._state.messages.get((channel, ts))
        if existing is None:
            return {"error": "message_not_found"}
        updated = {
            **existing,
            "text": args.get("text", existing.get("text", "")),
            "blocks": _decoded(args.get("blocks", existing.get("blocks", []))),
            "attachments": _decoded(args.get("attachments", existing.get("attachments", []))),
            "edited": {"user": BOT_USER, "ts": f"{int(time.time())}.000000"},
        }
        self._state.messages[(channel, ts)] = updated
        return {"channel": channel, "ts": ts, "text": updated["text"], "message": dict(updated)}

    def _lookup_by_email(self, args: Mapping[str, Any]) -> dict[str, Any]:
        email = str(args.get("email", ""))
        user_id = self.users.get(email)
        if user_id is None:
            return {"error": "users_not_found"}
        name = email.split("@")[0]
        return {
            "user": {
                "id": user_id,
                "team_id": "T0TEAM",
                "name": name,
                "real_name": name.title(),
                "deleted": False,
                "is_bot": False,
                "profile": {"email": email, "real_name": name.title(), "display_name": name},
            }
        }

    # ---- incoming webhooks

    async def _webhook(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        failure = self._scripted_failure("webhook")
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            return self._hook_answer({}, auth, failure.status or 500, failure.error, headers)
        if request.match_info["hook_id"] != self.hook_id:
            return self._hook_answer({}, auth, 404, "no_service")
        try:
            body = await request.json()
        except ValueError:
            return self._hook_answer({}, auth, 400, "invalid_payload")
        if not isinstance(body, dict) or not (
            body.get("text") or body.get("blocks") or body.get("attachments")
        ):
            return self._hook_answer({}, auth, 400, "no_text")
        with self._lock:
            self._state.webhook_posts.append(body)
        return self._hook_answer(body, auth, 200, "")

    def _hook_answer(
        self,
        body: Mapping[str, Any],
        auth: str,
        status: int,
        error: str,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        with self._lock:
            self._state.calls.append(SlackCall("webhook", dict(body), auth, status, error))
        # Slack's incoming webhooks answer in plain text: `ok`, or the error code.
        return web.Response(text=error or "ok", status=status, headers=headers)


async def _arguments(request: web.Request) -> dict[str, Any]:
    """Query, form and JSON arguments merged, as Slack accepts all three."""
    args: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        else:
            args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return args


def _decoded(value: Any) -> Any:
    """Form-encoded calls send blocks/attachments as JSON strings; keep them as data."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
