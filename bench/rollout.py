"""What a user would do instead of deploybell: `kubectl rollout status` per Deployment.

One process per Deployment (the command takes exactly one object), started the moment the
bench's watch sees the Deployment appear, as a deploy script would right after `kubectl apply`.
Detection is the moment kubectl prints "successfully rolled out" (read from its stdout by a
thread blocked on it), so kubectl's exit and any notification a script would then send are
not counted against it.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from bench.watch import Key

SUCCESS = "successfully rolled out"


class KubectlRollouts:
    def __init__(self, kubectl: Path, kubeconfig: Path, wanted: Iterable[Key]) -> None:
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig
        self.wanted = set(wanted)
        self.started: dict[Key, float] = {}
        self.detected: dict[Key, float] = {}
        self.failures: dict[Key, str] = {}
        self._procs: list[subprocess.Popen[str]] = []
        self._readers: list[threading.Thread] = []
        self._queue: queue.Queue[Key | None] = queue.Queue()
        self._lock = threading.Lock()
        self._launcher = threading.Thread(target=self._launch_all, name="kubectl", daemon=True)
        self._launcher.start()

    def offer(self, namespace: str, name: str) -> None:
        """Called by the watch (its thread) when a Deployment appears; never blocks it."""
        key = (namespace, name)
        if key in self.wanted:
            self._queue.put(key)

    def _launch_all(self) -> None:
        while (key := self._queue.get()) is not None:
            namespace, name = key
            argv = [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), "rollout", "status"]
            argv += [f"deployment/{name}", "-n", namespace, "--timeout=600s"]
            with self._lock:
                self.started[key] = time.monotonic()
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
            )
            reader = threading.Thread(target=self._read, args=(key, proc), daemon=True)
            reader.start()
            with self._lock:
                self._procs.append(proc)
                self._readers.append(reader)

    def _read(self, key: Key, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        output = []
        for line in proc.stdout:
            if SUCCESS in line:
                with self._lock:
                    self.detected.setdefault(key, time.monotonic())
            output.append(line.strip())
        if proc.wait() != 0:
            with self._lock:
                self.failures[key] = " | ".join(output[-3:])

    def pending(self) -> set[Key]:
        with self._lock:
            return self.wanted - set(self.detected) - set(self.failures)

    def close(self) -> None:
        self._queue.put(None)
        self._launcher.join(10)
        with self._lock:
            procs, readers = list(self._procs), list(self._readers)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait(10)
        for reader in readers:
            reader.join(10)
