"""Install-path helpers: helm, rendering the chart, a ServiceAccount's kubeconfig, and running
an installed Deployment's operator container as a local process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import ClusterAccess
from tests.support.operator import ROOT, OperatorProcess, free_port

CHART = ROOT / "manifests" / "helm" / "deploybell"
KUSTOMIZE = ROOT / "manifests" / "install"
DOCKERFILE = ROOT / "Dockerfile"


class Helm:
    """The helm binary of the local cluster's toolchain, with its own config, cache and data."""

    def __init__(self, cluster: ClusterAccess, home: Path) -> None:
        self.cluster = cluster
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "KUBECONFIG": str(cluster.kubeconfig),
        }
        self.values_dir = home / "values"
        self.values_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.cluster.bin_dir / "helm"), *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def values_file(self, values: dict[str, Any]) -> str:
        path = self.values_dir / f"{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(values))  # JSON is YAML
        return str(path)

    def template(
        self, release: str, namespace: str, values: dict[str, Any], *flags: str
    ) -> list[dict[str, Any]]:
        out = self(
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--values",
            self.values_file(values),
            *flags,
        ).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of this kind (and name) among rendered objects."""
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kustomize_build(cluster: ClusterAccess, path: Path) -> list[dict[str, Any]]:
    out = cluster.kubectl("kustomize", str(path))
    return [doc for doc in yaml.safe_load_all(out) if doc]


def service_account_kubeconfig(
    cluster: ClusterAccess, namespace: str, service_account: str, path: Path
) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount, with a TokenRequest token."""
    token = cluster.kubectl(
        "create", "token", service_account, "-n", namespace, "--duration=2h"
    ).strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    server = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    ca = dict(server["cluster"])
    if "certificate-authority" in ca:
        pem = Path(ca.pop("certificate-authority")).read_bytes()
        ca["certificate-authority-data"] = base64.b64encode(pem).decode()
    user = f"system:serviceaccount:{namespace}:{service_account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": ca}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "cluster", "user": user}}],
        "current-context": "sa",
    }
    path.write_text(json.dumps(config, indent=1))
    path.chmod(0o600)
    return path


def can_i(cluster: ClusterAccess, kubeconfig: Path, *args: str) -> bool:
    """`kubectl auth can-i` as whoever the kubeconfig authenticates."""
    out = subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), "auth", "can-i", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() == "yes"


def image_entrypoint() -> list[str]:
    """The Dockerfile's ENTRYPOINT (exec form)."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if ln.startswith("ENTRYPOINT ")]
    assert len(lines) == 1, "the Dockerfile has one ENTRYPOINT"
    return list(json.loads(lines[0].removeprefix("ENTRYPOINT ")))


def container_env(
    cluster: ClusterAccess, container: dict[str, Any], pod: str, namespace: str
) -> dict[str, str]:
    """The container's environment as the kubelet would resolve it for pod `pod`."""
    env: dict[str, str] = {}
    for var in container.get("env") or []:
        source = var.get("valueFrom") or {}
        if "value" in var:
            env[var["name"]] = str(var["value"])
        elif field := source.get("fieldRef"):
            fields = {"metadata.name": pod, "metadata.namespace": namespace}
            env[var["name"]] = fields[field["fieldPath"]]
        elif ref := source.get("secretKeyRef"):
            secret = cluster.get("secret", ref["name"], namespace)
            raw = ((secret or {}).get("data") or {}).get(ref["key"])
            assert raw is not None, f"Secret {ref['name']} has no key {ref['key']}"
            env[var["name"]] = base64.b64decode(raw).decode()
        else:
            raise AssertionError(f"unsupported env source in {var}")
    return env


def pod_process(
    cluster: ClusterAccess,
    deployment: dict[str, Any],
    pod: str,
    kubeconfig: Path,
    log: Path,
) -> OperatorProcess:
    """The Deployment's operator container, run here as pod `pod` with the given credentials.

    The command is the container's (or the image's ENTRYPOINT) with its args, its environment
    as the kubelet resolves it; only the ports move (several pods share this machine) and
    `python` is this virtualenv's.
    """
    spec = deployment["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "operator")
    namespace = deployment["metadata"]["namespace"]
    env = container_env(cluster, container, pod, namespace)
    if env.get("DEPLOYBELL_METRICS_PORT", "0") != "0":
        env["DEPLOYBELL_METRICS_PORT"] = str(free_port())
    env.pop("DEPLOYBELL_LIVENESS", None)  # OperatorProcess passes --liveness on a free port
    env["KUBECONFIG"] = str(kubeconfig)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    command = [*(container.get("command") or image_entrypoint()), *(container.get("args") or [])]
    return OperatorProcess(cluster, log, command=command, env=env)


def installed_deployment(cluster: ClusterAccess, name: str, namespace: str) -> dict[str, Any]:
    deployment = cluster.get("deployment", name, namespace)
    assert deployment is not None, f"Deployment {namespace}/{name} not found"
    return deployment
