"""A real nats-server, built from its Go module (`hack/cluster/build.sh nats-server`), on a free
loopback port, and a subscriber that records every message it is delivered.

    with NatsServer(user="bell", password="…") as server, NatsSubscriber(server.url, "deploys.>",
            user="bell", password="…") as heard:
        ...publish...
        heard.wait_for(lambda got: len(got) == 4)

What the server enforces is its own: authorization (user/password or token), `max_payload`
(1 MiB by default), subject syntax, and with `jetstream=True` its streams (duplicates dropped by
`Nats-Msg-Id` within the stream's duplicate window).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import nats

from tests.support.peers import _servers
from tests.support.peers.contract import texts
from tests.support.peers.irc import free_port

MAX_PAYLOAD = 1024 * 1024


def binary() -> Path:
    return _servers.tool("nats-server", "NATS_SERVER_VERSION")


class NatsServer:
    """`nats-server` in the foreground; with `jetstream`, its store in a temporary directory."""

    def __init__(
        self, user: str = "", password: str = "", token: str = "", jetstream: bool = False
    ) -> None:
        self.port = free_port()
        self.monitor = free_port()
        self.user, self.password, self.token = user, password, token
        self.jetstream = jetstream
        self.directory = Path(tempfile.mkdtemp(prefix="deploybell-nats-"))
        self.server: _servers.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> Self:
        argv = [str(binary()), "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor)]
        if self.user:
            argv += ["--user", self.user, "--pass", self.password]
        if self.token:
            argv += ["--auth", self.token]
        if self.jetstream:
            argv += ["-js", "-sd", str(self.directory / "js")]
        self.server = _servers.Process(argv, self.directory)
        self.server.start(lambda: _servers.http_ok(f"http://127.0.0.1:{self.monitor}/healthz"))
        print(f"nats-server ready in {self.server.start_seconds:.2f}s")
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Heard:
    subject: str
    headers: dict[str, str]
    data: bytes

    def event(self) -> Any:
        return json.loads(self.data)


class NatsSubscriber:
    """A nats-py subscriber in a thread of its own, recording each message delivered to it."""

    def __init__(self, url: str, subject: str, **auth: Any) -> None:
        self.url, self.subject, self.auth = url, subject, auth
        self._heard: list[Heard] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._client: Any = None

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._subscribe(), self._loop).result(30)
        return self

    async def _subscribe(self) -> None:
        self._client = await nats.connect(self.url, **self.auth)

        async def heard(msg: Any) -> None:
            with self._changed:
                self._heard.append(Heard(msg.subject, dict(msg.headers or {}), msg.data))
                self._changed.notify_all()

        await self._client.subscribe(self.subject, cb=heard)
        await self._client.flush()

    def stop(self) -> None:
        if self._client is not None:
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def heard(self) -> list[Heard]:
        with self._changed:
            return list(self._heard)

    def wait_for(self, done: Callable[[list[Heard]], Any], timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (result := done(list(self._heard))):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout:.0f}s; heard {self._heard!r}")
                self._changed.wait(left)
            return result


class NatsContract:
    """The provider contract over a real nats-server with a user, and a subscriber on the
    recipients' subjects: what it is delivered, read as the CloudEvents' data."""

    rate_limits = False  # NATS has no rate-limit answer (a slow consumer is dropped instead)
    limits_size = False  # max_payload is 1 MiB; the CloudEvent carries bounded lists

    def __init__(self) -> None:
        self.server = NatsServer(user="deploybell", password="contract-nats-password")
        self.subscriber: NatsSubscriber | None = None

    def __enter__(self) -> Self:
        self.server.start()
        self.subscriber = NatsSubscriber(
            self.server.url, "deploys.>", user="deploybell", password="contract-nats-password"
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.subscriber is not None:
            self.subscriber.stop()
        self.server.stop()

    def secret(self) -> dict[str, str]:
        return {
            "url": self.server.url,
            "username": "deploybell",
            "password": "contract-nats-password",
        }

    def recipients(self) -> tuple[str, ...]:
        return ("deploys.team-a",)

    def options(self) -> dict[str, Any]:
        return {}

    def visible(self) -> list[str]:
        assert self.subscriber is not None
        return [texts(h.event().get("data")) for h in self.subscriber.heard]

    def rate_limit_next(self, seconds: int) -> None:
        raise NotImplementedError("NATS has no rate-limit answer")

    def problems(self, rendered: Any) -> list[str]:
        from tests.support.peers.webhook import cloudevent_problems

        size = len(json.dumps(rendered, ensure_ascii=False).encode())
        out = cloudevent_problems("application/cloudevents+json", rendered)
        return [*out, f"{size} bytes, over max_payload"] if size > MAX_PAYLOAD else out
