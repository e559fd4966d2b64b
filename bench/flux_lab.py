"""Flux as a peer, its plumbing: the three controllers as processes on this machine, a git server
on loopback holding the manifests, and the receiver of the generic-webhook Alert.

The controllers are built by `hack/cluster/build.sh flux` (pinned in versions.env, a cache
directory of their own, so `make test` never builds them); every address they listen on is a
free port of 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.operator import free_port

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
CONTROLLERS = ("source-controller", "kustomize-controller", "notification-controller")


class FluxUnavailable(RuntimeError):
    """The Flux binaries could not be built here; the message says what refused."""


def build() -> Path:
    """`hack/cluster/build.sh flux`: the bin directory (its crds/ beside it)."""
    proc = subprocess.run(
        [str(ROOT / "hack" / "cluster" / "build.sh"), "flux"],
        capture_output=True,
        text=True,
        timeout=7200,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        refused = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
        said = " | ".join(refused[-5:] or [proc.stderr[-500:]])
        raise FluxUnavailable(f"build.sh flux exited {proc.returncode}: {said}")
    return Path(lines[-1])


@dataclass(frozen=True)
class Arrival:
    at: float  # time.monotonic() when the request arrived
    event: dict[str, Any]


class AlertSink:
    """The generic provider's endpoint: every POSTed event with its arrival time."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = json.loads(body)
                except ValueError:
                    event = {}
                with sink._lock:
                    sink.arrivals.append(Arrival(at, event if isinstance(event, dict) else {}))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AlertSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def first(self, kind: str, name: str, message_prefix: str, since: float) -> float | None:
        """When the first event of that object whose message starts so arrived (after `since`)."""
        with self._lock:
            for arrival in self.arrivals:
                involved = arrival.event.get("involvedObject") or {}
                if (
                    arrival.at >= since
                    and involved.get("kind") == kind
                    and involved.get("name") == name
                    and str(arrival.event.get("message", "")).startswith(message_prefix)
                ):
                    return arrival.at
        return None

    def seen(self) -> list[str]:
        with self._lock:
            return [str(a.event.get("message", ""))[:80] for a in self.arrivals[-5:]]


@dataclass
class Controller:
    name: str
    argv: list[str]
    health: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health}/readyz"
            with urllib.request.urlopen(url, timeout=1) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Flux:
    bins: Path
    controllers: list[Controller] = field(default_factory=list)
    git_url: str = ""

    @property
    def pids(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self.controllers if c.proc is not None}

    def push(self, repository: str, files: dict[str, str]) -> str:
        """A commit of `files` on branch main of `repository` on the git server; its URL."""
        url = f"{self.git_url}/{repository}"
        with tempfile.TemporaryDirectory(prefix="flux-repo-") as work:
            for path, text in files.items():
                (Path(work) / path).parent.mkdir(parents=True, exist_ok=True)
                (Path(work) / path).write_text(text)
            git = ["git", "-C", work, "-c", "user.name=bench", "-c", "user.email=bench@local.test"]
            env = {**os.environ, **LOOPBACK, "GIT_TERMINAL_PROMPT": "0"}
            for args in (
                ["init", "-q", "-b", "main"],
                ["add", "."],
                ["commit", "-q", "-m", f"{len(files)} manifests"],
                ["push", "-q", "--force", url, "main"],
            ):
                subprocess.run([*git, *args], check=True, capture_output=True, env=env)
        return url


@contextmanager
def running(bins: Path, kubeconfig: Path, log_dir: Path) -> Iterator[Flux]:
    """The git server and the three controllers, ready; all stopped afterwards."""
    flux = Flux(bins)
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flux-")))
        flux.git_url = stack.enter_context(git_server(bins, root / "git"))
        events = free_port()
        env = {**os.environ, **LOOPBACK, "KUBECONFIG": str(kubeconfig)}
        storage = free_port()
        (root / "storage").mkdir()
        common = ["--log-encoding=json", "--log-level=info"]
        specific = {
            "source-controller": [
                f"--storage-path={root / 'storage'}",
                f"--storage-addr=127.0.0.1:{storage}",
                f"--storage-adv-addr=127.0.0.1:{storage}",
                f"--events-addr=http://127.0.0.1:{events}/",
            ],
            "kustomize-controller": [f"--events-addr=http://127.0.0.1:{events}/"],
            "notification-controller": [
                f"--events-addr=127.0.0.1:{events}",
                f"--receiverAddr=127.0.0.1:{free_port()}",
            ],
        }
        for name in CONTROLLERS:
            health = free_port()
            argv = [str(bins / name), *common, *specific[name]]
            argv += [f"--metrics-addr=127.0.0.1:{free_port()}", f"--health-addr=127.0.0.1:{health}"]
            flux.controllers.append(Controller(name, argv, health, log_dir / f"{name}.log"))
        stack.callback(lambda: [c.stop() for c in flux.controllers])
        for controller in flux.controllers:
            controller.start(env)
        deadline = time.monotonic() + 120
        while not all(c.ready() for c in flux.controllers):
            for c in flux.controllers:
                if c.proc is not None and c.proc.poll() is not None:
                    raise RuntimeError(f"{c.name} exited {c.proc.returncode}:\n{c.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError("Flux controllers not ready within 120s")
            time.sleep(0.2)
        yield flux


@contextmanager
def git_server(bins: Path, root: Path) -> Iterator[str]:
    """gittestserver on a free loopback port; its base URL."""
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(bins / "gitserver"), "-root", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"gitserver did not start: {url!r}")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
