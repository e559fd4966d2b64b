"""The operator as a real process, as users run it (`python -m deploybell run`)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tests.support.cluster import ClusterAccess

ROOT = Path(__file__).resolve().parents[2]
PEERING_CRD = ROOT / "manifests" / "helm" / "deploybell" / "crds" / "kopf.dev_peerings.yaml"


@contextlib.contextmanager
def cluster_peering(cluster: ClusterAccess, prefix: str) -> Iterator[str]:
    """A ClusterKopfPeering of its own (`prefix` and a random suffix), after the chart's peering
    CRD; deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("apply", "--server-side", "-f", str(PEERING_CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev")
    cluster.apply(
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}},
        "default",
    )
    try:
        yield name
    finally:
        cluster.kubectl("delete", "clusterkopfpeering", name, "--ignore-not-found", check=False)


COMMAND = (sys.executable, "-m", "deploybell", "run")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, so no operator is orphaned."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class OperatorProcess:
    """Start, stop, kill and restart the operator; its log is kept for failure messages.

    `command` and `env` (over this process's environment and the cluster's KUBECONFIG) let a
    test run the operator as a pod would, e.g. with a ServiceAccount's own kubeconfig.
    """

    def __init__(
        self,
        cluster: ClusterAccess,
        log_path: Path,
        *extra_args: str,
        command: Sequence[str] = COMMAND,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.log_path = log_path
        self.extra_args = extra_args
        self.command = tuple(command)
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.metrics_port = 0  # set by whoever passes --metrics-port

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.port = free_port()
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), **self.env}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *self.command,
                "--liveness",
                f"http://127.0.0.1:{self.port}/healthz",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.tail()}")
            if self._healthy():
                return
            time.sleep(0.2)
        raise AssertionError(f"operator not healthy within 60s:\n{self.tail()}")

    def _healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as Kubernetes and Ctrl-C do; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(
                f"operator ignored SIGTERM for {timeout}s:\n{self.tail()}"
            ) from None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


# kopf's log lines under peering: an instance resumes once the peering object shows no peer of a
# higher priority, and pauses again when one appears.
PAUSED = "Pausing operations in favour of"
RESUMED = "Resuming operations after the pause"


def acting(proc: OperatorProcess) -> bool:
    """The peered operator is the one that acts (its last pause/resume line is a resume)."""
    log = proc.log_text()
    return log.rfind(RESUMED) > log.rfind(PAUSED)


SESSION: OperatorProcess | None = None
"""The session-wide operator (tests/conftest.py's `operator` fixture), once started: tests that
run operators of their own stop it meanwhile, so that no two standalone operators act at once."""
