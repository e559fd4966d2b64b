"""The two operators under test as real processes: deploybell, and the bare kopf floor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.operator import free_port

ROOT = Path(__file__).resolve().parents[1]


class Supervised:
    """A process with a kopf liveness endpoint; its output goes to a log file."""

    def __init__(self, name: str, argv: list[str], kubeconfig: Path, log: Path) -> None:
        self.name = name
        self.argv = argv
        self.kubeconfig = kubeconfig
        self.log = log
        self.port = 0
        self.metrics_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not started"
        return self.proc.pid

    def start(self, wait: bool = True) -> None:
        self.port = free_port()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.argv, "--liveness", f"http://127.0.0.1:{self.port}/healthz"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
            )
        if wait:
            self.wait_healthy()

    def healthy(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not healthy within {timeout:.0f}s:\n{self.tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 120) -> float:
        """SIGTERM and wait; returns how long it took to exit."""
        if not self.alive():
            return 0.0
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            raise RuntimeError(f"{self.name} ignored SIGTERM for {timeout:.0f}s") from None
        return time.monotonic() - began

    def run_watches(self) -> float | None:
        """Watches open on the kinds a run observes (the operator's gauge); None: no metrics."""
        if not self.metrics_port:
            return None
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            lines = response.read().decode().splitlines()
        return sum(float(x.split()[-1]) for x in lines if x.startswith("deploybell_run_watches{"))

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def deploybell(
    kubeconfig: Path, namespaces: list[str], log: Path, threads: int = 0, traced: bool = False
) -> Supervised:
    """`threads`: run it with that many threads in asyncio's default executor (0: as is);
    `traced`: with tracemalloc, reporting into memory.txt beside its log (bench.memory)."""
    wide = ["bench.wide_executor", str(threads)] if threads else ["deploybell"]
    if traced:
        wide = ["bench.memory", str(log.parent / "memory.txt")]
    metrics_port = free_port()
    argv = [sys.executable, "-m", *wide, "run", "--cluster-name", "bench"]
    argv += ["--metrics-port", str(metrics_port)]
    for namespace in namespaces:
        argv += ["-n", namespace]
    operator = Supervised("deploybell", argv, kubeconfig, log)
    operator.metrics_port = metrics_port
    return operator


def bare(kubeconfig: Path, namespaces: list[str], log: Path) -> Supervised:
    argv = [sys.executable, "-m", "kopf", "run", "--standalone"]
    for namespace in namespaces:
        argv += ["-n", namespace]
    argv.append(str(ROOT / "bench" / "bare_operator.py"))
    return Supervised("bare kopf", argv, kubeconfig, log)
