"""The bench's access to the cluster: JSON requests and watches, kubectl, and client identities.

The operators under test get client certificates of their own (CN `deploybell-bench`,
`deploybell-bench-bare`), so the API server's audit log tells their requests apart from the
bench's, from kubectl's, and from any other deploybell that happens to run on the same cluster.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from deploybell.clients import errors
from deploybell.clients.kube import KubeClient
from deploybell.clients.transport import Transport

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack" / "cluster"))
import localcluster  # noqa: E402

USER_AGENT = "deploybell-bench/0.1.0"
OPERATOR_USER = "deploybell-bench"
BARE_USER = "deploybell-bench-bare"
GROUP_VERSION = "deploybell.io/v1alpha1"


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class ClusterInfo:
    """A running cluster; `state` is the local cluster's directory (None: no audit log)."""

    kubeconfig: Path
    bins: Path
    state: Path | None

    @property
    def audit_log(self) -> Path | None:
        return self.state / "logs" / "audit.log" if self.state else None

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        proc = subprocess.run(
            [str(self.bins / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout


def local_cluster() -> ClusterInfo:
    """Start (or reuse) the local cluster, as `make demo` does."""
    bins = localcluster.bin_dir()
    cluster = localcluster.up()
    return ClusterInfo(cluster.kubeconfig, bins, cluster.state)


def install_crds(cluster: ClusterInfo) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/deployjobs.deploybell.io",
        "crd/notifications.deploybell.io",
        "--timeout=60s",
    )


class Api:
    """JSON requests and watches for the bench's threads, over deploybell's own async client
    (kubernetes_asyncio's transport) running on an event loop of its own."""

    def __init__(self, kubeconfig: Path) -> None:
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="bench-api", daemon=True).start()
        transport = self._call(Transport.from_environment(str(kubeconfig), USER_AGENT))
        self._kube = KubeClient(transport)
        self._open: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        try:
            return self._call(
                self._kube.request(method, path, query=query, body=body, content_type=content_type)
            )
        except errors.ApiError as e:
            raise ApiError(e.status, str(e)) from None

    def watch(self, path: str, query: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Watch events until the server ends the stream (or says 410) or `close_watches`."""
        events: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue()

        async def pump() -> None:
            try:
                async for event in self._kube.watch(path, query, 660):
                    events.put(event)
            except errors.Gone:
                pass
            except Exception as e:  # handed to the reading thread
                events.put(e)
            finally:
                events.put(None)

        future = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        with self._lock:
            self._open.add(future)
        try:
            while (item := events.get()) is not None:
                if isinstance(item, errors.ApiError):
                    raise ApiError(item.status, str(item))
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            with self._lock:
                self._open.discard(future)
            future.cancel()

    def close_watches(self) -> None:
        with self._lock:
            streams = list(self._open)
        for future in streams:
            future.cancel()


def deployjobs_path(namespace: str, name: str = "") -> str:
    base = f"/apis/{GROUP_VERSION}/namespaces/{namespace}/deployjobs"
    return f"{base}/{name}" if name else base


def identity_kubeconfig(cluster: ClusterInfo, user: str) -> Path:
    """A kubeconfig for a client certificate with CN `user` in system:masters.

    Without the local cluster's CA the admin kubeconfig is returned (audit counts then need
    the user agent alone).
    """
    if cluster.state is None or not (cluster.state / "pki" / "ca.key").exists():
        return cluster.kubeconfig
    pki = cluster.state / "pki"
    out = cluster.state / "bench-identities"
    out.mkdir(exist_ok=True)
    key, csr, crt, ext = (out / f"{user}.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
    if not crt.exists():
        ext.write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
        _openssl("genrsa", "-out", str(key), "2048")
        subject = f"/O=system:masters/CN={user}"
        _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"),
            "-CAkey", str(pki / "ca.key"), "-CAserial", str(out / "ca.srl"), "-CAcreateserial",
            "-days", "30", "-sha256", "-extfile", str(ext), "-out", str(crt),
        )  # fmt: skip
    config = json.loads(cluster.kubeconfig.read_text())
    config["users"][0]["user"] = {"client-certificate": str(crt), "client-key": str(key)}
    path = out / f"{user}.kubeconfig"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def server_of(kubeconfig: Path) -> str:
    config = json.loads(kubeconfig.read_text())  # the local cluster writes JSON
    return str(config["clusters"][0]["cluster"]["server"])


def foreign_operators(ours: set[int], server: str) -> list[int]:
    """Pids of other `deploybell run` processes whose KUBECONFIG names this API server (or who
    have none): they would act on the bench's DeployJobs too."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in ours or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"run" not in argv or not any(
            a == b"deploybell" or a.endswith(b"/deploybell") for a in argv
        ):
            continue
        config = next((e[11:].decode() for e in environ if e.startswith(b"KUBECONFIG=")), "")
        try:
            same = not config or server in Path(config).read_text()
        except OSError:
            continue
        if same:
            found.append(int(entry.name))
    return found
