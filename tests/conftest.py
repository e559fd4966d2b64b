"""Shared fixtures: a real cluster for the whole session, and a fresh namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.cluster import ClusterAccess, localcluster, start_or_reuse


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


@pytest.fixture
def namespace(cluster: ClusterAccess, request: pytest.FixtureRequest) -> Iterator[str]:
    base = request.node.name.lower().replace("_", "-")
    name = f"t-{''.join(c for c in base if c.isalnum() or c == '-')[:40]}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
