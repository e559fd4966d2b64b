"""The operator image itself: `make image` builds it, its contents are what the lock says and no
more, and it runs the operator against the local cluster the way the Helm chart runs it (uid
10001, read-only root, no capabilities). Select with `-m image`."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.install.helpers import CHART, Helm, find
from tests.install.scenario import running, unique_cluster_name, wait_announced
from tests.support.cluster import ClusterAccess
from tests.support.deploybell import deployment, finished, subscribed, wait_dj
from tests.support.operator import ROOT, OperatorProcess
from tests.support.peers.webhook import WebhookPeer

sys.path.insert(0, str(ROOT / "hack" / "image"))
import build_image as image_build
import image_report
import podman_env as image_podman

# A cold `make image` (mmdebstrap, downloads) takes ~4 minutes; warm, seconds.
pytestmark = [
    pytest.mark.image,
    pytest.mark.usefixtures("no_session_operator"),
    pytest.mark.timeout(1800),
]

# What the container runs with, in the words of the chart's pod and container securityContext.
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
KUBECONFIG_IN_IMAGE = "/etc/deploybell/kubeconfig"
# Run in the image: what must not be there, one JSON list a line.
CONTENTS = """
import importlib.util, json, pathlib, shutil
modules = ("pip", "setuptools", "wheel", "ensurepip")
print(json.dumps([m for m in modules if importlib.util.find_spec(m)]))
commands = ("gcc", "cc", "c++", "clang", "make", "apt-get", "pip", "pip3")
print(json.dumps([c for c in commands if shutil.which(c)]))
share = pathlib.Path("/usr/share")
docs = [f for d in ("doc", "man", "info", "locale") for f in (share / d).rglob("*")]
print(json.dumps([str(f) for f in docs if f.is_file() and f.name != "copyright"]))
caches = ["/root/.cache", "/nonexistent/.cache", "/var/cache/apt", "/var/lib/apt/lists", "/tmp"]
print(json.dumps([str(f) for d in caches for f in pathlib.Path(d).rglob("*")
                  if f.is_file() and f.stat().st_size]))  # apt leaves empty lock files
"""


def podman_security(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """podman's flags for a securityContext: podman applies its default seccomp profile (the
    runtime default) unless told otherwise; the chart's emptyDir /tmp is a 64 MiB tmpfs."""
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    flags = [
        "--user",
        f"{pod['runAsUser']}:{pod['runAsGroup']}",
        "--group-add",
        str(pod["fsGroup"]),
    ]
    if container["readOnlyRootFilesystem"]:
        flags += ["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:size=64m"]
    flags += [f"--cap-drop={cap}" for cap in container["capabilities"]["drop"]]
    if not container["allowPrivilegeEscalation"]:
        flags += ["--security-opt", "no-new-privileges"]
    return flags


@pytest.fixture(scope="module")
def image(pytestconfig: pytest.Config) -> str:
    """`make image` (cached: seconds when nothing changed); its time is printed."""
    started = time.monotonic()
    proc = subprocess.run(["make", "image"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    took = time.monotonic() - started
    assert proc.returncode == 0, (
        f"make image exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        sizes = [line for line in proc.stdout.splitlines() if line.startswith("image ")]
        print(f"\nmake image: {took:.0f} s; {' '.join(sizes)}")
    return image_podman.image_ref()


def in_image(image: str, *command: str) -> str:
    return image_podman.run_in_image(image, *command)


def test_version_is_the_package_version(image: str) -> None:
    version = in_image(image, "deploybell", "--version").strip()
    assert version == importlib.metadata.version("deploybell") == image_podman.package_version()


def test_installed_packages_are_the_lock(image: str) -> None:
    assert image_report.check_installed(image_report.installed(image)) == []


def test_no_pip_compiler_docs_or_caches(image: str) -> None:
    out = image_podman.run_in_image(image, "python3", "-c", CONTENTS, user="0").splitlines()
    modules, commands, docs, caches = (json.loads(line) for line in out)
    assert modules == [], f"importable in the image: {modules}"
    assert commands == [], f"on the image's PATH: {commands}"
    assert docs == [], f"documentation in the image: {docs[:20]}"
    assert caches == [], f"caches in the image: {caches[:20]}"


def test_host_build_inputs_are_not_in_the_image(image: str) -> None:
    """The host's CA bundle and pip configuration reached the build as secrets: no file of the
    image holds them, nor a certificate only the host trusts, nor does the image's history."""
    ca_bundle = image_build.host_ca_bundle()
    pip_conf = image_build.host_pip_config()
    assert image_report.host_inputs_left(image, ca_bundle, pip_conf) == []
    metadata = image_podman.podman("image", "inspect", image).stdout
    metadata += image_podman.podman("history", "--no-trunc", "--format", "json", image).stdout
    for line in pip_conf.splitlines():
        if "=" in line:
            assert line not in metadata, (
                f"the image's metadata holds the host's pip setting {line!r}"
            )
    for text in ("PIP_CONFIG_FILE", "PIP_CERT", "/run/secrets"):
        assert text not in metadata, f"the image's metadata mentions {text}"


def test_the_chart_runs_the_container_as_the_image_test_does(helm: Helm) -> None:
    pod = find(helm.template("deploybell", "ops", {}), "Deployment")["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "operator")
    assert pod["securityContext"] == POD_SECURITY
    assert container["securityContext"] == CONTAINER_SECURITY
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"] == {"sizeLimit": "64Mi"}, tmp
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert CHART.exists()


@pytest.fixture
def kubeconfig_for_image(cluster: ClusterAccess, tmp_path: Path) -> Path:
    """The cluster's admin kubeconfig with its certificates inline, readable only by uid 10001."""
    path = tmp_path / "kubeconfig"
    path.write_text(cluster.kubectl("config", "view", "--flatten", "--raw"))
    os.chown(path, POD_SECURITY["runAsUser"], POD_SECURITY["runAsGroup"])
    path.chmod(0o400)
    return path


@pytest.fixture
def container(
    cluster: ClusterAccess, image: str, kubeconfig_for_image: Path, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, str, str]]:
    """The image's operator, run by podman as the chart runs it, on the host's network."""
    name, cluster_name = f"deploybell-test-{uuid.uuid4().hex[:6]}", unique_cluster_name()
    command = [
        *image_podman.PODMAN, "run", "--rm", "--name", name, *image_podman.ULIMITS,
        "--network", "host", *podman_security(POD_SECURITY, CONTAINER_SECURITY),
        "--volume", f"{kubeconfig_for_image}:{KUBECONFIG_IN_IMAGE}:ro",
        "--env", f"KUBECONFIG={KUBECONFIG_IN_IMAGE}", image,
    ]  # fmt: skip
    proc = OperatorProcess(cluster, tmp_path / "operator.log", "--cluster-name", cluster_name,
                           command=command)  # fmt: skip
    yield proc, name, cluster_name
    image_podman.podman("rm", "--force", "--ignore", name, check=False)


def process_status(container_name: str) -> dict[str, str]:
    """/proc/1/status of the container: what the kernel says the operator runs with."""
    out = image_podman.podman("exec", container_name, "cat", "/proc/1/status").stdout
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def test_the_image_runs_the_operator_and_notifies(
    cluster: ClusterAccess,
    crds: None,
    notification_ns: str,
    webhook_peer: WebhookPeer,
    container: tuple[OperatorProcess, str, str],
) -> None:
    proc, name, cluster_name = container
    started = time.monotonic()
    with running(cluster, proc, [notification_ns]):
        print(f"the container's operator was healthy after {time.monotonic() - started:.1f} s")
        status = process_status(name)
        assert status["Uid"].split()[:2] == ["10001", "10001"], status["Uid"]
        assert status["Gid"].split()[:2] == ["10001", "10001"], status["Gid"]
        assert "10001" in status["Groups"].split(), status["Groups"]
        for caps in ("CapEff", "CapPrm", "CapBnd"):
            assert int(status[caps], 16) == 0, f"{caps} {status[caps]}"
        assert status["NoNewPrivs"].strip() == "1"
        assert status["Seccomp"].strip() == "2", "no seccomp filter"
        write = image_podman.podman("exec", name, "touch", "/opt/venv/x", check=False)
        assert write.returncode != 0, "the root filesystem is writable"
        assert "Read-only file system" in write.stderr, write.stderr

        cluster.apply([subscribed("ok", [deployment("ok", 2)])], notification_ns)
        wait_dj(cluster, notification_ns, "ok", "run 1 Succeeded", finished(1, "Succeeded"),
                timeout=180)  # fmt: skip
        wait_announced(webhook_peer, notification_ns, "ok", cluster_name, ["start", "success"])
