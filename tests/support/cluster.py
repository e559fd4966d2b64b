"""Test access to a real cluster: the local one from hack/cluster, or the one KUBECONFIG names."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack" / "cluster"))
import localcluster  # noqa: E402


@dataclass(frozen=True)
class ClusterAccess:
    """A reachable cluster: its kubeconfig and the kubectl to use on it."""

    kubeconfig: Path
    bin_dir: Path
    owned: bool  # started by this test session, so stopped at its end
    local: localcluster.Cluster | None = None  # the hack/cluster one: its components can restart

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]], namespace: str) -> None:
        items = manifest if isinstance(manifest, list) else [manifest]
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        self.kubectl("apply", "-n", namespace, "-f", "-", stdin=body)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        out = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None


def start_or_reuse() -> ClusterAccess:
    """Use KUBECONFIG when set; else reuse a running local cluster, or start one."""
    bins = localcluster.bin_dir()
    if os.environ.get("KUBECONFIG"):
        return ClusterAccess(Path(os.environ["KUBECONFIG"]), bins, owned=False)
    cluster = localcluster.Cluster(localcluster.STATE)
    if localcluster.is_up(cluster):
        return ClusterAccess(cluster.kubeconfig, bins, owned=False, local=cluster)
    cluster = localcluster.up()
    return ClusterAccess(cluster.kubeconfig, bins, owned=True, local=cluster)


SECOND_STATE = Path(f"{localcluster.STATE}-b")
"""The second local cluster (a deploy target): its own state directory beside the first's."""


def start_second() -> ClusterAccess:
    """The second local cluster, started (or reused) in SECOND_STATE."""
    bins = localcluster.bin_dir()
    cluster = localcluster.Cluster(SECOND_STATE)
    if localcluster.is_up(cluster):
        return ClusterAccess(cluster.kubeconfig, bins, owned=False, local=cluster)
    cluster = localcluster.up(SECOND_STATE)
    return ClusterAccess(cluster.kubeconfig, bins, owned=True, local=cluster)


def embedded_kubeconfig(
    access: ClusterAccess, context: str, token: str | None = None, ca: bytes | None = None
) -> str:
    """A kubeconfig for a local cluster with everything inline (the `-data` forms, as a target
    cluster's Secret must have it): the admin client certificate, or a bearer `token`."""
    assert access.local is not None
    pki = access.local.state / "pki"

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    user = (
        {"token": token}
        if token
        else {
            "client-certificate-data": b64((pki / "admin.crt").read_bytes()),
            "client-key-data": b64((pki / "admin.key").read_bytes()),
        }
    )
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "contexts": [{"name": context, "context": {"cluster": "b", "user": "deploybell"}}],
            "clusters": [
                {
                    "name": "b",
                    "cluster": {
                        "server": access.local.server,
                        "certificate-authority-data": b64(ca or (pki / "ca.crt").read_bytes()),
                    },
                }
            ],
            "users": [{"name": "deploybell", "user": user}],
        }
    )


def wait_for(
    what: str,
    probe: Callable[[], Any],
    timeout: float = 60.0,
    interval: float = 0.25,
) -> Any:
    """Poll probe() until it returns something truthy; on timeout fail showing the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None
