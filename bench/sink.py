"""The webhook receiver of the bench: the test peer, plus the moment each CloudEvent arrived."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from aiohttp import web
from tests.support.peers.webhook import WebhookPeer

EVENT_TYPE_PREFIX = "io.deploybell.deployjob."


@dataclass(frozen=True)
class Arrival:
    """One notification as the receiver saw it; `at` is time.monotonic() on arrival."""

    at: float
    subject: str  # "<namespace>/<job>"
    event: str  # start, success, failure, cancel
    run: int
    id: str


class TimedWebhookPeer(WebhookPeer):
    """Timestamps each request before anything else (body parsing, validation, recording)."""

    def __init__(self) -> None:
        super().__init__()
        self._arrivals: list[Arrival] = []
        self._first: dict[tuple[str, str, int], float] = {}
        self._lock = threading.Lock()

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        body = await request.read()  # cached by aiohttp: the base class reads the same bytes
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if isinstance(event, dict):
            data = event.get("data") if isinstance(event.get("data"), dict) else {}
            arrival = Arrival(
                at,
                str(event.get("subject", "")),
                str(event.get("type", "")).removeprefix(EVENT_TYPE_PREFIX),
                int(data.get("run") or 0),
                str(event.get("id", "")),
            )
            with self._lock:
                self._arrivals.append(arrival)
                self._first.setdefault((arrival.subject, arrival.event, arrival.run), at)
        return await super()._handle(request)

    def first(self, subject: str, event: str, run: int) -> float | None:
        """When the first `event` of run `run` of the DeployJob `subject` arrived."""
        with self._lock:
            return self._first.get((subject, event, run))

    def arrivals(self, since: float = 0.0) -> list[Arrival]:
        with self._lock:
            return [a for a in self._arrivals if a.at >= since]

    def duplicates(self, subjects: set[str]) -> int:
        """Messages for these DeployJobs that arrived more than once (same idempotency key)."""
        seen: set[str] = set()
        again = 0
        with self._lock:
            for a in self._arrivals:
                if a.subject in subjects:
                    again += a.id in seen
                    seen.add(a.id)
        return again
