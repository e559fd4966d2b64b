"""Real servers built from their Go modules for the provider tests (Alertmanager, nats-server):
built on demand by `hack/cluster/build.sh <name>` into ~/.cache/deploybell/test-tools/bin (once;
`make demo` and the cluster never build them), started as processes on free loopback ports."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BUILD = ROOT / "hack" / "cluster" / "build.sh"
VERSIONS = ROOT / "hack" / "cluster" / "versions.env"
BUILD_TIMEOUT = 3600.0


def version(variable: str) -> str:
    for line in VERSIONS.read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip() == variable:
            return value.strip()
    raise KeyError(f"{variable} is not in {VERSIONS}")


def tool(name: str, variable: str) -> Path:
    """The versioned binary, built first if this version is not in the cache yet."""
    cache = Path(os.environ.get("DEPLOYBELL_CACHE", Path.home() / ".cache" / "deploybell"))
    binary = cache / "test-tools" / "bin" / f"{name}-{version(variable)}"
    if binary.exists():
        return binary
    started = time.monotonic()
    done = subprocess.run(
        ["nice", "-n", "10", "bash", str(BUILD), name],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0 or not binary.exists():
        raise RuntimeError(f"building {name} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    print(f"built {name} in {time.monotonic() - started:.0f}s")
    return binary


class Process:
    """A server process with its log in `directory`; `ready` polled until it holds."""

    def __init__(self, argv: Sequence[str], directory: Path) -> None:
        self.argv = list(argv)
        self.directory = directory
        self.log_path = directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0

    def start(self, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
            )
        deadline = started + timeout
        while not ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited {self.process.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.argv[0]} not ready within {timeout:.0f}s: {self.log()}")
            time.sleep(0.05)
        self.start_seconds = time.monotonic() - started

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)
        self.process = None


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - a loopback URL
            return bool(200 <= answer.status < 300)
    except OSError:
        return False
