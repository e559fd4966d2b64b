"""A local HTTP peer on 127.0.0.1: an aiohttp app served from its own thread and event loop, so
sync tests (end to end, the demo) and async tests (same process, any loop) can both use it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from aiohttp import web

Record = TypeVar("Record")


@dataclass(frozen=True)
class Scripted:
    """An answer the peer gives instead of its normal one."""

    status: int
    retry_after: str | None = None
    body: str | None = None
    headers: Mapping[str, str] | None = None

    def response_headers(self) -> dict[str, str]:
        retry = {"Retry-After": self.retry_after} if self.retry_after else {}
        return {**(self.headers or {}), **retry}

    def text_response(self) -> web.Response:
        """The answer with its body as given (empty when it has none)."""
        return web.Response(
            status=self.status, text=self.body or "", headers=self.response_headers()
        )


@dataclass(frozen=True)
class HttpCall:
    """One API request as received: its method, path, decoded JSON body and answered status."""

    method: str
    path: str
    json: Any
    status: int


def json_answer(status: int, answer: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON answer: a string (a scripted body) goes as it is, None as an empty body."""
    if answer is None:
        return web.Response(status=status, headers=headers)
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


def json_or_none(raw: bytes) -> Any:
    """A UTF-8 JSON body decoded; None when it is empty, not UTF-8 or not JSON."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


class HttpPeer(Generic[Record]):
    """Start/stop, a thread-safe list of what was received, scripted answers, wait_for."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._received: list[Record] = []
        self._script: list[Scripted] = []
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the peer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """What a Secret points the provider at: the base URL, unless the vendor's carries more."""
        return self.base_url

    @property
    def received(self) -> list[Record]:
        """A snapshot of what arrived, oldest first."""
        with self._changed:
            return list(self._received)

    def clear(self) -> None:
        with self._changed:
            self._received.clear()
            self._script.clear()

    def respond_next(
        self,
        count: int,
        status: int,
        retry_after: str | None = None,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `count` requests with `status` (and a Retry-After, a body, headers)."""
        with self._changed:
            self._script.extend([Scripted(status, retry_after, body, headers)] * count)

    def wait_for(
        self, predicate: Callable[[list[Record]], Any], timeout: float = 10.0, what: str = ""
    ) -> Any:
        """Block until predicate(received) is truthy; return it, or fail showing what arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate(list(self._received))
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout:.0f}s waiting for {what or 'a request'}; "
                        f"received: {self._received!r}"
                    )
                self._changed.wait(left)

    def wait_for_count(self, count: int, timeout: float = 10.0) -> list[Record]:
        """Block until `count` requests arrived; return every one received."""
        got: list[Record] = self.wait_for(
            lambda got: got if len(got) >= count else None, timeout, f"{count} requests"
        )
        return got

    async def wait_for_async(
        self, predicate: Callable[[list[Record]], Any], within: float = 10.0, what: str = ""
    ) -> Any:
        """wait_for without blocking the caller's event loop."""
        return await asyncio.to_thread(self.wait_for, predicate, within, what)

    def _record(self, record: Record) -> None:
        with self._changed:
            self._received.append(record)
            self._changed.notify_all()

    def _scripted(self) -> Scripted | None:
        with self._changed:
            return self._script.pop(0) if self._script else None

    def start(self) -> Self:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as e:  # reported to start() below
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_site())
            loop.close()

        self._thread = threading.Thread(target=serve, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError(f"{type(self).__name__} did not start within 30s")
        if failure:
            raise RuntimeError(f"{type(self).__name__} could not start") from failure[0]
        return self

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the free port the OS chose for port 0

    async def _stop_site(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop = self._thread = None
        self._runner = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class JsonApiPeer(HttpPeer[HttpCall]):
    """A JSON REST API: one request skeleton (read and decode the body, give a scripted answer
    or the peer's own, record the call, answer JSON); the peer writes `_answer`."""

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = ValueError  # not JSON: `_answer` refuses it as the vendor does
        scripted = self._scripted()
        if scripted is not None:
            answer = json.loads(scripted.body or "{}")
            status, headers = scripted.status, scripted.response_headers()
        else:
            status, answer, headers = self._answer(request, body)
        self._record(HttpCall(request.method, request.path, body, status))
        if answer is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(answer, status=status, headers=headers)

    def _answer(self, request: web.Request, body: Any) -> tuple[int, Any, dict[str, str]]:
        """Status, JSON answer (None for an empty body) and headers; `body` is None when the
        request had none and `ValueError` when it was not JSON."""
        raise NotImplementedError
