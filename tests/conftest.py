"""Shared fixtures: a real cluster for the whole session, and a fresh namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support import operator as operator_support
from tests.support.cluster import (
    SECOND_STATE,
    ClusterAccess,
    localcluster,
    start_or_reuse,
    start_second,
    wait_for,
)
from tests.support.deploybell import notification, webhook_secret
from tests.support.operator import ROOT, OperatorProcess, free_port
from tests.support.peers.smtp import SmtpPeer
from tests.support.peers.webhook import WebhookPeer


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterAccess]:
    try:
        access = start_or_reuse()
    except localcluster.ClusterError as e:
        # Never skip: a cluster that cannot start is a failure, with the component's log tail.
        pytest.fail(f"the local cluster could not start:\n{e}", pytrace=False)
    yield access
    if access.owned:
        localcluster.down(quiet=True)


@pytest.fixture(scope="session")
def cluster_b(cluster: ClusterAccess) -> Iterator[ClusterAccess]:
    """A second local cluster, a deploy target (spec.cluster) for the operator running against
    the first; in its own state directory (`<DEPLOYBELL_CLUSTER_DIR>-b`)."""
    try:
        access = start_second()
    except localcluster.ClusterError as e:
        pytest.fail(f"the second local cluster could not start:\n{e}", pytrace=False)
    yield access
    if access.owned:
        localcluster.down(quiet=True, state=SECOND_STATE)


@pytest.fixture
def namespace(cluster: ClusterAccess, request: pytest.FixtureRequest) -> Iterator[str]:
    base = request.node.name.lower().replace("_", "-")
    name = f"t-{''.join(c for c in base if c.isalnum() or c == '-')[:40]}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def crds(cluster: ClusterAccess) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    for crd in ("deployjobs.deploybell.io", "notifications.deploybell.io"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")


@pytest.fixture(scope="session")
def smtp_peer() -> Iterator[SmtpPeer]:
    """The SMTP server the operator's default e-mail setting points at."""
    with SmtpPeer() as peer:
        yield peer


@pytest.fixture(scope="session")
def operator(
    cluster: ClusterAccess,
    crds: None,
    smtp_peer: SmtpPeer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """One operator process for the session; tests that restart it leave it running."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    metrics_port = free_port()
    proc = OperatorProcess(
        cluster,
        log,
        "--failfast-grace-seconds",
        "5",
        "--cluster-name",
        "local-test",
        "--smtp-host",
        smtp_peer.host,
        "--smtp-port",
        str(smtp_peer.port),
        "--smtp-from",
        "deploybell@local.test",
        "--metrics-port",
        str(metrics_port),
    )
    proc.metrics_port = metrics_port
    proc.start()
    operator_support.SESSION = proc
    yield proc
    operator_support.SESSION = None
    if proc.proc is not None and proc.proc.poll() is None:
        code = proc.stop()
        assert code == 0, f"operator exited {code} on SIGTERM:\n{proc.tail()}"


@pytest.fixture(scope="session")
def webhook_peer() -> Iterator[WebhookPeer]:
    """The webhook receiver every test Notification `deploy-notification` delivers to."""
    with WebhookPeer() as peer:
        yield peer


@pytest.fixture
def notification_ns(
    cluster: ClusterAccess, crds: None, namespace: str, webhook_peer: WebhookPeer
) -> str:
    """A namespace with the Notification `deploy-notification` every hook points at (the CRDs
    installed first: a module that runs its own operators may be the session's first)."""
    cluster.apply([webhook_secret(webhook_peer), notification()], namespace)
    wait_for(
        "Notification created",
        lambda: cluster.get("notifications.deploybell.io", "deploy-notification", namespace),
    )
    return namespace


@pytest.fixture(scope="module")
def no_session_operator() -> Iterator[None]:
    """Stop the session-wide operator (if a test before started it) while this module runs its
    own operators, so that no DeployJob is driven by two operators at once; restart it after."""
    session = operator_support.SESSION
    paused = session is not None and session.running
    if paused:
        assert session is not None
        code = session.stop()
        assert code == 0, f"the session operator exited {code} on SIGTERM:\n{session.tail()}"
    yield
    if paused:
        assert session is not None
        session.start()
