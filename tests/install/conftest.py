"""Fixtures of the install-path tests: helm, the chart's CRDs, releases, namespaces, and no
session operator while these tests run operators of their own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.install.helpers import CHART, Helm
from tests.support.cluster import ClusterAccess


@pytest.fixture(scope="session")
def helm(cluster: ClusterAccess, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(cluster, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="session")
def chart_crds(cluster: ClusterAccess) -> None:
    """The chart's CRDs (deploybell's and kopf's peering), as `helm install` creates them."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    for crd in (
        "deployjobs.deploybell.io",
        "notifications.deploybell.io",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    ):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")


@pytest.fixture
def make_namespace(cluster: ClusterAccess) -> Iterator[Callable[..., str]]:
    """Create namespaces (with labels); they are deleted after the test."""
    created: list[str] = []

    def make(prefix: str, labels: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:5]}"
        cluster.kubectl("create", "namespace", name)
        created.append(name)
        for key, value in (labels or {}).items():
            cluster.kubectl("label", "namespace", name, f"{key}={value}")
        return name

    yield make
    for name in created:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def release(helm: Helm, chart_crds: None) -> Iterator[Callable[..., str]]:
    """`helm install` a release of the chart; uninstalled after the test."""
    installed: list[tuple[str, str]] = []

    def install(
        prefix: str, namespace: str, values: dict[str, Any], *flags: str, wait: bool = False
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:5]}"
        helm(
            "install",
            name,
            str(CHART),
            "--namespace",
            namespace,
            "--values",
            helm.values_file(values),
            *(["--wait", "--timeout", "180s"] if wait else []),
            *flags,
        )
        installed.append((name, namespace))
        return name

    yield install
    for name, namespace in installed:
        helm(
            "uninstall", name, "--namespace", namespace, "--wait", "--timeout", "120s", check=False
        )


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path
